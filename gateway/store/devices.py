"""The device registry as the writer keeps it: rows in ``devices`` and ``series`` plus an in-memory mirror.

Everything here runs in the writer thread, inside the writer's transaction, except :meth:`DeviceTable.admit`, which
the ingest thread calls to decide whether a message from an unknown device may create one (the discovery cap) or
comes from a retired device. Every presence change and registry change is stored as a row of ``device_events``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gateway.contracts import RejectReason, Status
from gateway.errors import DeviceError
from gateway.metrics import GatewayMetrics
from gateway.normalise import Reading
from gateway.settings import DeviceDeclaration
from gateway.store.rows import values_lists


@dataclass
class DeviceRecord:
    id: int
    device: str
    type: str
    name: str
    room: str
    declared: bool
    retired: bool
    online: bool | None
    last_seen: float | None
    state_since: float | None
    boot: str | None


def _kind(value: object) -> str:
    if type(value) is bool:
        return "bool"
    if type(value) is str:
        return "text"
    return "number"


class DeviceTable:
    def __init__(
        self,
        declarations: Iterable[DeviceDeclaration],
        *,
        discovery_cap: int,
        timeout_for: Callable[[str], float],
        metrics: GatewayMetrics,
        started: float,
    ) -> None:
        self._declarations = {d.id: d for d in declarations}
        self._cap = discovery_cap
        self._timeout_for = timeout_for
        self._metrics = metrics
        self._started = started
        self._by_name: dict[str, DeviceRecord] = {}
        self._by_id: dict[int, DeviceRecord] = {}
        self._series: dict[tuple[int, str], int] = {}
        # Admission state, shared with the ingest thread.
        self._admit_lock = threading.Lock()
        self._known: set[str] = set(self._declarations)
        self._retired: frozenset[str] = frozenset()
        self._discovered = 0

    # -- ingest thread -------------------------------------------------------------------------------------

    def admit(self, device: str) -> RejectReason | None:
        """``None`` if a message from ``device`` may be stored; otherwise why not."""
        if device in self._known:
            return RejectReason.DEVICE_RETIRED if device in self._retired else None
        with self._admit_lock:
            if device in self._known:
                return None
            if self._discovered >= self._cap:
                return RejectReason.DISCOVERY_CAP
            self._discovered += 1
            self._known.add(device)
            return None

    # -- writer thread -------------------------------------------------------------------------------------

    def load(self, conn: sqlite3.Connection) -> None:
        """Read the registry from the database and apply the devices declared in the configuration."""
        self._by_name.clear()
        self._by_id.clear()
        self._series.clear()
        for row in conn.execute(
            "SELECT id, device, type, name, room, declared, retired_at, online, last_seen, state_since, boot "
            "FROM devices"
        ):
            self._remember(
                DeviceRecord(
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    bool(row[5]),
                    row[6] is not None,
                    None if row[7] is None else bool(row[7]),
                    row[8],
                    row[9],
                    row[10],
                )
            )
        for series_id, device_id, metric in conn.execute("SELECT id, device_id, metric FROM series"):
            self._series[(device_id, metric)] = series_id
        conn.execute("BEGIN IMMEDIATE")
        for declaration in self._declarations.values():
            self._declare(conn, declaration)
        conn.execute("COMMIT")
        self.commit()

    def _declare(self, conn: sqlite3.Connection, declaration: DeviceDeclaration) -> None:
        record = self._by_name.get(declaration.id)
        if record is None:
            cursor = conn.execute(
                "INSERT INTO devices (device, type, name, room, declared, created) VALUES (?, ?, ?, ?, 1, ?)",
                (declaration.id, declaration.type, declaration.name, declaration.room, self._started),
            )
            record = DeviceRecord(
                int(cursor.lastrowid or 0),
                declaration.id,
                declaration.type,
                declaration.name,
                declaration.room,
                True,
                False,
                None,
                None,
                None,
                None,
            )
            self._remember(record)
            self.add_event(conn, record.id, self._started, "declared", {"type": declaration.type})
            return
        # The configuration declares a device once; names and rooms changed later through the API stick.
        updates = {"declared": 1}
        if record.type == "unknown" and declaration.type != "unknown":
            updates["type"] = declaration.type  # type: ignore[assignment]
            record.type = declaration.type
        if not record.name and declaration.name:
            updates["name"] = declaration.name  # type: ignore[assignment]
            record.name = declaration.name
        if not record.room and declaration.room:
            updates["room"] = declaration.room  # type: ignore[assignment]
            record.room = declaration.room
        record.declared = True
        assignments = ", ".join(f"{column} = ?" for column in updates)
        conn.execute(f"UPDATE devices SET {assignments} WHERE id = ?", (*updates.values(), record.id))

    def _remember(self, record: DeviceRecord) -> None:
        self._by_name[record.device] = record
        self._by_id[record.id] = record

    def commit(self) -> None:
        """Publish the registry to the ingest thread and the gauges after a commit."""
        retired = frozenset(r.device for r in self._by_name.values() if r.retired)
        with self._admit_lock:
            self._known.update(self._by_name)
            self._retired = retired
            self._discovered = max(self._discovered, sum(1 for r in self._by_name.values() if not r.declared))
        self._metrics.devices_online.set(sum(1 for r in self._by_name.values() if r.online and not r.retired))
        self._metrics.devices_known.set(sum(1 for r in self._by_name.values() if not r.retired))

    def rollback(self, conn: sqlite3.Connection) -> None:
        """After a failed transaction the mirror may hold rows that never reached the disk: read it again."""
        self.load(conn)

    def record(self, device: str) -> DeviceRecord:
        record = self._by_name.get(device)
        if record is None:
            raise DeviceError(f"no device {device!r}")
        return record

    def ensure(self, conn: sqlite3.Connection, device: str, received: float) -> int:
        record = self._by_name.get(device)
        if record is not None:
            return record.id
        cursor = conn.execute(
            "INSERT INTO devices (device, created, first_seen) VALUES (?, ?, ?)", (device, received, received)
        )
        record = DeviceRecord(
            int(cursor.lastrowid or 0), device, "unknown", "", "", False, False, None, None, None, None
        )
        self._remember(record)
        self.add_event(conn, record.id, received, "discovered", {})
        return record.id

    def series_id(self, conn: sqlite3.Connection, device_id: int, reading: Reading) -> int:
        key = (device_id, reading.metric)
        found = self._series.get(key)
        if found is not None:
            return found
        declaration = self._declarations.get(reading.device)
        unit = declaration.units.get(reading.metric, "") if declaration else ""
        cursor = conn.execute(
            "INSERT INTO series (device_id, metric, kind, unit) VALUES (?, ?, ?, ?)",
            (device_id, reading.metric, _kind(reading.value), unit),
        )
        self._series[key] = int(cursor.lastrowid or 0)
        return self._series[key]

    def add_event(
        self, conn: sqlite3.Connection, device_id: int, ts: float, kind: str, detail: Mapping[str, object]
    ) -> None:
        conn.execute(
            "INSERT INTO device_events (device_id, ts, kind, detail) VALUES (?, ?, ?, ?)",
            (device_id, ts, kind, json.dumps(detail, ensure_ascii=False, separators=(",", ":"))),
        )

    def _set_presence(
        self, conn: sqlite3.Connection, record: DeviceRecord, online: bool, ts: float, cause: str
    ) -> None:
        if record.online is online:
            return
        record.online = online
        record.state_since = ts
        conn.execute(
            "UPDATE devices SET online = ?, state_since = ?, state_reason = ? WHERE id = ?",
            (int(online), ts, cause, record.id),
        )
        state = "online" if online else "offline"
        self.add_event(conn, record.id, ts, state, {"cause": cause})
        self._metrics.presence_changes.labels(state=state, cause=cause).inc()

    def note_boot(self, conn: sqlite3.Connection, device_id: int, boot: str, ts: float) -> None:
        record = self._by_id[device_id]
        if record.boot == boot:
            return
        if record.boot is not None:
            self.add_event(conn, device_id, ts, "reboot", {"previous_boot": record.boot, "boot": boot})
        record.boot = boot
        conn.execute("UPDATE devices SET boot = ? WHERE id = ?", (boot, device_id))

    def apply_status(self, conn: sqlite3.Connection, status: Status, received: float) -> None:
        device_id = self.ensure(conn, status.device, received)
        record = self._by_id[device_id]
        if status.boot is not None:
            self.note_boot(conn, device_id, status.boot, received)
        conn.execute(
            "UPDATE devices SET fw = coalesce(?, fw), ip = coalesce(?, ip) WHERE id = ?",
            (status.fw, status.ip, device_id),
        )
        self._set_presence(conn, record, status.online, received, "status")

    def heard(self, conn: sqlite3.Connection, device_id: int, ts: float) -> None:
        """A message from the device, in delivery order: an offline or unknown device is online again."""
        record = self._by_id[device_id]
        record.last_seen = ts
        if record.online is not True:
            self._set_presence(conn, record, True, ts, "telemetry")

    def mark_seen(self, conn: sqlite3.Connection, seen: Mapping[int, float]) -> None:
        """Persist, once per batch, when each device was last heard from (a few statements, not one per device)."""
        for values, parameters in values_lists(list(seen.items()), 2):
            conn.execute(
                "UPDATE devices SET last_seen = seen.column2, first_seen = coalesce(first_seen, seen.column2) "
                f"FROM (VALUES {values}) AS seen WHERE devices.id = seen.column1",
                parameters,
            )
        for device_id, ts in seen.items():
            self._by_id[device_id].last_seen = ts

    def check_silence(self, conn: sqlite3.Connection, now: float) -> list[str]:
        """Mark offline every online device silent for longer than its type's timeout; returns their ids."""
        silent = []
        for record in self._by_name.values():
            if record.online is not True or record.retired:
                continue
            heard = max(record.last_seen or 0.0, record.state_since or 0.0, self._started)
            if now - heard > self._timeout_for(record.type):
                self._set_presence(conn, record, False, now, "silent")
                silent.append(record.device)
        return silent

    # -- registry changes from the API and CLI -------------------------------------------------------------

    def rename(self, conn: sqlite3.Connection, device: str, name: str, now: float) -> None:
        record = self.record(device)
        self.add_event(conn, record.id, now, "renamed", {"from": record.name, "to": name})
        conn.execute("UPDATE devices SET name = ? WHERE id = ?", (name, record.id))
        record.name = name

    def move(self, conn: sqlite3.Connection, device: str, room: str, now: float) -> None:
        record = self.record(device)
        self.add_event(conn, record.id, now, "moved", {"from": record.room, "to": room})
        conn.execute("UPDATE devices SET room = ? WHERE id = ?", (room, record.id))
        record.room = room

    def retire(self, conn: sqlite3.Connection, device: str, now: float) -> None:
        record = self.record(device)
        if record.retired:
            raise DeviceError(f"device {device!r} is already retired")
        self.add_event(conn, record.id, now, "retired", {})
        conn.execute("UPDATE devices SET retired_at = ? WHERE id = ?", (now, record.id))
        record.retired = True
