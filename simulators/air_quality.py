"""Air-quality monitors of the sports venue: a large hall whose CO2 and warmth follow the crowd.

Metrics: ``co2`` (ppm, integer), ``pm25`` (µg/m³) and ``temperature`` (°C).
"""

from __future__ import annotations

from simulators.model import DeviceContext, EventLog, Family, Metrics, Schedule
from simulators.signals import Walk, ambient_temperature, approach, daily_wave, local_time, occupancy

_OUTDOOR_CO2 = 420.0
#: What a full sports hall adds with its ventilation running (ppm).
_FULL_HALL_CO2 = 800.0


class AirQuality(EventLog):
    """The air of one hall: big volume, so slower than a classroom, and dust raised by activity."""

    def __init__(self, context: DeviceContext) -> None:
        super().__init__()
        self._context = context
        self._rng = context.rng
        self._co2 = _OUTDOOR_CO2
        self._pm25 = Walk(context.rng.uniform(15, 35), 3.0, 200.0, volatility=0.08, reversion=0.001)
        self._temperature: float | None = None

    def step(self, now: float, dt: float) -> Metrics:
        moment = local_time(now, self._context.timezone)
        crowd = occupancy(self._context.schedule, moment)
        self._co2 = approach(self._co2, _OUTDOOR_CO2 + _FULL_HALL_CO2 * crowd, dt, 1800.0)
        pm25 = self._pm25.step(self._rng, dt, 20.0 + 12.0 * crowd + 8.0 * daily_wave(moment, peak_hour=8.0))
        target = ambient_temperature(moment, base=20.0, swing=3.0) + 2.5 * crowd
        previous = target if self._temperature is None else self._temperature
        self._temperature = approach(previous, target, dt, 1800.0)
        return {
            "co2": max(350, round(self._co2 + self._rng.gauss(0.0, 10.0))),
            "pm25": round(pm25, 1),
            "temperature": round(self._temperature + self._rng.gauss(0.0, 0.05), 1),
        }


FAMILY = Family(
    name="air_quality",
    description="Air-quality monitor of a sports venue (CO2, PM2.5, temperature)",
    units={"co2": "ppm", "pm25": "µg/m³", "temperature": "°C"},
    metrics=frozenset({"co2", "pm25", "temperature"}),
    counters=frozenset(),
    absurd={"co2": -400, "pm25": 99999.0, "temperature": 500.0},
    default_interval_s=30.0,
    schedule=Schedule.VENUE,
    firmware="aqm-1.8-sim",
    build=AirQuality,
)
