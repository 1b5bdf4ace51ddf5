"""Which telemetry messages are stored, by identity ``(device, boot, seq)``, so a redelivered one is stored once.

A device numbers its messages 0, 1, 2, ... from each boot, so the identities stored for one boot are nearly always
one run of consecutive numbers: they are kept as runs ``[[first, last], ...]``, one row per ``(device, boot)`` in
``message_runs``. A gap (messages a device discarded, or not delivered yet) splits a run; a late message fills it.
This keeps the table a few bytes per boot instead of a row per message, and a check costs no SQL at all for the
boots in the cache.

The writer thread owns the one instance. ``add`` runs inside the writer's transaction; after ``COMMIT`` the writer
calls ``committed``, after a rollback ``rolled_back``, which puts back the runs the failed batch had changed.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from collections import OrderedDict

from gateway.store.rows import values_lists

Key = tuple[int, str]
Runs = list[list[int]]

#: Runs kept per boot. Beyond this the oldest gap is forgotten (counted): its messages would count as duplicates.
MAX_RUNS = 10_000
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _first(run: list[int]) -> int:
    return run[0]


class StoredMessages:
    def __init__(self, *, cache_boots: int = 4096) -> None:
        self._cache: OrderedDict[Key, Runs] = OrderedDict()
        self._cache_boots = cache_boots
        self._before: dict[Key, Runs | None] = {}  # runs as committed, for each boot the open batch changed
        self.gaps_forgotten = 0

    def add(self, conn: sqlite3.Connection, device_id: int, boot: str, seq: int) -> bool:
        """Record the identity; False when it was stored before (a duplicate)."""
        key = (device_id, boot)
        runs = self._runs(conn, key)
        if runs and runs[-1][1] == seq - 1:  # the usual case: the next message in order
            self._touch(key, runs)
            runs[-1][1] = seq
            return True
        at = bisect.bisect_right(runs, seq, key=_first)  # runs[at - 1] is the last run starting at or before seq
        if at > 0 and runs[at - 1][1] >= seq:
            return False
        self._touch(key, runs)
        joins_left = at > 0 and runs[at - 1][1] == seq - 1
        joins_right = at < len(runs) and runs[at][0] == seq + 1
        if joins_left and joins_right:
            runs[at - 1][1] = runs[at][1]
            del runs[at]
        elif joins_left:
            runs[at - 1][1] = seq
        elif joins_right:
            runs[at][0] = seq
        else:
            runs.insert(at, [seq, seq])
            if len(runs) > MAX_RUNS:
                runs[0][1] = runs[1][1]
                del runs[1]
                self.gaps_forgotten += 1
        return True

    def flush(self, conn: sqlite3.Connection, now: float) -> None:
        """Write the runs the open batch changed (inside its transaction)."""
        if not self._before:
            return
        rows = [(key[0], key[1], _dumps(self._cache[key]), now) for key in self._before]
        for values, parameters in values_lists(rows, 4):
            conn.execute(
                f"INSERT INTO message_runs (device_id, boot, runs, updated) VALUES {values} "
                "ON CONFLICT (device_id, boot) DO UPDATE SET runs = excluded.runs, updated = excluded.updated",
                parameters,
            )

    def committed(self) -> None:
        self._before.clear()
        while len(self._cache) > self._cache_boots:
            self._cache.popitem(last=False)

    def rolled_back(self) -> None:
        for key, runs in self._before.items():
            if runs is None:
                self._cache.pop(key, None)
            else:
                self._cache[key] = runs
        self._before.clear()

    def _runs(self, conn: sqlite3.Connection, key: Key) -> Runs:
        runs = self._cache.get(key)
        if runs is not None:
            self._cache.move_to_end(key)
            return runs
        row = conn.execute("SELECT runs FROM message_runs WHERE device_id = ? AND boot = ?", key).fetchone()
        runs = json.loads(row[0]) if row is not None else []
        self._cache[key] = runs
        if row is None:
            self._before.setdefault(key, None)
        return runs

    def _touch(self, key: Key, runs: Runs) -> None:
        if key not in self._before:
            self._before[key] = [run[:] for run in runs]


def stored_seqs(runs_json: str) -> list[int]:
    """Every seq a ``message_runs.runs`` value holds, in order (for checks and tools, not for the hot path)."""
    return [seq for first, last in json.loads(runs_json) for seq in range(first, last + 1)]
