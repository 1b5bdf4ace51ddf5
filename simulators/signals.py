"""Building blocks for believable values: bounded random walks, first-order lags, daily cycles and occupancy.

All functions are pure apart from the random stream they are given; time is passed in.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from simulators.model import Schedule


@dataclass(slots=True)
class Walk:
    """A mean-reverting random walk (Ornstein-Uhlenbeck) kept between ``low`` and ``high``.

    ``volatility`` is the spread added per square-root second, ``reversion`` the share of the distance to the
    mean closed per second.
    """

    value: float
    low: float
    high: float
    volatility: float
    reversion: float = 0.002

    def step(self, rng: random.Random, dt: float, mean: float) -> float:
        pull = 1.0 - math.exp(-self.reversion * dt)
        spread = self.volatility * math.sqrt(max(dt, 0.0))
        value = self.value + (mean - self.value) * pull + rng.gauss(0.0, spread)
        self.value = min(self.high, max(self.low, value))
        return self.value


def approach(value: float, target: float, dt: float, tau: float) -> float:
    """First-order lag: where ``value`` is after ``dt`` seconds heading for ``target`` with time constant ``tau``."""
    return target + (value - target) * math.exp(-max(dt, 0.0) / tau)


def chance(rng: random.Random, rate_per_s: float, dt: float) -> bool:
    """Whether an event that happens ``rate_per_s`` times a second on average happened within ``dt``."""
    return rate_per_s > 0 and rng.random() < 1.0 - math.exp(-rate_per_s * dt)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal above 30)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def local_time(now: float, timezone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(now, timezone)


def hour_of_day(moment: datetime) -> float:
    return moment.hour + moment.minute / 60 + moment.second / 3600


def daily_wave(moment: datetime, *, peak_hour: float = 15.0) -> float:
    """-1 at night, +1 at ``peak_hour``: the shape of outdoor temperature over a day."""
    return math.cos((hour_of_day(moment) - peak_hour) / 24 * 2 * math.pi)


# Lessons of a Chinese primary or middle school: morning and afternoon blocks, breaks between 40-minute lessons.
_LESSONS = ((8.0, 8.67), (8.83, 9.5), (9.83, 10.5), (10.67, 11.33), (14.0, 14.67), (14.83, 15.5), (15.67, 16.33))


def _in_lesson(hour: float) -> bool:
    return any(start <= hour < end for start, end in _LESSONS)


def occupancy(schedule: Schedule, moment: datetime) -> float:
    """How busy a place is at ``moment``, from 0 (empty) to 1 (full), by the kind of place."""
    hour = hour_of_day(moment)
    weekday = moment.weekday() < 5
    if schedule is Schedule.CLASSROOM:
        if not weekday or not 7.75 <= hour < 17.0:
            return 0.0
        return 1.0 if _in_lesson(hour) else (0.1 if 11.5 <= hour < 13.75 else 0.5)
    if schedule is Schedule.LAB:
        if weekday and _in_lesson(hour):
            return 0.7
        if weekday and 16.5 <= hour < 18.0:  # after-school maker club
            return 0.5
        return 0.05 if weekday and 7.5 <= hour < 18.5 else 0.0
    if schedule is Schedule.VENUE:
        if weekday:
            if 6.0 <= hour < 7.5:
                return 0.3
            if 8.0 <= hour < 16.5:
                return 0.6 if _in_lesson(hour) else 0.2
            if 18.0 <= hour < 21.5:  # open to the public after school
                return 0.9
            return 0.1 if 7.5 <= hour < 22.0 else 0.0
        return 0.75 if 8.0 <= hour < 21.5 else 0.0
    # Outdoor fitness path: early risers and the evening walk.
    if 6.0 <= hour < 8.5:
        return 0.7
    if 17.5 <= hour < 21.0:
        return 0.9
    return 0.2 if 8.5 <= hour < 17.5 else 0.0


def ambient_temperature(moment: datetime, *, base: float = 22.5, swing: float = 1.5) -> float:
    """Indoor temperature of a heated or cooled school building over the day."""
    return base + swing * daily_wave(moment)
