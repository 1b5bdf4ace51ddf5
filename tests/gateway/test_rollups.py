"""Roll-ups folded in from the raw readings: every reading counted once, late ones in their own bucket."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.migrations import connect, migrate
from gateway.store.rollups import fold, folded_up_to

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
    conn.executemany("INSERT INTO readings (series_id, ts, value, quality) VALUES (?, ?, ?, 0)", rows)


def _minutes(conn: sqlite3.Connection) -> list[tuple[int, float, float, float, int]]:
    return conn.execute("SELECT bucket, min, max, sum, count FROM rollup_minute WHERE series_id = 1 ORDER BY bucket")\
        .fetchall()


def test_each_reading_is_folded_once_and_late_ones_update_their_bucket(conn: sqlite3.Connection) -> None:
    _add(conn, (1, HOUR + 1, 10.0), (1, HOUR + 2, 20.0), (1, HOUR + 65, 5.0), (2, HOUR + 3, "auto"))
    assert fold(conn) == 4
    assert fold(conn) == 0, "nothing new: nothing counted twice"
    assert _minutes(conn) == [(HOUR, 10.0, 20.0, 30.0, 2), (HOUR + 60, 5.0, 5.0, 5.0, 1)]
    _add(conn, (1, HOUR + 30, 0.0), (1, HOUR - 3600 + 10, 7.0))  # late: an earlier minute, the hour before
    assert fold(conn) == 2
    assert _minutes(conn)[1] == (HOUR, 0.0, 20.0, 30.0, 3)
    hours = conn.execute("SELECT bucket, count FROM rollup_hour WHERE series_id = 1 ORDER BY bucket").fetchall()
    assert hours == [(HOUR - 3600, 1), (HOUR, 4)]
    assert conn.execute("SELECT count(*) FROM rollup_minute WHERE series_id = 2").fetchone()[0] == 0, "text"


def test_folding_in_chunks_and_after_the_table_was_emptied(conn: sqlite3.Connection) -> None:
    _add(conn, *[(1, HOUR + i, float(i)) for i in range(25)])
    assert [fold(conn, limit=10) for _ in range(4)] == [10, 10, 5, 0]
    assert folded_up_to(conn) == 25
    conn.execute("DELETE FROM readings")
    _add(conn, (1, HOUR + 5, 100.0))  # rowid 1 again
    assert fold(conn) == 1
    assert _minutes(conn) == [(HOUR, 0.0, 100.0, sum(range(25)) + 100.0, 26)]


def test_a_fold_that_is_rolled_back_is_folded_again(conn: sqlite3.Connection) -> None:
    _add(conn, (1, HOUR, 1.0))
    conn.execute("BEGIN")
    fold(conn)
    conn.execute("ROLLBACK")
    assert folded_up_to(conn) == 0 and _minutes(conn) == []
    assert fold(conn) == 1 and _minutes(conn) == [(HOUR, 1.0, 1.0, 1.0, 1)]
