"""The dashboard pages against a real SQLite file, a real single writer and real reader threads.

Devices, presence and readings go in the way ingest puts them in (``TelemetryIn`` / ``StatusIn`` through
``Writer.submit``); pages come out of ``create_app`` through httpx's ASGI transport, driven from plain test
functions by :class:`PageClient` (Starlette's ``TestClient`` now warns unless ``httpx2`` is installed).
"""

from __future__ import annotations

import asyncio
import re
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.api.auth import SESSION_COOKIE, create_signin_code
from gateway.api.context import ApiContext
from gateway.api.dashboard import build_chart, group_by_room
from gateway.api.i18n import Translator, choose_language, format_number, from_accept_language
from gateway.contracts import Status
from gateway.metrics import GatewayMetrics
from gateway.normalise import CLOCK_SUSPECT, Reading
from gateway.settings import DeviceDeclaration, Settings
from gateway.store.devices import DeviceTable
from gateway.store.migrations import migrate
from gateway.store.queries import DeviceView, Reader, RollupRow
from gateway.store.settle import settle
from gateway.store.writer import Inbound, StatusIn, TelemetryIn, Writer

TOKEN = "test-token-0123456789abcdef"
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


class PageClient:
    """A cookie-keeping HTTP client for the app, with a synchronous face over httpx's async ASGI transport."""

    def __init__(self, app: FastAPI) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")

    @property
    def cookies(self) -> httpx.Cookies:
        return self._client.cookies

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(url, **kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.post(url, **kwargs))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()


@dataclass
class Site:
    """One gateway's API over a real database: ``client`` is not signed in unless a test signs it in."""

    client: PageClient
    context: ApiContext
    writer: Writer
    now: float

    def feed(self, *items: Inbound) -> None:
        for item in items:
            self.writer.submit(item)
        # FIFO: everything before it is committed; then settle it, as the gateway does every few seconds
        self.writer.execute(lambda conn, _devices: settle(conn)).result(10)

    def sign_in(self) -> None:
        response = self.client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert response.status_code == 303, response.text


def telemetry(device: str, ts: float, seq: int, **metrics: float | str | bool) -> TelemetryIn:
    readings = tuple(Reading(device, name, ts, value) for name, value in metrics.items())
    return TelemetryIn(device, "b1", seq, ts, readings, None)


def status(device: str, online: bool, at: float, **extra: str) -> StatusIn:
    return StatusIn(Status(device, online, at, False, extra.get("boot"), extra.get("fw"), extra.get("ip")), at, None)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    path = tmp_path / "campus.db"
    migrate(path)
    settings = Settings(site="test-school", devices=(
        DeviceDeclaration(id="env-lab1", type="env_sensor", name="创客教室环境", room="创客教室",
                          units={"temp": "°C", "humidity": "%"}),
        DeviceDeclaration(id="printer-01", type="printer_3d", name="Printer A", room="Innovation lab"),
        DeviceDeclaration(id="socket-9", type="smart_socket"),
    ))
    metrics = GatewayMetrics()
    now = time.time()
    devices = DeviceTable(settings.devices, discovery_cap=100, timeout_for=settings.presence.timeout_for,
                          metrics=metrics, started=now - 7200)
    writer = Writer(path, devices, metrics, queue_size=1000, batch_size=100, batch_interval=0.01,
                    disk_watermark_bytes=0)
    writer.start()
    reader = Reader(path)
    context = ApiContext(settings=settings, reader=reader, writer=writer, metrics=metrics, token=TOKEN,
                         health=list)
    client = PageClient(create_app(context))
    try:
        site = Site(client, context, writer, now)
        site.feed(
            status("env-lab1", True, now - 3 * 3600, boot="b1", fw="1.4.2", ip="10.0.0.21"),
            *(telemetry("env-lab1", now - 3600 + i * 120, i, temp=20.0 + i / 10, humidity=40.0 + i % 3)
              for i in range(30)),
            telemetry("env-lab1", now - 30, 30, temp=23.25, humidity=41.0),
            status("printer-01", True, now - 600, boot="p1"),
            telemetry("printer-01", now - 500, 0, progress=12.5, job="gear.gcode", busy=True),
        )
        site.feed(status("printer-01", False, now - 180))  # a batch of its own: see the report on mark_seen
        yield site
    finally:
        client.close()
        writer.stop()
        reader.close()


# -- signing in ----------------------------------------------------------------------------------------------


def test_pages_redirect_to_login_without_a_session(site: Site) -> None:
    response = site.client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    response = site.client.get("/devices/env-lab1?hours=6", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdevices%2Fenv-lab1%3Fhours%3D6"
    site.client.cookies.set(SESSION_COOKIE, f"{int(site.now) + 3600}.forged")
    assert site.client.get("/", follow_redirects=False).status_code == 303
    site.client.cookies.set(SESSION_COOKIE, site.context.signer.issue(site.now - 13 * 3600))  # expired
    assert site.client.get("/", follow_redirects=False).status_code == 303


def test_login_page_has_a_token_field(site: Site) -> None:
    response = site.client.get("/login")
    assert response.status_code == 200
    assert 'name="token"' in response.text and 'type="password"' in response.text
    assert "设备管理员登录" in response.text


def test_a_wrong_token_shows_the_page_again_with_an_error(site: Site) -> None:
    for body in ({"token": "wrong"}, {"token": ""}, {}):
        response = site.client.post("/login", data=body, follow_redirects=False)
        assert response.status_code == 401
        assert "令牌不正确" in response.text
        assert "Traceback" not in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    response = site.client.post("/login", content=b'{"token": "%s"}' % TOKEN.encode(),
                                headers={"content-type": "application/json"}, follow_redirects=False)
    assert response.status_code == 401
    response = site.client.post("/login", content=b"token=" + b"x" * 20_000,
                                headers={"content-type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert response.status_code == 401


def test_the_right_token_sets_a_session_cookie(site: Site) -> None:
    response = site.client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(SESSION_COOKIE)
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert site.client.get("/", follow_redirects=False).status_code == 200


def test_after_signing_in_only_a_local_next_is_followed(site: Site) -> None:
    for target, expected in (("/devices/env-lab1?hours=6", "/devices/env-lab1?hours=6"),
                             ("//evil.example/", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/")):
        response = site.client.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
        assert response.headers["location"] == expected


def test_forms_posted_from_another_site_are_refused(site: Site) -> None:
    response = site.client.post("/login", data={"token": TOKEN}, headers={"origin": "http://evil.example"},
                                follow_redirects=False)
    assert response.status_code == 403 and SESSION_COOKIE not in response.headers.get("set-cookie", "")
    response = site.client.post("/login", data={"token": TOKEN}, headers={"origin": "http://testserver"},
                                follow_redirects=False)
    assert response.status_code == 303
    response = site.client.post("/logout", headers={"origin": "http://evil.example"}, follow_redirects=False)
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert site.client.get("/", follow_redirects=False).status_code == 200


def test_a_one_time_code_signs_in_once(site: Site) -> None:
    code = site.writer.execute(lambda conn, _devices: create_signin_code(conn, time.time())).result(10)
    response = site.client.get(f"/login?code={code}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert SESSION_COOKIE in response.headers["set-cookie"]
    assert site.client.get("/", follow_redirects=False).status_code == 200

    site.client.cookies.clear()
    again = site.client.get(f"/login?code={code}", follow_redirects=False)
    assert again.status_code == 401
    assert "无效、已使用或已过期" in again.text
    assert SESSION_COOKIE not in again.headers.get("set-cookie", "")

    expired = site.writer.execute(lambda conn, _devices: create_signin_code(conn, time.time() - 3600)).result(10)
    assert site.client.get(f"/login?code={expired}", follow_redirects=False).status_code == 401
    assert site.client.get("/login?code=made-up", follow_redirects=False).status_code == 401


def test_signing_out_clears_the_cookie(site: Site) -> None:
    site.sign_in()
    response = site.client.post("/logout", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert site.client.get("/", follow_redirects=False).status_code == 303


# -- the overview --------------------------------------------------------------------------------------------


def _cards(html: str) -> dict[str, str]:
    """Each card's data-state by its data-device, in page order."""
    return dict(re.findall(r'<article class="card[^"]*" data-device="([^"]+)" data-state="([^"]+)"', html))


def test_the_overview_lists_devices_by_room_with_state_and_latest_values(site: Site) -> None:
    site.sign_in()
    response = site.client.get("/")
    assert response.status_code == 200
    html = response.text
    assert _cards(html) == {"env-lab1": "online", "printer-01": "offline", "socket-9": "unknown"}
    rooms = re.findall(r'<section class="room" data-room="([^"]*)">\s*<h2>([^<]*)</h2>', html)
    assert rooms == [("Innovation lab", "Innovation lab"), ("创客教室", "创客教室"), ("", "未分配")]
    assert re.search(r'data-count="online">.*?<strong>1</strong>', html)
    assert re.search(r'data-count="offline">.*?<strong>1</strong>', html)
    env = html[html.index('data-device="env-lab1"'):html.index('data-device="socket-9"')]
    assert "创客教室环境" in env and "环境传感器" in env
    assert '<span class="value">23.25</span> <span class="unit">°C</span>' in env
    assert "已持续 3 小时" in env
    printer = html[html.index('data-device="printer-01"'):html.index('data-device="env-lab1"')]
    assert "离线" in printer and "已持续 3 分钟" in printer
    assert "gear.gcode" in printer and '<span class="value">是</span>' in printer
    assert "尚未收到消息" in html
    assert 'src="/static/dashboard.js' in html and 'data-refresh="5"' in html


def test_a_device_going_offline_shows_on_the_next_load(site: Site) -> None:
    site.sign_in()
    assert _cards(site.client.get("/").text)["env-lab1"] == "online"
    site.feed(status("env-lab1", False, time.time()))
    html = site.client.get("/").text
    assert _cards(html)["env-lab1"] == "offline"
    assert re.search(r'data-count="offline">.*?<strong>2</strong>', html)


def test_times_are_in_the_site_time_zone(site: Site) -> None:
    site.sign_in()
    html = site.client.get("/devices/env-lab1").text
    last_seen = datetime.fromtimestamp(site.now - 30, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert f'<span class="abs">{last_seen}</span>' in html
    assert re.search(r'<time datetime="[^"]+\+08:00" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d">', html)
    assert "Asia/Shanghai" in html


# -- languages -----------------------------------------------------------------------------------------------


def test_zh_cn_is_the_default_and_english_is_remembered(site: Site) -> None:
    site.sign_in()
    zh = site.client.get("/").text
    assert '<html lang="zh-CN">' in zh
    for word in ("设备状态", "在线", "离线", "未知", "未分配", "退出登录"):
        assert word in zh
    assert 'href="/?lang=en"' in zh

    response = site.client.get("/?lang=en")
    en = response.text
    assert '<html lang="en">' in en
    for word in ("Device status", "online", "offline", "No room", "Sign out", "for 3 min", "Environment sensor"):
        assert word in en
    assert "在线" not in en
    assert 'href="/?lang=zh-CN"' in en
    assert "lang=en" in response.headers["set-cookie"]
    assert '<html lang="en">' in site.client.get("/devices/env-lab1").text  # remembered by the cookie


def test_accept_language_chooses_when_nothing_else_does(site: Site) -> None:
    response = site.client.get("/login", headers={"accept-language": "en-US,en;q=0.9,zh-CN;q=0.8"})
    assert '<html lang="en">' in response.text and "Equipment manager sign-in" in response.text
    response = site.client.get("/login", headers={"accept-language": "fr-FR,zh-TW;q=0.5"})
    assert '<html lang="zh-CN">' in response.text
    response = site.client.post("/login?lang=en", data={"token": "nope"}, follow_redirects=False)
    assert response.status_code == 401 and "That token is not right" in response.text


def test_language_choice_and_formats() -> None:
    assert choose_language(None, None, None) == "zh-CN"
    assert choose_language("en", "zh-CN", "zh") == "en"
    assert choose_language("xx", "en", "zh") == "en"
    assert from_accept_language("de;q=1, en;q=0.3, zh;q=0.7") == "zh-CN"
    assert from_accept_language("en;q=0, zh;q=oops") is None
    zh, en = Translator("zh-CN"), Translator("en")
    assert zh.relative(1000, 1180) == "3 分钟前" and en.relative(1000, 1180) == "3 min ago"
    assert zh.relative(1000, 1002) == "刚刚" and en.relative(0, 2 * 86400 + 5) == "2 d ago"
    assert [format_number(v) for v in (21.0, 21.456, 0.012345, 1234.56, -0.0)] == ["21", "21.46", "0.0123", "1234.6",
                                                                                   "0"]
    assert en.value(True) == "yes" and zh.value(False) == "否" and en.value("<b>") == "<b>"


# -- the device page -----------------------------------------------------------------------------------------


def test_the_device_page_shows_details_events_and_charts(site: Site) -> None:
    site.sign_in()
    response = site.client.get("/devices/env-lab1")
    assert response.status_code == 200
    html = response.text
    assert 'data-state="online"' in html
    for text in ("1.4.2", "10.0.0.21", "创客教室", "环境传感器", "最近事件", "上线", "设备状态消息"):
        assert text in html
    assert html.count("<svg") == 2
    assert '<figure class="chart" data-chart="humidity">' in html and '<figure class="chart" data-chart="temp">' in html
    assert '<polygon class="band" points="' in html and '<path class="avg" d="M' in html
    assert re.search(r'class="x-label" text-anchor="middle">\d\d:00</text>', html)
    assert 'aria-current="page">24 小时</a>' in html
    week = site.client.get("/devices/env-lab1?hours=168&lang=en").text
    assert 'aria-current="page">7 days</a>' in week
    assert re.search(r'class="x-label" text-anchor="middle">\d\d-\d\d</text>', week)
    assert 'aria-current="page">24 小时' in site.client.get("/devices/env-lab1?hours=5&lang=zh-CN").text
    # booleans and text are shown as latest values but not charted
    printer = site.client.get("/devices/printer-01").text
    assert 'data-chart="progress"' in printer and 'data-chart="busy"' not in printer
    assert 'data-chart="job"' not in printer and "gear.gcode" in printer


def test_an_unknown_device_is_a_404_page(site: Site) -> None:
    site.sign_in()
    response = site.client.get("/devices/no-such-thing")
    assert response.status_code == 404
    assert "找不到设备" in response.text and "no-such-thing" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_everything_from_devices_is_escaped(site: Site) -> None:
    evil = '<script>alert("x")</script>'
    site.writer.execute(lambda conn, devices: devices.rename(conn, "env-lab1", evil, time.time())).result(10)
    site.writer.execute(lambda conn, devices: devices.move(conn, "env-lab1", "<b>room</b>", time.time())).result(10)
    site.feed(telemetry("env-lab1", time.time(), 99, note='<img src=x onerror="alert(1)">'))
    site.sign_in()
    for path in ("/", "/devices/env-lab1"):
        html = site.client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>room" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    response = site.client.get("/devices/%3Cscript%3E")
    assert response.status_code == 404 and "<script>" not in response.text and "&lt;script&gt;" in response.text


def test_pages_forbid_inline_script_and_caching(site: Site) -> None:
    site.sign_in()
    response = site.client.get("/")
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'self' covers it
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text
    assert site.client.get("/static/dashboard.css").status_code == 200
    assert site.client.get("/static/dashboard.js").status_code == 200


# -- pure parts --------------------------------------------------------------------------------------------------


def _view(device: str, room: str) -> DeviceView:
    return DeviceView(device, "unknown", "", room, False, False, None, None, None, None, None, None, None, None)


def test_rooms_are_sorted_and_devices_without_a_room_come_last() -> None:
    groups = group_by_room([_view("b", ""), _view("c", "Lab"), _view("a", "art room"), _view("d", " "),
                            _view("e", "Lab")])
    assert [(room, [v.device for v in views]) for room, views in groups] == [
        ("art room", ["a"]), ("Lab", ["c", "e"]), ("", ["b", "d"])]


def test_a_chart_breaks_its_line_at_gaps_and_marks_lone_points() -> None:
    since = 1_800_000_000.0
    rows = [RollupRow("t", int(since) + 60 * i, 10.0 + i, 12.0 + i, 11.0 + i, 1) for i in (0, 1, 2, 30, 50, 51)]
    chart = build_chart("t", "°C", rows, since=since, until=since + 3600, period_s=60, hours=1, tz=SHANGHAI)
    assert len(chart.lines) == 2 and len(chart.bands) == 2 and len(chart.dots) == 1
    assert (chart.low, chart.high) == ("10", "63")
    assert [label for _x, label in chart.x_ticks] == ["16:00", "16:15", "16:30", "16:45", ""]  # 17:00: no room
    assert float(chart.y_ticks[0][0]) == pytest.approx(chart.plot[3])  # the lowest tick sits on the axis
    empty = build_chart("t", "", [], since=since, until=since + 3600, period_s=60, hours=1, tz=SHANGHAI)
    assert empty.low is None and not empty.lines and empty.x_ticks


def test_a_flat_series_still_gets_a_y_range() -> None:
    since = 1_800_000_000.0
    rows = [RollupRow("t", int(since) + 60 * i, 5.0, 5.0, 5.0, 2) for i in range(10)]
    chart = build_chart("t", "", rows, since=since, until=since + 3600, period_s=60, hours=1, tz=SHANGHAI)
    ys = [float(y) for y, _label in chart.y_ticks]
    assert len(ys) >= 2 and min(ys) < max(ys)


def test_a_week_is_merged_into_at_most_240_columns() -> None:
    since = 1_800_000_000.0
    rows = [RollupRow("t", int(since) + 60 * i, 1.0, 3.0, 2.0, 1) for i in range(24 * 60)]
    chart = build_chart("t", "", rows, since=since, until=since + 86400, period_s=60, hours=24, tz=SHANGHAI)
    assert len(chart.lines) == 1 and chart.lines[0].count("L") < 240


def test_a_clock_suspect_reading_is_flagged(site: Site) -> None:
    reading = Reading("printer-01", "progress", time.time(), 50.0, CLOCK_SUSPECT)
    site.feed(TelemetryIn("printer-01", "p1", 1, time.time(), (reading,), None))
    site.sign_in()
    assert 'class="flag" title="设备时钟可疑' in site.client.get("/").text
