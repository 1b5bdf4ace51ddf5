"""The JSON API: devices, their readings and roll-ups, dead letters, and registry changes."""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.auth import create_signin_code
from gateway.api.context import ApiContext, parse_time, require_reader, require_token
from gateway.errors import DeviceError
from gateway.store import queries
from gateway.store.devices import DeviceTable

router = APIRouter(prefix="/api")

MAX_LIMIT = 10_000


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _device_json(view: queries.DeviceView) -> dict[str, Any]:
    return {
        "device": view.device,
        "type": view.type,
        "name": view.name,
        "room": view.room,
        "declared": view.declared,
        "retired": view.retired,
        "online": view.online,
        "state_since": view.state_since,
        "state_reason": view.state_reason,
        "first_seen": view.first_seen,
        "last_seen": view.last_seen,
        "boot": view.boot,
        "fw": view.fw,
        "ip": view.ip,
        "latest": {
            value.metric: {
                "value": value.value,
                "ts": value.ts,
                "time": _iso(value.ts),
                "unit": value.unit,
                "quality": value.quality,
            }
            for value in view.latest
        },
    }


def _encode_cursor(row: queries.ReadingRow) -> str:
    return base64.urlsafe_b64encode(f"{row.ts!r}:{row.rowid}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        ts, rowid = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        return float(ts), int(rowid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HTTPException(422, "cursor is not one this API gave out") from None


async def _device_or_404(context: ApiContext, device: str) -> queries.DeviceView:
    view = await context.reader.run(queries.get_device, device)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device!r}")
    return view


@router.get("/devices")
async def list_devices(context: ApiContext = Depends(require_reader), include_retired: bool = False) -> dict[str, Any]:
    devices = await context.reader.run(queries.list_devices, include_retired=include_retired)
    return {"devices": [_device_json(view) for view in devices]}


@router.get("/devices/{device}")
async def get_device(device: str, context: ApiContext = Depends(require_reader)) -> dict[str, Any]:
    view = await _device_or_404(context, device)
    events = await context.reader.run(queries.device_events, device, limit=20)
    body = _device_json(view)
    body["events"] = [{"ts": e.ts, "time": _iso(e.ts), "kind": e.kind, "detail": e.detail} for e in events]
    return body


@router.get("/devices/{device}/readings")
async def get_readings(
    device: str,
    context: ApiContext = Depends(require_reader),
    metric: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    cursor: str | None = None,
) -> dict[str, Any]:
    await _device_or_404(context, device)
    lower = parse_time(since, context.tz, "since")
    upper = parse_time(until, context.tz, "until")
    after = _decode_cursor(cursor) if cursor else None
    rows = await context.reader.run(
        queries.readings, device, metric=metric, since=lower, until=upper, limit=limit, after=after
    )
    return {
        "device": device,
        "readings": [
            {"metric": r.metric, "ts": r.ts, "time": _iso(r.ts), "value": r.value, "unit": r.unit, "quality": r.quality}
            for r in rows
        ],
        "next_cursor": _encode_cursor(rows[-1]) if len(rows) == limit else None,
    }


@router.get("/devices/{device}/rollups")
async def get_rollups(
    device: str,
    context: ApiContext = Depends(require_reader),
    metric: str | None = None,
    period: Annotated[str, Query(pattern="^(minute|hour)$")] = "minute",
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1440,
) -> dict[str, Any]:
    await _device_or_404(context, device)
    rows = await context.reader.run(
        queries.rollups,
        device,
        metric=metric,
        period=period,
        since=parse_time(since, context.tz, "since"),
        until=parse_time(until, context.tz, "until"),
        limit=limit,
    )
    return {
        "device": device,
        "period": period,
        "rollups": [
            {
                "metric": r.metric,
                "bucket": r.bucket,
                "time": _iso(r.bucket),
                "min": r.min,
                "max": r.max,
                "avg": r.avg,
                "count": r.count,
            }
            for r in rows
        ],
    }


@router.get("/deadletters")
async def get_dead_letters(
    context: ApiContext = Depends(require_reader),
    reason: str | None = None,
    before_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = await context.reader.run(queries.dead_letters, reason=reason, before_id=before_id, limit=limit)
    counts = await context.reader.run(queries.dead_letter_counts)
    items = []
    for row in rows:
        try:
            text: str | None = row.payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        items.append(
            {
                "id": row.id,
                "received": row.received,
                "time": _iso(row.received),
                "topic": row.topic,
                "device": row.device,
                "reason": row.reason,
                "detail": row.detail,
                "size": len(row.payload),
                "payload": text[:4096] if text is not None else None,
                "payload_base64": base64.b64encode(row.payload[:4096]).decode() if text is None else None,
            }
        )
    return {"counts": counts, "deadletters": items}


class DeviceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=128)] | None = None
    room: Annotated[str, Field(max_length=128)] | None = None


async def _change(context: ApiContext, change: Any) -> None:
    try:
        await asyncio.wrap_future(context.writer.execute(change))
    except DeviceError as exc:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND if "no device" in str(exc) else status.HTTP_409_CONFLICT, str(exc)
        ) from None


@router.patch("/devices/{device}")
async def change_device(
    device: str, change: DeviceChange, context: ApiContext = Depends(require_token)
) -> dict[str, Any]:
    now = context.clock()

    def apply(conn: Any, devices: DeviceTable) -> None:
        if change.name is not None:
            devices.rename(conn, device, change.name, now)
        if change.room is not None:
            devices.move(conn, device, change.room, now)

    await _change(context, apply)
    return _device_json(await _device_or_404(context, device))


@router.post("/devices/{device}/retire")
async def retire_device(device: str, context: ApiContext = Depends(require_token)) -> dict[str, Any]:
    now = context.clock()
    await _change(context, lambda conn, devices: devices.retire(conn, device, now))
    return _device_json(await _device_or_404(context, device))


@router.post("/signin-codes")
async def new_signin_code(context: ApiContext = Depends(require_token)) -> dict[str, Any]:
    now = context.clock()
    code = await asyncio.wrap_future(context.writer.execute(lambda conn, _devices: create_signin_code(conn, now)))
    return {"code": code, "path": f"/login?code={code}"}
