"""The outbox under MicroPython: bounded, newest kept, discards counted; ``ts`` stamped from ticks once the clock
is set; stale gate scans dropped; spill lines (the flash copy) round trip, bad ones counted."""

import json

from _support import raises
from campusnode.clock import MAX_TICK_AGE_MS, TicksDiff
from campusnode.outbox import Outbox, Record

DIFF = TicksDiff()
TOPIC = "campus/test-school/env-lab1/telemetry"
UNIX = 1767225600


def _reading(seq, ticks=None, ts=None):
    return Record("telemetry", TOPIC, {"metrics": {"co2": 600 + seq}}, ticks, ts, "a1b2c3", seq)


def _scan(scan_id, ticks, ttl_ms=5000):
    return Record(
        "scan", "campus/test-school/gate/gym-east/scan", {"code": "PASS:x", "scan_id": scan_id}, ticks, None, None,
        None, ttl_ms
    )


def test_bounded_newest_kept_discards_counted():
    box = Outbox(3)
    results = [box.put(_reading(seq)) for seq in range(5)]
    assert results == [True, True, True, False, False]
    assert len(box) == 3 and box.discards == 2
    assert [record.seq for record in box.records()] == [2, 3, 4]
    assert box.peek().seq == 2
    assert box.pop().seq == 2 and len(box) == 2
    box.pop()
    box.pop()
    assert box.pop() is None and box.peek() is None
    raises(ValueError, Outbox, 0)


def test_records_made_before_the_clock_was_set_are_stamped_from_their_ticks():
    box = Outbox(10)
    box.put(_reading(0, ticks=1000))
    box.put(_reading(1, ticks=61000))
    box.put(_reading(2, ticks=5000, ts=UNIX - 5))  # already stamped: kept as it is
    assert box.unstamped() == 2
    assert box.stamp(None, 121000, DIFF) == 0 and box.unstamped() == 2  # clock still unset
    assert box.stamp(UNIX, 121000, DIFF) == 2
    assert [record.ts for record in box.records()] == [UNIX - 120, UNIX - 60, UNIX - 5]
    assert box.unstamped() == 0
    document = json.loads(box.peek().encode())
    assert document == {"metrics": {"co2": 600}, "ts": UNIX - 120, "boot": "a1b2c3", "seq": 0}


def test_a_record_too_old_for_the_tick_counter_is_sent_without_ts():
    box = Outbox(10)
    box.put(_reading(0, ticks=0))
    box.put(_reading(1, ticks=10))
    now = MAX_TICK_AGE_MS + 5
    assert box.stamp(UNIX, now, DIFF) == 1
    old, young = box.records()
    assert old.ticks is None and old.ts is None and "ts" not in json.loads(old.encode())
    assert young.ts == UNIX - (MAX_TICK_AGE_MS - 5 + 500) // 1000
    assert box.unstamped() == 0


def test_stale_gate_scans_are_dropped_and_counted():
    box = Outbox(10)
    box.put(_scan("s-1", 1000))
    box.put(_reading(0, ticks=1000))
    box.put(_scan("s-2", 4000))
    assert box.drop_expired(6000, DIFF) == 0
    assert box.drop_expired(6001, DIFF) == 1
    assert box.expired == 1
    assert [record.kind for record in box.records()] == ["telemetry", "scan"]


def test_spill_lines_round_trip():
    box = Outbox(10)
    box.put(_reading(0, ticks=1000, ts=UNIX - 30))
    box.put(_scan("s-1", 1000))
    box.put(Record("event", "campus/test-school/env-lab1/event", {"code": "boot", "severity": "info",
                                                                  "message": "reset cause: 电源"}, 1200, None,
                   "a1b2c3", 1))
    box.put(_reading(2, ticks=1500))
    box.put(Record("passage", "campus/test-school/gate/gym-east/passage", {"scan_id": "s-0", "passed": True}, 1600))
    lines = box.spill_lines(3)
    assert len(lines) == 3  # the newest three, without the gate scan
    for line in lines:
        assert "\n" not in line
    restored = Outbox(10)
    assert restored.load_lines(lines + ["", "   "]) == 3
    originals = [record for record in box.records() if record.kind != "scan"][-3:]
    for original, again in zip(originals, restored.records()):
        assert again.ticks is None  # ticks of an earlier boot mean nothing now
        for name in ("kind", "topic", "body", "ts", "boot", "seq"):
            assert getattr(again, name) == getattr(original, name), name
        assert json.loads(again.encode()) == json.loads(original.encode())
    assert box.spill_lines(0) == []


def test_bad_spill_lines_are_skipped_and_counted():
    box = Outbox(10)
    good = _reading(7, ts=UNIX).to_json()
    lines = [
        "not json",
        "[1, 2]",
        "{}",
        json.dumps({"k": "telemetry", "t": TOPIC, "b": {"metrics": {}}}),
        json.dumps({"k": "sms", "t": TOPIC, "b": {}}),
        json.dumps({"k": "telemetry", "t": TOPIC, "b": {"metrics": {"t": 1}}, "ts": 1000}),
        good,
    ]
    assert box.load_lines(lines) == 1
    assert box.invalid == 6
    assert box.peek().seq == 7


def test_drop_invalid():
    box = Outbox(2)
    box.put(Record("telemetry", TOPIC, {"metrics": {"Bad": 1}}, 0))
    box.drop_invalid()
    box.drop_invalid()
    assert len(box) == 0 and box.invalid == 1
