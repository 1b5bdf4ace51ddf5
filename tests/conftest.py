"""Shared fixtures: a real Mosquitto with the deploy/ configuration on a free loopback port, and leak checks."""

from __future__ import annotations

import contextlib
import getpass
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.broker import (
    GATEWAY_USER,
    SIMULATOR_USER,
    BrokerLayout,
    MosquittoProcess,
    free_port,
    read_secret,
    write_broker_config,
)

SITE = "test-school"


@dataclass
class Broker:
    """A running Mosquitto for one test, with the credentials of each role."""

    process: MosquittoProcess
    layout: BrokerLayout
    secrets: dict[str, Path]

    @property
    def host(self) -> str:
        return self.layout.bind

    @property
    def port(self) -> int:
        return self.layout.port

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def site(self) -> str:
        return self.layout.site

    def password(self, user: str) -> str:
        return read_secret(self.secrets[user])

    @property
    def gateway_password_file(self) -> Path:
        return self.secrets[GATEWAY_USER]

    @property
    def simulator_password(self) -> str:
        return self.password(SIMULATOR_USER)


@contextlib.contextmanager
def running_broker(
    directory: Path, devices: tuple[str, ...], gate_readers: tuple[tuple[str, str], ...] = ()
) -> Iterator[Broker]:
    """Mosquitto configured by ``campusgw broker config`` for site ``test-school`` on a free port, with users for
    ``devices`` (and gate readers with their gate's topics); stopped on leaving."""
    layout = BrokerLayout(
        directory=directory,
        site=SITE,
        port=free_port(),
        run_as=getpass.getuser(),
        devices=devices,
        gate_readers=gate_readers,
    )
    secrets = write_broker_config(layout)
    process = MosquittoProcess(layout)
    process.start()
    try:
        yield Broker(process, layout, secrets)
    finally:
        process.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """The broker most tests use: device users for ``env-lab1`` and ``printer-01``."""
    with running_broker(tmp_path / "broker", ("env-lab1", "printer-01")) as running:
        yield running


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running behind it."""
    before = set(threading.enumerate())
    yield
    deadline = 5.0
    import time

    end = time.monotonic() + deadline
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
        leaked += [
            t for t in threading.enumerate() if t not in before and t.is_alive() and t.name.startswith("campusgw")
        ]
        if not leaked or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


# -- a running gateway ---------------------------------------------------------------------------------------

import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from gateway.app import Gateway  # noqa: E402
from gateway.settings import Settings, load  # noqa: E402


def write_gateway_config(directory: Path, broker: Broker, *, extra: str = "", api_port: int | None = None) -> Path:
    """A gateway configuration for ``broker``: the README's minimal file, credentials, then ``extra`` sections."""
    directory.mkdir(parents=True, exist_ok=True)
    port = api_port if api_port is not None else free_port()
    path = directory / "gateway.toml"
    path.write_text(
        f'site = "{broker.site}"\n'
        "[broker]\n"
        f'url = "{broker.url}"\n'
        f'username = "{GATEWAY_USER}"\n'
        f'password_file = "{broker.gateway_password_file}"\n'
        "[storage]\n"
        'path = "campus.db"\n'
        "[api]\n"
        f'listen = "127.0.0.1:{port}"\n'
        f"{extra}\n",
        encoding="utf-8",
    )
    return path


class RunningGateway:
    """A gateway in a thread of this process, with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gateway = Gateway(settings)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="campusgw-test-gateway")

    def _main(self) -> None:
        async def body() -> None:
            ready = asyncio.Event()

            async def flag() -> None:
                await ready.wait()
                self._ready.set()

            waiter = asyncio.ensure_future(flag())
            try:
                await self.gateway.run(self._stop, ready=ready)
            finally:
                waiter.cancel()

        try:
            self._loop.run_until_complete(body())
        except BaseException as exc:  # reported by the fixture
            self.error = exc
        finally:
            self._ready.set()
            self._loop.close()

    def start(self, timeout: float = 20.0) -> RunningGateway:
        self._thread.start()
        assert self._ready.wait(timeout), "gateway did not start"
        if self.error is not None:
            raise self.error
        ingest = self.gateway.ingest
        assert ingest is not None and ingest.wait_connected(timeout), "gateway did not connect to the broker"
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
        if self.error is not None:
            raise self.error

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.api_port}"

    @property
    def token(self) -> str:
        return read_secret(self.settings.token_path)

    def get(self, path: str, *, token: str | None = None, expect: int = 200) -> Any:
        return http_json(self.url + path, token=self.token if token is None else token, expect=expect)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
        wait_until(predicate, timeout, what)


def http_json(url: str, *, token: str | None = None, method: str = "GET", body: Any = None, expect: int = 200) -> Any:
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, data = exc.code, exc.read()
    assert status == expect, f"{method} {url}: {status} {data[:500]!r}"
    return json.loads(data) if data and data[:1] in (b"{", b"[") else data


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    last: AssertionError | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except AssertionError as exc:  # e.g. a 404 before the device exists
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" (last: {last})" if last else ""))


@pytest.fixture
def gateway_factory(tmp_path: Path, broker: Broker) -> Iterator[Callable[..., RunningGateway]]:
    """Start gateways in this process: ``gateway_factory(extra="[ingest]\\nbatch_size = 10")``."""
    started: list[RunningGateway] = []

    def start(
        *, extra: str = "", directory: Path | None = None, environ: dict[str, str] | None = None
    ) -> RunningGateway:
        path = write_gateway_config(directory or tmp_path / "gw", broker, extra=extra)
        running = RunningGateway(load(path, environ or {}))
        started.append(running)
        return running.start()

    yield start
    for running in started:
        running.stop()


class GatewayProcess:
    """``campusgw run`` as a child process, for tests that kill it."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "gateway.log"

    def start(self) -> None:
        env = dict(os.environ)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config)], stdout=log, stderr=log, env=env
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)
        self.process = None


class Publisher:
    """A paho MQTT 5 client publishing raw payloads at QoS 1 and waiting for the broker's confirmation."""

    def __init__(self, broker: Broker, *, user: str = SIMULATOR_USER, client_id: str = "test-publisher") -> None:
        import paho.mqtt.client as mqtt

        self.site = broker.site
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, broker.password(user))
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def device(self, device: str, kind: str, payload: bytes, *, retain: bool = False) -> None:
        self.publish(f"campus/{self.site}/{device}/{kind}", payload, retain=retain)

    def many(self, items: list[tuple[str, bytes]]) -> None:
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in items]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    client = Publisher(broker)
    yield client
    client.close()
