"""What a device family is: its metrics, units, counters and a model that makes the values change.

A family module (``printer_3d``, ``env_sensor``, ...) defines one :class:`Family`. Its model is pure: it is
stepped with the simulated clock and returns the metrics a real device of that kind would send; it never does I/O
and never reads the clock itself. A reboot builds a fresh model, so running totals start again from 0.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from gateway.contracts import MetricValue

Metrics = dict[str, MetricValue]


class Schedule(enum.StrEnum):
    """When people are around a device, which drives occupancy-dependent values."""

    CLASSROOM = "classroom"
    LAB = "lab"
    VENUE = "venue"
    FITNESS_PATH = "fitness_path"


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something a device reports about itself on its ``event`` topic."""

    code: str
    severity: str = "info"
    message: str = ""


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """What a model knows about the device it simulates; ``rng`` is the device's own random stream."""

    device: str
    room: str
    schedule: Schedule
    timezone: ZoneInfo
    rng: random.Random


class DeviceModel(Protocol):
    """The changing state of one device; ``now`` is simulated Unix time, ``dt`` simulated seconds since last step."""

    def step(self, now: float, dt: float) -> Metrics: ...

    def take_events(self) -> list[DeviceEvent]: ...


class EventLog:
    """Events a model raised since the runner last took them (a model raises a handful per hour at most)."""

    def __init__(self) -> None:
        self._events: list[DeviceEvent] = []

    def raise_event(self, code: str, severity: str = "info", message: str = "") -> None:
        self._events.append(DeviceEvent(code, severity, message))

    def take_events(self) -> list[DeviceEvent]:
        events, self._events = self._events, []
        return events


@dataclass(frozen=True, slots=True)
class Family:
    """One kind of device: the ``type`` the gateway declares it with, and how to simulate it.

    ``metrics`` is the exact set of names every telemetry message carries; ``counters`` are running totals that
    never decrease within one boot; ``absurd`` are the values an ``out_of_range`` fault sends.
    """

    name: str
    description: str
    units: Mapping[str, str]
    metrics: frozenset[str]
    counters: frozenset[str]
    absurd: Mapping[str, MetricValue]
    default_interval_s: float
    schedule: Schedule
    firmware: str
    build: Callable[[DeviceContext], DeviceModel]
