"""What the API's routes need from the running gateway, handed over once by the composition root."""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import HTTPException, Request, status

from gateway.api.auth import SESSION_COOKIE, SessionSigner, token_matches
from gateway.metrics import GatewayMetrics
from gateway.settings import Settings
from gateway.store.queries import Reader
from gateway.store.writer import Writer


@dataclass
class ApiContext:
    settings: Settings
    reader: Reader
    writer: Writer
    metrics: GatewayMetrics
    token: str
    health: Callable[[], list[str]]
    clock: Callable[[], float] = time.time
    signer: SessionSigner = field(init=False)
    tz: zoneinfo.ZoneInfo = field(init=False)

    def __post_init__(self) -> None:
        self.signer = SessionSigner(self.token)
        self.tz = zoneinfo.ZoneInfo(self.settings.timezone)


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require_token(request: Request) -> ApiContext:
    """Writes need the bearer token itself."""
    context = get_context(request)
    if not token_matches(context.token, _bearer(request)):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return context


def require_reader(request: Request) -> ApiContext:
    """Reads take the bearer token or a signed-in dashboard session."""
    context = get_context(request)
    if token_matches(context.token, _bearer(request)):
        return context
    if context.signer.valid(request.cookies.get(SESSION_COOKIE), context.clock()):
        return context
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
    )


def parse_time(text: str | None, tz: zoneinfo.ZoneInfo, name: str) -> float | None:
    """Unix seconds, or ISO 8601 (a time without an offset is in the site's time zone)."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            422,
            f"{name} must be Unix seconds or an ISO 8601 time such as 2026-09-01T08:00:00+08:00, got {text!r}",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()
