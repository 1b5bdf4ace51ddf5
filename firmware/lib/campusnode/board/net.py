"""Wi-Fi over ``network.WLAN`` and the MQTT transport over ``umqtt.simple``, with a socket timeout on every call.

``umqtt.simple`` puts its socket back into fully blocking mode after each read (``wait_msg``), so a dead link would
block a publish until the watchdog fires. :class:`_Client` reads packets itself and keeps the timeout on.
"""

import network
from umqtt.simple import MQTTClient, MQTTException

from campusnode.transport import MessageHandler, Transport, TransportError, Wifi


class StationWifi(Wifi):
    def __init__(self, ssid: str, password: str, hostname: str) -> None:
        self._ssid = ssid
        self._password = password
        network.hostname(hostname)
        self._wlan = network.WLAN(network.WLAN.IF_STA)

    def begin(self) -> None:
        self._wlan.active(True)
        try:
            self._wlan.connect(self._ssid, self._password)
        except OSError:
            pass  # already connecting; ``connected`` tells

    def connected(self) -> bool:
        return bool(self._wlan.isconnected())

    def address(self) -> str | None:
        return str(self._wlan.ifconfig()[0]) if self._wlan.isconnected() else None

    def reset(self) -> None:
        try:
            self._wlan.disconnect()
        except OSError:
            pass


_WOULD_BLOCK = (11, 110, 116)  # EAGAIN, and ETIMEDOUT as lwIP and newlib number it


class _Client(MQTTClient):
    """``umqtt.simple`` whose reads keep the socket timeout (upstream ``wait_msg`` switches it off)."""

    timeout_s = 5.0

    def _read(self, count: int) -> bytes:
        data = self.sock.read(count)
        if not data or len(data) != count:
            raise OSError(-1)  # closed by the broker, or a short read on a timeout
        return data

    def wait_msg(self) -> int | None:
        self.sock.settimeout(self.timeout_s)
        return self._packet(self._read(1))

    def check_msg(self) -> int | None:
        self.sock.settimeout(0)
        try:
            first = self.sock.read(1)
        except OSError as exc:
            if exc.args[0] not in _WOULD_BLOCK:
                raise
            first = None
        finally:
            self.sock.settimeout(self.timeout_s)
        if first is None:
            return None
        if first == b"":
            raise OSError(-1)
        return self._packet(first)

    def _packet(self, first: bytes) -> int | None:
        op = first[0]
        if op == 0xD0:  # PINGRESP
            self._read(1)
            return None
        if op & 0xF0 != 0x30:
            return op  # PUBACK, SUBACK: the caller reads the rest
        size = self._recv_len()
        head = self._read(2)
        topic_len = head[0] << 8 | head[1]
        topic = self._read(topic_len)
        size -= topic_len + 2
        pid = 0
        if op & 6:
            raw = self._read(2)
            pid = raw[0] << 8 | raw[1]
            size -= 2
        message = self._read(size) if size else b""
        self.cb(topic, message)
        if op & 6 == 2:
            self.sock.write(bytes((0x40, 0x02, pid >> 8, pid & 0xFF)))
        return op


class UmqttTransport(Transport):
    def __init__(
        self, client_id: str, host: str, port: int, user: str, password: str, keepalive_s: int, timeout_s: int
    ) -> None:
        self._args = (client_id, host, port, user, password, keepalive_s)
        self.timeout_s = timeout_s
        self._client: _Client | None = None
        self._handler: MessageHandler | None = None

    def _deliver(self, topic: bytes, message: bytes) -> None:
        if self._handler is not None:
            self._handler.on_message(topic.decode("utf-8"), bytes(message))

    def _live(self) -> _Client:
        if self._client is None:
            raise TransportError("not connected")
        return self._client

    def connect(self, will_topic: str, will_payload: bytes, handler: MessageHandler) -> None:
        self.close()
        client_id, host, port, user, password, keepalive = self._args
        client = _Client(client_id, host, port, user, password, keepalive)
        client.timeout_s = self.timeout_s
        client.set_callback(self._deliver)
        client.set_last_will(will_topic, will_payload, True, 1)
        self._handler = handler
        try:
            client.connect(True, self.timeout_s)
        except (OSError, MQTTException, AssertionError, IndexError) as exc:
            try:
                if client.sock is not None:
                    client.sock.close()
            except OSError:
                pass
            raise TransportError("connect to " + host + ":" + str(port) + " failed: " + repr(exc)) from None
        self._client = client

    def _call(self, what: str, action: object, *args: object) -> None:
        try:
            action(*args)  # type: ignore[operator]
        except (OSError, MQTTException, AssertionError, IndexError) as exc:
            self.close()
            raise TransportError(what + " failed: " + repr(exc)) from None

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self._call("publish", self._live().publish, topic, payload, retain, 1)

    def subscribe(self, topic: str) -> None:
        self._call("subscribe", self._live().subscribe, topic, 1)

    def poll(self) -> None:
        client = self._live()
        for _ in range(10):  # a bounded number of waiting messages per pass
            result: list = []
            self._call("receive", lambda: result.append(client.check_msg()))  # noqa: B023 - called in this pass
            if result[0] is None:
                return

    def ping(self) -> None:
        self._call("ping", self._live().ping)

    def disconnect(self) -> None:
        if self._client is not None:
            self._call("disconnect", self._client.disconnect)
            self._client = None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.sock is not None:
            try:
                client.sock.close()
            except OSError:
                pass

