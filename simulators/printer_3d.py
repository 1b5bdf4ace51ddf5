"""3D printers of the maker lab: heat up, print a job for minutes to hours, cool down, wait for the next student.

Metrics: ``nozzle_temp`` and ``bed_temp`` (°C), ``progress`` (% of the current or last job), ``printing``,
``job`` (file name, empty when none has run) and ``filament_used_mm``, a running total since boot.
"""

from __future__ import annotations

import enum

from simulators.model import DeviceContext, EventLog, Family, Metrics, Schedule
from simulators.signals import Walk, ambient_temperature, approach, chance, local_time, occupancy

_JOBS = (
    "phone_stand.gcode",
    "gear_set_m2.gcode",
    "bridge_test.gcode",
    "robot_arm_link3.gcode",
    "name_tags_class3.gcode",
    "solar_car_chassis.gcode",
    "keychain_batch.gcode",
    "dna_helix_model.gcode",
)
#: (nozzle °C, bed °C) by material.
_MATERIALS = ((210.0, 60.0), (215.0, 55.0), (240.0, 80.0))
#: Jobs a printer starts per hour in a fully busy lab.
_JOBS_PER_BUSY_HOUR = 1.2


class _Phase(enum.Enum):
    IDLE = "idle"
    HEATING = "heating"
    PRINTING = "printing"
    COOLING = "cooling"


class Printer3D(EventLog):
    """One FDM printer: a small state machine with first-order heaters."""

    def __init__(self, context: DeviceContext) -> None:
        super().__init__()
        self._context = context
        self._rng = context.rng
        self._phase = _Phase.IDLE
        self._nozzle = 24.0
        self._bed = 24.0
        self._targets = (0.0, 0.0)
        self._job = ""
        self._progress = 0.0
        self._job_seconds = 3600.0
        self._feed_mm_s = 1.0
        self._filament_mm = 0.0
        self._ripple = Walk(0.0, -1.5, 1.5, volatility=0.15, reversion=0.05)

    def step(self, now: float, dt: float) -> Metrics:
        moment = local_time(now, self._context.timezone)
        room = ambient_temperature(moment, base=23.0)
        if self._phase is _Phase.IDLE and chance(
            self._rng, occupancy(self._context.schedule, moment) * _JOBS_PER_BUSY_HOUR / 3600, dt
        ):
            self._start_job()
        if self._phase is _Phase.PRINTING:
            self._print(dt)
        heating = self._phase in (_Phase.HEATING, _Phase.PRINTING)
        nozzle_target, bed_target = self._targets if heating else (room, room)
        self._nozzle = approach(self._nozzle, nozzle_target, dt, 35.0)
        self._bed = approach(self._bed, bed_target, dt, 120.0)
        if self._phase is _Phase.HEATING and nozzle_target - self._nozzle < 3 and bed_target - self._bed < 3:
            self._phase = _Phase.PRINTING
        elif self._phase is _Phase.COOLING and self._nozzle < 50:
            self._phase = _Phase.IDLE
        ripple = self._ripple.step(self._rng, dt, 0.0) if heating else 0.0
        return {
            "nozzle_temp": round(self._nozzle + ripple, 1),
            "bed_temp": round(self._bed + ripple / 3, 1),
            "progress": round(self._progress, 1),
            "printing": self._phase is _Phase.PRINTING,
            "job": self._job,
            "filament_used_mm": round(self._filament_mm, 1),
        }

    def _start_job(self) -> None:
        self._job = self._rng.choice(_JOBS)
        self._targets = self._rng.choice(_MATERIALS)
        self._job_seconds = self._rng.uniform(15 * 60, 3 * 3600)
        self._feed_mm_s = self._rng.uniform(0.8, 2.0)
        self._progress = 0.0
        self._phase = _Phase.HEATING
        self.raise_event("job_started", message=self._job)

    def _print(self, dt: float) -> None:
        remaining = (100.0 - self._progress) / 100.0 * self._job_seconds
        printed = min(dt, remaining)
        self._progress = min(100.0, self._progress + printed / self._job_seconds * 100.0)
        self._filament_mm += printed * self._feed_mm_s
        if self._progress >= 100.0:
            self._phase = _Phase.COOLING
            self.raise_event("job_done", message=self._job)
        elif chance(self._rng, 0.02 / 3600, printed):
            self._phase = _Phase.COOLING
            self.raise_event("filament_runout", "minor", f"{self._job} stopped at {self._progress:.0f} %")


FAMILY = Family(
    name="printer_3d",
    description="FDM 3D printer in a maker lab",
    units={"nozzle_temp": "°C", "bed_temp": "°C", "progress": "%", "filament_used_mm": "mm"},
    metrics=frozenset({"nozzle_temp", "bed_temp", "progress", "printing", "job", "filament_used_mm"}),
    counters=frozenset({"filament_used_mm"}),
    absurd={"nozzle_temp": 650.0, "bed_temp": -273.0, "progress": 250.0},
    default_interval_s=10.0,
    schedule=Schedule.LAB,
    firmware="marlin-2.1.2-sim",
    build=Printer3D,
)
