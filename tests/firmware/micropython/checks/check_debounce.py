"""Debouncing and counting under MicroPython, including tick times across the wrap of ``time.ticks_ms``."""

import time

from _support import raises
from campusnode.clock import TicksDiff
from campusnode.debounce import Debouncer, PulseCounter


class WrappingDiff(TicksDiff):
    """The board's diff: MicroPython's own ``time.ticks_diff``."""

    def diff(self, later: int, earlier: int) -> int:
        return time.ticks_diff(later, earlier)


def _press(start, length=200, active=0, bounce=True):
    """One use of a reed contact, bouncing at both ends: (level, ticks) edges."""
    edges = []
    if bounce:
        edges += [(active, start), (1 - active, start + 1)]
    edges.append((active, start + 2))
    if bounce:
        edges += [(1 - active, start + length), (active, start + length + 1)]
    edges.append((1 - active, start + length + 2))
    return edges


def test_a_level_counts_once_it_has_held():
    bouncer = Debouncer(50, level=0)
    assert bouncer.feed(1, 1000) is None
    assert bouncer.poll(1049) is None
    assert bouncer.poll(1050) == 1
    assert bouncer.level == 1
    assert bouncer.poll(2000) is None  # no change, nothing new


def test_a_glitch_shorter_than_stable_ms_is_ignored():
    bouncer = Debouncer(50, level=0)
    bouncer.feed(1, 1000)
    assert bouncer.feed(0, 1020) is None
    assert bouncer.poll(2000) is None and bouncer.level == 0


def test_feed_settles_the_previous_level_first():
    bouncer = Debouncer(50, level=0)
    bouncer.feed(1, 1000)
    assert bouncer.feed(0, 1100) == 1  # the 1 held 100 ms before the edge back to 0
    assert bouncer.poll(1150) == 0


def test_counting_bouncy_presses():
    counter = PulseCounter(50, active=0)
    edges = _press(1000) + _press(2000) + _press(3000, bounce=False)
    counted = sum(counter.feed(level, at) for level, at in edges)
    counted += counter.poll(4000)
    assert counted == 3 and counter.count == 3


def test_presses_too_short_do_not_count():
    counter = PulseCounter(50, active=1, start=7)
    assert counter.feed(1, 1000) == 0
    assert counter.feed(0, 1030) == 0
    assert counter.poll(5000) == 0
    assert counter.count == 7


def test_counting_across_the_tick_wrap():
    diff = WrappingDiff()
    start = time.ticks_add(0, -300)  # 300 ms before the counter wraps
    counter = PulseCounter(50, active=0)
    counted = 0
    for level, offset in _press(0, length=600):
        counted += counter.feed(level, time.ticks_add(start, offset), diff)
    counted += counter.poll(time.ticks_add(start, 2000), diff)
    assert counted == 1, counted


def test_stable_ms_must_not_be_negative():
    raises(ValueError, Debouncer, -1)
    zero = Debouncer(0)
    assert zero.feed(1, 5) is None and zero.poll(5) == 1
