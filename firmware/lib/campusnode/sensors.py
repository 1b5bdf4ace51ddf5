"""Sensor decoders and thin drivers: SHT3x (temperature, humidity), SCD4x (CO2), PMS5003-style PM over UART.

The drivers talk to a bus object with the ``machine.I2C`` / ``machine.UART`` methods they use
(``writeto``, ``readfrom``, ``read``), so the board passes the real bus and tests pass a fake one; everything
that turns bytes into readings (CRC-8, conversions, frame sync and checksum) is plain functions.
"""

import struct


class SensorError(Exception):
    """A reading that cannot be trusted: no answer, a CRC or checksum mismatch, a value out of range."""


def crc8(data: bytes) -> int:
    """Sensirion CRC-8: polynomial 0x31, initial value 0xFF, no reflection (SHT3x, SCD4x); 0xBEEF gives 0x92."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def words(data: bytes, count: int) -> list[int]:
    """``count`` 16-bit words from Sensirion's ``msb, lsb, crc`` triples; SensorError on a CRC mismatch."""
    if len(data) < 3 * count:
        raise SensorError("short read: " + str(len(data)) + " of " + str(3 * count) + " bytes")
    out = []
    for index in range(count):
        chunk = data[3 * index : 3 * index + 2]
        if crc8(chunk) != data[3 * index + 2]:
            raise SensorError("CRC mismatch in word " + str(index))
        out.append(chunk[0] << 8 | chunk[1])
    return out


def with_crc(word: int) -> bytes:
    """A word as the sensor sends it (for fakes and for SCD4x commands with an argument)."""
    pair = bytes((word >> 8 & 0xFF, word & 0xFF))
    return pair + bytes((crc8(pair),))


def sht_temperature(raw: int) -> float:
    return -45.0 + 175.0 * raw / 65535.0


def sht_humidity(raw: int) -> float:
    return 100.0 * raw / 65535.0


def decode_sht3x(data: bytes) -> tuple[float, float]:
    """(°C, %RH) from the 6 bytes of an SHT3x measurement."""
    raw_t, raw_rh = words(data, 2)
    return sht_temperature(raw_t), min(100.0, max(0.0, sht_humidity(raw_rh)))


def decode_scd4x(data: bytes) -> tuple[int, float, float]:
    """(CO2 ppm, °C, %RH) from the 9 bytes of an SCD4x ``read_measurement``."""
    co2, raw_t, raw_rh = words(data, 3)
    if co2 == 0:
        raise SensorError("SCD4x reported 0 ppm (no valid measurement yet)")
    return co2, -45.0 + 175.0 * raw_t / 65535.0, 100.0 * raw_rh / 65535.0


PMS_FRAME = 32
_PMS_HEADER = b"\x42\x4d"


def decode_pms(frame: bytes) -> dict:
    """PM readings (µg/m³, atmospheric) from one 32-byte PMS5003 frame; SensorError on a bad frame."""
    if len(frame) != PMS_FRAME or frame[:2] != _PMS_HEADER:
        raise SensorError("not a PMS frame")
    length = frame[2] << 8 | frame[3]
    if length != PMS_FRAME - 4:
        raise SensorError("PMS frame length " + str(length))
    checksum = frame[30] << 8 | frame[31]
    if sum(frame[:30]) & 0xFFFF != checksum:
        raise SensorError("PMS checksum mismatch")
    values = struct.unpack(">13H", frame[4:30])
    return {"pm1_0": values[3], "pm2_5": values[4], "pm10": values[5]}


def pms_frame(pm1: int, pm25: int, pm10: int) -> bytes:
    """A valid frame (for fakes and tests)."""
    body = _PMS_HEADER + struct.pack(">H13H", 28, pm1, pm25, pm10, pm1, pm25, pm10, 0, 0, 0, 0, 0, 0, 0)
    return body + struct.pack(">H", sum(body) & 0xFFFF)


class PmsParser:
    """Finds frames in a byte stream from the UART: resynchronises on the header, counts bad frames."""

    def __init__(self) -> None:
        self._buffer = b""
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[dict]:
        buffer = self._buffer + bytes(data)
        found = []
        while True:
            start = buffer.find(_PMS_HEADER)
            if start < 0:
                buffer = buffer[-1:] if buffer[-1:] == b"\x42" else b""
                break
            if len(buffer) - start < PMS_FRAME:
                buffer = buffer[start:]
                break
            frame = buffer[start : start + PMS_FRAME]
            try:
                found.append(decode_pms(frame))
                buffer = buffer[start + PMS_FRAME :]
            except SensorError:
                self.bad_frames += 1
                buffer = buffer[start + 1 :]
        self._buffer = buffer[-2 * PMS_FRAME :]
        return found


# -- drivers over an injected bus ---------------------------------------------------------------------------


class Sht3x:
    """SHT3x single-shot measurement, high repeatability, no clock stretching (command 0x2400, ~15 ms)."""

    def __init__(self, i2c: object, address: int = 0x44) -> None:
        self._i2c = i2c
        self.address = address

    def start(self) -> None:
        self._i2c.writeto(self.address, b"\x24\x00")  # type: ignore[attr-defined]

    def collect(self) -> tuple[float, float]:
        """Read the measurement started by ``start`` at least 15 ms earlier."""
        return decode_sht3x(self._i2c.readfrom(self.address, 6))  # type: ignore[attr-defined]


class Scd4x:
    """SCD4x in periodic measurement mode (a new value every 5 s)."""

    def __init__(self, i2c: object, address: int = 0x62) -> None:
        self._i2c = i2c
        self.address = address

    def _command(self, command: int) -> None:
        self._i2c.writeto(self.address, bytes((command >> 8, command & 0xFF)))  # type: ignore[attr-defined]

    def start(self) -> None:
        self._command(0x21B1)  # start_periodic_measurement

    def ready(self) -> bool:
        self._command(0xE4B8)  # get_data_ready_status; the answer is readable after 1 ms
        (status,) = words(self._i2c.readfrom(self.address, 3), 1)  # type: ignore[attr-defined]
        return status & 0x07FF != 0

    def read(self) -> tuple[int, float, float]:
        self._command(0xEC05)  # read_measurement; the answer is readable after 1 ms
        return decode_scd4x(self._i2c.readfrom(self.address, 9))  # type: ignore[attr-defined]


class Pms:
    """PMS5003-style particle sensor in active mode: frames arrive on the UART about once a second."""

    def __init__(self, uart: object) -> None:
        self._uart = uart
        self._parser = PmsParser()
        self.latest: dict | None = None

    @property
    def bad_frames(self) -> int:
        return self._parser.bad_frames

    def poll(self) -> dict | None:
        """Read what the UART holds; the newest complete reading, or None."""
        data = self._uart.read()  # type: ignore[attr-defined]
        if data:
            for reading in self._parser.feed(data):
                self.latest = reading
        return self.latest
