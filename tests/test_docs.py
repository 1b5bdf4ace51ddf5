"""Docs cannot drift: every setting, contract reason, metric and command is in the README, and its commands run."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.__main__ import app
from gateway.contracts import RejectReason
from gateway.metrics import GatewayMetrics
from gateway.settings import Settings

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _settings_keys() -> list[str]:
    keys = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += [f"[{name}] {sub}" for sub in annotation.model_fields]
        elif name == "devices":
            keys.append("[[devices]]")
        else:
            keys.append(name)
    return keys


def test_readme_starts_with_the_two_commands():
    block = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].startswith("scripts/demo ") and block[1].startswith("scripts/test ")
    for script in ("scripts/demo", "scripts/test", ".ci/run"):
        assert os.access(ROOT / script, os.X_OK), script
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("key", _settings_keys())
def test_every_setting_is_documented(key):
    if key == "[presence] timeouts":
        key = "[presence.timeouts]"
    assert f"`{key}`" in README


@pytest.mark.parametrize("reason", [reason.value for reason in RejectReason])
def test_every_reject_reason_is_documented(reason):
    assert f"| `{reason}` |" in README


def test_every_metric_is_documented():
    names = {metric.name for metric in GatewayMetrics().registry.collect()}
    for name in names:
        documented = name if name.startswith("campusgw_") else name
        assert re.search(rf"`{documented}(_total)?[`{{]", README), name


def test_every_command_is_documented():
    commands = [info.name or info.callback.__name__.replace("_", "-") for info in app.registered_commands]
    commands += [group.name for group in app.registered_groups]
    for command in commands:
        assert f"campusgw {command}" in README, command


def test_every_scenario_is_documented():
    for path in (ROOT / "simulators" / "scenarios").glob("*.toml"):
        assert path.name in README


def test_demo_prints_a_working_sign_in_link_and_stops_on_ctrl_c(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--api-port",
            "0",
            "--scenario",
            "tiny",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        start_new_session=True,  # a process group of its own, like a terminal's foreground job
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        link = None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Sign in:"):
                link = line.split()[2]
                break
        assert link, "".join(lines)
        opener = urllib.request.build_opener(urllib.request.HTTPRedirectHandler())
        request = urllib.request.Request(link)
        with opener.open(request, timeout=10) as response:  # follows the redirect to the dashboard
            assert response.status == 200
        time.sleep(2)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground process group
        output, _ = process.communicate(timeout=60)
        lines.append(output)
        assert process.returncode == 0, "".join(lines)
        assert "Stopped." in output
        # The broker went last: the simulated devices' goodbyes reached the gateway and were stored.
        conn = sqlite3.connect(tmp_path / "demo" / "campus.db")
        try:
            goodbyes = conn.execute(
                "SELECT count(*) FROM device_events WHERE kind = 'offline' AND detail LIKE '%status%'"
            ).fetchone()[0]
            devices = conn.execute("SELECT count(*) FROM devices").fetchone()[0]
        finally:
            conn.close()
        assert devices > 0 and goodbyes == devices, f"{goodbyes} of {devices} devices said goodbye"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_demo_without_mosquitto_says_how_to_install_it(tmp_path):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # python, but no mosquitto anywhere on PATH
    code = (
        "import shutil, sys\n"
        "real = shutil.which\n"
        "shutil.which = lambda name, *a, **k: None if name == 'mosquitto' else real(name, *a, **k)\n"
        "from gateway.__main__ import main\n"
        "sys.argv = ['campusgw', 'demo', '--dir', sys.argv[1], '--api-port', '0']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )
    assert result.returncode == 1
    assert "Mosquitto is not installed" in result.stderr and "apt-get install mosquitto" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_readmes_demo_command_runs(tmp_path):
    """``scripts/demo`` itself (set-up included): CI has made .venv by the time the tests run."""
    if not (ROOT / ".venv" / "bin" / "campusgw").exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run scripts/bootstrap before the tests")
        pytest.skip("no .venv here: scripts/bootstrap has not been run")
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--dir", str(tmp_path / "demo"), "--api-port", "0", "--duration", "3",
         "--scenario", "tiny"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dashboard:" in result.stdout and "/login?code=" in result.stdout and "Stopped." in result.stdout
