"""``run_simulation_cli``: a short run reports its status; bad input is one clear line and an exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.broker import SIMULATOR_USER, free_port
from simulators.cli import EXIT_BROKER, EXIT_INPUT, EXIT_OK, run_simulation_cli
from simulators.scenario import builtin_scenarios
from tests.conftest import Broker
from tests.simulators.conftest import Observer


def test_a_short_run_prints_status_lines_and_exits_cleanly(
    broker: Broker, observer: Observer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_simulation_cli(
        builtin_scenarios()["tiny"], broker.url, SIMULATOR_USER, broker.simulator_password, broker.site,
        duration=1.0, speed=10.0, seed=3, status_every_s=0.3,
    )
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert "Simulating 8 devices of scenario tiny for site test-school" in out
    assert out.count("online 8/8") >= 2
    assert "Stopped." in out and "pending 0" in out.splitlines()[-1]
    assert err == ""
    assert observer.messages(), "the devices reached the broker"


def test_a_builtin_scenario_can_be_named(broker: Broker, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_simulation_cli(Path("tiny"), broker.url, SIMULATOR_USER, broker.simulator_password, None,
                              duration=0.2, speed=1.0, seed=None)
    assert code == EXIT_OK
    assert "for site tiny-school" in capsys.readouterr().out


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_bad_scenario_is_one_line_naming_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "lab.toml"
    scenario.write_text('site = "s1"\n[[groups]]\nfamily = "printer_3d"\ncount = -1\nid_prefix = "p-"\n')
    code = run_simulation_cli(scenario, "mqtt://127.0.0.1:1883", "u", "p", None, 1.0, 1.0, None)
    assert code == EXIT_INPUT
    line = _one_line_error(capsys)
    assert str(scenario) in line and "[[groups]] #1 count" in line


@pytest.mark.parametrize(
    ("url", "site", "speed", "expected"),
    [
        ("mqtt://127.0.0.1:1883", None, 0.0, "speed must be above 0"),
        ("tcp://127.0.0.1:1883", None, 1.0, "broker URL 'tcp://127.0.0.1:1883'"),
        ("mqtt://127.0.0.1:1883", "Main Campus", 1.0, "site 'Main Campus' is not a valid site code"),
    ],
)
def test_bad_arguments_are_one_line(
    url: str, site: str | None, speed: float, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_simulation_cli(builtin_scenarios()["tiny"], url, "u", "p", site, 1.0, speed, None) == EXIT_INPUT
    assert expected in _one_line_error(capsys)


def test_a_missing_scenario_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_simulation_cli(Path("campus-of-atlantis.toml"), "mqtt://127.0.0.1:1883", "u", "p", None, 1, 1, None)
    assert code == EXIT_INPUT
    assert "no such scenario file (built-in scenarios: demo, school, tiny)" in _one_line_error(capsys)


def test_a_refused_login_is_one_line(broker: Broker, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_simulation_cli(builtin_scenarios()["tiny"], broker.url, SIMULATOR_USER, "wrong", None, 1, 1, None)
    assert code == EXIT_BROKER
    assert "refused 'simulator'" in _one_line_error(capsys)


def test_an_unreachable_broker_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    code = run_simulation_cli(builtin_scenarios()["tiny"], url, "u", "p", None, 1, 1, None, connect_timeout_s=0.5)
    assert code == EXIT_BROKER
    assert "cannot reach the broker at 127.0.0.1" in _one_line_error(capsys)
