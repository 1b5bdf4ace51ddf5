"""Settling: the readings the writer committed to ``readings_pending`` are folded into the minute and hour roll-ups
(min, max, sum, count per series and bucket) and moved into the indexed ``readings`` table, in one transaction.

Why two tables: ``readings`` is indexed by (series, ts), so a batch inserted there touches a page of that index for
nearly every series, and each touched page is written again to the WAL at every commit (measured: 1.6 KB written
per reading, and most of the writer's CPU). ``readings_pending`` has no secondary index: a batch appends to a few
pages at its end. :func:`settle` runs every ``[storage] rollup_interval_s`` as one writer command and moves all
that piled up meanwhile at once, so each index page is written once per settle instead of once per batch.

A pending row keeps its id as its rowid in ``readings`` (``AUTOINCREMENT`` never reuses one), so a reading's
rowid, and an API cursor holding it, is the same before and after it moves. Readers see a reading in exactly one
of the two tables (the move is one transaction): :mod:`gateway.store.queries` reads both. Each reading is folded
into the roll-ups exactly once, in the transaction that moves it, even across a crash; a late reading lands in
the bucket its ``ts`` belongs to, however old.
"""

from __future__ import annotations

import sqlite3

PENDING = "readings_pending"


def fold(conn: sqlite3.Connection, source: str, where: str, parameters: tuple[object, ...]) -> None:
    """Add the numeric readings of ``source`` (a readings table) that match ``where`` to the minute and hour
    roll-ups, in SQL: no row crosses into Python."""
    for table, width in (("rollup_minute", 60), ("rollup_hour", 3600)):
        conn.execute(
            f"INSERT INTO {table} (series_id, bucket, min, max, sum, count) "
            f"SELECT series_id, (CAST(ts AS INTEGER) / {width}) * {width} AS bucket, "
            f"min(value), max(value), sum(value), count(*) FROM {source} "
            f"WHERE {where} AND typeof(value) IN ('integer', 'real') GROUP BY series_id, bucket "
            "ON CONFLICT (series_id, bucket) DO UPDATE SET min = min(min, excluded.min), "
            "max = max(max, excluded.max), sum = sum + excluded.sum, count = count + excluded.count",
            parameters,
        )


def settle(conn: sqlite3.Connection, limit: int = 50_000) -> int:
    """Fold and move the oldest ``limit`` pending readings at most; returns how many it moved, 0 when none were
    pending."""
    row = conn.execute(f"SELECT id FROM {PENDING} ORDER BY id LIMIT 1 OFFSET ?", (limit - 1,)).fetchone()
    end = row[0] if row is not None else conn.execute(f"SELECT max(id) FROM {PENDING}").fetchone()[0]
    if end is None:
        return 0
    fold(conn, PENDING, "id <= ?", (end,))
    conn.execute(
        f"INSERT INTO readings (rowid, series_id, ts, value, quality) "
        f"SELECT id, series_id, ts, value, quality FROM {PENDING} WHERE id <= ? ORDER BY id",
        (end,),
    )
    return int(conn.execute(f"DELETE FROM {PENDING} WHERE id <= ?", (end,)).rowcount)


def pending_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {PENDING}").fetchone()[0])
