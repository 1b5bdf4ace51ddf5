"""MQTT ingest: a persistent MQTT 5 session whose messages are acknowledged only once they are on disk.

In: PUBLISH packets on ``campus/{site}/+/telemetry|status|event``. Out: :mod:`gateway.store.writer` inbound items,
one per message, in delivery order, each carrying the ``ack`` that sends its PUBACK.

The session is persistent (fixed client id, clean start off, a session expiry), so while the gateway is stopped or
slow the broker keeps what it has not acknowledged; the receive maximum equals the writer's queue, so the broker
never sends more unacknowledged messages than the gateway can hold. paho-mqtt runs its network loop in one owned
thread and reconnects with backoff; acknowledgements of messages received before a reconnect are not sent (the
broker redelivers those messages, and the writer stores them once).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.contracts import (
    ContractError,
    RejectReason,
    TopicKind,
    is_device_id,
    parse_event,
    parse_status,
    parse_telemetry,
    parse_topic,
    subscriptions,
)
from gateway.metrics import GatewayMetrics
from gateway.normalise import to_readings
from gateway.settings import Settings
from gateway.store.devices import DeviceTable
from gateway.store.writer import EventIn, Inbound, Rejected, StatusIn, TelemetryIn

log = logging.getLogger(__name__)

#: Topics whose device and kind are remembered once checked: a few per device, bounded whoever publishes.
_ROUTES_MAX = 16_384


class MqttIngest:
    """Owns the paho client and its network thread. ``start()`` returns at once; the client connects and
    reconnects in the background. ``connected`` says whether the broker is reachable now."""

    def __init__(
        self,
        settings: Settings,
        devices: DeviceTable,
        submit: Callable[[Inbound], None],
        metrics: GatewayMetrics,
        *,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._devices = devices
        self._submit = submit
        self._metrics = metrics
        self._clock = clock
        self._site = settings.site
        self._generation = 0
        self._connected = threading.Event()
        self._paused = False
        self._routes: dict[str, tuple[str, TopicKind]] = {}
        self.last_error: str | None = "not connected yet"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if settings.broker.username:
            client.username_pw_set(settings.broker.username, password)
        if settings.broker.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        broker = self._settings.broker
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = broker.session_expiry_s
        properties.ReceiveMaximum = self._settings.ingest.queue_size
        self._client.connect_async(
            broker.host, broker.port, keepalive=broker.keepalive_s, clean_start=False, properties=properties
        )
        self._client.loop_start()
        thread = self._client._thread
        if thread is not None:
            thread.name = "campusgw-mqtt"  # one owned network thread, named for leak checks

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def pause(self) -> None:
        """Stop handing messages to the writer; they stay unacknowledged and the broker redelivers them."""
        self._paused = True

    def stop(self) -> None:
        """Disconnect normally: the session stays on the broker for its expiry, with whatever is not acknowledged."""
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._metrics.broker_connected.set(0)

    # -- paho callbacks, on the network thread -------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, _properties: Any
    ) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.error("%s", self.last_error)
            return
        self._generation += 1
        options = SubscribeOptions(qos=1)
        client.subscribe([(topic, options) for topic in subscriptions(self._site)])
        self.last_error = None
        self._connected.set()
        self._metrics.broker_connected.set(1)
        log.info("connected to %s (session present: %s)", self._settings.broker.url, flags.session_present)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        self._connected.clear()
        self._metrics.broker_connected.set(0)
        if reason.is_failure or reason.value != 0:
            self.last_error = f"disconnected from the broker: {reason}"
            log.warning("%s; reconnecting", self.last_error)

    def _ack_for(self, mid: int, qos: int) -> Callable[[], None] | None:
        if qos == 0:
            return None
        generation = self._generation
        client = self._client

        def ack() -> None:
            if generation == self._generation:
                client.ack(mid, qos)

        return ack

    def _route(self, topic: str) -> tuple[str, TopicKind]:
        """The device and kind of a topic of this site, checked; remembered (bounded) so the next message on the
        same topic skips the checks."""
        ref = parse_topic(topic)
        if ref is None or ref.site != self._site:
            raise ContractError(RejectReason.BAD_TOPIC, "not a device topic of this site")
        device = ref.device
        if not is_device_id(device):
            raise ContractError(
                RejectReason.BAD_DEVICE_ID, f"device id {device[:80]!r} is not [a-z0-9][a-z0-9_-]{{0,63}}"
            )
        route = (device, ref.kind)
        if len(self._routes) < _ROUTES_MAX:
            self._routes[topic] = route
        return route

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._paused:
            return
        received = self._clock()
        ack = self._ack_for(message.mid, message.qos)
        topic = message.topic
        payload = message.payload
        route = self._routes.get(topic)
        try:
            if route is None:
                route = self._route(topic)
            device, kind = route
            if kind is TopicKind.TELEMETRY:
                telemetry = parse_telemetry(device, payload, received)
                refusal = self._devices.admit(device)
                if refusal is not None:
                    raise ContractError(refusal, f"device {device!r} may not add readings")
                item: Inbound = TelemetryIn(
                    device, telemetry.boot, telemetry.seq, received, to_readings(telemetry), ack
                )
            elif kind is TopicKind.STATUS:
                status = parse_status(device, payload, received)
                refusal = self._devices.admit(device)
                if refusal is not None:
                    raise ContractError(refusal, f"device {device!r} may not report status")
                item = StatusIn(status, received, ack)
            elif kind is TopicKind.EVENT:
                event = parse_event(device, payload, received)
                refusal = self._devices.admit(device)
                if refusal is not None:
                    raise ContractError(refusal, f"device {device!r} may not report events")
                item = EventIn(event, received, ack)
            else:
                raise ContractError(RejectReason.BAD_TOPIC, f"the gateway does not consume {kind.value} topics")
        except ContractError as error:
            ref = parse_topic(topic)
            device_name = ref.device[:64] if ref is not None else None
            item = Rejected(topic, device_name, error.reason.value, error.detail, bytes(payload), received, ack)
        self._submit(item)
