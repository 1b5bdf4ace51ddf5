"""Equipment of the smart fitness path (智慧健身路径): outdoor machines that count how often they are used.

Metric: ``uses``, the uses counted since boot (a running total). Each machine has its own popularity; a use is
counted when somebody starts an exercise on it.
"""

from __future__ import annotations

from simulators.model import DeviceContext, EventLog, Family, Metrics, Schedule
from simulators.signals import local_time, occupancy, poisson

#: Uses per hour of a popular machine at the busiest time of the day.
_PEAK_USES_PER_HOUR = 25.0


class FitnessEquipment(EventLog):
    """One machine (a rower, an air walker, a waist twister...) on the path."""

    def __init__(self, context: DeviceContext) -> None:
        super().__init__()
        self._context = context
        self._rng = context.rng
        self._popularity = context.rng.uniform(0.2, 1.0)
        self._uses = 0

    def step(self, now: float, dt: float) -> Metrics:
        busy = occupancy(self._context.schedule, local_time(now, self._context.timezone))
        self._uses += poisson(self._rng, busy * self._popularity * _PEAK_USES_PER_HOUR * dt / 3600.0)
        return {"uses": self._uses}


FAMILY = Family(
    name="fitness_equipment",
    description="Outdoor fitness-path machine with a use counter",
    units={},
    metrics=frozenset({"uses"}),
    counters=frozenset({"uses"}),
    absurd={"uses": -1},
    default_interval_s=60.0,
    schedule=Schedule.FITNESS_PATH,
    firmware="fitpath-1.1-sim",
    build=FitnessEquipment,
)
