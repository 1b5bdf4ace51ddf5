"""Minute and hour roll-ups (min, max, sum, count per series and bucket), folded in from the raw readings.

The writer does not touch the roll-ups while it commits a batch: :func:`fold` runs every
``[storage] rollup_interval_s`` as one writer command and adds the readings stored since the last fold, found by
rowid (``meta.rollups_folded_rowid``, advanced in the same transaction, so each reading is counted exactly once,
even across a crash). A late reading lands in the bucket its ``ts`` belongs to, however old. Folding once every few
seconds instead of in every batch keeps the roll-up pages out of most commits: fewer pages written per reading,
which is what wears an SD card, and less work on the ingest path.
"""

from __future__ import annotations

import sqlite3

WATERMARK = "rollups_folded_rowid"


def folded_up_to(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (WATERMARK,)).fetchone()
    return int(row[0]) if row is not None else 0


def fold(conn: sqlite3.Connection, limit: int = 50_000) -> int:
    """Fold the readings of at most ``limit`` rowids not folded yet into the roll-ups, in SQL (no row crosses into
    Python); returns how many rowids it covered, 0 when there was nothing left to fold."""
    mark = folded_up_to(conn)
    top = conn.execute("SELECT max(rowid) FROM readings").fetchone()[0] or 0
    if top < mark:  # the table was emptied and rowids started again from 1
        mark = 0
    end = min(top, mark + limit)
    if end <= mark:
        return 0
    for table, width in (("rollup_minute", 60), ("rollup_hour", 3600)):
        conn.execute(
            f"INSERT INTO {table} (series_id, bucket, min, max, sum, count) "
            f"SELECT series_id, (CAST(ts AS INTEGER) / {width}) * {width} AS bucket, "
            "min(value), max(value), sum(value), count(*) FROM readings "
            "WHERE rowid > ? AND rowid <= ? AND typeof(value) IN ('integer', 'real') GROUP BY series_id, bucket "
            "ON CONFLICT (series_id, bucket) DO UPDATE SET min = min(min, excluded.min), "
            "max = max(max, excluded.max), sum = sum + excluded.sum, count = count + excluded.count",
            (mark, end),
        )
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (WATERMARK, end),
    )
    return end - mark
