"""The single writer on its own: ordering, acknowledgements after commit, presence in delivery order, retention."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.contracts import Event, Status, Telemetry
from gateway.errors import StoreError
from gateway.metrics import GatewayMetrics
from gateway.normalise import to_readings
from gateway.store.devices import DeviceTable
from gateway.store.migrations import migrate
from gateway.store.retention import RetentionPolicy, trim
from gateway.store.writer import EventIn, Rejected, StatusIn, TelemetryIn, Writer

NOW = time.time()


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    path = tmp_path / "w.db"
    migrate(path)
    metrics = GatewayMetrics()
    devices = DeviceTable((), discovery_cap=100, timeout_for=lambda _type: 60.0, metrics=metrics, started=NOW)
    writer = Writer(path, devices, metrics, queue_size=100, batch_size=50, batch_interval=0.5, disk_watermark_bytes=0)
    writer.start()
    yield writer
    writer.stop()


def _telemetry(device: str, seq: int, value: float, acks: list[str]) -> TelemetryIn:
    message = Telemetry(device, {"t": value}, NOW, False, "b", seq)
    return TelemetryIn(device, "b", seq, NOW, to_readings(message), lambda: acks.append(f"{device}:{seq}"))


def _flush(writer: Writer) -> None:
    writer.execute(lambda _conn, _devices: None).result(10)


def test_acks_follow_the_commit_in_delivery_order_including_dead_letters_and_duplicates(writer):
    acks: list[str] = []
    writer.submit(_telemetry("d1", 0, 1.0, acks))
    writer.submit(Rejected("campus/s/d1/telemetry", "d1", "malformed_json", "x", b"{", NOW, lambda: acks.append("bad")))
    writer.submit(_telemetry("d1", 0, 1.0, acks))  # a duplicate
    writer.submit(_telemetry("d2", 0, 2.0, acks))
    _flush(writer)
    assert acks == ["d1:0", "bad", "d1:0", "d2:0"]
    conn = sqlite3.connect(writer.path)
    assert conn.execute("SELECT count(*) FROM readings_all").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 1
    conn.close()


def test_a_redelivered_event_is_stored_once_and_shares_the_boots_numbering_with_telemetry(writer):
    acks: list[str] = []
    fault = Event("d1", "nozzle_jam", "major", "extruder 1", NOW, False, "b", 1)
    writer.submit(_telemetry("d1", 0, 1.0, acks))
    writer.submit(EventIn(fault, NOW, lambda: acks.append("event")))
    writer.submit(EventIn(fault, NOW, lambda: acks.append("event again")))  # redelivered after a reconnect
    writer.submit(_telemetry("d1", 2, 2.0, acks))
    _flush(writer)
    writer.submit(EventIn(fault, NOW, lambda: acks.append("event in a later batch")))
    _flush(writer)
    assert acks == ["d1:0", "event", "event again", "d1:2", "event in a later batch"], "duplicates are acked too"
    conn = sqlite3.connect(writer.path)
    try:
        events = conn.execute("SELECT count(*) FROM device_events WHERE kind = 'event'").fetchone()[0]
        (runs,) = conn.execute("SELECT runs FROM message_runs").fetchone()
    finally:
        conn.close()
    assert events == 1
    assert runs == "[[0,2]]", "the event fills seq 1: no gap in the boot's identities"


def test_offline_status_after_telemetry_in_one_batch_leaves_the_device_offline(writer):
    acks: list[str] = []
    writer.submit(_telemetry("d1", 0, 1.0, acks))
    writer.submit(StatusIn(Status("d1", False, NOW, False, None, None, None), NOW + 0.01, None))
    _flush(writer)
    assert writer.devices.record("d1").online is False
    writer.submit(_telemetry("d1", 1, 1.0, acks))
    _flush(writer)
    assert writer.devices.record("d1").online is True


def test_retention_by_age_and_by_size(writer):
    conn = sqlite3.connect(writer.path)
    conn.execute("INSERT INTO devices (device, created) VALUES ('old', 0)")
    conn.execute("INSERT INTO series (device_id, metric, kind) VALUES (1, 't', 'number')")
    rows = [(1, NOW - 40 * 86400 + i, float(i), 0) for i in range(500)]
    rows += [(1, NOW - i, float(i), 0) for i in range(500)]
    conn.executemany("INSERT INTO readings (series_id, ts, value, quality) VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    policy = RetentionPolicy(raw_days=30, minute_rollup_days=90, hour_rollup_days=3650, max_db_bytes=0, chunk=200)
    deleted = 0
    while True:
        step = trim(conn, policy, NOW)
        conn.commit()
        if not step:
            break
        deleted += step.get("readings", 0)
    assert deleted == 500
    assert conn.execute("SELECT min(ts) FROM readings").fetchone()[0] > NOW - 30 * 86400
    tiny = RetentionPolicy(raw_days=30, minute_rollup_days=90, hour_rollup_days=3650, max_db_bytes=1, chunk=100)
    step = trim(conn, tiny, NOW)
    assert step.get("readings_by_size") == 100
    assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 400
    assert conn.execute("SELECT min(value) FROM readings").fetchone()[0] == 0.0  # the newest stay
    conn.close()


def test_commands_never_wait_behind_a_full_message_queue(tmp_path: Path) -> None:
    """The API and housekeeping hand the writer commands from the event loop: a full message side (the broker
    redelivering after a reconnect, the disk below its watermark) must not block them."""
    path = tmp_path / "full.db"
    migrate(path)
    metrics = GatewayMetrics()
    devices = DeviceTable((), discovery_cap=100, timeout_for=lambda _type: 60.0, metrics=metrics, started=NOW)
    writer = Writer(
        path, devices, metrics, queue_size=2, batch_size=50, batch_interval=0.05, disk_watermark_bytes=2**62
    )
    writer.start()
    try:
        acks: list[str] = []
        writer.submit(_telemetry("d1", 0, 1.0, acks))
        writer.submit(_telemetry("d1", 1, 1.0, acks))
        third = threading.Thread(target=writer.submit, args=(_telemetry("d1", 2, 1.0, acks),), name="test-submit")
        third.start()
        third.join(0.5)
        assert third.is_alive(), "the third message waits for a slot: the queue holds two"
        began = time.monotonic()
        command = writer.execute(lambda _conn, _devices: "done")
        assert time.monotonic() - began < 0.1, "a command does not wait for a slot"
        assert not command.done() and acks == [], "nothing is written below the watermark"
        writer._watermark = 0  # the disk has room again
        assert command.result(10) == "done"
        third.join(10)
        _flush(writer)
        assert acks == ["d1:0", "d1:1", "d1:2"]
    finally:
        writer.stop()
    refused = writer.execute(lambda _conn, _devices: None)
    with pytest.raises(StoreError):
        refused.result(1)
    writer.submit(_telemetry("d1", 3, 1.0, []))  # returns: the message stays with the broker
