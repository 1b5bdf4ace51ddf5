"""The schema, as ``sqlite_utils.Migrations`` functions applied in order and recorded in ``_sqlite_migrations``.

Readings live in a narrow table keyed by series (one device's one metric), reached through the writer's
``readings_pending`` (m004); ``message_runs`` remembers the
identities ``(device, boot, seq)`` of the stored telemetry messages, as runs of consecutive seqs per boot
(:mod:`gateway.store.identities`), so that a redelivered message is stored once.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from gateway.errors import StoreError
from gateway.store.settle import fold

migrations = Migrations("campusgw")


@migrations()
def m001_core(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            device TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL DEFAULT 'unknown',
            name TEXT NOT NULL DEFAULT '',
            room TEXT NOT NULL DEFAULT '',
            declared INTEGER NOT NULL DEFAULT 0,
            retired_at REAL,
            created REAL NOT NULL,
            first_seen REAL,
            last_seen REAL,
            online INTEGER,
            state_since REAL,
            state_reason TEXT,
            boot TEXT,
            fw TEXT,
            ip TEXT
        );
        CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices(id),
            metric TEXT NOT NULL,
            kind TEXT NOT NULL,
            unit TEXT NOT NULL DEFAULT '',
            UNIQUE (device_id, metric)
        );
        CREATE TABLE readings (
            series_id INTEGER NOT NULL,
            ts REAL NOT NULL,
            value,
            quality INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX readings_by_series_ts ON readings (series_id, ts);
        CREATE INDEX readings_by_ts ON readings (ts);
        CREATE TABLE messages (
            device_id INTEGER NOT NULL,
            boot TEXT NOT NULL,
            seq INTEGER NOT NULL,
            received REAL NOT NULL,
            PRIMARY KEY (device_id, boot, seq)
        ) WITHOUT ROWID;
        CREATE TABLE rollup_minute (
            series_id INTEGER NOT NULL,
            bucket INTEGER NOT NULL,
            min REAL NOT NULL,
            max REAL NOT NULL,
            sum REAL NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (series_id, bucket)
        ) WITHOUT ROWID;
        CREATE TABLE rollup_hour (
            series_id INTEGER NOT NULL,
            bucket INTEGER NOT NULL,
            min REAL NOT NULL,
            max REAL NOT NULL,
            sum REAL NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (series_id, bucket)
        ) WITHOUT ROWID;
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY,
            received REAL NOT NULL,
            topic TEXT NOT NULL,
            device TEXT,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            payload BLOB NOT NULL
        );
        CREATE INDEX dead_letters_by_received ON dead_letters (received);
        CREATE TABLE device_events (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices(id),
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX device_events_by_device ON device_events (device_id, ts);
        CREATE TABLE signin_codes (
            code_hash TEXT PRIMARY KEY,
            expires REAL NOT NULL
        );
        """
    )


@migrations()
def m002_message_runs(db: Database) -> None:
    """One row per boot instead of one per message: the identities of m001's ``messages`` become runs."""
    db.execute(
        """
        CREATE TABLE message_runs (
            device_id INTEGER NOT NULL,
            boot TEXT NOT NULL,
            runs TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (device_id, boot)
        ) WITHOUT ROWID
        """
    )
    runs: dict[tuple[int, str], list[list[int]]] = {}
    updated: dict[tuple[int, str], float] = {}
    for device_id, boot, seq, received in db.execute(
        "SELECT device_id, boot, seq, received FROM messages ORDER BY device_id, boot, seq"
    ):
        key = (device_id, boot)
        boot_runs = runs.setdefault(key, [])
        if boot_runs and boot_runs[-1][1] == seq - 1:
            boot_runs[-1][1] = seq
        else:
            boot_runs.append([seq, seq])
        updated[key] = max(updated.get(key, 0.0), received)
    db.conn.executemany(
        "INSERT INTO message_runs (device_id, boot, runs, updated) VALUES (?, ?, ?, ?)",
        [(key[0], key[1], json.dumps(value, separators=(",", ":")), updated[key]) for key, value in runs.items()],
    )
    db.execute("DROP TABLE messages")


@migrations()
def m003_rollups_folded_later(db: Database) -> None:
    """Roll-ups are folded in from the readings by rowid (:mod:`gateway.store.rollups`); m001's writer had folded
    every reading already."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID")
    db.execute("INSERT INTO meta (key, value) SELECT 'rollups_folded_rowid', coalesce(max(rowid), 0) FROM readings")


@migrations()
def m004_readings_pending(db: Database) -> None:
    """Batches go into ``readings_pending``, which has no index to update, and are moved into ``readings`` every few
    seconds (:mod:`gateway.store.settle`), with the rowids they were given there. The readings m003 had not folded
    into the roll-ups yet are folded now, so its watermark can go."""
    mark = db.execute("SELECT value FROM meta WHERE key = 'rollups_folded_rowid'").fetchone()
    fold(db.conn, "readings", "rowid > ?", (int(mark[0]) if mark is not None else 0,))
    db.execute("DELETE FROM meta WHERE key = 'rollups_folded_rowid'")
    db.execute(
        """
        CREATE TABLE readings_pending (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            series_id INTEGER NOT NULL,
            ts REAL NOT NULL,
            value,
            quality INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    # Every reading, settled or not, for tools, exports and checks (the API reads the two tables itself).
    db.execute(
        "CREATE VIEW readings_all (id, series_id, ts, value, quality) AS "
        "SELECT rowid, series_id, ts, value, quality FROM readings "
        "UNION ALL SELECT id, series_id, ts, value, quality FROM readings_pending"
    )
    # AUTOINCREMENT never reuses an id: pending rows keep ids above every rowid ``readings`` has or will have.
    db.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'readings_pending', coalesce(max(rowid), 0) FROM readings"
    )


#: Page cache of the write connection, in KiB (negative: SQLite's unit): each batch touches a page of the
#: readings' (series, ts) index for nearly every series, so the hot part of that index should stay in memory.
_WRITER_CACHE_KIB = -16_384
#: WAL pages before an automatic checkpoint (SQLite's default is 1,000). A page changed by many batches is then
#: copied into the database file once per checkpoint instead of once every batch or two: fewer bytes written
#: per reading on an SD card, at the price of a WAL of up to about 16 MB.
_WAL_CHECKPOINT_PAGES = 4_000


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas every connection of the gateway uses."""
    try:
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
        else:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: each commit is fsynced before it returns, so a message is acknowledged only once it is durable.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA cache_size = {_WRITER_CACHE_KIB}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_CHECKPOINT_PAGES}")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    return conn


def migrate(path: Path) -> None:
    """Create or upgrade the database at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        migrations.apply(Database(conn))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot migrate database {path}: {exc}") from exc
    finally:
        conn.close()
