"""Payloads of MQTT contract v1, as a device builds them: compact UTF-8 JSON, checked before they leave.

A node never sends what the gateway would dead-letter: every builder checks names, values, ``boot`` and ``seq``
against the contract and raises :class:`PayloadError` naming the field. Pure: no clock, no I/O.
"""

import json

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_STRING_CHARS = 256
MAX_BOOT_CHARS = 16
MAX_CODE_CHARS = 64
MAX_MESSAGE_CHARS = 1024
MAX_SAFE_INTEGER = 9007199254740992  # 2**53
#: 2020-01-01T00:00:00Z: the gateway replaces any earlier ``ts``; a node never sends one.
EARLIEST_TS = 1577836800
SEVERITIES = ("critical", "major", "minor", "warning", "info")
DIRECTIONS = ("in", "out")

_INF = float("inf")
_NAME_FIRST = "abcdefghijklmnopqrstuvwxyz"
_NAME_REST = _NAME_FIRST + "0123456789_."


class PayloadError(ValueError):
    """A message this node must not send: the text names the field and what is wrong with it."""


def is_metric_name(name: object) -> bool:
    """``[a-z][a-z0-9_.]{0,63}``."""
    if not isinstance(name, str) or not 0 < len(name) <= 64 or name[0] not in _NAME_FIRST:
        return False
    for char in name[1:]:
        if char not in _NAME_REST:
            return False
    return True


def is_finite(value: float) -> bool:
    return value == value and value != _INF and value != -_INF


def check_value(name: str, value: object) -> None:
    """A metric value: finite number (integers within ±2^53), bool, or a string of at most 256 characters."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise PayloadError("metric " + name + " is an integer beyond 2^53")
        return
    if isinstance(value, float):
        if not is_finite(value):
            raise PayloadError("metric " + name + " is not a finite number")
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise PayloadError("metric " + name + " is longer than " + str(MAX_STRING_CHARS) + " characters")
        return
    raise PayloadError("metric " + name + " must be a number, bool or string, not " + type(value).__name__)


def check_metrics(metrics: dict) -> None:
    if not isinstance(metrics, dict) or not metrics:
        raise PayloadError("metrics must be a non-empty object")
    for name, value in metrics.items():
        if not is_metric_name(name):
            raise PayloadError("metric name " + repr(name) + " is not [a-z][a-z0-9_.]{0,63}")
        check_value(name, value)


def check_identity(boot: str | None, seq: int | None) -> None:
    if boot is not None and (not isinstance(boot, str) or not 0 < len(boot) <= MAX_BOOT_CHARS):
        raise PayloadError("boot must be a string of 1 to 16 characters")
    if seq is not None and (
        isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SAFE_INTEGER
    ):
        raise PayloadError("seq must be an integer from 0 to 2^53")


def check_ts(ts: int | float | None) -> None:
    """A ``ts`` a node sends is Unix seconds after 2020: an unset clock sends no ``ts`` at all."""
    if ts is None:
        return
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not is_finite(ts):
        raise PayloadError("ts must be a finite number of Unix seconds")
    if ts < EARLIEST_TS:
        raise PayloadError("ts " + str(ts) + " is before 2020: the clock is not set")


def _text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise PayloadError(name + " must be a string")
    if len(value) > limit:
        raise PayloadError(name + " is longer than " + str(limit) + " characters")
    return value


def encode(document: dict) -> bytes:
    """Compact JSON, UTF-8; at most 64 KiB."""
    try:
        text = json.dumps(document, separators=(",", ":"))
    except TypeError:  # a MicroPython build without separators support
        text = json.dumps(document)
    data = text.encode("utf-8")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError("payload of " + str(len(data)) + " bytes exceeds 64 KiB")
    return data


def _identity(document: dict, ts: int | float | None, boot: str | None, seq: int | None) -> dict:
    check_ts(ts)
    check_identity(boot, seq)
    if ts is not None:
        document["ts"] = ts
    if boot is not None:
        document["boot"] = boot
    if seq is not None:
        document["seq"] = seq
    return document


def telemetry(metrics: dict, ts: int | float | None = None, boot: str | None = None, seq: int | None = None) -> bytes:
    """``campus/{site}/{device}/telemetry``: ``{"metrics": {...}, "ts", "boot", "seq"}``."""
    check_metrics(metrics)
    return encode(_identity({"metrics": metrics}, ts, boot, seq))


def status(
    online: bool, ts: int | float | None = None, boot: str | None = None, fw: str | None = None, ip: str | None = None
) -> bytes:
    """``campus/{site}/{device}/status`` (retained; with ``online=False`` also the last will)."""
    document = _identity({"state": "online" if online else "offline"}, ts, boot, None)
    if fw is not None:
        document["fw"] = _text("fw", fw, 64)
    if ip is not None:
        document["ip"] = _text("ip", ip, 64)
    return encode(document)


def event(
    code: str,
    severity: str = "info",
    message: str = "",
    ts: int | float | None = None,
    boot: str | None = None,
    seq: int | None = None,
) -> bytes:
    """``campus/{site}/{device}/event``: a code with a severity and an optional message."""
    if not _text("code", code, MAX_CODE_CHARS):
        raise PayloadError("event code must not be empty")
    if severity not in SEVERITIES:
        raise PayloadError("severity must be one of " + ", ".join(SEVERITIES))
    document = {"code": code, "severity": severity}
    if message:
        document["message"] = _text("message", message, MAX_MESSAGE_CHARS)
    return encode(_identity(document, ts, boot, seq))


def gate_scan(code: str, scan_id: str, ts: int | float | None = None, direction: str | None = None) -> bytes:
    """``campus/{site}/gate/{gate}/scan``: the scanned text and the reader's own id for this scan."""
    document: dict = {"code": _text("code", code, 4096), "scan_id": _text("scan_id", scan_id, 64)}
    if not scan_id:
        raise PayloadError("scan_id must not be empty")
    check_ts(ts)
    if ts is not None:
        document["ts"] = ts
    if direction is not None:
        if direction not in DIRECTIONS:
            raise PayloadError("direction must be 'in' or 'out'")
        document["direction"] = direction
    return encode(document)


def gate_passage(scan_id: str, passed: bool) -> bytes:
    """``campus/{site}/gate/{gate}/passage``: whether the person whose scan opened the gate went through."""
    if not isinstance(passed, bool):
        raise PayloadError("passed must be a bool")
    return encode({"scan_id": _text("scan_id", scan_id, 64), "passed": passed})


def boot_id(entropy: bytes) -> str:
    """A boot id from at least 6 random bytes: 12 lowercase hex characters."""
    if len(entropy) < 6:
        raise ValueError("a boot id needs 6 random bytes")
    return "".join("%02x" % byte for byte in entropy[:6])
