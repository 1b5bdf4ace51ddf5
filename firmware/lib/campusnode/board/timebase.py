"""The board's clock: ``time.ticks_ms`` always, Unix time once ``ntptime`` has set the RTC."""

import ntptime
import time

from campusnode.clock import Clock, epoch_offset, plausible

EPOCH_OFFSET = epoch_offset(time.gmtime(0)[0])


class BoardClock(Clock):
    def __init__(self, ntp_host: str, ntp_timeout_s: int = 2) -> None:
        ntptime.host = ntp_host
        ntptime.timeout = ntp_timeout_s
        self.synced = False

    def ticks_ms(self) -> int:
        return time.ticks_ms()

    def diff(self, later: int, earlier: int) -> int:
        return time.ticks_diff(later, earlier)

    def unix(self) -> int | None:
        unix = int(time.time()) + EPOCH_OFFSET
        # the RTC keeps counting across a soft reset: a plausible time is a set clock even before NTP answers
        return unix if plausible(unix) else None

    def sync(self) -> bool:
        try:
            ntptime.settime()
        except (OSError, OverflowError, IndexError):
            return False
        self.synced = True
        return self.unix() is not None
