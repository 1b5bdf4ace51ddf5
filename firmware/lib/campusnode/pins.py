"""Digital inputs and outputs as the apps see them; ``board/hw.py`` implements them over ``machine.Pin``."""


class Output:
    """A relay or LED."""

    def set(self, on: bool) -> None:
        raise NotImplementedError


class EdgeSource:
    """A contact input whose level changes are captured (by a pin interrupt on the board) with their tick time."""

    def take(self) -> list[tuple[int, int]]:
        """The ``(level, ticks_ms)`` changes since the last call, oldest first."""
        raise NotImplementedError

    def lost(self) -> int:
        """Changes that did not fit the capture buffer."""
        return 0


class ByteSource:
    """A UART as the apps read it: what has arrived, without blocking (b"" when nothing)."""

    def read(self) -> bytes:
        raise NotImplementedError
