"""Sensor decoding: Sensirion CRC-8 words (SHT3x, SCD4x), PMS5003 frames found in a UART stream, the thin drivers
over the simulated buses, and the QR scanner's line reader. A reading that cannot be trusted is an error, never a
value."""

from __future__ import annotations

import struct

import pytest
from campusnode import sensors
from campusnode.clock import TicksDiff
from campusnode.scanner import MAX_CODE_BYTES, LineReader
from campusnode.sensors import Pms, PmsParser, Scd4x, SensorError, Sht3x, crc8, decode_pms, pms_frame, with_crc, words
from campusnode_host.fakes import FakeI2C, FakeUart
from hypothesis import given, settings
from hypothesis import strategies as st

DIFF = TicksDiff()


def test_sensirion_crc_reference_value():
    assert crc8(b"\xbe\xef") == 0x92  # the datasheets' example
    assert crc8(b"") == 0xFF


@settings(deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=1, max_size=6))
def test_words_round_trip(values):
    data = b"".join(with_crc(value) for value in values)
    assert words(data, len(values)) == values


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=0xFFFF), st.integers(min_value=0, max_value=2), st.integers(1, 255))
def test_any_flipped_byte_is_a_crc_mismatch(value, index, flip):
    data = bytearray(with_crc(value))
    data[index] ^= flip
    with pytest.raises(SensorError, match="CRC mismatch in word 0"):
        words(bytes(data), 1)


def test_short_read_is_an_error():
    with pytest.raises(SensorError, match="short read: 5 of 6 bytes"):
        words(with_crc(1) + b"\x00\x00", 2)


def test_sht3x_conversions():
    assert sensors.sht_temperature(0) == -45.0
    assert sensors.sht_temperature(65535) == 130.0
    assert sensors.sht_humidity(65535) == 100.0
    temperature, humidity = sensors.decode_sht3x(with_crc(0x6666) + with_crc(0x8000))
    assert temperature == pytest.approx(-45 + 175 * 0x6666 / 65535)
    assert humidity == pytest.approx(50.0, abs=0.01)


def test_scd4x_decoding_and_zero_ppm():
    co2, temperature, humidity = sensors.decode_scd4x(with_crc(800) + with_crc(0x6666) + with_crc(0x8000))
    assert co2 == 800
    assert temperature == pytest.approx(25.0, abs=0.01)
    assert humidity == pytest.approx(50.0, abs=0.01)
    with pytest.raises(SensorError, match="0 ppm"):
        sensors.decode_scd4x(with_crc(0) + with_crc(0x6666) + with_crc(0x8000))


# -- PMS5003 ---------------------------------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_pms_frame_round_trip(pm1, pm25, pm10):
    frame = pms_frame(pm1, pm25, pm10)
    assert len(frame) == sensors.PMS_FRAME
    assert decode_pms(frame) == {"pm1_0": pm1, "pm2_5": pm25, "pm10": pm10}


def test_bad_pms_frames():
    good = pms_frame(5, 12, 20)
    with pytest.raises(SensorError, match="not a PMS frame"):
        decode_pms(good[:-1])
    with pytest.raises(SensorError, match="not a PMS frame"):
        decode_pms(b"\x42\x4e" + good[2:])
    wrong_length = bytearray(good)
    wrong_length[3] = 20
    with pytest.raises(SensorError, match="PMS frame length 20"):
        decode_pms(bytes(wrong_length))
    corrupt = bytearray(good)
    corrupt[13] ^= 0x01  # pm2.5 (atmospheric), low byte
    with pytest.raises(SensorError, match="checksum"):
        decode_pms(bytes(corrupt))


def test_parser_finds_frames_in_a_noisy_stream():
    parser = PmsParser()
    stream = b"\x00\x42\x13" + pms_frame(1, 2, 3) + b"\x4d\x42" + pms_frame(4, 5, 6)
    assert parser.feed(stream) == [{"pm1_0": 1, "pm2_5": 2, "pm10": 3}, {"pm1_0": 4, "pm2_5": 5, "pm10": 6}]
    assert parser.bad_frames == 0


@settings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20))
def test_frames_split_anywhere_are_reassembled(cuts):
    stream = b"\xff" * 3 + pms_frame(7, 8, 9) + pms_frame(10, 11, 12) + b"\x42"
    parser = PmsParser()
    found = []
    position = 0
    for cut in cuts:
        found += parser.feed(stream[position : position + cut])
        position += cut
    found += parser.feed(stream[position:])
    assert found == [{"pm1_0": 7, "pm2_5": 8, "pm10": 9}, {"pm1_0": 10, "pm2_5": 11, "pm10": 12}]


def test_a_corrupt_frame_is_counted_and_the_next_one_still_found():
    corrupt = bytearray(pms_frame(5, 999, 20))
    corrupt[31] ^= 0xFF
    parser = PmsParser()
    assert parser.feed(bytes(corrupt) + pms_frame(6, 13, 21)) == [{"pm1_0": 6, "pm2_5": 13, "pm10": 21}]
    assert parser.bad_frames == 1


def test_the_parser_buffer_is_bounded():
    parser = PmsParser()
    for _ in range(100):
        assert parser.feed(b"\x00" * 500) == []
        assert len(parser._buffer) <= 2 * sensors.PMS_FRAME
    assert parser.feed(pms_frame(1, 1, 1)) == [{"pm1_0": 1, "pm2_5": 1, "pm10": 1}]


def test_pms_driver_keeps_the_newest_reading():
    uart = FakeUart()
    pms = Pms(uart)
    assert pms.poll() is None
    uart.push_pms(3, 9, 15)
    uart.push_pms(4, 10, 16)
    assert pms.poll() == {"pm1_0": 4, "pm2_5": 10, "pm10": 16}
    assert pms.poll() == {"pm1_0": 4, "pm2_5": 10, "pm10": 16}  # nothing new arrived
    uart.push(b"\x42\x4d" + b"\x00" * 30)
    pms.poll()
    assert pms.bad_frames == 1


# -- drivers over the simulated I2C bus ------------------------------------------------------------------------------


def test_sht3x_over_the_fake_bus():
    bus = FakeI2C()
    bus.temperature, bus.humidity = 23.4, 51.2
    sht = Sht3x(bus)
    sht.start()
    temperature, humidity = sht.collect()
    assert temperature == pytest.approx(23.4, abs=0.01)
    assert humidity == pytest.approx(51.2, abs=0.01)


def test_sht3x_without_a_started_measurement_is_an_io_error():
    with pytest.raises(OSError):
        Sht3x(FakeI2C()).collect()


def test_scd4x_over_the_fake_bus():
    bus = FakeI2C()
    bus.co2 = 1234
    scd = Scd4x(bus)
    scd.start()
    assert scd.ready() is True
    co2, temperature, _ = scd.read()
    assert co2 == 1234
    assert temperature == pytest.approx(21.5, abs=0.01)


@pytest.mark.parametrize(
    "address,exercise", [(0x44, lambda bus: Sht3x(bus).start()), (0x62, lambda bus: Scd4x(bus).read())]
)
def test_a_device_that_stops_answering_raises_oserror(address, exercise):
    bus = FakeI2C()
    bus.fail.add(address)
    with pytest.raises(OSError):
        exercise(bus)


def test_a_corrupt_answer_is_a_sensor_error_not_a_value():
    bus = FakeI2C()
    bus.corrupt.update({0x44, 0x62})
    sht = Sht3x(bus)
    sht.start()
    with pytest.raises(SensorError, match="CRC"):
        sht.collect()
    with pytest.raises(SensorError, match="CRC"):
        Scd4x(bus).read()
    with pytest.raises(SensorError, match="CRC"):
        Scd4x(bus).ready()


def test_sht3x_humidity_is_clamped():
    raw = struct.unpack(">H", struct.pack(">H", 65535))[0]
    _, humidity = sensors.decode_sht3x(with_crc(0x6666) + with_crc(raw))
    assert humidity == 100.0


# -- the QR scanner's line reader ------------------------------------------------------------------------------------


def test_lines_end_with_cr_lf_or_both():
    reader = LineReader(repeat_ms=0)
    assert reader.feed(b"A1\rB2\nC3\r\nD4", 0, DIFF) == ["A1", "B2", "C3"]
    assert reader.feed(b"\r\n", 10, DIFF) == ["D4"]


def test_a_code_split_across_reads():
    reader = LineReader()
    assert reader.feed(b"CP1:ab", 0, DIFF) == []
    assert reader.feed(b"cd\r", 5, DIFF) == ["CP1:abcd"]


def test_the_same_code_held_in_front_of_the_scanner_is_read_once():
    reader = LineReader(repeat_ms=2000)
    assert reader.feed(b"PASS\r", 0, DIFF) == ["PASS"]
    assert reader.feed(b"PASS\r", 500, DIFF) == []
    assert reader.feed(b"OTHER\r", 600, DIFF) == ["OTHER"]
    assert reader.feed(b"PASS\r", 700, DIFF) == ["PASS"]  # another code came between
    assert reader.feed(b"PASS\r", 2800, DIFF) == ["PASS"]  # 2100 ms after the last read


def test_overlong_and_undecodable_codes_are_dropped_and_counted():
    reader = LineReader()
    assert reader.feed(b"x" * (MAX_CODE_BYTES + 10) + b"\rOK\r", 0, DIFF) == ["OK"]
    assert reader.feed(b"\xff\xfe\r", 10, DIFF) == []
    assert reader.dropped == 2
    assert reader.feed(b"x" * MAX_CODE_BYTES + b"\r", 20, DIFF) == ["x" * MAX_CODE_BYTES]


def test_blank_lines_and_padding_are_ignored():
    reader = LineReader(repeat_ms=0)
    assert reader.feed(b"\r\n\r\n   \r  Q1  \r", 0, DIFF) == ["Q1"]
    assert reader.dropped == 0


@settings(deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), min_size=1, max_size=50
        ),
        max_size=10,
    )
)
def test_line_reader_property(codes):
    reader = LineReader(repeat_ms=0)
    data = b"".join(code.encode("utf-8") + b"\r\n" for code in codes)
    expected = [code.strip() for code in codes if code.strip()]
    assert reader.feed(data, 0, DIFF) == expected
