"""Clock helpers under MicroPython, with its own ``time`` module: epochs, plausible times, stamping from ticks."""

import time

from _support import raises
from campusnode import clock
from campusnode.payloads import EARLIEST_TS


def test_epoch_offsets():
    assert clock.epoch_offset(2000) == clock.UNIX_2000 == 946684800
    assert clock.epoch_offset(1970) == 0
    raises(ValueError, clock.epoch_offset, 1980)


def test_this_ports_epoch_gives_a_plausible_unix_time():
    offset = clock.epoch_offset(time.gmtime(0)[0])
    now = int(time.time()) + offset
    assert clock.plausible(now), now
    assert time.gmtime(clock.UNIX_2000 - offset)[:3] == (2000, 1, 1)


def test_plausible():
    assert clock.plausible(EARLIEST_TS) and clock.plausible(1767225600) and clock.plausible(1767225600.5)
    assert not clock.plausible(None) and not clock.plausible(EARLIEST_TS - 1)
    # an ESP32 that counts from 2000 and was never set reads a time in 2000: not plausible before the offset
    assert not clock.plausible(820000000)


def test_unix_at_rounds_to_the_nearest_second():
    now = 1767225600
    assert clock.unix_at(now, 0) == now
    assert clock.unix_at(now, 499) == now
    assert clock.unix_at(now, 500) == now - 1
    assert clock.unix_at(now, 1499) == now - 1
    assert clock.unix_at(now, 3600 * 1000) == now - 3600


def test_unix_at_refuses_what_cannot_be_known():
    now = 1767225600
    assert clock.unix_at(now, -1) is None
    assert clock.unix_at(now, clock.MAX_TICK_AGE_MS + 1) is None
    assert clock.unix_at(now, clock.MAX_TICK_AGE_MS) == now - clock.MAX_TICK_AGE_MS // 1000
    assert clock.unix_at(EARLIEST_TS - 1, 0) is None
    assert clock.unix_at(EARLIEST_TS + 1, 5000) is None  # before 2020 once aged


def test_max_tick_age_is_exact_for_micropython_ticks_diff():
    start = time.ticks_ms()
    later = time.ticks_add(start, clock.MAX_TICK_AGE_MS)
    assert time.ticks_diff(later, start) == clock.MAX_TICK_AGE_MS
    # and across the wrap of the tick counter
    near_wrap = time.ticks_add(0, -1000)
    assert time.ticks_diff(time.ticks_add(near_wrap, 5000), near_wrap) == 5000


def test_the_base_clock_is_an_interface():
    base = clock.Clock()
    raises(NotImplementedError, base.ticks_ms)
    raises(NotImplementedError, base.unix)
    raises(NotImplementedError, base.sync)
    assert base.diff(10, 3) == 7
