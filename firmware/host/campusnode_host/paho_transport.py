"""The MQTT transport over paho-mqtt 2.x, without a background thread: like ``umqtt`` on the board, every call
does its network work in the caller's thread and blocks at most ``timeout_s``."""

import socket
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from campusnode.transport import MessageHandler, Transport, TransportError

_STEP_S = 0.02


class PahoTransport(Transport):
    def __init__(
        self, client_id: str, host: str, port: int, user: str, password: str, keepalive_s: int, timeout_s: float
    ) -> None:
        self.client_id = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive_s = keepalive_s
        self.timeout_s = timeout_s
        self._client: mqtt.Client | None = None
        self._handler: MessageHandler | None = None
        self._connected = False
        self._refused: str | None = None
        self._subacks: dict[int, bool] = {}  # SUBACK packet id -> refused
        self.publishes = 0

    # -- callbacks (run inside loop(), in the caller's thread) -------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            self._refused = str(reason)
        else:
            self._connected = True

    def _on_disconnect(self, client: mqtt.Client, *args: object) -> None:
        self._connected = False

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, reason_codes: list[ReasonCode], props: Properties
    ) -> None:
        self._subacks[mid] = any(code.is_failure for code in reason_codes)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if self._handler is not None:
            self._handler.on_message(message.topic, bytes(message.payload))

    # -- Transport -----------------------------------------------------------------------------------------------

    def _live(self) -> mqtt.Client:
        if self._client is None or not self._connected:
            raise TransportError("not connected")
        return self._client

    def _loop(self, client: mqtt.Client, what: str) -> None:
        rc = client.loop(_STEP_S)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            refused = self._refused
            self.close()
            if refused is not None:  # CONNACK with an error: its reason says more than the return code
                raise TransportError("broker refused the connection: " + refused)
            raise TransportError(what + ": connection lost (" + mqtt.error_string(rc) + ")")

    def connect(self, will_topic: str, will_payload: bytes, handler: MessageHandler) -> None:
        self.close()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311, clean_session=True
        )
        client.username_pw_set(self.user, self.password)
        client.will_set(will_topic, will_payload, qos=1, retain=True)
        client.connect_timeout = self.timeout_s
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._handler = handler
        self._connected = False
        self._refused = None
        self._client = client
        try:
            client.connect(self.host, self.port, keepalive=self.keepalive_s)
        except OSError as exc:
            self.close()
            raise TransportError("connect to " + self.host + ":" + str(self.port) + " failed: " + repr(exc)) from None
        deadline = time.monotonic() + self.timeout_s
        while not self._connected:
            if self._refused is not None:
                refused = self._refused
                self.close()
                raise TransportError("broker refused the connection: " + refused)
            if time.monotonic() > deadline:
                self.close()
                raise TransportError("no CONNACK within " + str(self.timeout_s) + " s")
            self._loop(client, "connect")

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        client = self._live()
        info = client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + self.timeout_s
        while not info.is_published():
            if time.monotonic() > deadline:
                self.close()
                raise TransportError("no PUBACK within " + str(self.timeout_s) + " s")
            self._loop(client, "publish")
        self.publishes += 1

    def subscribe(self, topic: str) -> None:
        client = self._live()
        rc, mid = client.subscribe(topic, qos=1)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            self.close()
            raise TransportError("subscribe failed: " + mqtt.error_string(rc))
        deadline = time.monotonic() + self.timeout_s
        while mid not in self._subacks:
            if time.monotonic() > deadline:
                self.close()
                raise TransportError("no SUBACK within " + str(self.timeout_s) + " s")
            self._loop(client, "subscribe")
        if self._subacks.pop(mid):  # 0x80 (umqtt raises on it too); Mosquitto 2.0 grants and filters instead
            self.close()
            raise TransportError("broker refused the subscription to " + topic)

    def poll(self) -> None:
        client = self._live()
        rc = client.loop(0)
        if rc != mqtt.MQTT_ERR_SUCCESS or not self._connected:
            self.close()
            raise TransportError("connection lost")

    def ping(self) -> None:
        self._live()  # paho sends PINGREQ itself from loop()

    def disconnect(self) -> None:
        client = self._client
        if client is None:
            return
        client.disconnect()
        for _ in range(50):
            if client.loop(_STEP_S) != mqtt.MQTT_ERR_SUCCESS or not self._connected:
                break
        self.close()

    def close(self) -> None:
        """Drop the TCP connection without DISCONNECT (the broker then publishes the last will)."""
        client, self._client = self._client, None
        self._connected = False
        if client is None:
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        reset = getattr(client, "_reset_sockets", None)
        if reset is not None:
            reset()
