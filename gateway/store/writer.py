"""The single writer: one owned thread that drains a bounded queue into SQLite in batches.

In: :class:`Inbound` items (telemetry, status, events, rejected messages), in the order the broker delivered them,
and :class:`Command` items (registry changes from the API, presence checks) that carry a future.
Out: rows in SQLite (readings into ``readings_pending``, see :mod:`gateway.store.settle`), then, only after the batch
holding them is committed and fsynced, each message's ``ack``, called in delivery order, for duplicates and dead
letters too.

A batch closes at ``batch_size`` messages or ``batch_interval`` seconds after its first message. When the disk is
below its watermark the writer stops committing, so nothing is acknowledged and the broker keeps the messages;
when a commit fails, the batch is rolled back and retried, never dropped.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from gateway.contracts import Event, Status
from gateway.errors import StoreError
from gateway.metrics import GatewayMetrics
from gateway.normalise import Reading
from gateway.store.devices import DeviceTable
from gateway.store.identities import StoredMessages
from gateway.store.migrations import connect
from gateway.store.rows import values_lists
from gateway.store.settle import PENDING

log = logging.getLogger(__name__)

T = TypeVar("T")
Ack = Callable[[], None]


class TelemetryIn(NamedTuple):
    device: str
    boot: str | None
    seq: int | None
    received: float
    readings: tuple[Reading, ...]
    ack: Ack | None


class StatusIn(NamedTuple):
    status: Status
    received: float
    ack: Ack | None


class EventIn(NamedTuple):
    event: Event
    received: float
    ack: Ack | None


class Rejected(NamedTuple):
    topic: str
    device: str | None
    reason: str
    detail: str
    payload: bytes
    received: float
    ack: Ack | None


#: What the ingest thread hands the writer, one per MQTT message: immutable tuples, cheap to make.
Inbound = TelemetryIn | StatusIn | EventIn | Rejected


@dataclass(frozen=True, slots=True)
class Command(Generic[T]):
    """Work to run on the write connection inside the writer's transaction; its result comes back on ``future``."""

    run: Callable[[sqlite3.Connection, DeviceTable], T]
    future: Future[T] = field(default_factory=Future)


_STOP = object()


@dataclass
class WriterHealth:
    alive: bool = False
    paused_for_disk: bool = False
    last_error: str | None = None
    last_commit: float = 0.0


class Writer:
    """Owns the write connection and the thread that uses it. ``start()``, then ``submit()``; ``stop()`` flushes."""

    def __init__(
        self,
        path: Path,
        devices: DeviceTable,
        metrics: GatewayMetrics,
        *,
        queue_size: int,
        batch_size: int,
        batch_interval: float,
        disk_watermark_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.devices = devices
        self.metrics = metrics
        self.health = WriterHealth()
        # Messages are bounded by slots, one per message until its batch is committed; commands take none, so the
        # API and the housekeeping loops can always hand the writer work, however full the message side is.
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._slots = threading.Semaphore(queue_size)
        self._closed = False
        self._batch_size = batch_size
        self._batch_interval = batch_interval
        self._watermark = disk_watermark_bytes
        self._clock = clock
        self.identities = StoredMessages()
        self._thread: threading.Thread | None = None
        self._disk_checked = 0.0
        self._ready = threading.Event()
        self._stopping = False

    # -- the public side, used from any thread -------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start the thread and wait until it has opened the database and loaded the device registry."""
        self._thread = threading.Thread(target=self._run, name="campusgw-writer", daemon=True)
        self.health.alive = True
        self.metrics.writer_alive.set(1)
        self._thread.start()
        if not self._ready.wait(timeout) or not self.health.alive:
            self._thread.join(1.0)
            raise StoreError(self.health.last_error or f"the writer did not start within {timeout:.0f} s")

    def submit(self, item: Inbound) -> None:
        """Queue one inbound message; blocks while the queue is full (the broker holds the rest), never drops.
        Once the writer has stopped it returns without queueing: the message stays unacknowledged, and the broker
        delivers it again to the next run."""
        while not self._closed:
            if self._slots.acquire(timeout=0.5):
                self._queue.put(item)
                return

    def execute(self, run: Callable[[sqlite3.Connection, DeviceTable], T]) -> Future[T]:
        command: Command[T] = Command(run)
        if self._closed:
            command.future.set_exception(StoreError(self.health.last_error or "the writer has stopped"))
        else:
            self._queue.put(command)
        return command.future

    def depth(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float = 30.0) -> None:
        """Write and acknowledge everything queued so far, then end the thread.

        A batch that cannot be written now (disk below its watermark, a failing disk) is given up: its messages
        stay unacknowledged, so the broker delivers them again to the next run.
        """
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        deadline = time.monotonic() + timeout
        self._queue.put(_STOP)
        thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None

    # -- the writer thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        conn = None
        try:
            conn = self._open()
            self.devices.load(conn)
            self._ready.set()
            self._loop(conn)
        except Exception as exc:  # the thread must say why it died; /healthz turns this into a 503
            log.exception("writer stopped")
            self.health.last_error = f"writer stopped: {exc}"
        finally:
            self._closed = True
            self._ready.set()
            self.health.alive = False
            self.metrics.writer_alive.set(0)
            if conn is not None:
                conn.close()

    def _open(self) -> sqlite3.Connection:
        return connect(self.path)

    def _loop(self, conn: sqlite3.Connection) -> None:
        get = self._queue.get
        while True:
            first = get()
            if first is _STOP:
                return
            batch: list[object] = [first]
            messages = 0 if isinstance(first, Command) else 1
            deadline = time.monotonic() + self._batch_interval
            stop = False
            while messages < self._batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = get(timeout=remaining)
                    except queue.Empty:
                        break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                if not isinstance(item, Command):
                    messages += 1
            if not self._commit_with_retry(conn, batch) or stop:
                return

    def _disk_ok(self) -> bool:
        now = time.monotonic()
        if now - self._disk_checked < 1.0:
            return not self.health.paused_for_disk
        self._disk_checked = now
        free = shutil.disk_usage(self.path.parent).free
        paused = free < self._watermark
        if paused != self.health.paused_for_disk:
            self.health.paused_for_disk = paused
            self.metrics.acks_paused.set(1 if paused else 0)
            if paused:
                log.error(
                    "disk free %d bytes is below the watermark %d: holding acknowledgements", free, self._watermark
                )
            else:
                log.warning("disk free %d bytes is above the watermark again: writing resumes", free)
        return not paused

    def _commit_with_retry(self, conn: sqlite3.Connection, batch: list[object]) -> bool:
        """Commit ``batch``, waiting out a full disk and retrying failures; False if stopped before it could."""
        delay = 0.1
        while True:
            while not self._disk_ok():
                if self._stopping:
                    self._abandon(batch)
                    return False
                time.sleep(0.2)
            try:
                self._commit(conn, batch)
                self.health.last_error = None
                self._release(batch)
                return True
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                self.identities.rolled_back()
                if self._stopping:
                    self._abandon(batch)
                    return False
                self.metrics.write_errors.inc()
                self.health.last_error = f"write failed: {exc}"
                log.error("batch of %d items failed (%s); retrying in %.1f s", len(batch), exc, delay)
                self.devices.rollback(conn)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _abandon(self, batch: list[object]) -> None:
        log.warning("stopping with %d items not written; the broker keeps their messages", len(batch))
        for item in batch:
            if isinstance(item, Command):
                item.future.cancel()
        self._release(batch)

    def _release(self, batch: list[object]) -> None:
        messages = sum(1 for item in batch if not isinstance(item, Command))
        if messages:
            self._slots.release(messages)

    def _commit(self, conn: sqlite3.Connection, batch: list[object]) -> None:
        started = time.perf_counter()
        now = self._clock()
        results: list[tuple[Command[Any], Any, BaseException | None]] = []
        readings: list[tuple[int, float, object, int]] = []
        dead: list[tuple[float, str, str | None, str, str, bytes]] = []
        seen: dict[int, float] = {}
        duplicates = without_identity = suspect = messages = 0
        ingested: dict[str, int] = {}
        rejected: dict[str, int] = {}
        devices = self.devices
        series_id = devices.series_id
        identities = self.identities
        forgotten = identities.gaps_forgotten
        conn.execute("BEGIN IMMEDIATE")
        for item in batch:
            if isinstance(item, TelemetryIn):
                messages += 1
                device_id = devices.ensure(conn, item.device, item.received)
                if item.boot is not None and item.seq is not None:
                    if not identities.add(conn, device_id, item.boot, item.seq):
                        duplicates += 1
                        continue
                    devices.note_boot(conn, device_id, item.boot, item.received)
                else:
                    without_identity += 1
                ingested["telemetry"] = ingested.get("telemetry", 0) + 1
                for reading in item.readings:
                    value = reading.value
                    readings.append((series_id(conn, device_id, reading), reading.ts, value, reading.quality))
                    if reading.quality:
                        suspect += 1
                if device_id not in seen:
                    devices.heard(conn, device_id, item.received)  # presence changes in delivery order
                seen[device_id] = item.received
            elif isinstance(item, Rejected):
                messages += 1
                dead.append((item.received, item.topic, item.device, item.reason, item.detail, item.payload))
                rejected[item.reason] = rejected.get(item.reason, 0) + 1
            elif isinstance(item, StatusIn):
                messages += 1
                ingested["status"] = ingested.get("status", 0) + 1
                devices.apply_status(conn, item.status, item.received)
                seen.pop(devices.record(item.status.device).id, None)
            elif isinstance(item, EventIn):
                messages += 1
                device_id = devices.ensure(conn, item.event.device, item.received)
                event = item.event
                # Events share the boot's seq numbering with telemetry: a redelivered event is stored once too.
                if (
                    event.boot is not None
                    and event.seq is not None
                    and not identities.add(conn, device_id, event.boot, event.seq)
                ):
                    duplicates += 1
                    continue
                ingested["event"] = ingested.get("event", 0) + 1
                detail: dict[str, object] = {"code": event.code, "severity": event.severity, "message": event.message}
                if event.boot is not None:
                    detail |= {"boot": event.boot, "seq": event.seq}
                devices.add_event(conn, device_id, event.ts, "event", detail)
                if device_id not in seen:
                    devices.heard(conn, device_id, item.received)
                seen[device_id] = item.received
            elif isinstance(item, Command):
                if not item.future.set_running_or_notify_cancel():
                    continue  # its caller gave up waiting
                try:
                    results.append((item, item.run(conn, devices), None))
                except Exception as exc:  # an API command's own error goes back to its caller
                    results.append((item, None, exc))
        if readings:
            insert_readings(conn, readings)
        if dead:
            conn.executemany(
                "INSERT INTO dead_letters (received, topic, device, reason, detail, payload) VALUES (?, ?, ?, ?, ?, ?)",
                dead,
            )
        if seen:
            devices.mark_seen(conn, seen)
        identities.flush(conn, now)
        conn.execute("COMMIT")
        identities.committed()
        devices.commit()
        elapsed = time.perf_counter() - started
        self.health.last_commit = now
        # Durable: now the broker may forget these messages, in the order it sent them.
        for item in batch:
            ack = getattr(item, "ack", None)
            if ack is not None:
                ack()
        for command, result, error in results:
            if error is None:
                command.future.set_result(result)
            else:
                command.future.set_exception(error)
        metrics = self.metrics
        metrics.write_batch_seconds.observe(elapsed)
        if messages:
            metrics.write_batch_messages.observe(messages)
        if readings:
            metrics.readings_stored.inc(len(readings))
        if duplicates:
            metrics.duplicates.inc(duplicates)
        if without_identity:
            metrics.without_identity.inc(without_identity)
        if suspect:
            metrics.clock_suspect.inc(suspect)
        if identities.gaps_forgotten > forgotten:
            metrics.identity_gaps_forgotten.inc(identities.gaps_forgotten - forgotten)
        for kind, count in ingested.items():
            metrics.messages_ingested.labels(kind=kind).inc(count)
        for reason, count in rejected.items():
            metrics.messages_rejected.labels(reason=reason).inc(count)


def insert_readings(
    conn: sqlite3.Connection, readings: list[tuple[int, float, object, int]], table: str = PENDING
) -> None:
    """Rows of (series id, ts, value, quality) into ``table``: the writer's batches go to ``readings_pending``."""
    for values, parameters in values_lists(readings, 4):
        conn.execute(f"INSERT INTO {table} (series_id, ts, value, quality) VALUES {values}", parameters)


def event_detail(detail: Mapping[str, object]) -> str:
    return json.dumps(detail, ensure_ascii=False, separators=(",", ":"))
