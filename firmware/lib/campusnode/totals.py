"""A running total (uses of a fitness machine) that survives reboots without wearing out the flash.

Two stores: a fast one written at every change (the ESP32's RTC memory, which survives resets and the
watchdog but not a power cut) and a slow one in flash written at most every ``save_interval_ms`` and on a clean
shutdown. At start the larger valid value wins, so a reset loses nothing and a power cut loses at most the uses
of one interval. Each record carries a checksum, so garbage in RTC memory after a power cut reads as absent.
"""

from campusnode.clock import TicksDiff
from campusnode.transport import Store

_MAGIC = b"CNT1"


def encode_total(total: int) -> bytes:
    body = _MAGIC + total.to_bytes(8, "big")
    return body + bytes((sum(body) & 0xFF,))


def decode_total(data: bytes | None) -> int | None:
    """The total, or None for anything that is not a record written by :func:`encode_total`."""
    if data is None or len(data) != 13 or data[:4] != _MAGIC or sum(data[:12]) & 0xFF != data[12]:
        return None
    return int.from_bytes(data[4:12], "big")


class TotalKeeper:
    def __init__(self, fast: Store | None, slow: Store | None, name: str, save_interval_ms: int) -> None:
        self._fast = fast
        self._slow = slow
        self._name = name
        self.save_interval_ms = save_interval_ms
        self.total = 0
        self._saved = 0
        self._saved_at: int | None = None
        self.flash_writes = 0

    def load(self) -> int:
        """The total kept from before this boot (0 on a new node)."""
        found = [0]
        for store in (self._fast, self._slow):
            if store is not None:
                value = decode_total(store.read(self._name))
                if value is not None:
                    found.append(value)
                    if store is self._slow:
                        self._saved = value
        # after a reset RTC memory is ahead of the flash: the first tick brings the flash up to date, so a
        # power cut later cannot take the total back
        self.total = max(found)
        return self.total

    def add(self, count: int) -> None:
        if count <= 0:
            return
        self.total += count
        if self._fast is not None:
            self._fast.write(self._name, encode_total(self.total))

    def tick(self, now_ms: int, diff: TicksDiff) -> bool:
        """Write the flash copy if the total changed and the interval has passed; True when written."""
        if self.total == self._saved:
            return False
        if self._saved_at is not None and diff.diff(now_ms, self._saved_at) < self.save_interval_ms:
            return False
        return self.flush(now_ms)

    def flush(self, now_ms: int) -> bool:
        """Write the flash copy now (clean shutdown)."""
        self._saved_at = now_ms
        if self._slow is None or self.total == self._saved:
            return False
        self._slow.write(self._name, encode_total(self.total))
        self._saved = self.total
        self.flash_writes += 1
        return True
