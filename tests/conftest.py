"""Shared fixtures: a real Mosquitto with the deploy/ configuration on a free loopback port, and leak checks."""

from __future__ import annotations

import getpass
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.broker import GATEWAY_USER, SIMULATOR_USER, BrokerLayout, MosquittoProcess, free_port, read_secret, \
    write_broker_config

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


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto configured by ``campusgw broker config`` for site ``test-school``; stopped after the test."""
    layout = BrokerLayout(
        directory=tmp_path / "broker",
        site=SITE,
        port=free_port(),
        run_as=getpass.getuser(),
        devices=("env-lab1", "printer-01"),
    )
    secrets = write_broker_config(layout)
    process = MosquittoProcess(layout)
    process.start()
    try:
        yield Broker(process, layout, secrets)
    finally:
        process.stop()


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
        leaked += [t for t in threading.enumerate() if t not in before and t.is_alive() and t.name.startswith("campusgw")]
        if not leaked or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"
