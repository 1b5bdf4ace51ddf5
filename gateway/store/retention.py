"""Retention: raw readings by age and by database size, roll-ups and bookkeeping by age.

Each call of :func:`trim` runs as one writer command and deletes at most ``chunk`` rows per table, so a large
clean-up never holds the write lock for long; the maintenance loop calls it again while it reports more to do.
Freed pages are reused by SQLite, so the database stops growing once retention keeps up.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

DAY = 86_400.0


@dataclass(frozen=True)
class RetentionPolicy:
    raw_days: float
    minute_rollup_days: float
    hour_rollup_days: float
    max_db_bytes: int  # 0: no size limit
    chunk: int = 20_000


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the database that hold data (free pages excluded)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def _delete_older(conn: sqlite3.Connection, table: str, column: str, cutoff: float, chunk: int) -> int:
    key = "rowid" if table in ("readings", "dead_letters") else "series_id, bucket" if "rollup" in table else None
    if key == "rowid":
        sql = f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} < ? LIMIT ?)"
    elif key is not None:
        sql = f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE {column} < ? LIMIT ?)"
    else:
        sql = (
            f"DELETE FROM {table} WHERE (device_id, boot) IN "
            f"(SELECT device_id, boot FROM {table} WHERE {column} < ? LIMIT ?)"
        )
    return conn.execute(sql, (cutoff, chunk)).rowcount


def trim(conn: sqlite3.Connection, policy: RetentionPolicy, now: float) -> dict[str, int]:
    """Delete one chunk of expired rows from each table; returns the rows deleted per table (empty: all done)."""
    deleted: dict[str, int] = {}
    for table, column, days in (
        ("readings", "ts", policy.raw_days),
        ("message_runs", "updated", policy.raw_days),
        ("dead_letters", "received", policy.raw_days),
        ("rollup_minute", "bucket", policy.minute_rollup_days),
        ("rollup_hour", "bucket", policy.hour_rollup_days),
    ):
        count = _delete_older(conn, table, column, now - days * DAY, policy.chunk)
        if count:
            deleted[table] = count
    if policy.max_db_bytes and used_bytes(conn) > policy.max_db_bytes:
        oldest = (
            conn.execute("SELECT ts FROM readings ORDER BY ts LIMIT 1 OFFSET ?", (policy.chunk - 1,)).fetchone()
            or conn.execute("SELECT max(ts) FROM readings").fetchone()
        )
        if oldest is not None and oldest[0] is not None:
            count = conn.execute(
                "DELETE FROM readings WHERE rowid IN (SELECT rowid FROM readings WHERE ts <= ? ORDER BY ts LIMIT ?)",
                (oldest[0], policy.chunk),
            ).rowcount
            if count:
                deleted["readings_by_size"] = count
    return deleted
