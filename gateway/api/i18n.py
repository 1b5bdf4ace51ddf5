"""The dashboard's words in zh-CN and English, and how times and values read in each.

In: a language tag (from ``?lang=``, the ``lang`` cookie or ``Accept-Language``), Unix times and metric values.
Out: a :class:`Translator` whose ``t(key)`` gives the page's words (the project's zh-CN glossary), and text for
absolute times in the site's time zone (``2026-12-03 14:05:09``), relative times ("3 分钟前" / "3 min ago"),
durations and values. Pure: no I/O, the clock and time zone are passed in.
"""

from __future__ import annotations

import math
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}

_STRINGS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "app_title": "校园物联网关",
        "overview": "设备状态",
        "device": "设备",
        "signin_title": "设备管理员登录",
        "signin_hint": "请输入网关的 API 令牌，或使用网关生成的一次性登录链接。",
        "token": "API 令牌",
        "signin": "登录",
        "signout": "退出登录",
        "wrong_token": "令牌不正确，请重新输入。",
        "bad_code": "此登录链接无效、已使用或已过期。请向管理员索取新链接，或输入令牌登录。",
        "writer_busy": "网关暂时无法处理登录，请稍后重试。",
        "cross_site": "登录请求来自其他网站，已拒绝。请在本页面登录。",
        "online": "在线",
        "offline": "离线",
        "unknown": "未知",
        "total": "设备总数",
        "no_room": "未分配",
        "no_devices": "尚无设备。设备发送第一条消息后会出现在这里。",
        "no_readings": "暂无数据",
        "for_duration": "已持续 {duration}",
        "never_seen": "尚未收到消息",
        "stale": "连接网关失败，显示的可能不是最新状态。",
        "updated": "更新于",
        "time_zone": "时区",
        "details": "详细信息",
        "type": "类型",
        "room": "房间",
        "device_id": "设备编号",
        "boot": "启动标识",
        "fw": "固件版本",
        "ip": "IP 地址",
        "first_seen": "首次出现",
        "last_seen": "最近消息",
        "state": "状态",
        "latest": "最新数值",
        "history": "历史曲线",
        "events": "最近事件",
        "no_events": "暂无事件",
        "hours_1": "1 小时",
        "hours_6": "6 小时",
        "hours_24": "24 小时",
        "hours_168": "7 天",
        "chart_caption": "平均值曲线，阴影为最小值至最大值",
        "chart_label": "{metric}：{range}，最小 {low}，最大 {high}",
        "not_found_title": "找不到设备",
        "not_found": "没有编号为 “{device}” 的设备。",
        "back": "返回设备状态",
        "clock_suspect": "设备时钟可疑，已按接收时间记录",
        "yes": "是",
        "no": "否",
        "retired": "已停用",
        "declared": "已登记",
        "discovered_device": "自动发现",
        "switch_language": "English",
        # device types
        "type.printer_3d": "3D 打印机",
        "type.laser_cutter": "激光切割机",
        "type.env_sensor": "环境传感器",
        "type.smart_socket": "智能插座",
        "type.classroom_display": "触控一体机",
        "type.people_counter": "人数统计器",
        "type.air_quality": "空气质量监测仪",
        "type.fitness_equipment": "智慧健身路径器材",
        "type.unknown": "未知类型",
        # device event kinds and causes
        "event.online": "上线",
        "event.offline": "离线",
        "event.reboot": "重启",
        "event.discovered": "发现新设备",
        "event.declared": "登记",
        "event.renamed": "改名",
        "event.moved": "更换房间",
        "event.retired": "停用",
        "event.event": "设备事件",
        "cause.status": "设备状态消息",
        "cause.telemetry": "收到数据",
        "cause.silent": "长时间无消息",
        "severity.critical": "紧急",
        "severity.major": "重要",
        "severity.minor": "次要",
        "severity.warning": "警告",
        "severity.info": "信息",
        # relative times and durations
        "just_now": "刚刚",
        "ago": "{amount}前",
        "in_future": "{amount}后",
        "unit.s": "{n} 秒",
        "unit.min": "{n} 分钟",
        "unit.h": "{n} 小时",
        "unit.d": "{n} 天",
    },
    "en": {
        "app_title": "Campus gateway",
        "overview": "Device status",
        "device": "Device",
        "signin_title": "Equipment manager sign-in",
        "signin_hint": "Enter the gateway's API token, or open a one-time sign-in link made by the gateway.",
        "token": "API token",
        "signin": "Sign in",
        "signout": "Sign out",
        "wrong_token": "That token is not right. Please try again.",
        "bad_code": "This sign-in link is not valid, already used or expired. Ask for a new link, or sign in "
                    "with the token.",
        "writer_busy": "The gateway cannot sign you in just now. Please try again in a moment.",
        "cross_site": "This sign-in came from another site and was refused. Please sign in on this page.",
        "online": "online",
        "offline": "offline",
        "unknown": "unknown",
        "total": "devices",
        "no_room": "No room",
        "no_devices": "No devices yet. A device shows up here after its first message.",
        "no_readings": "No data yet",
        "for_duration": "for {duration}",
        "never_seen": "no message yet",
        "stale": "Cannot reach the gateway: what you see may be out of date.",
        "updated": "Updated",
        "time_zone": "Time zone",
        "details": "Details",
        "type": "Type",
        "room": "Room",
        "device_id": "Device id",
        "boot": "Boot id",
        "fw": "Firmware",
        "ip": "IP address",
        "first_seen": "First seen",
        "last_seen": "Last message",
        "state": "State",
        "latest": "Latest values",
        "history": "History",
        "events": "Recent events",
        "no_events": "No events yet",
        "hours_1": "1 h",
        "hours_6": "6 h",
        "hours_24": "24 h",
        "hours_168": "7 days",
        "chart_caption": "Average line; the band spans minimum to maximum",
        "chart_label": "{metric}: {range}, min {low}, max {high}",
        "not_found_title": "Device not found",
        "not_found": "There is no device with id “{device}”.",
        "back": "Back to device status",
        "clock_suspect": "The device's clock looked wrong; stored with the receive time",
        "yes": "yes",
        "no": "no",
        "retired": "retired",
        "declared": "declared",
        "discovered_device": "discovered",
        "switch_language": "中文",
        "type.printer_3d": "3D printer",
        "type.laser_cutter": "Laser cutter",
        "type.env_sensor": "Environment sensor",
        "type.smart_socket": "Smart socket",
        "type.classroom_display": "Interactive touch display",
        "type.people_counter": "People counter",
        "type.air_quality": "Air quality monitor",
        "type.fitness_equipment": "Fitness path equipment",
        "type.unknown": "Unknown type",
        "event.online": "online",
        "event.offline": "offline",
        "event.reboot": "reboot",
        "event.discovered": "discovered",
        "event.declared": "declared",
        "event.renamed": "renamed",
        "event.moved": "moved",
        "event.retired": "retired",
        "event.event": "device event",
        "cause.status": "status message",
        "cause.telemetry": "data received",
        "cause.silent": "silent too long",
        "severity.critical": "critical",
        "severity.major": "major",
        "severity.minor": "minor",
        "severity.warning": "warning",
        "severity.info": "info",
        "just_now": "just now",
        "ago": "{amount} ago",
        "in_future": "in {amount}",
        "unit.s": "{n} s",
        "unit.min": "{n} min",
        "unit.h": "{n} h",
        "unit.d": "{n} d",
    },
}


def normalise_language(tag: str | None) -> str | None:
    """``zh``, ``zh-cn``, ``zh-Hans-CN`` → ``zh-CN``; ``en-GB`` → ``en``; anything else → ``None``."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return {"zh": "zh-CN", "en": "en"}.get(primary)


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most, by ``q`` weight then order."""
    if not header:
        return None
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        language = normalise_language(tag)
        if language is not None and weight > 0 and math.isfinite(weight):
            choices.append((-weight, index, language))
    return min(choices)[2] if choices else None


def choose_language(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    return (normalise_language(query) or normalise_language(cookie) or from_accept_language(accept_language)
            or DEFAULT_LANGUAGE)


def format_time(ts: float, tz: zoneinfo.ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def format_number(value: float) -> str:
    """Up to four significant digits after the point for small values, none wasted: 21.5, 0.0123, 1234.5."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    digits = 1 if abs(value) >= 100 else 2 if abs(value) >= 1 else 4
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class Translator:
    language: str

    def t(self, key: str, **fields: object) -> str:
        words = _STRINGS[self.language]
        text = words.get(key) or _STRINGS["en"].get(key) or key
        return text.format(**fields) if fields else text

    def has(self, key: str) -> bool:
        return key in _STRINGS[self.language]

    def label(self, prefix: str, value: str) -> str:
        """A known word for ``prefix.value`` (a device type, event kind, cause), else the raw value."""
        key = f"{prefix}.{value}"
        return self.t(key) if self.has(key) else value

    def duration(self, seconds: float) -> str:
        """The largest whole unit: ``45 秒``, ``3 分钟``, ``5 小时``, ``2 天``."""
        seconds = max(0.0, seconds)
        for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
            if seconds >= size:
                return self.t(f"unit.{unit}", n=int(seconds // size))
        return self.t("unit.s", n=int(seconds))

    def relative(self, ts: float, now: float) -> str:
        delta = now - ts
        if abs(delta) < 5:
            return self.t("just_now")
        if delta < 0:
            return self.t("in_future", amount=self.duration(-delta))
        return self.t("ago", amount=self.duration(delta))

    def value(self, value: object) -> str:
        if isinstance(value, bool):
            return self.t("yes") if value else self.t("no")
        if isinstance(value, int | float):
            return format_number(float(value))
        return str(value)
