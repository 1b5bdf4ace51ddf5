"""The read side: devices, latest values, history, roll-ups and dead letters.

Functions take a read connection and return plain typed objects; :class:`Reader` runs them on a small pool of
threads, one read-only connection each, so the API never blocks the event loop or the writer (WAL lets readers
and the writer work at once).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from gateway.normalise import quality_labels
from gateway.store.migrations import connect

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LatestValue:
    metric: str
    value: Any
    ts: float
    unit: str
    kind: str
    quality: list[str]


@dataclass(frozen=True, slots=True)
class DeviceView:
    device: str
    type: str
    name: str
    room: str
    declared: bool
    retired: bool
    online: bool | None
    state_since: float | None
    state_reason: str | None
    first_seen: float | None
    last_seen: float | None
    boot: str | None
    fw: str | None
    ip: str | None
    latest: list[LatestValue] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReadingRow:
    metric: str
    ts: float
    value: Any
    quality: list[str]
    unit: str
    rowid: int


@dataclass(frozen=True, slots=True)
class RollupRow:
    metric: str
    bucket: int
    min: float
    max: float
    avg: float
    count: int


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    ts: float
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received: float
    topic: str
    device: str | None
    reason: str
    detail: str
    payload: bytes


_DEVICE_COLUMNS = (
    "id, device, type, name, room, declared, retired_at, online, state_since, state_reason, first_seen, last_seen, "
    "boot, fw, ip"
)


def _value(kind: str, value: Any) -> Any:
    if kind == "bool" and isinstance(value, int):
        return bool(value)
    return value


def _pending_latest(conn: sqlite3.Connection, device_id: int | None) -> dict[int, tuple[float, Any, int]]:
    """The newest reading per series among those not settled yet (a few seconds' worth), in one scan."""
    sql = "SELECT series_id, max(ts), value, quality FROM readings_pending"
    args: tuple[Any, ...] = ()
    if device_id is not None:
        sql += " WHERE series_id IN (SELECT id FROM series WHERE device_id = ?)"
        args = (device_id,)
    return {row[0]: (row[1], row[2], row[3]) for row in conn.execute(sql + " GROUP BY series_id", args)}


def _latest(
    conn: sqlite3.Connection, device_id: int, pending: dict[int, tuple[float, Any, int]]
) -> list[LatestValue]:
    latest = []
    for series_id, metric, unit, kind in conn.execute(
        "SELECT id, metric, unit, kind FROM series WHERE device_id = ? ORDER BY metric", (device_id,)
    ):
        row = conn.execute(
            "SELECT ts, value, quality FROM readings WHERE series_id = ? ORDER BY ts DESC LIMIT 1", (series_id,)
        ).fetchone()
        newer = pending.get(series_id)
        if newer is not None and (row is None or newer[0] >= row[0]):
            row = newer
        if row is not None:
            latest.append(LatestValue(metric, _value(kind, row[1]), row[0], unit, kind, quality_labels(row[2])))
    return latest


def _device_view(
    conn: sqlite3.Connection, row: tuple[Any, ...], pending: dict[int, tuple[float, Any, int]] | None
) -> DeviceView:
    return DeviceView(
        device=row[1],
        type=row[2],
        name=row[3],
        room=row[4],
        declared=bool(row[5]),
        retired=row[6] is not None,
        online=None if row[7] is None else bool(row[7]),
        state_since=row[8],
        state_reason=row[9],
        first_seen=row[10],
        last_seen=row[11],
        boot=row[12],
        fw=row[13],
        ip=row[14],
        latest=_latest(conn, row[0], pending) if pending is not None else [],
    )


def list_devices(
    conn: sqlite3.Connection, *, include_retired: bool = False, with_latest: bool = True
) -> list[DeviceView]:
    where = "" if include_retired else "WHERE retired_at IS NULL"
    rows = conn.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices {where} ORDER BY room, device").fetchall()
    pending = _pending_latest(conn, None) if with_latest else None
    return [_device_view(conn, row, pending) for row in rows]


def get_device(conn: sqlite3.Connection, device: str) -> DeviceView | None:
    row = conn.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device = ?", (device,)).fetchone()
    return None if row is None else _device_view(conn, row, _pending_latest(conn, row[0]))


def device_events(conn: sqlite3.Connection, device: str, *, limit: int = 50) -> list[DeviceEvent]:
    rows = conn.execute(
        "SELECT e.ts, e.kind, e.detail FROM device_events e JOIN devices d ON d.id = e.device_id "
        "WHERE d.device = ? ORDER BY e.ts DESC, e.id DESC LIMIT ?",
        (device, limit),
    )
    return [DeviceEvent(ts, kind, json.loads(detail)) for ts, kind, detail in rows]


def _series_of(conn: sqlite3.Connection, device: str, metric: str | None) -> list[tuple[int, str, str, str]]:
    sql = "SELECT s.id, s.metric, s.unit, s.kind FROM series s JOIN devices d ON d.id = s.device_id WHERE d.device = ?"
    args: tuple[Any, ...] = (device,)
    if metric is not None:
        sql += " AND s.metric = ?"
        args += (metric,)
    return conn.execute(sql + " ORDER BY s.metric", args).fetchall()


#: One series' readings in a window, after a cursor: the settled ones by the (series, ts) index, and those not
#: settled yet (a few seconds' worth) from ``readings_pending``, whose ids become their rowids when they settle.
_READINGS_WINDOW = (
    "SELECT ts, rowid, value, quality FROM readings WHERE series_id = ? AND ts >= ? AND ts < ? "
    "AND (ts > ? OR (ts = ? AND rowid > ?)) "
    "UNION ALL SELECT ts, id, value, quality FROM readings_pending WHERE series_id = ? AND ts >= ? AND ts < ? "
    "AND (ts > ? OR (ts = ? AND id > ?)) ORDER BY 1, 2 LIMIT ?"
)


def readings(
    conn: sqlite3.Connection,
    device: str,
    *,
    metric: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 1000,
    after: tuple[float, int] | None = None,
) -> list[ReadingRow]:
    """Readings in time order (``since`` inclusive, ``until`` exclusive), after the cursor ``after`` = (ts, rowid).

    Each series is read by its own index range and the results merged, so one device's history is cheap to page
    through however many other devices share the table.
    """
    lower = since if since is not None else float("-inf")
    upper = until if until is not None else float("inf")
    cursor_ts, cursor_row = after if after is not None else (float("-inf"), -1)
    streams = []
    for series_id, name, unit, kind in _series_of(conn, device, metric):
        window = (series_id, lower, upper, cursor_ts, cursor_ts, cursor_row)
        rows = conn.execute(_READINGS_WINDOW, (*window, *window, limit)).fetchall()
        streams.append(
            [ReadingRow(name, ts, _value(kind, value), quality_labels(q), unit, rowid) for ts, rowid, value, q in rows]
        )
    merged = heapq.merge(*streams, key=lambda row: (row.ts, row.rowid))
    return [row for _, row in zip(range(limit), merged, strict=False)]


def rollups(
    conn: sqlite3.Connection,
    device: str,
    *,
    metric: str | None = None,
    period: str = "minute",
    since: float | None = None,
    until: float | None = None,
    limit: int = 10_000,
) -> list[RollupRow]:
    table = {"minute": "rollup_minute", "hour": "rollup_hour"}[period]
    result = []
    for series_id, name, _unit, _kind in _series_of(conn, device, metric):
        for bucket, low, high, total, count in conn.execute(
            f"SELECT bucket, min, max, sum, count FROM {table} WHERE series_id = ? AND bucket >= ? AND bucket < ? "
            "ORDER BY bucket LIMIT ?",
            (
                series_id,
                since if since is not None else float("-inf"),
                until if until is not None else float("inf"),
                limit,
            ),
        ):
            result.append(RollupRow(name, bucket, low, high, total / count, count))
    return result


def dead_letters(
    conn: sqlite3.Connection, *, reason: str | None = None, before_id: int | None = None, limit: int = 100
) -> list[DeadLetter]:
    sql = "SELECT id, received, topic, device, reason, detail, payload FROM dead_letters WHERE id < ?"
    args: tuple[Any, ...] = (before_id if before_id is not None else 2**63 - 1,)
    if reason is not None:
        sql += " AND reason = ?"
        args += (reason,)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
    return [DeadLetter(*row) for row in rows]


def dead_letter_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason").fetchall())


class Reader:
    """Runs read queries on a small thread pool, one read-only connection per thread."""

    def __init__(self, path: Path, *, threads: int = 2) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="campusgw-reader")

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: query(self._connection(), *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
