"""Running totals under MicroPython: the checksummed record, and the keeper's fast and slow stores."""

from campusnode.clock import TicksDiff
from campusnode.totals import TotalKeeper, decode_total, encode_total
from campusnode.transport import MemoryStore


def test_records_round_trip():
    for total in (0, 1, 255, 65536, 2**31, 2**40 + 3):
        data = encode_total(total)
        assert len(data) == 13 and data[:4] == b"CNT1"
        assert decode_total(data) == total


def test_garbage_reads_as_absent():
    good = encode_total(1234)
    assert decode_total(None) is None
    assert decode_total(b"") is None
    assert decode_total(good[:-1]) is None
    assert decode_total(good[:-1] + bytes(((good[-1] + 1) & 0xFF,))) is None
    assert decode_total(b"CNT2" + good[4:]) is None
    assert decode_total(bytes(13)) is None


def _keeper(fast, slow, interval_ms=300000):
    return TotalKeeper(fast, slow, "uses.bin", interval_ms)


def test_every_use_goes_to_fast_storage_and_flash_at_most_once_per_interval():
    fast = MemoryStore()
    slow = MemoryStore()
    keeper = _keeper(fast, slow, 1000)
    assert keeper.load() == 0
    keeper.add(2)
    keeper.add(0)
    keeper.add(-3)
    assert keeper.total == 2 and fast.writes == 1 and decode_total(fast.read("uses.bin")) == 2
    assert keeper.tick(100, TicksDiff()) is True  # first change: saved at once
    keeper.add(1)
    assert keeper.tick(600, TicksDiff()) is False  # within the interval
    assert keeper.tick(1100, TicksDiff()) is True
    assert slow.writes == 2 and keeper.flash_writes == 2 and decode_total(slow.read("uses.bin")) == 3
    assert keeper.tick(5000, TicksDiff()) is False  # nothing new
    assert keeper.flush(5000) is False


def test_a_reset_keeps_the_fast_total_and_a_power_cut_the_flash_one():
    fast = MemoryStore()
    slow = MemoryStore()
    keeper = _keeper(fast, slow)
    keeper.load()
    keeper.add(5)
    keeper.flush(0)
    keeper.add(4)  # not yet in flash
    after_reset = _keeper(fast, slow)
    assert after_reset.load() == 9
    fast.write("uses.bin", b"\x00garbage after a power cut")
    after_power_cut = _keeper(fast, slow)
    assert after_power_cut.load() == 5
    assert _keeper(None, None).load() == 0
