"""Time on a node: epoch offsets, plausibility, and Unix times computed from tick ages (never before 2020)."""

from __future__ import annotations

import calendar

import pytest
from campusnode import clock
from campusnode.clock import MAX_TICK_AGE_MS, UNIX_2000, epoch_offset, plausible, unix_at
from campusnode.payloads import EARLIEST_TS
from campusnode_host.fakes import HostClock, ManualClock
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = 1767225600  # 2026-01-01T00:00:00Z


def test_epoch_offsets():
    assert calendar.timegm((2000, 1, 1, 0, 0, 0)) == UNIX_2000
    assert epoch_offset(2000) == UNIX_2000
    assert epoch_offset(1970) == 0
    with pytest.raises(ValueError, match="unknown epoch year 1980"):
        epoch_offset(1980)


def test_an_esp32_counting_from_2000_is_not_plausible_until_set():
    assert calendar.timegm((2020, 1, 1, 0, 0, 0)) == EARLIEST_TS
    unset_esp32 = 820000000  # 26 years after 2000 on the ESP32's own epoch, read as Unix seconds: 1995
    assert not plausible(unset_esp32)
    assert plausible(unset_esp32 + epoch_offset(2000))
    assert not plausible(None)
    assert not plausible(0)
    assert not plausible(EARLIEST_TS - 1)
    assert plausible(EARLIEST_TS)


@pytest.mark.parametrize(
    "age_ms,expected",
    [(0, NOW), (499, NOW), (500, NOW - 1), (1499, NOW - 1), (1500, NOW - 2), (60_000, NOW - 60)],
)
def test_unix_at_rounds_the_age_to_seconds(age_ms, expected):
    assert unix_at(NOW, age_ms) == expected


def test_unix_at_refuses_what_it_cannot_know():
    assert unix_at(NOW, -1) is None  # from the future
    assert unix_at(NOW, MAX_TICK_AGE_MS + 1) is None  # older than ticks can tell
    assert unix_at(NOW, MAX_TICK_AGE_MS) == NOW - MAX_TICK_AGE_MS // 1000
    assert unix_at(820000000, 0) is None  # clock not set
    assert unix_at(int(EARLIEST_TS) + 2, 5000) is None  # the instant itself is before 2020


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=4_000_000_000), st.integers(min_value=-10_000, max_value=2**31))
def test_unix_at_is_never_before_2020_and_never_ahead(unix_now, age_ms):
    ts = unix_at(unix_now, age_ms)
    if ts is not None:
        assert EARLIEST_TS <= ts <= unix_now
        assert abs((unix_now - ts) * 1000 - age_ms) <= 500
    else:
        assert (
            unix_now < EARLIEST_TS
            or not 0 <= age_ms <= MAX_TICK_AGE_MS
            or unix_now - (age_ms + 500) // 1000 < EARLIEST_TS
        )


def test_max_tick_age_is_within_half_the_esp32_tick_period():
    assert MAX_TICK_AGE_MS < 2**29  # ticks_ms wraps at 2**30 on the ESP32; ticks_diff is exact below half of it


def test_plain_ticks_diff_and_abstract_clock():
    assert clock.TicksDiff().diff(1500, 1000) == 500
    assert clock.TicksDiff().diff(1000, 1500) == -500
    abstract = clock.Clock()
    for method in (abstract.ticks_ms, abstract.unix, abstract.sync):
        with pytest.raises(NotImplementedError):
            method()


def test_manual_clock_is_unset_until_ntp_answers():
    manual = ManualClock(ticks=1000, unix_at_start=NOW)
    assert manual.unix() is None
    manual.ntp_reachable = False
    assert manual.sync() is False and manual.unix() is None
    manual.ntp_reachable = True
    assert manual.sync() is True
    assert manual.unix() == NOW
    manual.advance(2500)
    assert (manual.ticks_ms(), manual.unix()) == (3500, NOW + 2)
    assert manual.syncs == 2


def test_host_clock_gives_a_plausible_time_only_once_synced():
    host = HostClock()
    assert host.unix() is None
    assert host.ticks_ms() >= 0
    assert host.sync() is True
    unix = host.unix()
    assert unix is not None and plausible(unix)
