"""The small interfaces between the pure node logic and the world: MQTT transport, Wi-Fi, storage.

``board/`` implements them over ``umqtt.simple``, ``network`` and the flash file system; ``firmware/host``
implements them over paho-mqtt and the host's files, so the same node logic runs as a simulator.

Every method that touches the network raises :class:`TransportError` (translated from ``OSError``,
``MQTTException`` and friends at the implementation) and blocks at most the socket timeout it was built with.
"""


class TransportError(Exception):
    """The broker connection failed or is gone; the link drops it and reconnects after a backoff."""


class MessageHandler:
    """Receives the messages of subscribed topics."""

    def on_message(self, topic: str, payload: bytes) -> None:
        raise NotImplementedError


class Transport:
    """One MQTT 3.1.1 connection at a time. QoS 1 publishes return only when the broker has confirmed them."""

    def connect(self, will_topic: str, will_payload: bytes, handler: MessageHandler) -> None:
        """Open a new connection (clean session) whose last will is ``will_payload``, retained, QoS 1."""
        raise NotImplementedError

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for PUBACK (at most the socket timeout)."""
        raise NotImplementedError

    def subscribe(self, topic: str) -> None:
        raise NotImplementedError

    def poll(self) -> None:
        """Handle what the broker sent (messages go to the handler); never blocks when nothing is waiting."""
        raise NotImplementedError

    def ping(self) -> None:
        """Keep the connection alive (MQTT PINGREQ)."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Say goodbye (DISCONNECT: the broker discards the last will) and close."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop the connection without a word (the broker publishes the last will); never raises."""
        raise NotImplementedError


class Wifi:
    """The station interface: ``begin`` starts joining and returns at once, ``connected`` is polled."""

    def begin(self) -> None:
        raise NotImplementedError

    def connected(self) -> bool:
        raise NotImplementedError

    def address(self) -> str | None:
        """The node's IP address while connected."""
        raise NotImplementedError

    def reset(self) -> None:
        """Leave the network, so the next ``begin`` starts afresh."""
        raise NotImplementedError


class Store:
    """Small named blobs that survive a reboot (flash files, RTC memory)."""

    def read(self, name: str) -> bytes | None:
        raise NotImplementedError

    def write(self, name: str, data: bytes) -> None:
        raise NotImplementedError

    def remove(self, name: str) -> None:
        raise NotImplementedError


class MemoryStore(Store):
    """A store in RAM (tests, and boards without a place to keep things)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.writes = 0

    def read(self, name: str) -> bytes | None:
        return self.blobs.get(name)

    def write(self, name: str, data: bytes) -> None:
        self.blobs[name] = bytes(data)
        self.writes += 1

    def remove(self, name: str) -> None:
        self.blobs.pop(name, None)
