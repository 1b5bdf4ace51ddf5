"""Payloads of MQTT contract v1: parse bytes from the wire into typed messages, or say exactly why not.

Every parse function either returns a frozen message object or raises :class:`ContractError` with a
:class:`RejectReason`; the ingest stage turns the error into a dead letter. Nothing here does I/O or reads the
clock: the receive time is passed in.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.contracts.topics import METRIC_NAME_PATTERN

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_STRING_CHARS = 256
MAX_BOOT_CHARS = 16
MAX_CODE_CHARS = 64
MAX_MESSAGE_CHARS = 1024
MAX_DEPTH = 16
MAX_SAFE_INTEGER = 2**53
#: A ``ts`` before this (2020-01-01T00:00:00Z) comes from a device without a clock.
EARLIEST_TS = 1_577_836_800.0
#: A ``ts`` more than this many seconds ahead of the receive time is wrong (milliseconds sent as seconds, ...).
MAX_CLOCK_AHEAD_S = 300.0
SEVERITIES = ("critical", "major", "minor", "warning", "info")

MetricValue = float | int | bool | str

_METRIC_NAME = re.compile(METRIC_NAME_PATTERN)


class RejectReason(enum.StrEnum):
    """Why a message failed the contract; the label of ``campusgw_messages_rejected_total``."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    MALFORMED_JSON = "malformed_json"
    NOT_OBJECT = "not_object"
    TOO_DEEP = "too_deep"
    NON_FINITE = "non_finite"
    INTEGER_OUT_OF_RANGE = "integer_out_of_range"
    NESTED_VALUE = "nested_value"
    STRING_TOO_LONG = "string_too_long"
    BAD_TOPIC = "bad_topic"
    BAD_DEVICE_ID = "bad_device_id"
    BAD_METRIC_NAME = "bad_metric_name"
    MISSING_METRICS = "missing_metrics"
    EMPTY_METRICS = "empty_metrics"
    BAD_TS = "bad_ts"
    BAD_IDENTITY = "bad_identity"
    BAD_STATE = "bad_state"
    BAD_EVENT = "bad_event"
    DISCOVERY_CAP = "discovery_cap"
    DEVICE_RETIRED = "device_retired"


class ContractError(ValueError):
    """A message that breaks the contract; ``reason`` is machine-readable, the message says what was wrong."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One telemetry message: a set of metrics measured at one time by one device."""

    device: str
    metrics: Mapping[str, MetricValue]
    ts: float
    clock_suspect: bool
    boot: str | None
    seq: int | None

    @property
    def has_identity(self) -> bool:
        return self.boot is not None and self.seq is not None


@dataclass(frozen=True, slots=True)
class Status:
    """A presence announcement, retained on the broker and also the device's last will."""

    device: str
    online: bool
    ts: float
    clock_suspect: bool
    boot: str | None
    fw: str | None
    ip: str | None


@dataclass(frozen=True, slots=True)
class Event:
    """Something a device reports about itself: a fault code, a door opened, a reboot reason."""

    device: str
    code: str
    severity: str
    message: str
    ts: float
    clock_suspect: bool
    boot: str | None
    seq: int | None


def _reject_constant(name: str) -> float:
    raise ContractError(RejectReason.NON_FINITE, f"{name} is not a finite number")


#: One decoder for every message (``json.loads`` with an option builds a new one on each call).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
#: Metric names already checked against the pattern; bounded, since publishers choose the names.
_GOOD_METRIC_NAMES: set[str] = set()
_GOOD_METRIC_NAMES_MAX = 4096


def _decode_object(payload: bytes | bytearray) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(RejectReason.TOO_LARGE, f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(RejectReason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}") from None
    try:
        document = _DECODER.decode(text)
    except ContractError:
        raise
    except RecursionError:
        raise ContractError(RejectReason.TOO_DEEP, f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise ContractError(RejectReason.MALFORMED_JSON, f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # an integer literal too long for int()
        raise ContractError(RejectReason.MALFORMED_JSON, str(exc)) from None
    if not isinstance(document, dict):
        raise ContractError(RejectReason.NOT_OBJECT, f"payload is a JSON {type(document).__name__}, not an object")
    return document


def _depth(value: object, limit: int) -> int:
    """Nesting depth of a JSON value, counting stops once it passes ``limit``."""
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((_depth(item, limit - 1) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item, limit - 1) for item in value), default=0)
    return 0


_KNOWN_KEYS = frozenset({"metrics", "ts", "boot", "seq", "state", "fw", "ip", "code", "severity", "message"})
_TELEMETRY_KEYS = frozenset({"metrics", "ts", "boot", "seq"})


def _check_extra_keys(document: dict[str, Any]) -> None:
    for key, value in document.items():
        if key not in _KNOWN_KEYS and isinstance(value, dict | list) and _depth(value, MAX_DEPTH) >= MAX_DEPTH:
            raise ContractError(RejectReason.TOO_DEEP, f"key {key!r} is nested deeper than {MAX_DEPTH} levels")


def _check_number(name: str, value: float | int) -> None:
    if type(value) is float:
        if not math.isfinite(value):
            raise ContractError(RejectReason.NON_FINITE, f"{name} is not a finite number")
    elif not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ContractError(RejectReason.INTEGER_OUT_OF_RANGE, f"{name} is an integer beyond ±2^53")


def _timestamp(document: dict[str, Any], received: float) -> tuple[float, bool]:
    """The message time and whether it was replaced because the device's clock cannot be right."""
    ts = document.get("ts")
    if ts is None:
        return received, False
    if type(ts) is bool or not isinstance(ts, int | float):
        raise ContractError(RejectReason.BAD_TS, f"ts must be a number of seconds, got {type(ts).__name__}")
    if type(ts) is float and not math.isfinite(ts):
        raise ContractError(RejectReason.NON_FINITE, "ts is not a finite number")
    if ts < EARLIEST_TS or ts > received + MAX_CLOCK_AHEAD_S:
        return received, True
    return float(ts), False


def _identity(document: dict[str, Any]) -> tuple[str | None, int | None]:
    boot = document.get("boot")
    seq = document.get("seq")
    if boot is not None and (type(boot) is not str or not 0 < len(boot) <= MAX_BOOT_CHARS):
        raise ContractError(RejectReason.BAD_IDENTITY, f"boot must be a string of 1 to {MAX_BOOT_CHARS} characters")
    if seq is not None:
        if type(seq) is not int or seq < 0:
            raise ContractError(RejectReason.BAD_IDENTITY, "seq must be a non-negative integer")
        if seq > MAX_SAFE_INTEGER:
            raise ContractError(RejectReason.INTEGER_OUT_OF_RANGE, "seq is an integer beyond 2^53")
    return boot, seq


def _optional_text(document: dict[str, Any], key: str, limit: int, reason: RejectReason) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise ContractError(reason, f"{key} must be a string")
    if len(value) > limit:
        raise ContractError(RejectReason.STRING_TOO_LONG, f"{key} is longer than {limit} characters")
    return value


def _metrics(document: dict[str, Any]) -> dict[str, MetricValue]:
    if "metrics" not in document:
        raise ContractError(RejectReason.MISSING_METRICS, "no metrics object")
    metrics = document["metrics"]
    if not isinstance(metrics, dict):
        raise ContractError(RejectReason.MISSING_METRICS, f"metrics is a {type(metrics).__name__}, not an object")
    if not metrics:
        raise ContractError(RejectReason.EMPTY_METRICS, "metrics is empty")
    good_names = _GOOD_METRIC_NAMES
    for name, value in metrics.items():
        if name not in good_names:
            if _METRIC_NAME.fullmatch(name) is None:
                raise ContractError(
                    RejectReason.BAD_METRIC_NAME, f"metric name {name[:80]!r} is not [a-z][a-z0-9_.]{{0,63}}"
                )
            if len(good_names) < _GOOD_METRIC_NAMES_MAX:
                good_names.add(name)
        kind = type(value)
        if kind is float or kind is int:
            _check_number(f"metric {name}", value)
        elif kind is str:
            if len(value) > MAX_STRING_CHARS:
                raise ContractError(RejectReason.STRING_TOO_LONG, f"metric {name} is longer than {MAX_STRING_CHARS}")
        elif kind is dict or kind is list:
            raise ContractError(RejectReason.NESTED_VALUE, f"metric {name} is a nested {kind.__name__}")
        elif kind is not bool:
            raise ContractError(RejectReason.NESTED_VALUE, f"metric {name} is null")
    return metrics


def parse_telemetry(device: str, payload: bytes | bytearray, received: float) -> Telemetry:
    """Parse a ``telemetry`` payload received at ``received`` (Unix seconds)."""
    document = _decode_object(payload)
    metrics = _metrics(document)
    ts, clock_suspect = _timestamp(document, received)
    boot, seq = _identity(document)
    if not document.keys() <= _TELEMETRY_KEYS:
        _check_extra_keys(document)
    return Telemetry(device, metrics, ts, clock_suspect, boot, seq)


def parse_status(device: str, payload: bytes | bytearray, received: float) -> Status:
    """Parse a ``status`` payload (retained, and the device's last will)."""
    document = _decode_object(payload)
    state = document.get("state")
    if state not in ("online", "offline"):
        raise ContractError(RejectReason.BAD_STATE, f"state must be 'online' or 'offline', got {str(state)[:40]!r}")
    ts, clock_suspect = _timestamp(document, received)
    boot = _optional_text(document, "boot", MAX_BOOT_CHARS, RejectReason.BAD_IDENTITY)
    fw = _optional_text(document, "fw", 64, RejectReason.BAD_STATE)
    ip = _optional_text(document, "ip", 64, RejectReason.BAD_STATE)
    _check_extra_keys(document)
    return Status(device, state == "online", ts, clock_suspect, boot, fw, ip)


def parse_event(device: str, payload: bytes | bytearray, received: float) -> Event:
    """Parse an ``event`` payload: a code, with an optional severity and message."""
    document = _decode_object(payload)
    code = _optional_text(document, "code", MAX_CODE_CHARS, RejectReason.BAD_EVENT)
    if not code:
        raise ContractError(RejectReason.BAD_EVENT, "event has no code")
    severity = document.get("severity", "info")
    if severity not in SEVERITIES:
        raise ContractError(RejectReason.BAD_EVENT, f"severity must be one of {', '.join(SEVERITIES)}")
    message = _optional_text(document, "message", MAX_MESSAGE_CHARS, RejectReason.BAD_EVENT) or ""
    ts, clock_suspect = _timestamp(document, received)
    boot, seq = _identity(document)
    _check_extra_keys(document)
    return Event(device, code, severity, message, ts, clock_suspect, boot, seq)


def _compact(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode_telemetry(
    metrics: Mapping[str, MetricValue], *, ts: float | None = None, boot: str | None = None, seq: int | None = None
) -> bytes:
    """The wire form of a telemetry message, as devices and simulators send it."""
    document: dict[str, Any] = {"metrics": dict(metrics)}
    if ts is not None:
        document["ts"] = ts
    if boot is not None:
        document["boot"] = boot
    if seq is not None:
        document["seq"] = seq
    return _compact(document)


def encode_status(
    online: bool, *, ts: float | None = None, boot: str | None = None, fw: str | None = None, ip: str | None = None
) -> bytes:
    document: dict[str, Any] = {"state": "online" if online else "offline"}
    for key, value in (("ts", ts), ("boot", boot), ("fw", fw), ("ip", ip)):
        if value is not None:
            document[key] = value
    return _compact(document)


def encode_event(
    code: str,
    *,
    severity: str = "info",
    message: str = "",
    ts: float | None = None,
    boot: str | None = None,
    seq: int | None = None,
) -> bytes:
    document: dict[str, Any] = {"code": code, "severity": severity}
    if message:
        document["message"] = message
    for key, value in (("ts", ts), ("boot", boot), ("seq", seq)):
        if value is not None:
            document[key] = value
    return _compact(document)
