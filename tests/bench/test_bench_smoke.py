"""Smoke tests of the benchmarks: a quick ingest run finishes and neither the gateway nor the baseline loses or
duplicates a message; a short storage run stores and folds every reading both ways. Correctness only: the speed
figures depend on the machine and are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "ingest.py"
WRITES = ROOT / "bench" / "writes.py"

pytestmark = pytest.mark.timeout(240)


def _summary(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            summary: dict[str, Any] = json.loads(line)
            return summary
    raise AssertionError(f"no JSON summary line in the output:\n{stdout[-3000:]}")


def test_quick_benchmark_loses_and_duplicates_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = _summary(done.stdout)
    assert summary["messages"] == 3_000
    for name in ("gateway", "baseline"):
        figures = summary[name]
        assert figures["lost"] == 0, f"{name} lost {figures['lost']} confirmed messages"
        assert figures["duplicated"] == 0, f"{name} stored {figures['duplicated']} duplicate readings"
        assert figures["readings"] == figures["readings_expected"] == 3 * 2 * 3_000, name
        assert figures["complete"], f"{name} did not commit everything within the time limit"
    assert summary["lost"] == 0 and summary["duplicated"] == 0


def test_short_storage_benchmark_stores_and_folds_every_reading_both_ways() -> None:
    done = subprocess.run(
        [sys.executable, str(WRITES), "--batches", "30", "--rounds", "1", "--rate", "50", "--settle-every", "10"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    # The benchmark itself exits non-zero when either way stored or folded fewer readings than it wrote.
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures = _summary(done.stdout)["rate_50"]
    for way in ("gateway", "direct"):
        assert figures[way]["bytes_per_reading"] > 0, f"{way}: no bytes written counted"
        assert figures[way]["cpu_us_per_reading"] > 0, way
