"""Normalise: contract messages in, :class:`Reading` objects out.

A reading is one value of one metric of one device at one time, with a quality bitmask. The MQTT contract has
already replaced an impossible ``ts`` by the receive time; here that becomes the ``CLOCK_SUSPECT`` quality bit,
so the reading is stored and shown, flagged, never dropped.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.contracts import MetricValue, Telemetry

#: Quality bits. 0 is a good reading.
GOOD = 0
CLOCK_SUSPECT = 1

QUALITY_NAMES = {CLOCK_SUSPECT: "clock_suspect"}


class Reading(NamedTuple):
    """Immutable; a tuple because the ingest thread makes one per metric of every message."""

    device: str
    metric: str
    ts: float
    value: MetricValue
    quality: int = GOOD


def quality_of(telemetry: Telemetry) -> int:
    return CLOCK_SUSPECT if telemetry.clock_suspect else GOOD


def to_readings(telemetry: Telemetry) -> tuple[Reading, ...]:
    quality = CLOCK_SUSPECT if telemetry.clock_suspect else GOOD
    device, ts = telemetry.device, telemetry.ts
    return tuple([Reading(device, metric, ts, value, quality) for metric, value in telemetry.metrics.items()])


def quality_labels(quality: int) -> list[str]:
    return [name for bit, name in QUALITY_NAMES.items() if quality & bit]
