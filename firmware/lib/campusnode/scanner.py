"""QR scanner modules on a UART send each code as one line of text (CR, LF or both at the end).

:class:`LineReader` cuts the byte stream into codes, drops over-long or undecodable ones (counted), and ignores the
same code read again within ``repeat_ms`` (a scanner re-reads a code held in front of it many times a second).
"""

from campusnode.clock import TicksDiff

MAX_CODE_BYTES = 1024


class LineReader:
    def __init__(self, repeat_ms: int = 2000) -> None:
        self.repeat_ms = repeat_ms
        self._buffer = bytearray()
        self._overflow = False
        self._last: str | None = None
        self._last_at = 0
        self.dropped = 0

    def feed(self, data: bytes, now_ms: int, diff: TicksDiff) -> list[str]:
        """Bytes from the UART; returns the new codes they complete."""
        codes = []
        for byte in data:
            if byte in (10, 13):
                code = self._take()
                if code is not None and not self._repeat(code, now_ms, diff):
                    codes.append(code)
                continue
            if len(self._buffer) >= MAX_CODE_BYTES:
                self._overflow = True
                continue
            self._buffer.append(byte)
        return codes

    def _take(self) -> str | None:
        raw = bytes(self._buffer)
        overflow = self._overflow
        self._buffer = bytearray()
        self._overflow = False
        if overflow:
            self.dropped += 1
            return None
        if not raw:
            return None
        try:
            code = raw.decode("utf-8").strip()
        except ValueError:  # UnicodeError
            self.dropped += 1
            return None
        return code or None

    def _repeat(self, code: str, now_ms: int, diff: TicksDiff) -> bool:
        repeat = code == self._last and diff.diff(now_ms, self._last_at) < self.repeat_ms
        self._last = code
        self._last_at = now_ms
        return repeat
