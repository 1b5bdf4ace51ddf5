"""Debouncing of a contact (reed switch, hall sensor, light barrier) and counting its activations.

Works from a stream of ``(level, ticks_ms)`` samples or edges, in order: the board feeds edges captured by a pin
interrupt, so a main loop that was busy for a while (a reconnect) still counts every press it missed, in order.
"""

from campusnode.clock import TicksDiff


class Debouncer:
    """A level counts as changed once it has held for ``stable_ms``; ``feed`` and ``poll`` return the new stable
    level when it changes, else None."""

    def __init__(self, stable_ms: int, level: int = 0) -> None:
        if stable_ms < 0:
            raise ValueError("stable_ms must not be negative")
        self.stable_ms = stable_ms
        self.level = level
        self._candidate = level
        self._since = 0

    def poll(self, now_ms: int, diff: TicksDiff | None = None) -> int | None:
        """Settle the candidate level if it has held for ``stable_ms`` by ``now_ms``."""
        if self._candidate == self.level:
            return None
        age = now_ms - self._since if diff is None else diff.diff(now_ms, self._since)
        if age >= self.stable_ms:
            self.level = self._candidate
            return self.level
        return None

    def feed(self, level: int, at_ms: int, diff: TicksDiff | None = None) -> int | None:
        """An observed level at ``at_ms``: settles the previous candidate first, then starts timing this one."""
        changed = self.poll(at_ms, diff)
        if level != self._candidate:
            self._candidate = level
            self._since = at_ms
        return changed


class PulseCounter:
    """Counts debounced activations (the stable level becoming ``active``), e.g. one use of a fitness machine."""

    def __init__(self, stable_ms: int, active: int = 1, start: int = 0) -> None:
        self.active = active
        self.count = start
        self._debouncer = Debouncer(stable_ms, level=1 - active)

    def feed(self, level: int, at_ms: int, diff: TicksDiff | None = None) -> int:
        """Returns how many activations this sample completed (0 or 1)."""
        return self._counted(self._debouncer.feed(level, at_ms, diff))

    def poll(self, now_ms: int, diff: TicksDiff | None = None) -> int:
        return self._counted(self._debouncer.poll(now_ms, diff))

    def _counted(self, changed: int | None) -> int:
        if changed == self.active:
            self.count += 1
            return 1
        return 0
