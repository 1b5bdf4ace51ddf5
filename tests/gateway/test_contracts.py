"""The MQTT contract against its shared test vectors, and a property test from payload to reading."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.contracts import (
    MAX_PAYLOAD_BYTES,
    ContractError,
    RejectReason,
    encode_event,
    encode_status,
    encode_telemetry,
    is_device_id,
    parse_event,
    parse_status,
    parse_telemetry,
    parse_topic,
    sign_gate_command,
    verify_gate_command,
)
from gateway.contracts.gate import gate_command_message
from gateway.normalise import CLOCK_SUSPECT, GOOD, to_readings

VECTORS = json.loads((Path(__file__).parents[2] / "gateway" / "contracts" / "vectors.json").read_text("utf-8"))
RECEIVED = VECTORS["received"]


@pytest.mark.parametrize("case", VECTORS["telemetry_valid"], ids=lambda c: c["name"])
def test_valid_telemetry_vectors(case):
    telemetry = parse_telemetry(case["device"], case["payload"].encode(), RECEIVED)
    expect = case["expect"]
    assert dict(telemetry.metrics) == expect["metrics"]
    assert telemetry.ts == expect["ts"]
    assert telemetry.clock_suspect is expect["clock_suspect"]
    assert (telemetry.boot, telemetry.seq) == (expect["boot"], expect["seq"])


def _payload(case) -> bytes:
    return bytes.fromhex(case["payload_hex"]) if "payload_hex" in case else case["payload"].encode()


@pytest.mark.parametrize("case", VECTORS["telemetry_invalid"], ids=lambda c: c["name"])
def test_invalid_telemetry_vectors(case):
    with pytest.raises(ContractError) as caught:
        parse_telemetry("dev", _payload(case), RECEIVED)
    assert caught.value.reason == case["reason"]
    assert str(caught.value)  # says what was wrong


def test_too_large_payload():
    payload = b'{"metrics":{"t":1},"pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    assert len(payload) > VECTORS["too_large"]["bytes"] - 1
    with pytest.raises(ContractError) as caught:
        parse_telemetry("dev", payload, RECEIVED)
    assert caught.value.reason is RejectReason.TOO_LARGE


@pytest.mark.parametrize("topic,site,device,kind", VECTORS["topics_valid"])
def test_topics(topic, site, device, kind):
    ref = parse_topic(topic)
    assert ref is not None and (ref.site, ref.device, ref.kind.value) == (site, device, kind)


@pytest.mark.parametrize("topic", ["campus/s/d", "campus/s/d/telemetry/x", "other/s/d/telemetry", "campus/s/d/nope"])
def test_not_device_topics(topic):
    assert parse_topic(topic) is None


@pytest.mark.parametrize("device", VECTORS["device_ids_invalid"])
def test_invalid_device_ids(device):
    assert not is_device_id(device)


@pytest.mark.parametrize("device", VECTORS["device_ids_valid"])
def test_valid_device_ids(device):
    assert is_device_id(device)


@pytest.mark.parametrize("case", VECTORS["gate_commands"], ids=lambda c: c["scan_id"])
def test_gate_command_vectors(case):
    key = bytes.fromhex(case["key_hex"])
    fields = (case["site"], case["gate"], case["scan_id"], case["action"], case["expires"])
    assert gate_command_message(*fields).decode() == case["message"]
    assert sign_gate_command(key, *fields) == case["sig"]
    assert verify_gate_command(key, *fields, case["sig"])
    assert not verify_gate_command(key, *fields[:-1], case["expires"] + 1, case["sig"])


def test_status_and_event_round_trip():
    status = parse_status("door-1", encode_status(False, ts=RECEIVED - 1, boot="b", fw="1.2"), RECEIVED)
    assert (status.online, status.boot, status.fw, status.clock_suspect) == (False, "b", "1.2", False)
    event = parse_event(
        "display-1", encode_event("E42", severity="major", message="背光故障", seq=3, boot="b"), RECEIVED
    )
    assert (event.code, event.severity, event.message, event.seq) == ("E42", "major", "背光故障", 3)
    with pytest.raises(ContractError) as caught:
        parse_status("door-1", b'{"state":"maybe"}', RECEIVED)
    assert caught.value.reason is RejectReason.BAD_STATE
    with pytest.raises(ContractError) as caught:
        parse_event("door-1", b'{"severity":"major"}', RECEIVED)
    assert caught.value.reason is RejectReason.BAD_EVENT


metric_names = st.from_regex(r"[a-z][a-z0-9_.]{0,63}", fullmatch=True)
metric_values = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=256),
)


@given(
    metrics=st.dictionaries(metric_names, metric_values, min_size=1, max_size=8),
    ts=st.one_of(st.none(), st.floats(min_value=0, max_value=4e9), st.integers(min_value=0, max_value=4_000_000_000)),
    boot=st.one_of(st.none(), st.text(min_size=1, max_size=16)),
    seq=st.one_of(st.none(), st.integers(min_value=0, max_value=2**53)),
)
def test_payload_to_reading_property(metrics, ts, boot, seq):
    payload = encode_telemetry(metrics, ts=ts, boot=boot, seq=seq)
    telemetry = parse_telemetry("dev-1", payload, RECEIVED)
    readings = to_readings(telemetry)
    assert [r.metric for r in readings] == list(metrics)
    for reading in readings:
        original = metrics[reading.metric]
        assert reading.value == original and type(reading.value) is type(original)
        assert reading.device == "dev-1"
    suspect = ts is not None and not (1_577_836_800 <= ts <= RECEIVED + 300)
    expected_ts = RECEIVED if ts is None or suspect else float(ts)
    assert all(r.ts == expected_ts and math.isfinite(r.ts) for r in readings)
    assert all(r.quality == (CLOCK_SUSPECT if suspect else GOOD) for r in readings)
    assert (telemetry.boot, telemetry.seq) == (boot, seq)
