"""Smart sockets in classrooms and labs: a relay the school switches off out of hours, and a metered load.

Metrics: ``power_w`` (W), ``energy_wh`` (Wh metered since boot, a running total) and ``relay`` (on/off).
Each socket feeds one appliance, picked at start: its nominal power and how often it draws it.
"""

from __future__ import annotations

from simulators.model import DeviceContext, EventLog, Family, Metrics, Schedule
from simulators.signals import Walk, chance, local_time, occupancy

#: (appliance, watts when drawing, share of time drawing while switched on)
_APPLIANCES = (
    ("water_dispenser", 550.0, 0.15),
    ("projector", 280.0, 0.9),
    ("desk_fan", 45.0, 0.8),
    ("charging_cart", 600.0, 0.5),
    ("soldering_station", 80.0, 0.6),
    ("document_camera", 12.0, 0.95),
)
_STANDBY_W = 1.5


class SmartSocket(EventLog):
    """One socket: scheduled relay, a duty-cycled load and an energy meter."""

    def __init__(self, context: DeviceContext) -> None:
        super().__init__()
        self._context = context
        self._rng = context.rng
        _, self._nominal_w, self._duty = context.rng.choice(_APPLIANCES)
        self._load = Walk(1.0, 0.85, 1.1, volatility=0.003, reversion=0.01)
        self._relay: bool | None = None  # set from the schedule at the first step
        self._drawing = context.rng.random() < self._duty
        self._energy_wh = 0.0

    def step(self, now: float, dt: float) -> Metrics:
        moment = local_time(now, self._context.timezone)
        scheduled_on = occupancy(self._context.schedule, moment) > 0
        if self._relay is None or (scheduled_on != self._relay and chance(self._rng, 1 / 300, dt)):
            self._relay = scheduled_on  # the school's schedule switches sockets within minutes
        if chance(self._rng, 1 / 600, dt):
            self._drawing = self._rng.random() < self._duty
        power = 0.0
        if self._relay:
            power = self._nominal_w * self._load.step(self._rng, dt, 1.0) if self._drawing else _STANDBY_W
        self._energy_wh += power * dt / 3600.0
        return {"power_w": round(power, 1), "energy_wh": round(self._energy_wh, 2), "relay": self._relay}


FAMILY = Family(
    name="smart_socket",
    description="Metered smart socket with a relay",
    units={"power_w": "W", "energy_wh": "Wh"},
    metrics=frozenset({"power_w", "energy_wh", "relay"}),
    counters=frozenset({"energy_wh"}),
    absurd={"power_w": 10_000_000.0},
    default_interval_s=30.0,
    schedule=Schedule.CLASSROOM,
    firmware="tasmota-14.1-sim",
    build=SmartSocket,
)
