"""Storage benchmark: bytes written and CPU per reading, the gateway's pending-then-settle path against inserting
every batch straight into the indexed ``readings`` table, same database schema, same run, same machine.

Run ``python bench/writes.py [--devices D] [--rate MSGS_PER_BATCH] [--batches B] [--rounds R] [--settle-every N]``.

Both ways use the gateway's own code on a database made by its migrations (WAL, ``synchronous = FULL``, the write
connection's pragmas from :func:`gateway.store.migrations.connect`), and commit B batches of M messages of 3 readings
each, spread over D devices (3 series each), in one transaction per batch as the writer does:

``gateway``   each batch into ``readings_pending`` (:func:`gateway.store.writer.insert_readings`), and every
              ``settle_every`` batches (the 5 s ``rollup_interval_s`` at the chosen rate) :func:`settle`, which
              folds the roll-ups and moves the readings into ``readings``;
``direct``    each batch straight into ``readings`` with the same function, and the roll-ups folded from it with
              the same :func:`gateway.store.settle.fold` on the same schedule: the way the writer worked before
              ``readings_pending``.

Figures: bytes this process wrote to the disk (``write_bytes`` of ``/proc/self/io``: WAL frames and checkpoints;
a final ``wal_checkpoint(TRUNCATE)`` is included so nothing is left uncounted) and CPU time, each per reading, and
the time per batch commit. Two rates by default: the benchmark's full speed (1,000 messages a batch) and a busy
school (300 devices sending every 10 s: 6 messages a 200 ms batch).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.store.migrations import connect, migrate  # noqa: E402
from gateway.store.settle import fold, settle  # noqa: E402
from gateway.store.writer import insert_readings  # noqa: E402

T0 = 1_767_225_600.0


@dataclass
class Figures:
    bytes_per_reading: float
    cpu_us_per_reading: float
    commit_ms: float


def _written() -> int:
    with open("/proc/self/io") as io:
        for line in io:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def _batches(devices: int, per_batch: int, batches: int, seed: int) -> list[list[tuple[int, float, object, int]]]:
    rng = random.Random(seed)
    out = []
    message = 0
    for batch in range(batches):
        rows: list[tuple[int, float, object, int]] = []
        for _ in range(per_batch):
            device = message % devices
            ts = T0 + batch * 0.2 + rng.random() * 0.2
            rows.extend((device * 3 + k + 1, ts, rng.random() * 100, 0) for k in range(3))
            message += 1
        out.append(rows)
    return out


def _database(folder: Path, devices: int) -> tuple[Path, sqlite3.Connection]:
    path = folder / "writes.db"
    migrate(path)
    conn = connect(path)
    conn.executemany(
        "INSERT INTO devices (id, device, created) VALUES (?, ?, 0)", [(d + 1, f"d{d}") for d in range(devices)]
    )
    conn.executemany(
        "INSERT INTO series (id, device_id, metric, kind) VALUES (?, ?, ?, 'number')",
        [(d * 3 + k + 1, d + 1, f"m{k}") for d in range(devices) for k in range(3)],
    )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path, conn


def run_once(way: str, batches: list[list[tuple[int, float, object, int]]], devices: int, settle_every: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="campusgw-bench-writes-") as folder:
        _path, conn = _database(Path(folder), devices)
        folded = 0
        commits = []
        written = _written()
        cpu = time.process_time()
        for number, rows in enumerate(batches, 1):
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            insert_readings(conn, rows, "readings_pending" if way == "gateway" else "readings")
            conn.execute("COMMIT")
            commits.append(time.perf_counter() - began)
            if number % settle_every == 0 or number == len(batches):
                conn.execute("BEGIN IMMEDIATE")
                if way == "gateway":
                    while settle(conn):
                        pass
                else:
                    top = conn.execute("SELECT max(rowid) FROM readings").fetchone()[0] or 0
                    fold(conn, "readings", "rowid > ? AND rowid <= ?", (folded, top))
                    folded = top
                conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cpu = time.process_time() - cpu
        written = _written() - written
        readings = sum(len(rows) for rows in batches)
        stored = conn.execute("SELECT count(*) FROM readings_all").fetchone()[0]
        minute_count = conn.execute("SELECT sum(count) FROM rollup_minute").fetchone()[0]
        conn.close()
        if stored != readings or minute_count != readings:
            raise SystemExit(f"{way}: stored {stored} and folded {minute_count} of {readings} readings")
        return Figures(written / readings, cpu / readings * 1e6, statistics.median(commits) * 1e3)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=_positive, default=300, help="devices, 3 series each (default 300)")
    parser.add_argument("--rate", type=_positive, action="append",
                        help="messages per 200 ms batch (default 1000 and 6)")
    parser.add_argument("--batches", type=_positive, default=200, help="batches per run (default 200)")
    parser.add_argument("--rounds", type=_positive, default=3, help="rounds, alternating the order (default 3)")
    parser.add_argument("--settle-every", type=_positive, default=25,
                        help="batches between settles (default 25: 5 s, the default rollup_interval_s)")
    args = parser.parse_args()
    rates = args.rate or [1000, 6]
    settle_every = args.settle_every
    summary: dict[str, object] = {"bench": "writes", "devices": args.devices, "batches": args.batches}
    print(f"storage benchmark: {args.devices} devices x 3 series, {args.batches} batches of 200 ms, settle every "
          f"{settle_every} batches, {args.rounds} round(s); SQLite {sqlite3.sqlite_version}")
    print(f"{'messages/batch':>14} {'':>9} {'gateway':>12} {'direct':>12} {'gw/direct':>10}")
    for rate in rates:
        batches = _batches(args.devices, rate, args.batches, seed=rate)
        results: dict[str, list[Figures]] = {"gateway": [], "direct": []}
        for round_number in range(args.rounds):
            order = ("gateway", "direct") if round_number % 2 == 0 else ("direct", "gateway")
            for way in order:
                results[way].append(run_once(way, batches, args.devices, settle_every))
        medians = {
            way: Figures(*(statistics.median(getattr(f, name) for f in figures)
                           for name in ("bytes_per_reading", "cpu_us_per_reading", "commit_ms")))
            for way, figures in results.items()
        }
        gw, direct = medians["gateway"], medians["direct"]
        for label, name, unit in (("bytes/reading", "bytes_per_reading", ""), ("CPU/reading", "cpu_us_per_reading",
                                  " us"), ("commit", "commit_ms", " ms")):
            g, d = getattr(gw, name), getattr(direct, name)
            print(f"{rate:>14,} {label:>13} {g:>10,.1f}{unit:<3} {d:>10,.1f}{unit:<3} {g / d:>6.2f}")
        summary[f"rate_{rate}"] = {"gateway": vars(gw), "direct": vars(direct)}
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
