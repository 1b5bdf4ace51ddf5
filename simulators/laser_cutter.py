"""CO2 laser cutters of the maker lab: powered in lab hours, lid opened to load, a cut, lid opened to unload.

Metrics: ``tube_temp`` (°C, water-cooled tube), ``water_flow_lpm`` (chiller flow, 0 when the machine is off),
``lid_open``, ``cutting`` and ``on_hours``, the powered time since boot (a running total).
"""

from __future__ import annotations

import enum

from simulators.model import DeviceContext, EventLog, Family, Metrics, Schedule
from simulators.signals import Walk, ambient_temperature, approach, chance, local_time, occupancy

#: Cuts a cutter starts per hour in a fully busy lab.
_CUTS_PER_BUSY_HOUR = 2.0


class _Phase(enum.Enum):
    OFF = "off"
    IDLE = "idle"
    LOADING = "loading"
    CUTTING = "cutting"
    UNLOADING = "unloading"


class LaserCutter(EventLog):
    """One cutter; the phase decides the lid, the beam and the heat the chiller has to carry away."""

    def __init__(self, context: DeviceContext) -> None:
        super().__init__()
        self._context = context
        self._rng = context.rng
        self._phase = _Phase.OFF
        self._phase_left_s = 0.0
        self._tube = 21.0
        self._flow = Walk(0.0, 0.0, 4.2, volatility=0.02, reversion=0.01)
        self._on_hours = 0.0

    def step(self, now: float, dt: float) -> Metrics:
        moment = local_time(now, self._context.timezone)
        busy = occupancy(self._context.schedule, moment)
        self._advance_phase(busy, dt)
        powered = self._phase is not _Phase.OFF
        if powered:
            self._on_hours += dt / 3600.0
            flow = self._flow.step(self._rng, dt, 3.0)
        else:
            flow = self._flow.value = 0.0
        room = ambient_temperature(moment, base=22.0)
        target = room - 2.0 + (7.0 if self._phase is _Phase.CUTTING else 0.5) if powered else room
        self._tube = approach(self._tube, target, dt, 180.0) + self._rng.gauss(0.0, 0.05)
        return {
            "tube_temp": round(self._tube, 1),
            "water_flow_lpm": round(flow, 2),
            "lid_open": self._phase in (_Phase.LOADING, _Phase.UNLOADING),
            "cutting": self._phase is _Phase.CUTTING,
            "on_hours": round(self._on_hours, 3),
        }

    def _advance_phase(self, busy: float, dt: float) -> None:
        """Walk the phases; one step may cover several of them when the simulation runs fast."""
        left = dt
        while left > 0:
            if self._phase is _Phase.OFF:
                if busy > 0:
                    self._phase = _Phase.IDLE
                return
            if self._phase is _Phase.IDLE:
                if busy == 0:
                    self._phase = _Phase.OFF
                elif chance(self._rng, busy * _CUTS_PER_BUSY_HOUR / 3600, left):
                    self._enter(_Phase.LOADING, self._rng.uniform(30, 120))
                return
            spent = min(left, self._phase_left_s)
            self._phase_left_s -= spent
            left -= spent
            if self._phase_left_s > 0:
                return
            if self._phase is _Phase.LOADING:
                self._enter(_Phase.CUTTING, self._rng.uniform(120, 1200))
            elif self._phase is _Phase.CUTTING:
                self.raise_event("job_done")
                self._enter(_Phase.UNLOADING, self._rng.uniform(30, 90))
            else:
                self._phase = _Phase.IDLE

    def _enter(self, phase: _Phase, seconds: float) -> None:
        self._phase = phase
        self._phase_left_s = seconds


FAMILY = Family(
    name="laser_cutter",
    description="CO2 laser cutter with a water chiller in a maker lab",
    units={"tube_temp": "°C", "water_flow_lpm": "L/min", "on_hours": "h"},
    metrics=frozenset({"tube_temp", "water_flow_lpm", "lid_open", "cutting", "on_hours"}),
    counters=frozenset({"on_hours"}),
    absurd={"tube_temp": 500.0, "water_flow_lpm": -12.0},
    default_interval_s=10.0,
    schedule=Schedule.LAB,
    firmware="ruida-6445-sim",
    build=LaserCutter,
)
