"""Settling pending readings: folded into the roll-ups once each (late ones in their own bucket), moved into the
indexed table with the ids they had, and readable from either table in between."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from gateway.store import queries
from gateway.store.migrations import connect, migrate, migrations
from gateway.store.settle import pending_count, settle

HOUR = 1_767_225_600  # 2026-01-01T00:00:00Z, a whole hour


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    migrate(tmp_path / "r.db")
    connection = connect(tmp_path / "r.db")
    connection.execute("INSERT INTO devices (device, created) VALUES ('d', 0)")
    connection.execute("INSERT INTO series (device_id, metric, kind) VALUES (1, 't', 'number')")
    connection.execute("INSERT INTO series (device_id, metric, kind) VALUES (1, 'mode', 'text')")
    yield connection
    connection.close()


def _add(conn: sqlite3.Connection, *rows: tuple[int, float, object]) -> None:
    """As the writer does: into the pending table."""
    conn.executemany("INSERT INTO readings_pending (series_id, ts, value, quality) VALUES (?, ?, ?, 0)", rows)


def _minutes(conn: sqlite3.Connection) -> list[tuple[int, float, float, float, int]]:
    return conn.execute("SELECT bucket, min, max, sum, count FROM rollup_minute WHERE series_id = 1 ORDER BY bucket")\
        .fetchall()


def _settled(conn: sqlite3.Connection) -> list[tuple[int, int, float, object]]:
    return conn.execute("SELECT rowid, series_id, ts, value FROM readings ORDER BY rowid").fetchall()


def test_each_reading_is_folded_once_and_late_ones_update_their_bucket(conn: sqlite3.Connection) -> None:
    _add(conn, (1, HOUR + 1, 10.0), (1, HOUR + 2, 20.0), (1, HOUR + 65, 5.0), (2, HOUR + 3, "auto"))
    assert settle(conn) == 4
    assert settle(conn) == 0, "nothing new: nothing counted twice"
    assert pending_count(conn) == 0
    assert _minutes(conn) == [(HOUR, 10.0, 20.0, 30.0, 2), (HOUR + 60, 5.0, 5.0, 5.0, 1)]
    _add(conn, (1, HOUR + 30, 0.0), (1, HOUR - 3600 + 10, 7.0))  # late: an earlier minute, the hour before
    assert settle(conn) == 2
    assert _minutes(conn)[1] == (HOUR, 0.0, 20.0, 30.0, 3)
    hours = conn.execute("SELECT bucket, count FROM rollup_hour WHERE series_id = 1 ORDER BY bucket").fetchall()
    assert hours == [(HOUR - 3600, 1), (HOUR, 4)]
    assert conn.execute("SELECT count(*) FROM rollup_minute WHERE series_id = 2").fetchone()[0] == 0, "text"
    assert len(_settled(conn)) == 6


def test_settled_readings_keep_their_ids_and_ids_are_never_reused(conn: sqlite3.Connection) -> None:
    _add(conn, *[(1, HOUR + i, float(i)) for i in range(25)])
    assert [settle(conn, limit=10) for _ in range(4)] == [10, 10, 5, 0]
    assert [row[0] for row in _settled(conn)] == list(range(1, 26))
    assert _settled(conn)[24] == (25, 1, HOUR + 24, 24.0)
    conn.execute("DELETE FROM readings")  # retention emptied the table: the ids still go on from 26
    _add(conn, (1, HOUR + 5, 100.0))
    assert conn.execute("SELECT id FROM readings_pending").fetchall() == [(26,)]
    assert settle(conn) == 1
    assert _settled(conn) == [(26, 1, HOUR + 5, 100.0)]
    assert _minutes(conn) == [(HOUR, 0.0, 100.0, sum(range(25)) + 100.0, 26)]


def test_a_settle_that_is_rolled_back_is_settled_again(conn: sqlite3.Connection) -> None:
    _add(conn, (1, HOUR, 1.0))
    conn.execute("BEGIN")
    settle(conn)
    conn.execute("ROLLBACK")
    assert pending_count(conn) == 1 and _minutes(conn) == [] and _settled(conn) == []
    assert settle(conn) == 1 and _minutes(conn) == [(HOUR, 1.0, 1.0, 1.0, 1)]


def test_queries_read_pending_and_settled_readings_alike(conn: sqlite3.Connection) -> None:
    _add(conn, *[(1, HOUR + i, float(i)) for i in range(6)], (2, HOUR + 1, "auto"))
    settle(conn)
    _add(conn, (1, HOUR + 10, 10.0), (1, HOUR + 3.5, 3.5))  # one newer, one late: between settled readings

    def read(**kwargs: object) -> list[tuple[float, object, int]]:
        return [(row.ts, row.value, row.rowid) for row in queries.readings(conn, "d", metric="t", **kwargs)]  # type: ignore[arg-type]

    before = read()
    assert [ts for ts, _value, _rowid in before] == [HOUR + i for i in (0, 1, 2, 3, 3.5, 4, 5, 10)]
    first_page = read(limit=4)
    rest = read(after=(first_page[-1][0], first_page[-1][2]))
    assert first_page + rest == before, "a cursor pages on across both tables"
    latest = {value.metric: value.value for value in queries.get_device(conn, "d").latest}  # type: ignore[union-attr]
    assert latest == {"t": 10.0, "mode": "auto"}
    assert [value.value for value in queries.list_devices(conn)[0].latest] == ["auto", 10.0]
    settle(conn)
    assert read() == before, "settling changes neither order nor rowids"
    assert read(after=(first_page[-1][0], first_page[-1][2])) == rest, "a cursor taken before settling still works"


def test_migration_folds_what_the_rowid_watermark_had_not_folded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(path)
    applied = []
    for migration in migrations._migrations:  # type: ignore[attr-defined]
        if migration.name.startswith("m004"):
            break
        migration.fn(db)
        applied.append(migration.name)
    assert applied == ["m001_core", "m002_message_runs", "m003_rollups_folded_later"]
    db.execute("INSERT INTO devices (device, created) VALUES ('d', 0)")
    db.execute("INSERT INTO series (device_id, metric, kind) VALUES (1, 't', 'number')")
    db.conn.executemany("INSERT INTO readings (series_id, ts, value) VALUES (1, ?, ?)", [(HOUR, 1.0), (HOUR + 1, 2.0)])
    db.execute("UPDATE meta SET value = 1 WHERE key = 'rollups_folded_rowid'")  # the first had been folded
    db.execute("INSERT INTO rollup_minute VALUES (1, ?, 1.0, 1.0, 1.0, 1)", (HOUR,))
    db.conn.commit()
    migrations._migrations[3].fn(db)  # type: ignore[attr-defined]
    db.conn.commit()
    conn = db.conn
    assert _minutes(conn) == [(HOUR, 1.0, 2.0, 3.0, 2)]
    conn.execute("INSERT INTO readings_pending (series_id, ts, value) VALUES (1, ?, 3.0)", (HOUR + 2,))
    assert conn.execute("SELECT id FROM readings_pending").fetchall() == [(3,)], "ids go on after the old rowids"
    db.close()
