"""Device families: every message carries the family's metrics, parses under the contract, and totals only grow."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contracts import METRIC_NAME_PATTERN, encode_telemetry, parse_telemetry
from gateway.settings import DEVICE_TYPES
from simulators.families import FAMILIES
from simulators.model import DeviceContext, Family, Metrics

ZONE = ZoneInfo("Asia/Shanghai")
#: Wednesday 2025-03-12, 00:00 in Shanghai.
MIDNIGHT = dt.datetime(2025, 3, 12, tzinfo=ZONE).timestamp()


def _context(family: Family, seed: int, device: str = "dev-01") -> DeviceContext:
    return DeviceContext(device, "room-1", family.schedule, ZONE, random.Random(seed))


def _run(family: Family, seed: int, steps: list[float], start: float = MIDNIGHT) -> list[Metrics]:
    model = family.build(_context(family, seed))
    now, readings = start, []
    for dt_s in steps:
        now += dt_s
        readings.append(model.step(now, dt_s))
        for event in model.take_events():
            assert event.code and event.severity in ("critical", "major", "minor", "warning", "info")
    return readings


def test_the_families_are_the_gateways_device_types() -> None:
    assert set(FAMILIES) == set(DEVICE_TYPES) - {"unknown"}


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_family_declaration_is_consistent(family: Family) -> None:
    import re

    assert all(re.fullmatch(METRIC_NAME_PATTERN, name) for name in family.metrics)
    assert set(family.units) <= family.metrics
    assert family.counters <= family.metrics
    assert set(family.absurd) <= family.metrics
    assert family.default_interval_s > 0


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_a_simulated_day_sends_contract_telemetry_with_growing_totals(family: Family) -> None:
    readings = _run(family, seed=7, steps=[30.0] * (24 * 120))
    for reading in readings:
        assert set(reading) == family.metrics
        telemetry = parse_telemetry("dev-01", encode_telemetry(reading, ts=MIDNIGHT, boot="b1", seq=0), MIDNIGHT)
        assert dict(telemetry.metrics) == reading
    for counter in family.counters:
        assert all(type(reading[counter]) in (int, float) for reading in readings)
        values = [float(reading[counter]) for reading in readings]
        assert values == sorted(values), f"{family.name}.{counter} decreased"
        assert values[-1] > 0, f"{family.name}.{counter} never moved in a school day"


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(FAMILIES)),
    seed=st.integers(0, 2**32),
    steps=st.lists(st.floats(0.0, 7200.0), min_size=1, max_size=60),
)
def test_any_step_sizes_keep_values_valid_and_totals_monotonic(name: str, seed: int, steps: list[float]) -> None:
    family = FAMILIES[name]
    readings = _run(family, seed, steps)
    for reading in readings:
        assert set(reading) == family.metrics
        parse_telemetry("dev-01", encode_telemetry(reading), MIDNIGHT)
    for counter in family.counters:
        values = [float(reading[counter]) for reading in readings]
        assert values == sorted(values)


def _hourly(family: Family, metric: str, seed: int = 3) -> dict[int, float]:
    """Mean of ``metric`` per hour of a Wednesday, sampled every minute."""
    readings = _run(family, seed, [60.0] * 24 * 60)
    sums: dict[int, list[float]] = {}
    for minute, reading in enumerate(readings, 1):
        sums.setdefault((minute // 60) % 24, []).append(float(reading[metric]))
    return {hour: sum(values) / len(values) for hour, values in sums.items()}


def test_classroom_co2_follows_the_timetable() -> None:
    co2 = _hourly(FAMILIES["env_sensor"], "co2")
    assert co2[10] > co2[3] + 400
    assert 350 <= co2[3] < 600


def test_displays_are_on_in_lessons_and_in_standby_at_night() -> None:
    power = _hourly(FAMILIES["classroom_display"], "power_w")
    assert power[10] > 100
    assert power[2] < 1


def test_venue_counts_people_in_and_out_and_empties_at_night() -> None:
    readings = [
        {name: int(value) for name, value in reading.items()}
        for reading in _run(FAMILIES["people_counter"], 5, [60.0] * 24 * 60)
    ]
    for reading in readings:
        assert reading["inside"] == reading["entries"] - reading["exits"]
        assert reading["inside"] >= 0
    assert max(reading["inside"] for reading in readings) > 10
    assert readings[-1]["entries"] > 100
    assert readings[-1]["inside"] < 5


def test_printers_print_jobs_during_lab_hours() -> None:
    readings = _run(FAMILIES["printer_3d"], 11, [30.0] * 24 * 120)
    printing = [reading for reading in readings if reading["printing"]]
    assert printing, "no printer job in a whole school day"
    assert all(reading["job"] for reading in printing)
    assert max(float(reading["nozzle_temp"]) for reading in printing) > 180
    assert all(float(reading["nozzle_temp"]) < 40 for reading in readings[: 6 * 120])  # cold before school


def test_laser_cutters_have_water_flow_only_when_powered() -> None:
    readings = _run(FAMILIES["laser_cutter"], 2, [30.0] * 24 * 120)
    assert all(reading["water_flow_lpm"] == 0 for reading in readings[: 6 * 120])
    assert any(float(reading["water_flow_lpm"]) > 2 for reading in readings)
    assert any(reading["cutting"] for reading in readings)
    assert not any(reading["cutting"] and reading["lid_open"] for reading in readings)
