"""Decoders and small helpers under MicroPython (``struct``, bytes, ``random``): Sensirion CRC-8 and words, the
PMS5003 frame parser, the QR scanner's line reader, reconnect backoff, board pin maps."""

from _support import raises
from campusnode import boards, sensors
from campusnode.backoff import Backoff
from campusnode.clock import TicksDiff
from campusnode.scanner import MAX_CODE_BYTES, LineReader

DIFF = TicksDiff()


def test_sensirion_crc_and_words():
    assert sensors.crc8(b"\xbe\xef") == 0x92  # the datasheet's example
    data = sensors.with_crc(0x6666) + sensors.with_crc(0x8000)
    assert sensors.words(data, 2) == [0x6666, 0x8000]
    broken = data[:2] + bytes((data[2] ^ 1,)) + data[3:]
    raises(sensors.SensorError, sensors.words, broken, 2)
    raises(sensors.SensorError, sensors.words, data[:5], 2)


def test_sht3x_and_scd4x_conversions():
    celsius, humidity = sensors.decode_sht3x(sensors.with_crc(0x6666) + sensors.with_crc(0x8000))
    assert abs(celsius - 25.0) < 0.01 and abs(humidity - 50.0) < 0.01
    co2, _, _ = sensors.decode_scd4x(sensors.with_crc(612) + sensors.with_crc(0x6666) + sensors.with_crc(0x8000))
    assert co2 == 612
    raises(sensors.SensorError, sensors.decode_scd4x, sensors.with_crc(0) * 3)


def test_pms_frames_in_a_noisy_stream():
    frame = sensors.pms_frame(3, 12, 20)
    assert len(frame) == sensors.PMS_FRAME
    assert sensors.decode_pms(frame) == {"pm1_0": 3, "pm2_5": 12, "pm10": 20}
    parser = sensors.PmsParser()
    bad = frame[:-1] + bytes(((frame[-1] + 1) & 0xFF,))
    stream = b"\x00\x42\x13" + frame + bad + sensors.pms_frame(4, 13, 21)
    found = parser.feed(stream[:40]) + parser.feed(stream[40:70]) + parser.feed(stream[70:])
    assert found == [{"pm1_0": 3, "pm2_5": 12, "pm10": 20}, {"pm1_0": 4, "pm2_5": 13, "pm10": 21}], found
    assert parser.bad_frames == 1


def test_scanner_lines():
    reader = LineReader(repeat_ms=2000)
    assert reader.feed(b"PASS:", 0, DIFF) == []
    assert reader.feed(b"abc\r\n", 10, DIFF) == ["PASS:abc"]
    assert reader.feed(b"PASS:abc\r", 500, DIFF) == []  # the same code held in front of the scanner
    assert reader.feed(b"PASS:abc\n", 2600, DIFF) == ["PASS:abc"]
    assert reader.feed(b"\xff\xfe\n", 2700, DIFF) == [] and reader.dropped == 1
    assert reader.feed(b"x" * (MAX_CODE_BYTES + 5) + b"\n", 2800, DIFF) == [] and reader.dropped == 2
    assert reader.feed("入场凭证\n".encode("utf-8"), 2900, DIFF) == ["入场凭证"]


def test_backoff_is_jittered_capped_and_never_zero():
    backoff = Backoff(1000, 8000)
    delays = [backoff.next_ms() for _ in range(8)]
    bases = [1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000]
    for delay, base in zip(delays, bases):
        assert base // 2 <= delay <= base, (delay, base)
    assert backoff.attempts == 8
    backoff.reset()
    assert backoff.attempts == 0 and backoff.next_ms() <= 1000
    assert Backoff(1, 1).next_ms() >= 1
    raises(ValueError, Backoff, 0, 10)
    raises(ValueError, Backoff, 10, 5)


def test_pin_maps():
    pins = boards.pinmap("esp32-c3", {"relay": 4})
    assert pins["relay"] == 4 and pins["led"] is None and pins["i2c_sda"] == 4
    assert boards.PINMAPS["esp32-c3"]["relay"] == 10  # the table itself is untouched
    raises(KeyError, boards.pinmap, "esp8266")
    raises(KeyError, boards.pinmap, "esp32-devkitc", {"buzzer": 1})
