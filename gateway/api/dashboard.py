"""The dashboard: server-rendered pages for people, signed in with a session cookie.

Routes: ``GET/POST /login`` (the API token, or a one-time ``?code=``), ``POST /logout``, ``GET /`` (devices by room
with their presence and latest values, refreshing itself), ``GET /devices/{device}`` (details, events and history
charts drawn here as inline SVG from the minute and hour roll-ups). Reads go through ``context.reader``; the only
write, consuming a sign-in code, goes through the single writer. Words and time formats come from :mod:`i18n`.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gateway import __version__
from gateway.api.auth import SESSION_COOKIE, SESSION_TTL_S, consume_signin_code, token_matches
from gateway.api.context import ApiContext, get_context
from gateway.api.i18n import LANGUAGES, Translator, choose_language, format_number, format_time, normalise_language
from gateway.store import queries
from gateway.store.devices import DeviceTable

__all__ = ["Chart", "build_chart", "group_by_room", "router", "state_of"]

router = APIRouter(include_in_schema=False)

LANG_COOKIE = "lang"
REFRESH_S = {"overview": 5, "device": 30}
HOURS = (1, 6, 24, 168)
DEFAULT_HOURS = 24
WRITER_TIMEOUT_S = 10.0
MAX_FORM_BYTES = 8192

_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send "Origin: null" on our own forms
}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


templates = Jinja2Templates(env=_environment())


# -- language, session and page helpers -----------------------------------------------------------------------


def _language(request: Request) -> tuple[Translator, str | None]:
    """The page's language, and the value to remember in the ``lang`` cookie when ``?lang=`` chose it."""
    asked = normalise_language(request.query_params.get("lang"))
    language = choose_language(asked, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    return Translator(language), asked


def _remember_language(response: Response, request: Request, asked: str | None) -> None:
    if asked is not None and asked != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, path="/", httponly=True, samesite="lax")


def _switch_url(request: Request, language: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("lang", "code")]
    return request.url.path + "?" + urlencode([*params, ("lang", language)])


def _cross_site(request: Request) -> bool:
    """A form posted from another site (login CSRF, forced sign-out); browsers send ``Origin`` on every POST."""
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host", "")


def _signed_in(request: Request, context: ApiContext) -> bool:
    return context.signer.valid(request.cookies.get(SESSION_COOKIE), context.clock())


def _local_path(target: str | None) -> str:
    """Only a path on this site may be a place to go back to after signing in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return "/"
    return target


def _to_login(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" if here == "/" else "/login?" + urlencode({"next": here})
    response = RedirectResponse(target, status_code=303)
    _remember_language(response, request, _language(request)[1])
    return response


def _page(
    request: Request, name: str, values: dict[str, Any], *, status: int = 200, signed_in: bool = True
) -> Response:
    context = get_context(request)
    translator, asked = _language(request)
    now = context.clock()
    tz = context.tz
    other = next(language for language in LANGUAGES if language != translator.language)
    common: dict[str, Any] = {
        "lang": translator.language,
        "t": translator.t,
        "label": translator.label,
        "value": translator.value,
        "duration": translator.duration,
        "ago": lambda ts: translator.relative(ts, now),
        "when": lambda ts: format_time(ts, tz),
        "iso": lambda ts: datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds"),
        "now": now,
        "tz_name": str(tz.key),
        "site": context.settings.site,
        "switch_url": _switch_url(request, other),
        "switch_lang": other,
        "signed_in": signed_in,
        "version": __version__,
        "refresh": 0,
    }
    response = templates.TemplateResponse(request, name, common | values, status_code=status,
                                          headers=_SECURITY_HEADERS)
    _remember_language(response, request, asked)
    return response


def _session_redirect(request: Request, context: ApiContext, target: str) -> Response:
    response = RedirectResponse(_local_path(target), status_code=303)
    response.set_cookie(SESSION_COOKIE, context.signer.issue(context.clock()), max_age=SESSION_TTL_S, path="/",
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    _remember_language(response, request, _language(request)[1])
    return response


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, read up to a small cap (python-multipart is not needed)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = parse_qs(body.decode("ascii", errors="replace"), encoding="utf-8", errors="replace")
    return {name: values[0] for name, values in fields.items()}


async def _consume_code(context: ApiContext, code: str) -> bool | None:
    """True if the code signed someone in, False if not valid, None if the writer did not answer in time."""
    now = context.clock()

    def consume(conn: sqlite3.Connection, _devices: DeviceTable) -> bool:
        return consume_signin_code(conn, code, now)

    # shield: a timed-out wait must not cancel the writer's future, which the writer thread completes later.
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(context.writer.execute(consume))),
                                      WRITER_TIMEOUT_S)
    except TimeoutError:
        return None


# -- sign-in ----------------------------------------------------------------------------------------------------


def _login_page(request: Request, target: str, *, error: str | None = None, status: int = 200) -> Response:
    return _page(request, "login.html", {"error": error, "next": _local_path(target)}, status=status,
                 signed_in=False)


@router.get("/login")
async def login_page(request: Request) -> Response:
    context = get_context(request)
    translator, _ = _language(request)
    code = request.query_params.get("code")
    target = request.query_params.get("next") or "/"
    if not code:
        return _login_page(request, target)
    consumed = await _consume_code(context, code)
    if consumed is None:
        return _login_page(request, target, error=translator.t("writer_busy"), status=503)
    if not consumed:
        return _login_page(request, target, error=translator.t("bad_code"), status=401)
    return _session_redirect(request, context, target)


@router.post("/login")
async def login(request: Request) -> Response:
    context = get_context(request)
    if _cross_site(request):
        return _login_page(request, "/", error=_language(request)[0].t("cross_site"), status=403)
    form = await _form(request)
    target = form.get("next", "/")
    if not token_matches(context.token, form.get("token", "").strip()):
        return _login_page(request, target, error=_language(request)[0].t("wrong_token"), status=401)
    return _session_redirect(request, context, target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    if _cross_site(request):
        return RedirectResponse("/", status_code=303)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


# -- overview ---------------------------------------------------------------------------------------------------


def state_of(view: queries.DeviceView) -> str:
    return "unknown" if view.online is None else "online" if view.online else "offline"


def group_by_room(devices: list[queries.DeviceView]) -> list[tuple[str, list[queries.DeviceView]]]:
    """Rooms in sorted order, each with its devices by id; devices without a room last, under ``""``."""
    rooms: dict[str, list[queries.DeviceView]] = {}
    for view in devices:
        rooms.setdefault(view.room.strip(), []).append(view)
    ordered = sorted((room for room in rooms if room), key=lambda room: (room.casefold(), room))
    if "" in rooms:
        ordered.append("")
    return [(room, sorted(rooms[room], key=lambda v: v.device)) for room in ordered]


@router.get("/")
async def overview(request: Request) -> Response:
    context = get_context(request)
    if not _signed_in(request, context):
        return _to_login(request)
    devices = await context.reader.run(queries.list_devices)
    counts = dict.fromkeys(("online", "offline", "unknown"), 0)
    for view in devices:
        counts[state_of(view)] += 1
    return _page(request, "overview.html", {
        "rooms": group_by_room(devices), "counts": counts, "total": len(devices), "state_of": state_of,
        "refresh": REFRESH_S["overview"],
    })


# -- device page and its charts ---------------------------------------------------------------------------------

CHART_W, CHART_H = 360, 200
_TOP, _RIGHT, _BOTTOM = 10.0, CHART_W - 8.0, CHART_H - 24.0
_CHAR_W = 7.0  # width of one digit of the 12 px axis labels, in view box units
MAX_COLUMNS = 240
GAP_COLUMNS = 5  # more missing columns than this breaks the line
_X_TICK_S = {1: 900, 6: 3600, 24: 4 * 3600, 168: 86400}


@dataclass(frozen=True, slots=True)
class Chart:
    """One metric's history, already in SVG coordinates (a ``CHART_W`` × ``CHART_H`` view box)."""

    metric: str
    unit: str
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    bands: list[str]
    lines: list[str]
    dots: list[tuple[str, str, str, str, str]]  # x, y of the average; y of max and min; the average (a lone column)
    x_ticks: list[tuple[str, str]]  # x, label ("" for a grid line without one)
    y_ticks: list[tuple[str, str]]
    low: str | None
    high: str | None


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high - low < 1e-9 * max(1.0, abs(low), abs(high)):
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step
    return [round(start + i * step, 10) for i in range(round((end - start) / step) + 1)]


def _time_ticks(since: float, until: float, step: int, tz: tzinfo) -> list[tuple[float, str]]:
    """Ticks on round local times (every 15 min, hour, 4 h or midnight) in the site's time zone."""
    midnight = datetime.fromtimestamp(since, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    fmt = "%m-%d" if step >= 86400 else "%H:%M"
    ticks = []
    moment = midnight
    while moment.timestamp() <= until:
        if moment.timestamp() >= since:
            ticks.append((moment.timestamp(), moment.strftime(fmt)))
        moment += timedelta(seconds=step)
    return ticks


def _columns(rows: list[queries.RollupRow], since: float, step: float) -> list[tuple[int, float, float, float]]:
    """Buckets merged into at most ``MAX_COLUMNS`` columns: (index, min, max, count-weighted average)."""
    merged: dict[int, list[float]] = {}
    for row in rows:
        index = int((row.bucket - since) // step)
        entry = merged.get(index)
        if entry is None:
            merged[index] = [row.min, row.max, row.avg * row.count, row.count]
        else:
            entry[0], entry[1] = min(entry[0], row.min), max(entry[1], row.max)
            entry[2] += row.avg * row.count
            entry[3] += row.count
    return [(i, e[0], e[1], e[2] / e[3]) for i, e in sorted(merged.items()) if e[3] > 0]


def _segments(columns: list[tuple[int, float, float, float]]) -> list[list[tuple[int, float, float, float]]]:
    """Runs of columns with no gap longer than ``GAP_COLUMNS``: the line is broken where data is missing."""
    segments: list[list[tuple[int, float, float, float]]] = []
    for column in columns:
        if segments and column[0] - segments[-1][-1][0] <= GAP_COLUMNS:
            segments[-1].append(column)
        else:
            segments.append([column])
    return segments


def build_chart(metric: str, unit: str, rows: list[queries.RollupRow], *, since: float, until: float,
                period_s: int, hours: int, tz: tzinfo) -> Chart:
    """Average line, min–max band and axes for ``rows`` between ``since`` and ``until``; times in ``tz``."""
    step = period_s * max(1, math.ceil((until - since) / period_s / MAX_COLUMNS))
    columns = _columns(rows, since, step)
    y_values = _nice_ticks(min(c[1] for c in columns), max(c[2] for c in columns)) if columns else []
    y_labels = [format_number(value) for value in y_values]
    left = max(24.0, 8.0 + _CHAR_W * max((len(label) for label in y_labels), default=0))
    top, right, bottom = _TOP, _RIGHT, _BOTTOM

    def x(ts: float) -> float:
        return left + (min(until, max(since, ts)) - since) / (until - since) * (right - left)

    def fits(position: float, text: str) -> bool:  # a centred label that would cross the edge is left out
        half = _CHAR_W * len(text) / 2
        return position - half >= 0 and position + half <= CHART_W

    x_ticks = [(f"{x(ts):.1f}", text if fits(x(ts), text) else "")
               for ts, text in _time_ticks(since, until, _X_TICK_S[hours], tz)]
    plot = (left, top, right, bottom)
    if not columns:
        return Chart(metric, unit, CHART_W, CHART_H, plot, [], [], [], x_ticks, [], None, None)
    y_low, y_high = y_values[0], y_values[-1]

    def y(value: float) -> float:
        return bottom - (value - y_low) / (y_high - y_low) * (bottom - top)

    def column_x(index: int) -> float:
        return x(since + (index + 0.5) * step)

    bands, lines, dots = [], [], []
    for segment in _segments(columns):
        if len(segment) == 1:
            i, lo, hi, avg = segment[0]
            dots.append((f"{column_x(i):.1f}", f"{y(avg):.1f}", f"{y(hi):.1f}", f"{y(lo):.1f}", format_number(avg)))
            continue
        upper = [f"{column_x(i):.1f},{y(hi):.1f}" for i, _lo, hi, _avg in segment]
        lower = [f"{column_x(i):.1f},{y(lo):.1f}" for i, lo, _hi, _avg in reversed(segment)]
        bands.append(" ".join(upper + lower))
        lines.append("M" + " L".join(f"{column_x(i):.1f},{y(avg):.1f}" for i, _lo, _hi, avg in segment))
    y_ticks = [(f"{y(value):.1f}", label) for value, label in zip(y_values, y_labels, strict=True)]
    return Chart(metric, unit, CHART_W, CHART_H, plot, bands, lines, dots, x_ticks, y_ticks,
                 format_number(min(c[1] for c in columns)), format_number(max(c[2] for c in columns)))


def _event_text(event: queries.DeviceEvent, translator: Translator) -> str:
    detail = event.detail
    if event.kind in ("online", "offline") and "cause" in detail:
        return translator.label("cause", str(detail["cause"]))
    if event.kind == "event":
        parts = [translator.label("severity", str(detail.get("severity", ""))), str(detail.get("code", "")),
                 str(detail.get("message", ""))]
        return " · ".join(part for part in parts if part)
    if event.kind in ("renamed", "moved"):
        return f"{detail.get('from') or '—'} → {detail.get('to') or '—'}"
    if event.kind == "reboot":
        return f"{detail.get('previous_boot', '')} → {detail.get('boot', '')}"
    if event.kind == "declared" and "type" in detail:
        return translator.label("type", str(detail["type"]))
    return ", ".join(f"{key}={value}" for key, value in detail.items())


def _device_data(
    conn: sqlite3.Connection, device: str, period: str, since: float, limit: int
) -> tuple[queries.DeviceView, list[queries.RollupRow], list[queries.DeviceEvent]] | None:
    """Everything the device page shows, in one trip to a reader thread; ``None`` for an unknown device."""
    view = queries.get_device(conn, device)
    if view is None:
        return None
    rows = queries.rollups(conn, device, period=period, since=since, limit=limit)
    return view, rows, queries.device_events(conn, device, limit=30)


def _hours(text: str | None) -> int:
    return int(text) if text is not None and text.isdigit() and int(text) in HOURS else DEFAULT_HOURS


@router.get("/devices/{device}")
async def device_page(request: Request, device: str) -> Response:
    context = get_context(request)
    if not _signed_in(request, context):
        return _to_login(request)
    translator, _ = _language(request)
    hours = _hours(request.query_params.get("hours"))
    period, period_s = ("minute", 60) if hours <= 24 else ("hour", 3600)
    until = context.clock()
    since = until - hours * 3600
    found = await context.reader.run(_device_data, device, period, math.floor(since / period_s) * period_s,
                                     hours * 3600 // period_s + 2)
    if found is None:
        return _page(request, "not_found.html", {"device": device}, status=404)
    view, rows, events = found
    by_metric: dict[str, list[queries.RollupRow]] = {}
    for row in rows:
        by_metric.setdefault(row.metric, []).append(row)
    kinds = {value.metric: value.kind for value in view.latest}
    units = {value.metric: value.unit for value in view.latest}
    charts = [build_chart(metric, units.get(metric, ""), by_metric.get(metric, []), since=since, until=until,
                          period_s=period_s, hours=hours, tz=context.tz)
              for metric in sorted({*kinds, *by_metric}) if kinds.get(metric, "number") == "number"]
    return _page(request, "device.html", {
        "view": view, "state": state_of(view), "charts": charts, "hours": hours, "hour_choices": HOURS,
        "since": since, "until": until,
        "events": [(event, _event_text(event, translator)) for event in events],
        "refresh": REFRESH_S["device"],
    })

