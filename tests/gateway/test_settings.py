"""One TOML file, environment overrides, paths relative to the file, and errors that name section and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.__main__ import app
from gateway.errors import ConfigError
from gateway.settings import load

MINIMAL = """site = "test-school"
[broker]
url = "mqtt://127.0.0.1:1883"
[storage]
path = "campus.db"
[api]
listen = "127.0.0.1:8080"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "gateway.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_minimal_file_works_as_it_is(tmp_path):
    settings = load(_write(tmp_path, MINIMAL), {})
    assert settings.site == "test-school"
    assert settings.client_id == "campusgw-test-school"
    assert settings.storage.path == tmp_path / "conf" / "campus.db"  # relative to the file
    assert settings.token_path == tmp_path / "conf" / "api-token"
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8080)
    assert settings.timezone == "Asia/Shanghai"
    assert (settings.broker.host, settings.broker.port) == ("127.0.0.1", 1883)


def test_environment_overrides(tmp_path):
    settings = load(
        _write(tmp_path, MINIMAL),
        {
            "CAMPUSGW__BROKER__URL": "mqtt://10.0.0.2:1884",
            "CAMPUSGW__STORAGE__RETENTION_DAYS": "7",
            "CAMPUSGW__SITE": "other-school",
            "UNRELATED": "x",
        },
    )
    assert settings.broker.port == 1884 and settings.storage.retention_days == 7 and settings.site == "other-school"


@pytest.mark.parametrize(
    "text,message",
    [
        (MINIMAL + "[storage]\n", "not valid TOML"),
        (
            MINIMAL.replace('path = "campus.db"', 'path = "campus.db"\nretension_days = 3'),
            "[storage] retension_days: unknown key",
        ),
        (MINIMAL + "[mqtt]\nhost = 'x'\n", "[mqtt]: unknown section"),
        (MINIMAL.replace("mqtt://127.0.0.1:1883", "tcp://x"), "[broker] url: must look like mqtt://HOST:PORT"),
        (MINIMAL.replace("127.0.0.1:8080", "8080"), "[api] listen: must be HOST:PORT"),
        (MINIMAL.replace('site = "test-school"', 'site = "Test School"'), "key site: String should match pattern"),
        (MINIMAL.replace('site = "test-school"', 'site = "s"\ntimezone = "Mars/Olympus"'), "unknown time zone"),
        (MINIMAL + '[ingest]\nqueue_size = "many"\n', "[ingest] queue_size: Input should be a valid integer"),
        (
            MINIMAL + "[ingest]\nqueue_size = 100\nbatch_size = 500\n",
            "batch_size (500) must not exceed queue_size (100)",
        ),
        (MINIMAL + '[[devices]]\nid = "gate"\n', "[[devices]] #1 (id 'gate') id: 'gate' is reserved"),
        (MINIMAL + '[[devices]]\nid = "a"\n[[devices]]\nid = "b"\nroom = 5\n', "[[devices]] #2 (id 'b') room"),
        (MINIMAL + '[[devices]]\nid = "a"\ncolour = "red"\n', "[[devices]] #1 (id 'a') colour: unknown key"),
        (MINIMAL + '[[devices]]\nid = "a"\n[[devices]]\nid = "a"\n', "device 'a' is declared twice"),
    ],
)
def test_errors_name_the_section_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load(_write(tmp_path, text), {})
    assert message in str(caught.value)


def test_environment_override_errors_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"\[storage\] retention_days: Input should be a valid number"):
        load(_write(tmp_path, MINIMAL), {"CAMPUSGW__STORAGE__RETENTION_DAYS": "soon"})
    with pytest.raises(ConfigError, match=r"\[storage\] colour: unknown key"):
        load(_write(tmp_path, MINIMAL), {"CAMPUSGW__STORAGE__COLOUR": "red"})


def test_config_check_command(tmp_path):
    runner = CliRunner()
    good = runner.invoke(app, ["config", "check", str(_write(tmp_path, MINIMAL))])
    assert good.exit_code == 0 and "OK" in good.output
    invalid = runner.invoke(app, ["config", "check", str(_write(tmp_path, MINIMAL + "[api]\nport = 1\n"))])
    assert invalid.exit_code == 2 and "not valid TOML" in invalid.output and "Traceback" not in invalid.output
    text = MINIMAL.replace('listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:8080"\nport = 1').replace(
        'url = "mqtt://127.0.0.1:1883"', 'url = "mqtt://127.0.0.1:1883"\nkeepalive_s = -5'
    )
    bad = runner.invoke(app, ["config", "check", str(_write(tmp_path, text))])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "[api] port: unknown key" in bad.output, bad.output  # the section is shown, not taken for markup
    assert "[broker] keepalive_s: Input should be greater than or equal to 5" in bad.output, bad.output
    missing = runner.invoke(app, ["config", "check", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "no such configuration file" in missing.output


def test_token_command_creates_a_private_token_once(tmp_path):
    config = _write(tmp_path, MINIMAL)
    runner = CliRunner()
    first = runner.invoke(app, ["token", "--config", str(config)])
    second = runner.invoke(app, ["token", "--config", str(config)])
    assert first.exit_code == 0 and first.output == second.output and len(first.output.strip()) >= 32
    assert (tmp_path / "conf" / "api-token").stat().st_mode & 0o777 == 0o600
