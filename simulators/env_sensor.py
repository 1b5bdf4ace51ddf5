"""Environment sensors in classrooms and labs: temperature, humidity, CO2 that follows the people, PM2.5.

Metrics: ``temperature`` (°C), ``humidity`` (%RH), ``co2`` (ppm, integer) and ``pm25`` (µg/m³).
"""

from __future__ import annotations

from simulators.model import DeviceContext, EventLog, Family, Metrics, Schedule
from simulators.signals import Walk, ambient_temperature, approach, daily_wave, local_time, occupancy

#: CO2 of outdoor air, and what a full classroom adds with the windows shut (ppm).
_OUTDOOR_CO2 = 420.0
_FULL_ROOM_CO2 = 1100.0


class EnvSensor(EventLog):
    """Indoor air of one room: slow walks around a daily cycle, CO2 lagging behind occupancy."""

    def __init__(self, context: DeviceContext) -> None:
        super().__init__()
        self._context = context
        self._rng = context.rng
        self._offset = Walk(0.0, -1.5, 1.5, volatility=0.01)
        self._humidity = Walk(context.rng.uniform(40, 55), 25.0, 80.0, volatility=0.03)
        self._pm25 = Walk(context.rng.uniform(10, 30), 2.0, 150.0, volatility=0.05, reversion=0.0005)
        self._co2 = _OUTDOOR_CO2
        self._temperature: float | None = None

    def step(self, now: float, dt: float) -> Metrics:
        moment = local_time(now, self._context.timezone)
        people = occupancy(self._context.schedule, moment)
        target = ambient_temperature(moment) + 1.5 * people + self._offset.step(self._rng, dt, 0.0)
        previous = target if self._temperature is None else self._temperature
        self._temperature = approach(previous, target, dt, 600.0)
        humidity = self._humidity.step(self._rng, dt, 50.0 - 4.0 * daily_wave(moment) + 5.0 * people)
        self._co2 = approach(self._co2, _OUTDOOR_CO2 + _FULL_ROOM_CO2 * people, dt, 900.0)
        co2 = self._co2 + self._rng.gauss(0.0, 8.0)
        pm25 = self._pm25.step(self._rng, dt, 25.0 + 10.0 * daily_wave(moment, peak_hour=8.0))
        return {
            "temperature": round(self._temperature + self._rng.gauss(0.0, 0.05), 1),
            "humidity": round(humidity, 1),
            "co2": max(350, round(co2)),
            "pm25": round(pm25, 1),
        }


FAMILY = Family(
    name="env_sensor",
    description="Room environment sensor (temperature, humidity, CO2, PM2.5)",
    units={"temperature": "°C", "humidity": "%", "co2": "ppm", "pm25": "µg/m³"},
    metrics=frozenset({"temperature", "humidity", "co2", "pm25"}),
    counters=frozenset(),
    absurd={"temperature": 500.0, "humidity": 180.0, "co2": -400, "pm25": 99999.0},
    default_interval_s=30.0,
    schedule=Schedule.CLASSROOM,
    firmware="envnode-1.4-sim",
    build=EnvSensor,
)
