"""Fixtures of the simulator tests: an MQTT observer subscribed as the gateway to everything of the test site."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import GATEWAY_USER
from gateway.contracts import Telemetry, TopicKind, parse_telemetry, parse_topic
from tests.conftest import Broker


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float

    @property
    def device(self) -> str:
        ref = parse_topic(self.topic)
        assert ref is not None, self.topic
        return ref.device

    @property
    def kind(self) -> TopicKind:
        ref = parse_topic(self.topic)
        assert ref is not None, self.topic
        return ref.kind


class Observer:
    """Subscribes to ``campus/{site}/#`` at QoS 1 with a persistent session, so a broker restart loses nothing.

    MQTT 3.1.1 on purpose: Mosquitto 2.0.11 (Debian 11) does not restore MQTT 5 sessions from its persistence
    file (CONNACK says "session present: 0" after a restart and whatever was queued for the session is gone),
    while MQTT 3.1.1 sessions with clean session off survive. The simulator's own links are MQTT 5 either way.
    """

    def __init__(self, broker: Broker, client_id: str = "test-observer") -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False
        )
        self.client.username_pw_set(GATEWAY_USER, broker.password(GATEWAY_USER))
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.site = broker.site
        self.client.connect_async(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "observer did not subscribe"

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"campus/{self.site}/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(Received(message.topic, bytes(message.payload), bool(message.retain), time.time()))

    def messages(self, device: str | None = None, kind: TopicKind | None = None) -> list[Received]:
        with self._lock:
            found = list(self._messages)
        return [m for m in found if (device is None or m.device == device) and (kind is None or m.kind == kind)]

    def telemetry(self, device: str) -> list[Telemetry]:
        """Every well-formed telemetry message of ``device``, in arrival order (garbage left out)."""
        parsed = []
        for message in self.messages(device, TopicKind.TELEMETRY):
            try:
                parsed.append(parse_telemetry(device, message.payload, message.at))
            except ValueError:
                continue
        return parsed

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    watcher = Observer(broker)
    yield watcher
    watcher.close()
