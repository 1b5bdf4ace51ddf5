"""One MQTT connection of the simulator, and the ledger that gets every message it accepted to the broker.

A :class:`Link` wraps one paho-mqtt 2.x client (MQTT 5, QoS 1, its own loop thread). Every message handed to
``publish`` enters a bounded ledger and leaves it only when the broker confirms it (PUBACK). While a paho client
lives, it resends its own unconfirmed messages after a reconnect (its session state); when a client is replaced
(a device that dropped its connection comes back) or refuses a message, the ledger hands what is still
unconfirmed to the new client, with the same payload, so the same ``boot`` and ``seq``. A full ledger drops the
new message and counts it.

Callbacks run on paho's thread and only touch the ledger under its lock; they never call back into paho while
holding it (paho takes its own locks around them).
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.contracts import encode_status
from simulators.device import Outgoing
from simulators.errors import SimulatorError

_ACCEPTED = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)
_URL = re.compile(r"(?P<scheme>mqtts?)://(?P<host>[^/:\s]+)(?::(?P<port>\d{1,5}))?/?")


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        match = _URL.fullmatch(url.strip())
        if match is None:
            raise SimulatorError(f"broker URL {url!r} must look like mqtt://HOST:PORT or mqtts://HOST:PORT")
        tls = match["scheme"] == "mqtts"
        port = int(match["port"]) if match["port"] else (8883 if tls else 1883)
        if not 0 < port < 65_536:
            raise SimulatorError(f"broker URL {url!r}: port {port} is out of range")
        return cls(match["host"], port, tls)


@dataclass(frozen=True, slots=True)
class LinkOptions:
    client_id: str
    username: str
    password: str
    #: The status topic of the one device this link belongs to ("per_device" mode): its last will goes there.
    will_topic: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 3600
    max_inflight: int = 100
    max_pending: int = 100_000
    reconnect_min_s: int = 1
    reconnect_max_s: int = 10


@dataclass(frozen=True, slots=True)
class LinkCounters:
    """Messages through one link: ``published`` entered the ledger, ``confirmed`` got a PUBACK, ``resent`` went out
    again after a connection was lost, ``rejected`` got a failure reason code, ``dropped`` found the ledger full."""

    published: int = 0
    confirmed: int = 0
    resent: int = 0
    rejected: int = 0
    dropped: int = 0
    pending: int = 0
    connects: int = 0


@dataclass(slots=True)
class _Entry:
    message: Outgoing
    #: Has gone out on a connection at least once, so any later send is a resend.
    sent: bool = False
    #: The paho client holding it, or None when the ledger must hand it to the current client.
    generation: int | None = None


class Link:
    """One MQTT connection; ``publish`` may be called from any thread, the rest from the runner's thread."""

    def __init__(self, address: BrokerAddress, options: LinkOptions, on_connected: Callable[[Link], None]) -> None:
        self.address = address
        self.options = options
        self._on_connected = on_connected
        self._lock = threading.Condition()
        self._ids = itertools.count()
        self._pending: dict[int, _Entry] = {}
        self._by_mid: dict[tuple[int, int], int] = {}
        self._early: dict[tuple[int, int], bool] = {}
        self._orphans: set[int] = set()
        self._counts = dict.fromkeys(("published", "confirmed", "resent", "rejected", "dropped", "connects"), 0)
        self._connected = False
        self._dropping = False
        self._ever_connected = threading.Event()
        self.refusal: str | None = None
        self.failure: str | None = None
        self._generation = 0
        self._client = self._new_client(self._generation)

    @property
    def name(self) -> str:
        return self.options.client_id

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def dropped(self) -> bool:
        return self._dropping

    def open(self) -> None:
        self._start(self._client)

    def wait_connected(self, timeout: float) -> bool:
        return self._ever_connected.wait(timeout)

    def publish(self, message: Outgoing) -> bool:
        """Put a message in the ledger and hand it to the client; False (and counted) when the ledger is full."""
        with self._lock:
            if len(self._pending) >= self.options.max_pending:
                self._counts["dropped"] += 1
                return False
            entry_id = next(self._ids)
            self._pending[entry_id] = _Entry(message)
            self._counts["published"] += 1
            generation, client = self._generation, self._client
        self._hand_over(entry_id, message, generation, client)
        return True

    def resend_orphans(self) -> int:
        """Hand unconfirmed messages no live client holds to the current one; returns how many were resent.

        Runs on every connect (on paho's thread, before paho resends its own session state) and whenever the
        runner asks (a refused hand-over is retried while connected).
        """
        with self._lock:
            if not self._orphans or not self._connected:
                return 0
            batch = sorted(self._orphans)
            self._orphans.clear()
            generation, client = self._generation, self._client
        resent = 0
        for entry_id in batch:
            with self._lock:
                entry = self._pending.get(entry_id)
                if entry is None:
                    continue
                if entry.sent:
                    self._counts["resent"] += 1
                    resent += 1
            self._hand_over(entry_id, entry.message, generation, client)
        return resent

    def drop(self) -> None:
        """Lose the connection without DISCONNECT, as a device losing power or network: the broker sends the will."""
        self._dropping = True
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            self._client.disconnect()  # not connected: just stop trying to reconnect

    def reopen(self) -> None:
        """Connect again with a new client after ``drop``; what the old one left unconfirmed is sent again."""
        old = self._client
        old.disconnect()
        old.loop_stop()
        with self._lock:
            for entry_id in self._by_mid.values():
                self._pending[entry_id].generation = None
                self._orphans.add(entry_id)
            self._by_mid.clear()
            self._early.clear()
            self._generation += 1
            self._connected = False
            self._dropping = False
            self._client = self._new_client(self._generation)
        self._start(self._client)

    def wait_confirmed(self, timeout: float) -> bool:
        """Wait until the broker confirmed everything in the ledger (or ``timeout`` passed)."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._pending, timeout)

    def disconnect(self, *, with_will: bool = False) -> None:
        """Say goodbye; ``with_will`` asks the broker to publish the last will anyway (MQTT 5 reason code 4)."""
        self._dropping = True
        reason = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message") if with_will else None
        self._client.disconnect(reasoncode=reason)

    def join(self) -> None:
        """Wait for the client's loop thread to end (after ``disconnect``)."""
        self._client.loop_stop()
        with self._lock:
            self._connected = False

    def counters(self) -> LinkCounters:
        with self._lock:
            return LinkCounters(pending=len(self._pending), **self._counts)

    # -- paho side -------------------------------------------------------------------------------------------

    def _new_client(self, generation: int) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.options.client_id,
            protocol=mqtt.MQTTv5,
            userdata=generation,
        )
        client.username_pw_set(self.options.username, self.options.password)
        client.max_inflight_messages_set(self.options.max_inflight)
        client.max_queued_messages_set(0)  # the ledger bounds what is kept
        client.reconnect_delay_set(self.options.reconnect_min_s, self.options.reconnect_max_s)
        if self.address.tls:
            client.tls_set()
        if self.options.will_topic is not None:
            client.will_set(self.options.will_topic, encode_status(False), qos=1, retain=True)
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        return client

    def _start(self, client: mqtt.Client) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.options.session_expiry_s
        client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=self.options.keepalive_s,
            clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        client.loop_start()

    def _hand_over(self, entry_id: int, message: Outgoing, generation: int, client: mqtt.Client) -> None:
        info = client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        with self._lock:
            entry = self._pending.get(entry_id)
            if entry is None:
                return
            if info.rc not in _ACCEPTED or generation != self._generation:
                entry.generation = None
                self._orphans.add(entry_id)
                return
            key = (generation, info.mid)
            if key in self._early:
                self._settle(entry_id, failed=self._early.pop(key))
                return
            self._by_mid[key] = entry_id
            entry.generation = generation
            entry.sent = entry.sent or info.rc == mqtt.MQTT_ERR_SUCCESS

    def _settle(self, entry_id: int, *, failed: bool) -> None:
        del self._pending[entry_id]
        self._counts["rejected" if failed else "confirmed"] += 1
        if not self._pending:
            self._lock.notify_all()

    def _handle_connect(
        self, client: mqtt.Client, generation: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, _: Any
    ) -> None:
        if reason.is_failure:
            self.refusal = str(reason)
            return
        with self._lock:
            if generation != self._generation:
                return
            self._connected = True
            self._counts["connects"] += 1
            for entry in self._pending.values():
                if entry.generation == generation:
                    if entry.sent:  # paho sends it again now, from its session state
                        self._counts["resent"] += 1
                    entry.sent = True
        self.refusal = None
        self._ever_connected.set()
        if self._dropping:
            self.drop()
            return
        self.resend_orphans()
        self._on_connected(self)

    def _handle_connect_fail(self, client: mqtt.Client, generation: Any) -> None:
        self.failure = f"cannot reach the broker at {self.address.host}:{self.address.port}"

    def _handle_disconnect(
        self, client: mqtt.Client, generation: Any, flags: mqtt.DisconnectFlags, reason: ReasonCode, _: Any
    ) -> None:
        with self._lock:
            if generation == self._generation:
                self._connected = False
        if self._dropping and generation == self._generation:
            client.loop_stop()  # on paho's own thread: ends the loop instead of reconnecting

    def _handle_publish(self, client: mqtt.Client, generation: Any, mid: int, reason: ReasonCode, _: Any) -> None:
        with self._lock:
            key = (int(generation), mid)
            entry_id = self._by_mid.pop(key, None)
            if entry_id is None:
                self._early[key] = reason.is_failure
            else:
                self._settle(entry_id, failed=reason.is_failure)
