"""Stored message identities as runs: each (device, boot, seq) is new exactly once, whatever the order."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.store import identities as identities_module
from gateway.store.identities import StoredMessages, stored_seqs
from gateway.store.migrations import connect, migrate


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    migrate(tmp_path / "ids.db")
    connection = connect(tmp_path / "ids.db")
    yield connection
    connection.close()


def _commit(conn: sqlite3.Connection, stored: StoredMessages) -> None:
    conn.execute("BEGIN")
    stored.flush(conn, 1.0)
    conn.execute("COMMIT")
    stored.committed()


def _runs(conn: sqlite3.Connection, device_id: int = 1, boot: str = "b") -> list[list[int]]:
    row = conn.execute("SELECT runs FROM message_runs WHERE device_id = ? AND boot = ?", (device_id, boot)).fetchone()
    return json.loads(row[0]) if row else []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60), max_size=120))
def test_every_identity_is_new_exactly_once_in_any_order(tmp_path_factory: pytest.TempPathFactory,
                                                          seqs: list[int]) -> None:
    path = tmp_path_factory.mktemp("ids") / "ids.db"
    migrate(path)
    conn = connect(path)
    try:
        stored = StoredMessages(cache_boots=2)
        seen: set[int] = set()
        for index, seq in enumerate(seqs):
            assert stored.add(conn, 1, "b", seq) is (seq not in seen)
            seen.add(seq)
            if index % 7 == 0:
                _commit(conn, stored)
                stored.add(conn, 2, "x", index)  # another boot pushes this one out of the tiny cache
                _commit(conn, stored)
        _commit(conn, stored)
        runs = _runs(conn)
        assert stored_seqs(json.dumps(runs)) == sorted(seen)
        assert all(a[1] + 1 < b[0] for a, b in zip(runs, runs[1:], strict=False)), "runs are merged and ordered"
        assert all(not StoredMessages().add(conn, 1, "b", seq) for seq in seen), "a restart remembers them"
    finally:
        conn.close()


def test_in_order_messages_keep_one_run_and_a_gap_is_filled_later(conn: sqlite3.Connection) -> None:
    stored = StoredMessages()
    for seq in (0, 1, 2, 5, 6):
        assert stored.add(conn, 1, "b", seq)
    _commit(conn, stored)
    assert _runs(conn) == [[0, 2], [5, 6]]
    assert stored.add(conn, 1, "b", 4) and stored.add(conn, 1, "b", 3)
    assert not stored.add(conn, 1, "b", 3)
    _commit(conn, stored)
    assert _runs(conn) == [[0, 6]]


def test_a_rolled_back_batch_forgets_what_it_added(conn: sqlite3.Connection) -> None:
    stored = StoredMessages()
    assert stored.add(conn, 1, "b", 0)
    _commit(conn, stored)
    conn.execute("BEGIN")
    assert stored.add(conn, 1, "b", 1) and stored.add(conn, 3, "new", 0)
    stored.flush(conn, 2.0)
    conn.execute("ROLLBACK")
    stored.rolled_back()
    assert stored.add(conn, 1, "b", 1), "the failed batch's message is new again when it is redelivered"
    assert stored.add(conn, 3, "new", 0)
    _commit(conn, stored)
    assert _runs(conn) == [[0, 1]] and _runs(conn, 3, "new") == [[0, 0]]


def test_too_many_gaps_forget_the_oldest_and_count_it(conn: sqlite3.Connection,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identities_module, "MAX_RUNS", 3)
    stored = StoredMessages()
    for seq in (0, 2, 4, 6):
        stored.add(conn, 1, "b", seq)
    assert stored.gaps_forgotten == 1
    _commit(conn, stored)
    assert _runs(conn) == [[0, 2], [4, 4], [6, 6]]
    assert not stored.add(conn, 1, "b", 1), "a message from the forgotten gap counts as a duplicate"


def test_migration_turns_per_message_identities_into_runs(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from gateway.store.migrations import m001_core, m002_message_runs

    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    db = Database(conn)
    m001_core(db)
    rows = [(1, "a", seq, 10.0 + seq) for seq in (0, 1, 2, 4)] + [(2, "z", 7, 3.0)]
    conn.executemany("INSERT INTO messages (device_id, boot, seq, received) VALUES (?, ?, ?, ?)", rows)
    m002_message_runs(db)
    assert _runs(conn, 1, "a") == [[0, 2], [4, 4]] and _runs(conn, 2, "z") == [[7, 7]]
    assert conn.execute("SELECT updated FROM message_runs WHERE boot = 'a'").fetchone()[0] == 14.0
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'messages'").fetchone()[0] == 0
    conn.close()
