"""Shared parts of the firmware logic tests: a Transport for fault injection and a node built from the host fakes.

The transport is not a broker: it only records what a broker would have confirmed, delivers the messages a test
hands it, and fails when the test says so (drop the connection, refuse the CONNACK, lose a PUBACK). The real
broker runs are ``test_nodes_integration.py``'s business.
"""

from __future__ import annotations

import json
from pathlib import Path

from campusnode.backoff import Backoff
from campusnode.node import App, Node
from campusnode.outbox import Outbox
from campusnode.transport import MessageHandler, Transport, TransportError
from campusnode_host.fakes import FakeWifi, ManualClock

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "gateway" / "contracts" / "vectors.json").read_text("utf-8")
)
#: The receive time of the shared vectors; the fake clock's Unix time is this once NTP has answered.
RECEIVED = VECTORS["received"]
SITE = "test-school"
DEVICE = "env-lab1"
BOOT = "a1b2c3d4e5f6"


class FaultyTransport(Transport):
    """Records confirmed publishes; ``fail_connects`` refuses that many connects, ``fail_publishes`` loses the
    PUBACK of that many publishes (after ``publishes_before_failure`` good ones), ``drop()`` cuts the line.
    Messages in ``during_publish`` reach the handler while the next publish waits for its PUBACK, as they do with
    ``umqtt.simple`` and paho's loop."""

    def __init__(self) -> None:
        self.up = False
        self.will: tuple[str, bytes] | None = None
        self.handler: MessageHandler | None = None
        self.published: list[tuple[str, bytes, bool]] = []
        self.attempted: list[tuple[str, bytes]] = []
        self.subscribed: list[str] = []
        self.incoming: list[tuple[str, bytes]] = []
        self.fail_connects = 0
        self.fail_publishes = 0
        self.publishes_before_failure = 0
        self.connects = 0
        self.closes = 0
        self.disconnects = 0
        self.pings = 0
        self.during_publish: list[tuple[str, bytes]] = []

    def connect(self, will_topic: str, will_payload: bytes, handler: MessageHandler) -> None:
        self.connects += 1
        if self.fail_connects > 0:
            self.fail_connects -= 1
            raise TransportError("no CONNACK within 5 s")
        self.will = (will_topic, will_payload)
        self.handler = handler
        self.up = True

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if not self.up:
            raise TransportError("not connected")
        self.attempted.append((topic, payload))
        arriving, self.during_publish = self.during_publish, []
        for topic_in, payload_in in arriving:
            assert self.handler is not None
            self.handler.on_message(topic_in, payload_in)
        if self.fail_publishes > 0:
            if self.publishes_before_failure > 0:
                self.publishes_before_failure -= 1
            else:
                self.fail_publishes -= 1
                self.up = False
                raise TransportError("no PUBACK within 5 s")
        self.published.append((topic, payload, retain))

    def subscribe(self, topic: str) -> None:
        if not self.up:
            raise TransportError("not connected")
        self.subscribed.append(topic)

    def poll(self) -> None:
        if not self.up:
            raise TransportError("connection lost")
        waiting, self.incoming = self.incoming, []
        for topic, payload in waiting:
            assert self.handler is not None
            self.handler.on_message(topic, payload)

    def ping(self) -> None:
        if not self.up:
            raise TransportError("connection lost")
        self.pings += 1

    def disconnect(self) -> None:
        self.disconnects += 1
        self.up = False

    def close(self) -> None:
        self.closes += 1
        self.up = False

    def drop(self) -> None:
        """The broker went away: the next network call fails."""
        self.up = False

    # -- what the broker would hold ------------------------------------------------------------------------------

    def on(self, suffix: str) -> list[bytes]:
        """Payloads confirmed on topics ending in ``suffix``, in order."""
        return [payload for topic, payload, _ in self.published if topic.endswith(suffix)]

    def documents(self, suffix: str) -> list[dict]:
        return [json.loads(payload) for payload in self.on(suffix)]


class Rig:
    """A node with its fakes: ``run(ms)`` steps it in 20 ms passes like the board's main loop."""

    def __init__(
        self,
        app: App | None = None,
        *,
        clock: ManualClock | None = None,
        capacity: int = 50,
        spill: object = None,
        spill_max: int = 100,
        spill_interval_s: int = 900,
        boot: str = BOOT,
        device: str = DEVICE,
        keepalive_s: int = 60,
        wifi_timeout_s: int = 20,
    ) -> None:
        self.clock = clock or ManualClock(ticks=1000, unix_at_start=int(RECEIVED) - 3600)
        self.transport = FaultyTransport()
        self.wifi = FakeWifi("10.0.0.7")
        self.app = app or App()
        self.node = Node(
            SITE,
            device,
            boot,
            self.app,
            self.clock,
            self.transport,
            self.wifi,
            Backoff(1000, 8000),
            Outbox(capacity),
            keepalive_s=keepalive_s,
            wifi_timeout_s=wifi_timeout_s,
            spill=spill,  # type: ignore[arg-type]
            spill_max=spill_max,
            spill_interval_s=spill_interval_s,
        )

    def start(self) -> Rig:
        self.node.start()
        return self

    def run(self, ms: int, step_ms: int = 20) -> None:
        end = self.clock.ticks + ms
        while self.clock.ticks < end:
            self.clock.advance(min(step_ms, end - self.clock.ticks))
            self.node.step(self.clock.ticks)

    def offline(self) -> None:
        """The broker refuses every connection until :meth:`online`."""
        self.transport.fail_connects = 10**9

    def online(self, limit_ms: int = 10_000) -> None:
        """The broker accepts connections again: step until the link is up (the connect happens in the last step)."""
        self.transport.fail_connects = 0
        for _ in range(limit_ms // 20):
            self.run(20)
            if self.node.link.up:
                return
        raise AssertionError("the link did not come up: " + self.node.link.last_error)

    def unix(self) -> int:
        unix = self.clock.unix()
        assert unix is not None
        return unix
