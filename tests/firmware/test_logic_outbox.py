"""The bounded outbox: newest kept and discards counted, stamping from ticks once the clock is set (never a
pre-2020 ``ts``), stale gate scans dropped and counted, spill lines that round trip, the same message on resend."""

from __future__ import annotations

import json

import pytest
from campusnode import payloads
from campusnode.clock import MAX_TICK_AGE_MS, TicksDiff
from campusnode.outbox import Outbox, Record
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contracts import parse_event, parse_telemetry
from gateway.contracts.payloads import EARLIEST_TS
from tests.firmware._logic_support import RECEIVED

DIFF = TicksDiff()
NOW = int(RECEIVED)
TOPIC = "campus/test-school/env-lab1/telemetry"


def reading(seq: int, ticks: int | None = 1000, ts: int | None = None, ttl_ms: int | None = None) -> Record:
    return Record("telemetry", TOPIC, {"metrics": {"n": seq}}, ticks, ts, "boot1", seq, ttl_ms)


def scan(scan_id: str, ticks: int, ttl_ms: int = 5000) -> Record:
    return Record(
        "scan", "campus/test-school/gate/g1/scan", {"code": "QR", "scan_id": scan_id}, ticks, None, None, None, ttl_ms
    )


def seqs(outbox: Outbox) -> list[int | None]:
    return [record.seq for record in outbox.records()]


# -- bounded, newest kept --------------------------------------------------------------------------------------------


def test_full_outbox_keeps_the_newest_and_counts_discards():
    outbox = Outbox(3)
    results = [outbox.put(reading(seq)) for seq in range(5)]
    assert results == [True, True, True, False, False]
    assert len(outbox) == 3
    assert seqs(outbox) == [2, 3, 4]
    assert outbox.discards == 2


def test_peek_pop_and_empty():
    outbox = Outbox(2)
    assert outbox.peek() is None and outbox.pop() is None
    outbox.put(reading(0))
    outbox.put(reading(1))
    first = outbox.peek()
    assert first is not None and first.seq == 0
    assert len(outbox) == 2  # peeking does not remove: a record leaves only once the broker confirmed it
    assert outbox.pop() is first
    assert seqs(outbox) == [1]


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        Outbox(0)


def test_drop_invalid_counts():
    outbox = Outbox(3)
    outbox.drop_invalid()
    assert outbox.invalid == 0
    outbox.put(reading(0))
    outbox.put(reading(1))
    outbox.drop_invalid()
    assert (seqs(outbox), outbox.invalid) == ([1], 1)


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=20), st.integers(min_value=0, max_value=60))
def test_bounded_property(capacity, count):
    outbox = Outbox(capacity)
    for seq in range(count):
        outbox.put(reading(seq))
    assert len(outbox) == min(capacity, count)
    assert seqs(outbox) == list(range(max(0, count - capacity), count))
    assert outbox.discards == max(0, count - capacity)


# -- stamping from ticks ---------------------------------------------------------------------------------------------


def test_records_made_before_the_clock_was_set_get_their_ts_from_ticks():
    outbox = Outbox(10)
    outbox.put(reading(0, ticks=1_000))
    outbox.put(reading(1, ticks=61_000))
    outbox.put(reading(2, ticks=90_000, ts=NOW - 7))  # stamped at birth: left alone
    assert outbox.unstamped() == 2
    assert outbox.stamp(NOW, 121_000, DIFF) == 2
    assert [record.ts for record in outbox.records()] == [NOW - 120, NOW - 60, NOW - 7]
    assert outbox.unstamped() == 0
    assert outbox.stamp(NOW + 1000, 200_000, DIFF) == 0  # once stamped, never restamped


def test_no_stamp_without_a_plausible_clock():
    outbox = Outbox(10)
    outbox.put(reading(0, ticks=1_000))
    assert outbox.stamp(None, 5_000, DIFF) == 0
    assert outbox.stamp(820_000_000, 5_000, DIFF) == 0  # an ESP32 counting from 2000, never set
    record = outbox.records()[0]
    assert (record.ts, record.ticks) == (None, 1_000)  # still waiting for a real clock
    assert outbox.unstamped() == 1
    assert outbox.stamp(NOW, 5_000, DIFF) == 1
    assert record.ts == NOW - 4


def test_a_stamp_that_would_fall_before_2020_is_not_given():
    outbox = Outbox(10)
    outbox.put(reading(0, ticks=0))
    assert outbox.stamp(int(EARLIEST_TS) + 10, 60_000, DIFF) == 0
    assert outbox.records()[0].ts is None
    assert json.loads(outbox.records()[0].encode()).get("ts") is None


def test_records_too_old_for_the_tick_counter_are_sent_without_ts():
    outbox = Outbox(10)
    outbox.put(reading(0, ticks=0))
    outbox.put(reading(1, ticks=MAX_TICK_AGE_MS + 10))  # from the future as seen from ticks_now: a wrapped counter
    assert outbox.stamp(NOW, MAX_TICK_AGE_MS + 1, DIFF) == 0
    assert [(record.ts, record.ticks) for record in outbox.records()] == [(None, None), (None, None)]
    assert outbox.unstamped() == 0
    parsed = parse_telemetry("env-lab1", outbox.records()[0].encode(), RECEIVED)
    assert (parsed.ts, parsed.clock_suspect) == (RECEIVED, False)  # the gateway uses its receive time


@settings(deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10 * 24 * 3600 * 1000), min_size=1, max_size=10),
    st.integers(min_value=0, max_value=2_000_000_000),
    st.integers(min_value=0, max_value=10 * 24 * 3600 * 1000),
)
def test_stamping_never_gives_a_pre_2020_or_future_ts(ticks_list, unix_now, ticks_now):
    outbox = Outbox(20)
    for seq, ticks in enumerate(ticks_list):
        outbox.put(reading(seq, ticks=ticks))
    outbox.stamp(unix_now, ticks_now, DIFF)
    for record in outbox.records():
        if record.ts is not None:
            assert EARLIEST_TS <= record.ts <= unix_now
            payload = record.encode()
            assert not parse_telemetry("dev", payload, max(unix_now, RECEIVED)).clock_suspect


# -- expiry of gate scans --------------------------------------------------------------------------------------------


def test_expired_scans_are_dropped_and_counted():
    outbox = Outbox(10)
    outbox.put(scan("s-1", ticks=1_000))
    outbox.put(reading(0, ticks=1_000))  # no ttl: waits as long as it takes
    outbox.put(scan("s-2", ticks=4_000))
    assert outbox.drop_expired(6_000, DIFF) == 0  # s-1 is exactly 5000 ms old: not yet stale
    assert outbox.drop_expired(6_001, DIFF) == 1
    assert [record.kind for record in outbox.records()] == ["telemetry", "scan"]
    assert outbox.expired == 1
    assert outbox.drop_expired(100_000, DIFF) == 1
    assert [record.kind for record in outbox.records()] == ["telemetry"]
    assert (outbox.expired, outbox.discards) == (2, 0)


def test_a_record_without_ticks_never_expires():
    outbox = Outbox(10)
    outbox.put(scan("s-1", ticks=0))
    outbox.records()[0].ticks = None
    assert outbox.drop_expired(10**9, DIFF) == 0
    assert len(outbox) == 1


# -- resend and spill ------------------------------------------------------------------------------------------------


def test_a_record_encodes_to_the_same_message_every_time():
    record = reading(41, ticks=1_000)
    first = record.encode()
    assert record.encode() == first
    record.ts = NOW - 3  # stamping adds the ts, never a new identity
    stamped = parse_telemetry("env-lab1", record.encode(), RECEIVED)
    assert (stamped.boot, stamped.seq, stamped.ts) == ("boot1", 41, NOW - 3)


@pytest.mark.parametrize(
    "record,check",
    [
        (
            Record(
                "event",
                "campus/s/d/event",
                {"code": "boot", "severity": "warning", "message": "watchdog"},
                5,
                NOW,
                "b",
                2,
            ),
            lambda data: parse_event("d", data, RECEIVED).message == "watchdog",
        ),
        (
            Record("event", "campus/s/d/event", {"code": "boot"}, 5, None, "b", 2),
            lambda data: parse_event("d", data, RECEIVED).severity == "info",
        ),
        (
            Record("scan", "campus/s/gate/g/scan", {"code": "Q", "scan_id": "x-1", "direction": "in"}, 5, NOW),
            lambda data: json.loads(data) == {"code": "Q", "scan_id": "x-1", "ts": NOW, "direction": "in"},
        ),
        (
            Record("passage", "campus/s/gate/g/passage", {"scan_id": "x-1", "passed": True}, 5, NOW),
            lambda data: json.loads(data) == {"scan_id": "x-1", "passed": True},
        ),
    ],
    ids=["event", "event_defaults", "scan", "passage"],
)
def test_each_record_kind_encodes(record, check):
    assert check(record.encode())


def test_unknown_kind_is_a_payload_error():
    with pytest.raises(payloads.PayloadError, match="unknown record kind"):
        Record("nope", "t", {}, 0).encode()


def test_spill_lines_skip_scans_and_keep_the_newest():
    outbox = Outbox(10)
    for seq in range(5):
        outbox.put(reading(seq, ticks=seq))
    outbox.put(scan("s-1", ticks=10))
    lines = outbox.spill_lines(3)
    assert [json.loads(line)["seq"] for line in lines] == [2, 3, 4]
    assert outbox.spill_lines(0) == []
    assert len(outbox.spill_lines(100)) == 5
    assert all("\n" not in line for line in lines)


def test_loaded_lines_are_the_same_messages():
    old = Outbox(10)
    old.put(reading(7, ticks=1_000, ts=NOW - 60))
    old.put(Record("event", "campus/s/d/event", {"code": "boot", "severity": "info", "message": ""}, 2, None, "b", 8))
    sent_before = [record.encode() for record in old.records()]
    new = Outbox(10)
    assert new.load_lines(old.spill_lines(10)) == 2
    assert [record.encode() for record in new.records()] == sent_before
    assert all(record.ticks is None for record in new.records())  # ticks of an earlier boot mean nothing


def test_bad_spill_lines_are_skipped_and_counted():
    good = reading(1, ticks=5, ts=NOW).to_json()
    lines = [
        "",
        "   ",
        "not json",
        "[1, 2]",
        '{"k": "telemetry", "t": "x", "b": [1]}',
        '{"t": "x", "b": {"metrics": {"t": 1}}}',  # no kind
        '{"k": "telemetry", "t": "x", "b": {}}',  # no metrics
        '{"k": "telemetry", "t": "x", "b": {"metrics": {"t": 1}}, "ts": 820000000}',  # unset ESP32 clock
        '{"k": "telemetry", "t": "x", "b": {"metrics": {"T": 1}}}',  # breaks the contract
        '{"k": "telemetry", "t": "x", "b": {"metrics": {"t": 1}}, "seq": -1, "boot": "b"}',
        '{"k": "mystery", "t": "x", "b": {}}',
        '{"k": "telemetry", "t": 5, "b": {"metrics": {"t": 1}}}',  # no topic to publish on
        good,
    ]
    outbox = Outbox(10)
    assert outbox.load_lines(lines) == 1
    assert outbox.invalid == 10
    assert seqs(outbox) == [1]


def test_loading_more_than_fits_keeps_the_newest():
    lines = [reading(seq, ts=NOW).to_json() for seq in range(6)]
    outbox = Outbox(4)
    assert outbox.load_lines(lines) == 6
    assert seqs(outbox) == [2, 3, 4, 5]
    assert outbox.discards == 2


metrics = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_.]{0,20}", fullmatch=True),
    st.one_of(
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(max_size=40),
    ),
    min_size=1,
    max_size=5,
)
stamps = st.one_of(st.none(), st.integers(min_value=int(EARLIEST_TS), max_value=NOW))


@settings(deadline=None)
@given(
    st.one_of(
        st.builds(
            lambda m, ts, boot, seq: Record("telemetry", TOPIC, {"metrics": m}, 7, ts, boot, seq),
            metrics,
            stamps,
            st.text(min_size=1, max_size=16),
            st.integers(min_value=0, max_value=2**53),
        ),
        st.builds(
            lambda code, severity, message, ts, seq: Record(
                "event", "campus/s/d/event", {"code": code, "severity": severity, "message": message}, 7, ts, "b", seq
            ),
            st.text(min_size=1, max_size=64),
            st.sampled_from(payloads.SEVERITIES),
            st.text(max_size=100),
            stamps,
            st.integers(min_value=0, max_value=2**53),
        ),
        st.builds(
            lambda scan_id, passed: Record(
                "passage", "campus/s/gate/g/passage", {"scan_id": scan_id, "passed": passed}, 7
            ),
            st.text(min_size=1, max_size=64),
            st.booleans(),
        ),
    )
)
def test_spill_round_trip_property(record):
    line = record.to_json()
    assert "\n" not in line
    back = Record.from_json(line)
    assert (back.kind, back.topic, back.body, back.ts, back.boot, back.seq) == (
        record.kind,
        record.topic,
        record.body,
        record.ts,
        record.boot,
        record.seq,
    )
    assert back.encode() == record.encode()
