"""Reconnect delays: exponential with a cap and jitter, never zero (a zero delay spins the CPU)."""

import random


class Backoff:
    """``next_ms()`` gives a delay drawn from [base/2, base]; ``base`` doubles up to ``max_ms``; ``reset()``
    after a success. Equal jitter keeps a fleet of nodes from reconnecting in step after a broker restart."""

    def __init__(self, min_ms: int, max_ms: int) -> None:
        if min_ms <= 0 or max_ms < min_ms:
            raise ValueError("backoff needs 0 < min_ms <= max_ms")
        self.min_ms = min_ms
        self.max_ms = max_ms
        self._base = min_ms
        self.attempts = 0

    def next_ms(self) -> int:
        base = self._base
        self._base = min(self.max_ms, base * 2)
        self.attempts += 1
        half = base // 2
        return max(1, half + int(random.random() * (base - half + 1)))

    def reset(self) -> None:
        self._base = self.min_ms
        self.attempts = 0
