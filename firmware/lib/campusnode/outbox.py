"""The bounded outbox: messages wait here until the broker has confirmed them (PUBACK).

It keeps the newest records: a full outbox drops the oldest and counts it in ``discards`` (as ``mqtt_as``'s
``MsgQueue`` does). A record keeps the ``boot`` and ``seq`` it was given when it was made, so a resend after a
reconnect, or after a reboot from the spill file, is the same message and the gateway stores it once.
Records made before the clock was set carry only ``ticks``; :meth:`Outbox.stamp` gives them their ``ts`` once it
is. A record with a ``ttl_ms`` (a gate scan nobody will wait for later) is dropped when stale and counted in
``expired``.
"""

import json

from campusnode import payloads
from campusnode.clock import MAX_TICK_AGE_MS, TicksDiff, unix_at


class Record:
    """One message to send: ``kind`` is telemetry, event, scan or passage; ``body`` the fields besides
    ``ts``, ``boot`` and ``seq``."""

    def __init__(
        self,
        kind: str,
        topic: str,
        body: dict,
        ticks: int | None,
        ts: int | None = None,
        boot: str | None = None,
        seq: int | None = None,
        ttl_ms: int | None = None,
    ) -> None:
        self.kind = kind
        self.topic = topic
        self.body = body
        self.ticks = ticks
        self.ts = ts
        self.boot = boot
        self.seq = seq
        self.ttl_ms = ttl_ms

    def encode(self) -> bytes:
        body = self.body
        if self.kind == "telemetry":
            return payloads.telemetry(body["metrics"], self.ts, self.boot, self.seq)
        if self.kind == "event":
            return payloads.event(
                body["code"], body.get("severity", "info"), body.get("message", ""), self.ts, self.boot, self.seq
            )
        if self.kind == "scan":
            return payloads.gate_scan(body["code"], body["scan_id"], self.ts, body.get("direction"))
        if self.kind == "passage":
            return payloads.gate_passage(body["scan_id"], body["passed"])
        raise payloads.PayloadError("unknown record kind " + repr(self.kind))

    def to_json(self) -> str:
        return json.dumps(
            {"k": self.kind, "t": self.topic, "b": self.body, "ts": self.ts, "boot": self.boot, "seq": self.seq}
        )

    @staticmethod
    def from_json(line: str) -> "Record":
        """A record from the spill file; its ticks belonged to an earlier boot, so it keeps only its ``ts``."""
        data = json.loads(line)
        if not isinstance(data, dict) or not isinstance(data.get("b"), dict) or not isinstance(data.get("t"), str):
            raise ValueError("not a spilled record")
        record = Record(data["k"], data["t"], data["b"], None, data.get("ts"), data.get("boot"), data.get("seq"))
        record.encode()  # refuses anything that would not pass the contract
        return record


class Outbox:
    """A ring of at most ``capacity`` records, oldest first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("outbox capacity must be at least 1")
        self.capacity = capacity
        self._records: list[Record] = []
        self.discards = 0
        self.expired = 0
        self.invalid = 0

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: Record) -> bool:
        """Queue a record; False when that pushed the oldest one out (counted in ``discards``)."""
        self._records.append(record)
        if len(self._records) > self.capacity:
            self._records.pop(0)
            self.discards += 1
            return False
        return True

    def peek(self) -> Record | None:
        return self._records[0] if self._records else None

    def pop(self) -> Record | None:
        """Remove the oldest record (after the broker confirmed it)."""
        return self._records.pop(0) if self._records else None

    def drop_invalid(self) -> None:
        """Drop the oldest record because it cannot be encoded (counted in ``invalid``)."""
        if self._records:
            self._records.pop(0)
            self.invalid += 1

    def records(self) -> list[Record]:
        return list(self._records)

    def unstamped(self) -> int:
        return sum(1 for record in self._records if record.ts is None and record.ticks is not None)

    def stamp(self, unix_now: int | None, ticks_now: int, diff: TicksDiff) -> int:
        """Give every record made before the clock was set its ``ts``; returns how many were stamped.

        With no plausible ``unix_now`` nothing is stamped. A record whose age the tick counter cannot tell any
        more loses its ticks: it is sent without ``ts`` (the gateway uses its receive time).
        """
        stamped = 0
        for record in self._records:
            if record.ts is not None or record.ticks is None:
                continue
            age = diff.diff(ticks_now, record.ticks)
            if age > MAX_TICK_AGE_MS or age < 0:
                record.ticks = None
                continue
            ts = unix_at(unix_now, age) if unix_now is not None else None
            if ts is not None:
                record.ts = ts
                stamped += 1
        return stamped

    def drop_expired(self, ticks_now: int, diff: TicksDiff) -> int:
        """Drop records whose ``ttl_ms`` has passed (counted in ``expired``)."""
        keep = []
        dropped = 0
        for record in self._records:
            if record.ttl_ms is not None and record.ticks is not None:
                if diff.diff(ticks_now, record.ticks) > record.ttl_ms:
                    dropped += 1
                    continue
            keep.append(record)
        if dropped:
            self._records = keep
            self.expired += dropped
        return dropped

    def spill_lines(self, limit: int) -> list[str]:
        """The newest ``limit`` records worth keeping across a reboot (gate scans are not), one JSON line each."""
        keep = [record for record in self._records if record.ttl_ms is None]
        return [record.to_json() for record in keep[-limit:]] if limit > 0 else []

    def load_lines(self, lines: list[str]) -> int:
        """Queue records from a spill file (before anything new); bad lines are skipped and counted."""
        loaded = 0
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                record = Record.from_json(line)
            except (ValueError, KeyError, TypeError, payloads.PayloadError):
                self.invalid += 1
                continue
            self.put(record)
            loaded += 1
        return loaded

