"""Fault kinds a scenario can schedule for a device, and the malformed payloads a ``garbage`` fault sends.

Window faults last ``duration`` scenario seconds: ``offline`` (silence, and the device's status turns offline),
``stuck`` (the last values repeat), ``out_of_range`` (absurd but well-formed values) and ``garbage`` (payloads
that break the contract). Instant faults happen at one moment: ``burst`` (many messages as fast as possible) and
``reboot`` (a new boot id, seq from 0, running totals from 0, optionally after some ``downtime``).
"""

from __future__ import annotations

import enum
import json
import random
import time

from gateway.contracts import MAX_PAYLOAD_BYTES


class FaultKind(enum.StrEnum):
    OFFLINE = "offline"
    STUCK = "stuck"
    OUT_OF_RANGE = "out_of_range"
    GARBAGE = "garbage"
    BURST = "burst"
    REBOOT = "reboot"


#: Faults that last for a ``duration``; the others happen at one moment.
WINDOW_FAULTS = frozenset({FaultKind.OFFLINE, FaultKind.STUCK, FaultKind.OUT_OF_RANGE, FaultKind.GARBAGE})


class Garbage(enum.StrEnum):
    """Ways a broken firmware mangles a telemetry payload; each one fails ``parse_telemetry``."""

    BAD_JSON = "bad_json"
    NAN = "nan"
    NESTED = "nested"
    INVALID_UTF8 = "invalid_utf8"
    NOT_OBJECT = "not_object"
    EMPTY_METRICS = "empty_metrics"
    NULL_METRIC = "null_metric"
    BAD_METRIC_NAME = "bad_metric_name"
    BAD_TS = "bad_ts"
    HUGE_INTEGER = "huge_integer"
    LONG_STRING = "long_string"
    BAD_BOOT = "bad_boot"
    TOO_LARGE = "too_large"


def garbage_payload(variant: Garbage, metric: str, rng: random.Random, *, ts: float | None = None) -> bytes:
    """A malformed telemetry payload of one ``variant``, built around one of the device's metric names."""
    ts = round(time.time() if ts is None else ts, 3)
    value = round(rng.uniform(10, 40), 1)
    if variant is Garbage.BAD_JSON:
        return f'{{"metrics":{{"{metric}":{value},'.encode()
    if variant is Garbage.NAN:
        return f'{{"metrics":{{"{metric}":NaN}},"ts":{ts}}}'.encode()
    if variant is Garbage.INVALID_UTF8:
        return b'{"metrics":{"' + metric.encode() + b'":"\xff\xfe\xc3"},"ts":' + str(ts).encode() + b"}"
    if variant is Garbage.NOT_OBJECT:
        return json.dumps([metric, value, ts]).encode()
    if variant is Garbage.TOO_LARGE:
        padding = "x" * (MAX_PAYLOAD_BYTES + 1024)
        return json.dumps({"metrics": {metric: value}, "ts": ts, "debug": padding}).encode()
    document: dict[str, object] = {"metrics": {metric: value}, "ts": ts}
    if variant is Garbage.NESTED:
        document["metrics"] = {metric: {"value": value, "unit": "raw"}}
    elif variant is Garbage.EMPTY_METRICS:
        document["metrics"] = {}
    elif variant is Garbage.NULL_METRIC:
        document["metrics"] = {metric: None}
    elif variant is Garbage.BAD_METRIC_NAME:
        document["metrics"] = {metric.upper() + " (raw)": value}
    elif variant is Garbage.BAD_TS:
        document["ts"] = "yesterday"
    elif variant is Garbage.HUGE_INTEGER:
        document["metrics"] = {metric: 2**60 + rng.randrange(1000)}
    elif variant is Garbage.LONG_STRING:
        document["metrics"] = {metric: "?" * 300}
    elif variant is Garbage.BAD_BOOT:
        document["boot"] = "boot-id-far-too-long-for-the-contract"
        document["seq"] = 0
    return json.dumps(document).encode()
