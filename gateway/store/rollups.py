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
    """Fold at most ``limit`` readings not folded yet into the roll-ups; returns how many (``limit``: call again)."""
    mark = folded_up_to(conn)
    top = conn.execute("SELECT max(rowid) FROM readings").fetchone()[0] or 0
    if top < mark:  # the table was emptied and rowids started again from 1
        mark = 0
    rows = conn.execute(
        "SELECT rowid, series_id, ts, value FROM readings WHERE rowid > ? ORDER BY rowid LIMIT ?", (mark, limit)
    ).fetchall()
    if not rows:
        return 0
    minute: dict[tuple[int, int], list[float]] = {}
    hour: dict[tuple[int, int], list[float]] = {}
    for _rowid, series, ts, value in rows:
        if type(value) is str or value is None:
            continue
        number = float(value)
        for buckets, key in ((minute, (series, int(ts // 60) * 60)), (hour, (series, int(ts // 3600) * 3600))):
            entry = buckets.get(key)
            if entry is None:
                buckets[key] = [number, number, number, 1.0]
            else:
                if number < entry[0]:
                    entry[0] = number
                if number > entry[1]:
                    entry[1] = number
                entry[2] += number
                entry[3] += 1
    for table, buckets in (("rollup_minute", minute), ("rollup_hour", hour)):
        conn.executemany(
            f"INSERT INTO {table} (series_id, bucket, min, max, sum, count) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (series_id, bucket) DO UPDATE SET min = min(min, excluded.min), "
            "max = max(max, excluded.max), sum = sum + excluded.sum, count = count + excluded.count",
            [(key[0], key[1], e[0], e[1], e[2], int(e[3])) for key, e in buckets.items()],
        )
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (WATERMARK, rows[-1][0]),
    )
    return len(rows)
