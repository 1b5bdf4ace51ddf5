"""The firmware's pure logic under CPython: ``firmware/lib`` (the board's ``/lib``) and ``firmware/host`` (the
CPython transport and simulated hardware) go on ``sys.path``. Neither holds a module named like one of CPython's,
so nothing here shadows the standard library (``test_imports.py`` checks it)."""

from __future__ import annotations

import sys
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
LIB = FIRMWARE / "lib"
HOST = FIRMWARE / "host"

for _path in (str(LIB), str(HOST)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
