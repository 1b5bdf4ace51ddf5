"""Time on a node: a tick clock that is always there, and Unix time only once NTP has set the clock.

MicroPython on the ESP32 counts its epoch from 2000-01-01, the webassembly and unix ports from 1970;
:func:`epoch_offset` turns either into Unix seconds. A reading taken before the clock is set keeps its
``ticks_ms`` and is stamped once the clock is set (:func:`unix_at`); a time before 2020 is never produced.
"""

from campusnode.payloads import EARLIEST_TS

#: Seconds from 1970-01-01 to 2000-01-01 (the ESP32 port's epoch).
UNIX_2000 = 946684800
#: ``ticks_diff`` is exact for ages below half the tick period (2**30 ms on the ESP32): trust at most 5 days.
MAX_TICK_AGE_MS = 5 * 24 * 3600 * 1000


def epoch_offset(epoch_year: int) -> int:
    """Seconds to add to ``time.time()`` for Unix time, given ``time.gmtime(0)[0]``."""
    if epoch_year == 2000:
        return UNIX_2000
    if epoch_year == 1970:
        return 0
    raise ValueError("unknown epoch year " + str(epoch_year))


def plausible(unix: int | float | None) -> bool:
    """True for a Unix time a set clock can give (2020 or later)."""
    return unix is not None and unix >= EARLIEST_TS


def unix_at(unix_now: int, age_ms: int) -> int | None:
    """Unix seconds of an instant ``age_ms`` before ``unix_now``; None when that cannot be known."""
    if not plausible(unix_now) or age_ms < 0 or age_ms > MAX_TICK_AGE_MS:
        return None
    ts = unix_now - (age_ms + 500) // 1000
    return ts if plausible(ts) else None


class TicksDiff:
    """``diff(later, earlier)`` in ms; the board's clock wraps like ``time.ticks_diff``."""

    def diff(self, later: int, earlier: int) -> int:
        return later - earlier


class Clock(TicksDiff):
    """What the node needs of time. The board's clock wraps ``time`` and ``ntptime``; tests use a fake."""

    def ticks_ms(self) -> int:
        raise NotImplementedError

    def unix(self) -> int | None:
        """Unix seconds, or None while the clock has not been set."""
        raise NotImplementedError

    def sync(self) -> bool:
        """Ask NTP for the time (blocks at most the NTP timeout); True when the clock is now set."""
        raise NotImplementedError
