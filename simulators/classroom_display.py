"""Interactive touch displays (触控一体机) of the smart classrooms: on for lessons, standby otherwise.

Metrics: ``power_w`` (W), ``on_hours`` (hours switched on since boot, a running total), ``panel_temp`` (°C),
``fault_code`` (0 = no fault) and ``input`` (the source shown, ``standby`` when off). A fault raises a ``major``
event when it appears and an ``info`` event when it clears.
"""

from __future__ import annotations

from simulators.model import DeviceContext, EventLog, Family, Metrics, Schedule
from simulators.signals import Walk, ambient_temperature, approach, chance, local_time, occupancy

_INPUTS = ("ops", "ops", "ops", "hdmi1", "hdmi2", "usb-c", "whiteboard")
#: Fault codes of the panel's service menu.
_FAULTS = {2: "touch frame not responding", 5: "OPS module not detected", 7: "panel over temperature"}
_FAULTS_PER_ON_HOUR = 1 / 80
_STANDBY_W = 0.5


class ClassroomDisplay(EventLog):
    """One display: switched on when a lesson starts, sometimes left on over a break."""

    def __init__(self, context: DeviceContext) -> None:
        super().__init__()
        self._context = context
        self._rng = context.rng
        self._on: bool | None = None  # set from the timetable at the first step
        self._input = "ops"
        self._power = Walk(context.rng.uniform(170, 230), 140.0, 290.0, volatility=1.0, reversion=0.01)
        self._panel = 24.0
        self._on_hours = 0.0
        self._fault = 0
        self._fault_left_s = 0.0

    def step(self, now: float, dt: float) -> Metrics:
        moment = local_time(now, self._context.timezone)
        wanted = occupancy(self._context.schedule, moment) >= 0.5
        if self._on is None or (wanted != self._on and chance(self._rng, 1 / 120, dt)):
            self._on = wanted
            if wanted:
                self._input = self._rng.choice(_INPUTS)
        if self._on:
            self._on_hours += dt / 3600.0
            if chance(self._rng, 1 / 1200, dt):
                self._input = self._rng.choice(_INPUTS)
        self._update_fault(dt)
        power = self._power.step(self._rng, dt, 200.0) if self._on else _STANDBY_W
        room = ambient_temperature(moment)
        self._panel = approach(self._panel, room + (14.0 if self._on else 0.0), dt, 600.0)
        return {
            "power_w": round(power, 1),
            "on_hours": round(self._on_hours, 3),
            "panel_temp": round(self._panel + self._rng.gauss(0.0, 0.1), 1),
            "fault_code": self._fault,
            "input": self._input if self._on else "standby",
        }

    def _update_fault(self, dt: float) -> None:
        if self._fault:
            self._fault_left_s -= dt
            if self._fault_left_s <= 0:
                self.raise_event("display_fault_cleared", message=f"fault {self._fault} cleared")
                self._fault = 0
        elif self._on and chance(self._rng, _FAULTS_PER_ON_HOUR / 3600, dt):
            self._fault = self._rng.choice(sorted(_FAULTS))
            self._fault_left_s = self._rng.uniform(60, 900)
            self.raise_event(f"display_fault_{self._fault}", "major", _FAULTS[self._fault])


FAMILY = Family(
    name="classroom_display",
    description="Interactive touch display (触控一体机) in a smart classroom",
    units={"power_w": "W", "on_hours": "h", "panel_temp": "°C"},
    metrics=frozenset({"power_w", "on_hours", "panel_temp", "fault_code", "input"}),
    counters=frozenset({"on_hours"}),
    absurd={"panel_temp": 500.0, "power_w": -250.0},
    default_interval_s=30.0,
    schedule=Schedule.CLASSROOM,
    firmware="display-os-3.2-sim",
    build=ClassroomDisplay,
)
