"""``campusgw``: the command line of the campus gateway.

campusgw run --config FILE            run the gateway
campusgw config check FILE            validate a configuration file
campusgw token --config FILE          print the API token (created if missing)
campusgw signin-link --config FILE    print a one-time dashboard sign-in link
campusgw devices ...                  list, rename, move and retire devices
campusgw broker config ...            write the Mosquitto configuration for a site
campusgw simulate SCENARIO.toml       run simulated devices
campusgw demo                         broker + gateway + simulated school on this machine
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway import settings as settings_module
from gateway.errors import GatewayError

app = typer.Typer(
    help="Campus IoT equipment and smart-venue gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
devices_app = typer.Typer(help="The device registry: list, rename, move to a room, retire.", no_args_is_help=True)
broker_app = typer.Typer(help="The Mosquitto broker the gateway needs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(devices_app, name="devices")
app.add_typer(broker_app, name="broker")

# Output carries names, rooms and paths that people chose: text, never rich markup ("[lab 2]" must stay).
console = Console(soft_wrap=True, markup=False)
errors = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The gateway's TOML configuration file.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # "[broker] url" is not markup
    return typer.Exit(code)


def _load(path: Path) -> settings_module.Settings:
    try:
        return settings_module.load(path)
    except GatewayError as exc:
        raise _fail(str(exc)) from None


@app.command()
def run(
    config: ConfigOption, log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info"
) -> None:
    """Run the gateway until Ctrl-C or SIGTERM."""
    from gateway.app import Gateway, freeze_startup_heap

    settings = _load(config)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Gateway(settings).run(stop)

    freeze_startup_heap()
    try:
        asyncio.run(main())
    except GatewayError as exc:
        raise _fail(str(exc), 1) from None


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="The TOML file to check.")]) -> None:
    """Validate a configuration file; every error names its section and key."""
    settings = _load(path)
    console.print(
        f"{path}: OK (site {settings.site}, {len(settings.devices)} declared devices, "
        f"database {settings.storage.path})",
        highlight=False,
    )


@app.command()
def token(config: ConfigOption) -> None:
    """Print the API bearer token, creating its 0600 file if it does not exist."""
    from gateway.api.auth import ensure_token

    settings = _load(config)
    print(ensure_token(settings.token_path))


def _api(settings: settings_module.Settings, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    from gateway.api.auth import ensure_token

    host = settings.api.host if settings.api.host not in ("0.0.0.0", "::") else "127.0.0.1"
    request = urllib.request.Request(
        f"http://{host}:{settings.api.port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ensure_token(settings.token_path)}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        raise _fail(f"{method} {path}: {exc.code} {detail}") from None
    except OSError as exc:
        raise _fail(
            f"the gateway is not answering at {settings.api.listen} ({exc}); start it with 'campusgw run --config ...'"
        ) from None


@app.command("signin-link")
def signin_link(config: ConfigOption) -> None:
    """Print a one-time link that signs a browser in to the dashboard (valid 15 minutes)."""
    settings = _load(config)
    answer = _api(settings, "POST", "/api/signin-codes")
    print(f"http://{settings.api.listen}{answer['path']}")


@devices_app.command("list")
def devices_list(config: ConfigOption, include_retired: bool = False) -> None:
    """List devices with their room, state and last message."""
    settings = _load(config)
    answer = _api(settings, "GET", f"/api/devices?include_retired={str(include_retired).lower()}")
    table = Table("device", "type", "name", "room", "state")
    for device in answer["devices"]:
        state = {True: "online", False: "offline", None: "unknown"}[device["online"]]
        table.add_row(
            device["device"], device["type"], device["name"], device["room"], "retired" if device["retired"] else state
        )
    console.print(table)


@devices_app.command("rename")
def devices_rename(config: ConfigOption, device: str, name: str) -> None:
    """Give a device a name people recognise."""
    settings = _load(config)
    _api(settings, "PATCH", f"/api/devices/{device}", {"name": name})
    console.print(f"{device}: renamed to {name!r}")


@devices_app.command("move")
def devices_move(config: ConfigOption, device: str, room: str) -> None:
    """Move a device to a room."""
    settings = _load(config)
    _api(settings, "PATCH", f"/api/devices/{device}", {"room": room})
    console.print(f"{device}: moved to {room!r}")


@devices_app.command("retire")
def devices_retire(config: ConfigOption, device: str) -> None:
    """Retire a device: it leaves the dashboard and its further messages become dead letters."""
    settings = _load(config)
    _api(settings, "POST", f"/api/devices/{device}/retire")
    console.print(f"{device}: retired")


@broker_app.command("config")
def broker_config(
    site: Annotated[str, typer.Option(help="The school's site code.")],
    out: Annotated[Path, typer.Option(help="Folder for mosquitto.conf, acl, passwd and credentials/.")],
    port: Annotated[int, typer.Option(help="Port of the loopback listener.")] = 1883,
    bind: Annotated[str, typer.Option(help="Address of the main listener.")] = "127.0.0.1",
    lan: Annotated[
        str | None, typer.Option(help="Also listen here for the school's devices, e.g. 0.0.0.0:1883.")
    ] = None,
    device: Annotated[list[str] | None, typer.Option(help="A device id to create a broker user for (repeat).")] = None,
    gate_reader: Annotated[
        list[str] | None,
        typer.Option(help="DEVICE:GATE: a gate reader's user, with rights on that gate's scan, passage, cmd (repeat)."),
    ] = None,
    gateway_config: Annotated[Path | None, typer.Option(help="Also create users for the devices it declares.")] = None,
    run_as: Annotated[str | None, typer.Option(help="User Mosquitto runs as when started as root.")] = None,
) -> None:
    """Write the Mosquitto configuration a site needs: persistence, wide in-flight window and queues, users, ACLs."""
    from gateway.broker import BrokerLayout, device_users, write_broker_config
    from gateway.contracts import is_device_id

    if not is_device_id(site):
        raise _fail(f"--site {site!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
    names = list(device or [])
    if gateway_config is not None:
        names += [d.id for d in _load(gateway_config).devices]
    readers: list[tuple[str, str]] = []
    for spec in gate_reader or []:
        reader, _, gate = spec.partition(":")
        if not is_device_id(reader) or not is_device_id(gate):
            raise _fail(f"--gate-reader {spec!r} must be DEVICE:GATE, both [a-z0-9][a-z0-9_-]{{0,63}}")
        readers.append((reader, gate))
        names.append(reader)
    layout = BrokerLayout(
        directory=out.resolve(),
        site=site,
        port=port,
        bind=bind,
        lan=lan,
        run_as=run_as,
        devices=device_users(names),
        gate_readers=tuple(readers),
    )
    try:
        secrets = write_broker_config(layout)
    except GatewayError as exc:
        raise _fail(str(exc)) from None
    console.print(f"wrote {layout.conf}, {layout.acl}, {layout.passwd}")
    console.print(f"passwords (0600) in {layout.credentials}/: {', '.join(sorted(secrets))}")
    console.print(f"start it with: mosquitto -c {layout.conf}")


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file (see simulators/scenarios/).")],
    broker: Annotated[str, typer.Option(help="Broker URL.")] = "mqtt://127.0.0.1:1883",
    username: Annotated[str, typer.Option(help="Broker user.")] = "simulator",
    password_file: Annotated[Path | None, typer.Option(help="File holding the broker password.")] = None,
    site: Annotated[str | None, typer.Option(help="Override the scenario's site code.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    speed: Annotated[float, typer.Option(help="Time factor: 2 publishes twice as often.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for repeatable runs.")] = None,
) -> None:
    """Run simulated maker-lab machines, classroom displays and venue sensors on the MQTT contract."""
    from gateway.broker import read_secret
    from simulators.cli import run_simulation_cli

    password = read_secret(password_file) if password_file else ""
    raise typer.Exit(run_simulation_cli(scenario, broker, username, password, site, duration, speed, seed))


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its broker, database and secrets.")
    ] = Path("campusgw-demo"),
    scenario: Annotated[Path | None, typer.Option(help="Scenario to simulate (default: the demo school).")] = None,
    api_port: Annotated[int, typer.Option(help="Dashboard port (0: any free port).")] = 8080,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Start Mosquitto, the gateway and a simulated school; print the dashboard's sign-in link. Ctrl-C stops all."""
    from gateway.demo import run_demo

    try:
        code = run_demo(directory.resolve(), scenario, api_port, duration)
    except GatewayError as exc:
        raise _fail(str(exc), 1) from None
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
