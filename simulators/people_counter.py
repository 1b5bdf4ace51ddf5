"""People counters at the doors of the sports venue (智慧体育场馆): entries and exits, and who is inside.

Metrics: ``entries`` and ``exits`` (people counted since boot, running totals) and ``inside`` (their difference).
Visitors arrive with the venue's opening pattern and stay about an hour; at closing time the hall empties.
"""

from __future__ import annotations

from simulators.model import DeviceContext, EventLog, Family, Metrics, Schedule
from simulators.signals import local_time, occupancy, poisson

#: Arrivals per minute through one door when the venue is at its busiest.
_PEAK_ARRIVALS_PER_MIN = 1.5
_MEAN_STAY_S = 3600.0
_CLOSING_STAY_S = 600.0


class PeopleCounter(EventLog):
    """One door's counter; each counter has its own share of the traffic."""

    def __init__(self, context: DeviceContext) -> None:
        super().__init__()
        self._context = context
        self._rng = context.rng
        self._door_share = context.rng.uniform(0.5, 1.5)
        self._entries = 0
        self._exits = 0

    def step(self, now: float, dt: float) -> Metrics:
        busy = occupancy(self._context.schedule, local_time(now, self._context.timezone))
        inside = self._entries - self._exits
        arrivals = poisson(self._rng, busy * _PEAK_ARRIVALS_PER_MIN * self._door_share * dt / 60.0)
        stay = _MEAN_STAY_S if busy > 0 else _CLOSING_STAY_S
        leaving = min(inside, poisson(self._rng, inside * min(1.0, dt / stay)))
        self._entries += arrivals
        self._exits += leaving
        return {"entries": self._entries, "exits": self._exits, "inside": self._entries - self._exits}


FAMILY = Family(
    name="people_counter",
    description="Door people counter of a sports venue",
    units={},
    metrics=frozenset({"entries", "exits", "inside"}),
    counters=frozenset({"entries", "exits"}),
    absurd={"inside": -37},
    default_interval_s=15.0,
    schedule=Schedule.VENUE,
    firmware="footfall-2.0-sim",
    build=PeopleCounter,
)
