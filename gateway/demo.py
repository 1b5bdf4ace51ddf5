"""``campusgw demo``: a whole school on one machine.

Starts Mosquitto with the ``deploy/`` configuration on a free port, the gateway (``campusgw run``) and the
simulated school (``campusgw simulate``) as child processes, waits until the gateway is healthy, prints the
dashboard address and a one-time sign-in link, and on Ctrl-C stops the simulator, the gateway and the broker, in
that order, each with SIGTERM so that nothing held is lost.
"""

from __future__ import annotations

import getpass
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from rich.console import Console

from gateway.broker import (
    GATEWAY_USER,
    SIMULATOR_USER,
    BrokerLayout,
    MosquittoProcess,
    find_mosquitto,
    free_port,
    wait_for_port,
    write_broker_config,
)
from gateway.errors import GatewayError

console = Console(highlight=False, soft_wrap=True)


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def write_demo_config(
    directory: Path, site: str, broker_url: str, api_port: int, devices: list[dict[str, object]]
) -> Path:
    lines = [
        f"site = {_toml_string(site)}",
        'timezone = "Asia/Shanghai"',
        "[broker]",
        f"url = {_toml_string(broker_url)}",
        f'username = "{GATEWAY_USER}"',
        f'password_file = "broker/credentials/{GATEWAY_USER}.secret"',
        "[storage]",
        'path = "campus.db"',
        "[api]",
        f'listen = "127.0.0.1:{api_port}"',
        "[presence]",
        "check_interval_s = 2.0",
    ]
    for device in devices:
        lines += ["[[devices]]"] + [f"{key} = {_toml_value(value)}" for key, value in device.items()]
    path = directory / "gateway.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_string(str(item))}" for key, item in value.items()) + " }"
    return _toml_string(str(value))


def _get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _pick_api_port(requested: int) -> int:
    if requested == 0:
        return free_port()
    if wait_for_port("127.0.0.1", requested, 0.2):
        other = free_port()
        console.print(f"[yellow]port {requested} is taken; the dashboard uses {other} instead[/]")
        return other
    return requested


class _Child:
    def __init__(self, name: str, args: list[str], log: Path, *, stop_signal: int = signal.SIGTERM) -> None:
        self.name = name
        self.log = log
        self.stop_signal = stop_signal
        with log.open("ab") as handle:
            self.process = subprocess.Popen(args, stdout=handle, stderr=handle, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""


def run_demo(directory: Path, scenario: Path | None, api_port: int, duration: float | None) -> int:
    from simulators.scenario import load_scenario, scenario_devices

    find_mosquitto()  # a clear message, not a traceback, where Mosquitto is missing
    plan = load_scenario(scenario or "demo")
    directory.mkdir(parents=True, exist_ok=True)
    devices: list[dict[str, object]] = [
        {"id": d.id, "type": d.type, "name": d.name, "room": d.room, "units": dict(d.units)}
        for d in scenario_devices(plan)
    ]
    layout = BrokerLayout(directory=directory / "broker", site=plan.site, port=free_port(), run_as=getpass.getuser())
    write_broker_config(layout)
    port = _pick_api_port(api_port)
    config = write_demo_config(directory, plan.site, f"mqtt://127.0.0.1:{layout.port}", port, devices)
    broker = MosquittoProcess(layout)
    children: list[_Child] = []
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        console.print(f"Starting Mosquitto on 127.0.0.1:{layout.port} ...")
        broker.start()
        console.print("Starting the gateway ...")
        gateway = _Child(
            "gateway", [sys.executable, "-m", "gateway", "run", "--config", str(config)], directory / "gateway.log"
        )
        children.append(gateway)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stop.is_set():
            if not gateway.alive():
                raise GatewayError(f"the gateway stopped during start-up:\n{gateway.tail()}")
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            if not stop.is_set():
                raise GatewayError(f"the gateway did not become healthy within 60 s:\n{gateway.tail()}")
        if stop.is_set():  # Ctrl-C while starting
            return 0
        console.print(f"Starting the simulated school ({len(plan.devices)} devices, scenario {plan.name}) ...")
        children.append(
            _Child(
                "simulator",
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "simulate",
                    str(plan.source),
                    "--broker",
                    f"mqtt://127.0.0.1:{layout.port}",
                    "--username",
                    SIMULATOR_USER,
                    "--password-file",
                    str(layout.secret_file(SIMULATOR_USER)),
                ],
                directory / "simulator.log",
                stop_signal=signal.SIGINT,
            )
        )  # the simulator says goodbye on Ctrl-C
        token = (directory / "api-token").read_text().strip()
        try:
            _status, answer = _get(base + "/api/signin-codes", token, method="POST")
        except OSError as exc:
            raise GatewayError(f"the gateway did not answer for a sign-in link ({exc}):\n{gateway.tail()}") from None
        console.print()
        console.print(f"[bold green]Dashboard:[/]     {base}/")
        console.print(f"[bold green]Sign in:[/]       {base}{answer.get('path', '/login')}   (one-time link)")
        console.print(f"API token:      {directory / 'api-token'}  (campusgw token --config {config})")
        console.print(f"MQTT broker:    mqtt://127.0.0.1:{layout.port}  (users and passwords in {layout.credentials})")
        console.print(f"Metrics:        {base}/metrics     Health: {base}/healthz")
        console.print(f"Logs:           {directory}/*.log")
        console.print("Press Ctrl-C to stop everything.")
        started = time.monotonic()
        while not stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            for child in children:
                if not child.alive():
                    raise GatewayError(f"the {child.name} stopped unexpectedly:\n{child.tail()}")
            stop.wait(0.5)
        return 0
    finally:
        console.print("Stopping the simulator, the gateway and the broker ...")
        for child in reversed(children):
            child.stop()
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print("Stopped.")
