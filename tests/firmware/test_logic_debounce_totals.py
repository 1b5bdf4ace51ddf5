"""Debouncing (a bouncing reed contact counts once) and running totals that survive reboots through RTC memory
and flash without wearing the flash out."""

from __future__ import annotations

import pytest
from campusnode.clock import TicksDiff
from campusnode.debounce import Debouncer, PulseCounter
from campusnode.totals import TotalKeeper, decode_total, encode_total
from campusnode.transport import MemoryStore
from campusnode_host.fakes import DirStore, FakeEdges
from hypothesis import given, settings
from hypothesis import strategies as st

DIFF = TicksDiff()


class WrappingTicks(TicksDiff):
    """``time.ticks_diff`` of the ESP32 port: ticks_ms wraps at 2**30."""

    PERIOD = 1 << 30

    def diff(self, later: int, earlier: int) -> int:
        return ((later - earlier + self.PERIOD // 2) & (self.PERIOD - 1)) - self.PERIOD // 2


# -- Debouncer -------------------------------------------------------------------------------------------------------


def test_a_level_changes_only_after_holding_stable_ms():
    debouncer = Debouncer(50, level=1)
    assert debouncer.feed(0, 1000) is None
    assert debouncer.poll(1049) is None
    assert debouncer.level == 1
    assert debouncer.poll(1050) == 0
    assert debouncer.level == 0
    assert debouncer.poll(2000) is None  # reported once


def test_short_glitches_are_ignored():
    debouncer = Debouncer(50, level=1)
    for at in range(1000, 1400, 20):  # toggling every 20 ms: never stable
        assert debouncer.feed(0 if (at // 20) % 2 else 1, at) is None
    assert debouncer.level == 1


def test_feed_settles_the_previous_candidate_first():
    debouncer = Debouncer(50, level=1)
    debouncer.feed(0, 1000)
    # the next edge comes late (the main loop was busy): the earlier level had already held long enough
    assert debouncer.feed(1, 1500) == 0
    assert debouncer.poll(1550) == 1


def test_stable_ms_zero_takes_each_change_and_negative_is_refused():
    debouncer = Debouncer(0, level=0)
    assert debouncer.feed(1, 5) is None
    assert debouncer.poll(5) == 1
    with pytest.raises(ValueError):
        Debouncer(-1)


def test_wrapping_tick_counter():
    wrap = WrappingTicks()
    start = (1 << 30) - 20  # 20 ms before ticks_ms wraps to 0
    debouncer = Debouncer(50, level=1)
    debouncer.feed(0, start, wrap)
    assert debouncer.poll(10, wrap) is None  # 30 ms later, after the wrap
    assert debouncer.poll(30, wrap) == 0  # 50 ms later


# -- PulseCounter: a bouncing reed contact is one use ----------------------------------------------------------------


@pytest.mark.parametrize("active", [0, 1])
def test_each_bouncing_pulse_counts_once(active):
    edges = FakeEdges()
    counter = PulseCounter(50, active)
    for number in range(10):
        edges.pulse(10_000 + number * 1000, length_ms=200, active=active)
    counted = sum(counter.feed(level, at) for level, at in edges.take())
    counted += counter.poll(30_000)
    assert counted == 10
    assert counter.count == 10


def test_a_press_counts_when_it_has_held_not_when_released():
    counter = PulseCounter(50, active=0)
    assert counter.feed(0, 1000) == 0
    assert counter.poll(1049) == 0
    assert counter.poll(1050) == 1  # the contact is still closed: the use is counted now
    assert counter.feed(1, 1300) == 0
    assert counter.poll(5000) == 0  # the release is not a use


def test_a_press_shorter_than_stable_ms_is_noise():
    counter = PulseCounter(50, active=0)
    counter.feed(0, 1000)
    counter.feed(1, 1030)
    assert counter.poll(5000) == 0 and counter.count == 0


def test_without_debouncing_every_bounce_counts():
    edges = FakeEdges()
    edges.pulse(1000, active=0)
    counter = PulseCounter(0, active=0)
    for level, at in edges.take():
        counter.feed(level, at)
    counter.poll(5000)
    assert counter.count == 3  # what the 50 ms default protects against


def test_counting_continues_from_a_start_value():
    counter = PulseCounter(10, active=1, start=41)
    counter.feed(1, 0)
    counter.poll(10)
    assert counter.count == 42


gaps = st.integers(min_value=1, max_value=49)


@st.composite
def presses(draw):
    """Edges of several uses: bounce in, a hold (with short glitches), bounce out, a quiet gap; and the count."""
    count = draw(st.integers(min_value=0, max_value=8))
    edges: list[tuple[int, int]] = []
    at = 1000
    for _ in range(count):
        for level in [0] + [1, 0] * draw(st.integers(min_value=0, max_value=4)):  # ends closed
            edges.append((level, at))
            at += draw(gaps)
        at += 50 + draw(st.integers(min_value=0, max_value=500))  # held closed long enough
        for _ in range(draw(st.integers(min_value=0, max_value=2))):  # glitches while held
            edges.append((1, at))
            at += draw(gaps)
            edges.append((0, at))
            at += 50 + draw(st.integers(min_value=0, max_value=100))
        for level in [1] + [0, 1] * draw(st.integers(min_value=0, max_value=4)):  # ends open
            edges.append((level, at))
            at += draw(gaps)
        at += 50 + draw(st.integers(min_value=0, max_value=500))
    return count, edges, at


@settings(deadline=None)
@given(presses(), st.integers(min_value=0, max_value=(1 << 30) - 1))
def test_bounces_and_glitches_never_change_the_count(case, offset):
    count, edges, end = case
    wrap = WrappingTicks()
    counter = PulseCounter(50, active=0)
    counted = 0
    for level, at in edges:
        counted += counter.feed(level, (at + offset) % (1 << 30), wrap)
    counted += counter.poll((end + offset) % (1 << 30), wrap)
    assert counted == count == counter.count


# -- totals: encoding ------------------------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_total_record_round_trip(total):
    data = encode_total(total)
    assert len(data) == 13
    assert decode_total(data) == total


@settings(deadline=None)
@given(
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=12),
    st.integers(min_value=1, max_value=255),
)
def test_a_corrupted_record_reads_as_absent(total, index, flip):
    data = bytearray(encode_total(total))
    data[index] ^= flip
    assert decode_total(bytes(data)) is None


@pytest.mark.parametrize("data", [None, b"", b"CNT1", bytes(13), b"CNT2" + bytes(9), encode_total(5) + b"\x00"])
def test_garbage_reads_as_absent(data):
    assert decode_total(data) is None


# -- totals: reboots and wear ----------------------------------------------------------------------------------------


@pytest.fixture
def flash(tmp_path):
    return DirStore(tmp_path / "flash")


def keeper(rtc, flash, interval_ms=300_000) -> TotalKeeper:
    return TotalKeeper(rtc, flash, "uses.bin", interval_ms)


def test_a_new_node_starts_at_zero(flash):
    assert keeper(MemoryStore(), flash).load() == 0


def test_a_reset_keeps_every_use_through_rtc_memory(flash):
    rtc = MemoryStore()
    first = keeper(rtc, flash)
    first.load()
    first.add(3)
    first.tick(0, DIFF)  # first change after boot goes to flash at once
    first.add(4)
    first.tick(1_000, DIFF)  # within the save interval: RTC only
    assert decode_total(flash.read("uses.bin")) == 3
    assert decode_total(rtc.read("uses.bin")) == 7
    # watchdog reset: RTC memory survives
    second = keeper(rtc, flash)
    assert second.load() == 7


def test_after_a_reset_flash_catches_up_with_rtc_memory(flash):
    rtc = MemoryStore()
    rtc.write("uses.bin", encode_total(105))
    flash.write("uses.bin", encode_total(100))
    after_reset = keeper(rtc, flash)
    assert after_reset.load() == 105
    assert after_reset.tick(0, DIFF) is True  # else a power cut now would take the total back to 100
    assert decode_total(flash.read("uses.bin")) == 105
    after_power_cut = keeper(MemoryStore(), flash)
    assert after_power_cut.load() == 105


def test_a_power_cut_loses_at_most_one_interval(flash):
    rtc = MemoryStore()
    node = keeper(rtc, flash, interval_ms=60_000)
    node.load()
    now = 0
    for _ in range(200):  # a use every 2 s for 400 s
        now += 2_000
        node.add(1)
        node.tick(now, DIFF)
    saved = decode_total(flash.read("uses.bin"))
    assert saved is not None and 200 - saved <= 60_000 // 2_000
    # power cut: RTC memory comes back as garbage
    garbage = MemoryStore()
    garbage.write("uses.bin", b"\x13\x37" * 7)
    assert keeper(garbage, flash).load() == saved


def test_a_clean_shutdown_keeps_everything(flash):
    rtc = MemoryStore()
    node = keeper(rtc, flash)
    node.load()
    node.add(5)
    node.tick(0, DIFF)
    node.add(2)
    assert node.flush(1_000) is True
    assert node.flush(2_000) is False  # nothing new: no write
    assert keeper(MemoryStore(), flash).load() == 7


def test_flash_writes_are_bounded_by_the_save_interval(flash):
    rtc = MemoryStore()
    node = keeper(rtc, flash, interval_ms=300_000)
    node.load()
    hour_ms = 3_600_000
    for now in range(0, hour_ms, 1_000):  # a use every second, ticked every second, for an hour
        node.add(1)
        node.tick(now, DIFF)
    assert node.total == 3600
    assert node.flash_writes <= hour_ms // 300_000 + 1
    assert flash.writes == node.flash_writes
    assert rtc.writes == 3600  # the RTC copy is cheap and exact


def test_no_write_without_a_change(flash):
    node = keeper(MemoryStore(), flash, interval_ms=10)
    node.load()
    for now in range(0, 10_000, 100):
        assert node.tick(now, DIFF) is False
    assert flash.writes == 0


def test_non_positive_counts_are_ignored(flash):
    rtc = MemoryStore()
    node = keeper(rtc, flash)
    node.load()
    node.add(0)
    node.add(-3)
    assert node.total == 0 and rtc.writes == 0


def test_without_stores_the_total_lives_in_ram():
    node = TotalKeeper(None, None, "uses.bin", 1000)
    assert node.load() == 0
    node.add(2)
    assert node.tick(0, DIFF) is False
    assert node.flush(0) is False
    assert node.total == 2


def test_the_larger_of_the_two_copies_wins(flash):
    rtc = MemoryStore()
    rtc.write("uses.bin", encode_total(10))
    flash.write("uses.bin", encode_total(12))  # e.g. RTC left from an older run after a flash restore
    assert keeper(rtc, flash).load() == 12
