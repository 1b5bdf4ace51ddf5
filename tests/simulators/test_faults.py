"""Garbage payloads: every variant is something the gateway must reject with a reason, never crash on."""

from __future__ import annotations

import random
import time

import pytest

from gateway.contracts import ContractError, RejectReason, parse_telemetry
from simulators.faults import Garbage, garbage_payload

EXPECTED = {
    Garbage.BAD_JSON: RejectReason.MALFORMED_JSON,
    Garbage.NAN: RejectReason.NON_FINITE,
    Garbage.NESTED: RejectReason.NESTED_VALUE,
    Garbage.INVALID_UTF8: RejectReason.INVALID_UTF8,
    Garbage.NOT_OBJECT: RejectReason.NOT_OBJECT,
    Garbage.EMPTY_METRICS: RejectReason.EMPTY_METRICS,
    Garbage.NULL_METRIC: RejectReason.NESTED_VALUE,
    Garbage.BAD_METRIC_NAME: RejectReason.BAD_METRIC_NAME,
    Garbage.BAD_TS: RejectReason.BAD_TS,
    Garbage.HUGE_INTEGER: RejectReason.INTEGER_OUT_OF_RANGE,
    Garbage.LONG_STRING: RejectReason.STRING_TOO_LONG,
    Garbage.BAD_BOOT: RejectReason.BAD_IDENTITY,
    Garbage.TOO_LARGE: RejectReason.TOO_LARGE,
}


def test_every_variant_has_an_expected_rejection() -> None:
    assert set(EXPECTED) == set(Garbage)


@pytest.mark.parametrize("variant", list(Garbage), ids=[variant.value for variant in Garbage])
@pytest.mark.parametrize("metric", ["temperature", "co2", "filament_used_mm", "uses"])
def test_garbage_fails_the_contract_with_its_reason(variant: Garbage, metric: str) -> None:
    now = time.time()
    payload = garbage_payload(variant, metric, random.Random(1), ts=now)
    with pytest.raises(ContractError) as caught:
        parse_telemetry("env-01", payload, now)
    assert caught.value.reason is EXPECTED[variant]
