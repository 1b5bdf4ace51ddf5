"""Simulated hardware for running the node apps on CPython: buses that answer like the real sensors (with CRCs
and checksums), a UART, captured edges, a relay, Wi-Fi that can be switched off, a clock, files in a folder."""

import os
import time
from pathlib import Path

from campusnode.clock import Clock, plausible
from campusnode.pins import ByteSource, EdgeSource, Output
from campusnode.sensors import pms_frame, with_crc
from campusnode.transport import Store, Wifi


class FakeI2C:
    """An I2C bus with an SHT3x at 0x44 and an SCD4x at 0x62; ``fail`` makes a device stop answering."""

    def __init__(self) -> None:
        self.temperature = 21.5
        self.humidity = 45.0
        self.co2 = 612
        self.fail: set[int] = set()
        self.corrupt: set[int] = set()
        self._last: dict[int, int] = {}

    @staticmethod
    def _raw_t(celsius: float) -> int:
        return max(0, min(65535, round((celsius + 45.0) * 65535.0 / 175.0)))

    @staticmethod
    def _raw_rh(percent: float) -> int:
        return max(0, min(65535, round(percent * 65535.0 / 100.0)))

    def writeto(self, address: int, data: bytes) -> int:
        if address in self.fail or address not in (0x44, 0x62):
            raise OSError(19, "ENODEV")
        self._last[address] = data[0] << 8 | data[1]
        return len(data)

    def readfrom(self, address: int, count: int) -> bytes:
        if address in self.fail:
            raise OSError(19, "ENODEV")
        command = self._last.get(address)
        if address == 0x44 and command == 0x2400:
            data = with_crc(self._raw_t(self.temperature)) + with_crc(self._raw_rh(self.humidity))
        elif address == 0x62 and command == 0xE4B8:
            data = with_crc(0x8006)
        elif address == 0x62 and command == 0xEC05:
            data = with_crc(self.co2) + with_crc(self._raw_t(self.temperature)) + with_crc(self._raw_rh(self.humidity))
        else:
            raise OSError(5, "EIO")
        if address in self.corrupt:
            data = data[:2] + bytes((data[2] ^ 0xFF,)) + data[3:]
        return data[:count]


class FakeUart(ByteSource):
    """Bytes waiting on a UART; ``read`` takes them all (like ``machine.UART.read`` with no size)."""

    def __init__(self) -> None:
        self._waiting = bytearray()

    def push(self, data: bytes) -> None:
        self._waiting.extend(data)

    def push_pms(self, pm1: int, pm25: int, pm10: int) -> None:
        self.push(pms_frame(pm1, pm25, pm10))

    def read(self) -> bytes:
        data = bytes(self._waiting)
        self._waiting.clear()
        return data


class FakeEdges(EdgeSource):
    def __init__(self) -> None:
        self._edges: list[tuple[int, int]] = []

    def push(self, level: int, at_ms: int) -> None:
        self._edges.append((level, at_ms))

    def pulse(self, start_ms: int, length_ms: int = 200, active: int = 0, bounce: bool = True) -> None:
        """One activation of a contact: bouncing at both ends, as reed switches do."""
        if bounce:
            self.push(active, start_ms)
            self.push(1 - active, start_ms + 1)
        self.push(active, start_ms + 2)
        if bounce:
            self.push(1 - active, start_ms + length_ms)
            self.push(active, start_ms + length_ms + 1)
        self.push(1 - active, start_ms + length_ms + 2)

    def take(self) -> list[tuple[int, int]]:
        edges, self._edges = self._edges, []
        return edges


class FakeRelay(Output):
    def __init__(self) -> None:
        self.on = False
        self.history: list[bool] = []

    def set(self, on: bool) -> None:
        self.on = on
        self.history.append(on)


class ManualClock(Clock):
    """A clock the test moves: ``advance(ms)``; Unix time is unset until ``ntp`` is reachable and asked."""

    def __init__(self, ticks: int = 1000, unix_at_start: int = 1767225600) -> None:
        self.ticks = ticks
        self._unix_base = unix_at_start * 1000 - ticks
        self.set = False
        self.ntp_reachable = True
        self.syncs = 0

    def advance(self, ms: int) -> None:
        self.ticks += ms

    def ticks_ms(self) -> int:
        return self.ticks

    def unix(self) -> int | None:
        return (self._unix_base + self.ticks) // 1000 if self.set else None

    def sync(self) -> bool:
        self.syncs += 1
        if self.ntp_reachable:
            self.set = True
        return self.set


class HostClock(Clock):
    """The host's monotonic clock as ticks, and its real time once ``sync`` has been asked (and NTP is reachable)."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self.set = False
        self.ntp_reachable = True

    def ticks_ms(self) -> int:
        return int((time.monotonic() - self._start) * 1000)

    def unix(self) -> int | None:
        unix = int(time.time())
        return unix if self.set and plausible(unix) else None

    def sync(self) -> bool:
        if self.ntp_reachable:
            self.set = True
        return self.set


class FakeWifi(Wifi):
    """Joins at once while ``available``; switching it off drops the connection."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.available = True
        self._joined = False
        self._address = address
        self.joins = 0

    def begin(self) -> None:
        if self.available:
            self._joined = True
            self.joins += 1

    def connected(self) -> bool:
        if not self.available:
            self._joined = False
        return self._joined

    def address(self) -> str | None:
        return self._address if self.connected() else None

    def reset(self) -> None:
        self._joined = False


class DirStore(Store):
    """Files in a folder, replaced atomically, as ``FlashStore`` does on the board."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.writes = 0

    def read(self, name: str) -> bytes | None:
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        temporary = self.directory / (name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self.directory / name)
        self.writes += 1

    def remove(self, name: str) -> None:
        try:
            (self.directory / name).unlink()
        except FileNotFoundError:
            pass
