"""Smoke test of the ingest benchmark: a quick run finishes and neither the gateway nor the baseline loses or
duplicates a message. Correctness only: the speed figures depend on the machine and are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "ingest.py"

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
