"""The ``campusgw simulate`` command's body: run a scenario until Ctrl-C or a duration, with a status line.

Exit codes: 0 stopped cleanly with everything confirmed by the broker; 1 the broker could not be used (unreachable,
login refused) or the scheduler failed; 2 bad input (scenario file, URL, site, speed); 3 stopped, but some
messages were never confirmed by the broker. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from simulators.errors import BrokerUnavailable, SimulatorError
from simulators.runner import Simulation, SimulationStats
from simulators.scenario import load_scenario

EXIT_OK = 0
EXIT_BROKER = 1
EXIT_INPUT = 2
EXIT_UNCONFIRMED = 3


def run_simulation_cli(
    scenario: Path,
    url: str,
    username: str,
    password: str,
    site: str | None,
    duration: float | None,
    speed: float,
    seed: int | None,
    *,
    status_every_s: float = 5.0,
    connect_timeout_s: float = 10.0,
    console: Console | None = None,
    error_console: Console | None = None,
) -> int:
    """Run ``scenario`` (a file, or a built-in name such as ``demo``) against the broker at ``url``.

    ``duration`` is in real seconds (``None``: until Ctrl-C); ``speed`` makes scenario time run faster;
    ``connect_timeout_s`` is how long to wait for the broker before giving up.
    """
    out = console or Console(highlight=False, soft_wrap=True)
    err = error_console or Console(stderr=True, highlight=False, soft_wrap=True)
    if duration is not None and duration < 0:
        return _fail(err, f"duration must not be negative, got {duration}", EXIT_INPUT)
    try:
        simulation = Simulation(
            load_scenario(scenario), url, username, password, site=site, speed=speed, seed=seed,
            connect_timeout_s=connect_timeout_s,
        )
    except SimulatorError as exc:
        return _fail(err, str(exc), EXIT_INPUT)
    try:
        simulation.start()
    except BrokerUnavailable as exc:
        return _fail(err, str(exc), EXIT_BROKER)
    except KeyboardInterrupt:  # Ctrl-C while connecting: nothing was sent yet
        simulation.stop()
        return EXIT_OK
    plan = simulation.scenario
    out.print(
        f"Simulating [bold]{len(plan.devices)}[/] devices of scenario [bold]{escape(plan.name)}[/] for site "
        f"[bold]{escape(plan.site)}[/] on {escape(url)} (speed x{speed:g}, {plan.connection} connections). "
        + ("Ctrl-C stops." if duration is None else f"Stopping after {duration:g} s or Ctrl-C.")
    )
    try:
        _run(simulation, out, duration, status_every_s)
    except KeyboardInterrupt:
        out.print("Stopping...")
    finally:
        simulation.stop()
    stats = simulation.stats()
    out.print(f"Stopped. {_status_line(stats)}")
    if simulation.error is not None:
        return _fail(err, f"the simulation failed: {simulation.error!r}", EXIT_BROKER)
    if stats.pending:
        return _fail(err, f"{stats.pending} messages were never confirmed by the broker", EXIT_UNCONFIRMED)
    return EXIT_OK


def _run(simulation: Simulation, out: Console, duration: float | None, status_every_s: float) -> None:
    deadline = None if duration is None else time.monotonic() + duration
    next_status = time.monotonic() + status_every_s
    while simulation.running:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        time.sleep(max(0.0, min(next_status, deadline if deadline is not None else next_status) - now))
        if time.monotonic() >= next_status:
            out.print(_status_line(simulation.stats()))
            next_status += status_every_s


def _status_line(stats: SimulationStats) -> str:
    warn = "[yellow]" if stats.links_connected < stats.links else ""
    return (
        f"t+{stats.elapsed_s:,.0f}s  online {stats.online}/{stats.devices}  published {stats.published:,}  "
        f"confirmed {stats.confirmed:,}  pending {stats.pending:,}  resent {stats.resent:,}  "
        f"dropped {stats.dropped:,}  garbage {stats.garbage:,}  "
        f"{warn}links {stats.links_connected}/{stats.links}{'[/]' if warn else ''}"
    )


def _fail(err: Console, message: str, code: int) -> int:
    err.print(f"[red]error:[/] {escape(' '.join(message.split()))}", soft_wrap=True)
    return code
