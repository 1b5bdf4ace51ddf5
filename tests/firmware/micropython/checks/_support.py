"""Helpers for the check scripts, in MicroPython: the contract vectors, ``raises``, and fakes for a Node (a clock
the check moves, Wi-Fi and a broker connection that can be taken away). Plain classes over the firmware's own
interfaces; nothing here is imported by the firmware."""

import json

from campusnode.clock import Clock
from campusnode.transport import Transport, TransportError, Wifi

VECTORS_PATH = "/contracts/vectors.json"


def load_vectors() -> dict:
    with open(VECTORS_PATH) as handle:
        return json.loads(handle.read())


def raises(kind, call, *args, **kwargs):
    """Call ``call`` and return the ``kind`` exception it raised; AssertionError if it raised nothing."""
    try:
        call(*args, **kwargs)
    except kind as exc:
        return exc
    raise AssertionError("expected " + kind.__name__ + " from " + repr(call))


def message(exc) -> str:
    return str(exc.args[0]) if exc.args else ""


class ManualClock(Clock):
    """Ticks the check moves with ``advance``; Unix time unset until ``sync`` is asked while NTP is reachable."""

    def __init__(self, ticks: int = 1000, unix_at_start: int = 1767225600) -> None:
        self.ticks = ticks
        self._unix_base_ms = unix_at_start * 1000 - ticks
        self.set = False
        self.ntp_reachable = False
        self.syncs = 0

    def advance(self, ms: int) -> None:
        self.ticks += ms

    def ticks_ms(self) -> int:
        return self.ticks

    def true_unix_ms(self, ticks: int) -> int:
        return self._unix_base_ms + ticks

    def unix(self):
        return (self._unix_base_ms + self.ticks) // 1000 if self.set else None

    def sync(self) -> bool:
        self.syncs += 1
        if self.ntp_reachable:
            self.set = True
        return self.set


class FakeWifi(Wifi):
    def __init__(self) -> None:
        self.available = True
        self._joined = False
        self.joins = 0

    def begin(self) -> None:
        if self.available:
            self._joined = True
            self.joins += 1

    def connected(self) -> bool:
        if not self.available:
            self._joined = False
        return self._joined

    def address(self):
        return "10.0.0.7" if self.connected() else None

    def reset(self) -> None:
        self._joined = False


class FakeBroker(Transport):
    """The broker end of one connection: keeps what was published; ``up = False`` makes every call fail, as a
    dead link does (the call raises TransportError and nothing reaches the broker); ``drop_at_publish`` cuts the
    link under the next publish."""

    def __init__(self) -> None:
        self.up = True
        self.drop_at_publish = False
        self.connected = False
        self.handler = None
        self.will = None
        self.published = []  # (topic, payload, retain), in order of PUBACK
        self.subscribed = []
        self.inbox = []  # (topic, payload) the broker delivers at the next poll
        self.connects = 0
        self.wills_published = 0
        self.pings = 0

    def _check(self) -> None:
        if not self.up:
            if self.connected:
                self.connected = False
                self.wills_published += 1
            raise TransportError("broker unreachable")
        if not self.connected:
            raise TransportError("not connected")

    def connect(self, will_topic: str, will_payload: bytes, handler) -> None:
        if not self.up:
            raise TransportError("connection refused")
        self.connected = True
        self.connects += 1
        self.will = (will_topic, will_payload)
        self.handler = handler

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if self.drop_at_publish:  # the link dies under this publish: no PUBACK, the broker never had it
            self.drop_at_publish = False
            self.up = False
        self._check()
        self.published.append((topic, bytes(payload), retain))

    def subscribe(self, topic: str) -> None:
        self._check()
        self.subscribed.append(topic)

    def poll(self) -> None:
        self._check()
        waiting, self.inbox = self.inbox, []
        for topic, payload in waiting:
            self.handler.on_message(topic, payload)

    def ping(self) -> None:
        self._check()
        self.pings += 1

    def disconnect(self) -> None:
        self._check()
        self.connected = False

    def close(self) -> None:
        if self.connected:
            self.connected = False
            self.wills_published += 1

    def documents(self, suffix: str) -> list:
        """The JSON documents published on topics ending in ``suffix``, in order."""
        return [json.loads(payload) for topic, payload, _ in self.published if topic.endswith(suffix)]


class FakeEdges:
    """Captured contact edges, as the board's pin interrupt ring gives them."""

    def __init__(self) -> None:
        self._edges = []

    def press(self, start_ms: int, length_ms: int = 200, active: int = 0) -> None:
        """One use of a reed contact, bouncing at both ends."""
        for level, at in (
            (active, start_ms),
            (1 - active, start_ms + 1),
            (active, start_ms + 2),
            (1 - active, start_ms + length_ms),
            (active, start_ms + length_ms + 1),
            (1 - active, start_ms + length_ms + 2),
        ):
            self._edges.append((level, at))

    def take(self) -> list:
        edges, self._edges = self._edges, []
        return edges

    def lost(self) -> int:
        return 0


class FakeBytes:
    """A UART with bytes waiting."""

    def __init__(self) -> None:
        self.waiting = b""

    def read(self) -> bytes:
        data, self.waiting = self.waiting, b""
        return data


class FakeRelay:
    def __init__(self) -> None:
        self.on = False
        self.history = []

    def set(self, on: bool) -> None:
        self.on = on
        self.history.append(on)


def run(node, clock, ms: int, step_ms: int = 20) -> None:
    """The board's main loop for ``ms`` of tick time."""
    end = clock.ticks + ms
    while clock.ticks < end:
        clock.advance(step_ms)
        node.step(clock.ticks)


class FakeI2C:
    """An I2C bus with an SHT3x at 0x44 and an SCD4x at 0x62 answering with valid CRCs; addresses in ``fail``
    stop answering (OSError, as ``machine.I2C`` raises)."""

    def __init__(self) -> None:
        self.fail = []
        self._last = {}

    def writeto(self, address: int, data: bytes) -> int:
        if address in self.fail or address not in (0x44, 0x62):
            raise OSError(19)
        self._last[address] = data[0] << 8 | data[1]
        return len(data)

    def readfrom(self, address: int, count: int) -> bytes:
        from campusnode.sensors import with_crc

        if address in self.fail:
            raise OSError(19)
        command = self._last.get(address)
        if address == 0x44 and command == 0x2400:
            data = with_crc(0x6666) + with_crc(0x8000)  # 25.0 °C, 50.0 %RH
        elif address == 0x62 and command == 0xE4B8:
            data = with_crc(0x8006)  # data ready
        elif address == 0x62 and command == 0xEC05:
            data = with_crc(612) + with_crc(0x6666) + with_crc(0x8000)
        else:
            raise OSError(5)
        return data[:count]
