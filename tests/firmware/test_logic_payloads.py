"""The firmware's payload builders against the gateway's contract: what a node builds, the gateway parses as
valid and equal; what the contract's vectors call invalid, a node refuses to build."""

from __future__ import annotations

import json
import math

import pytest
from campusnode import payloads, topics
from campusnode.payloads import PayloadError
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contracts import (
    ContractError,
    is_device_id,
    parse_event,
    parse_status,
    parse_telemetry,
    parse_topic,
)
from gateway.contracts.payloads import EARLIEST_TS
from tests.firmware._logic_support import RECEIVED, VECTORS

#: Invalid vectors about the wire bytes or the document's shape, which no builder argument can express: the
#: builders always emit a UTF-8 JSON object of known keys (see ``test_telemetry_property``).
WIRE_ONLY = {"malformed_json", "invalid_utf8_hex", "array_payload", "number_payload", "deep_extra_key", "very_deep"}


def _wire(case: dict) -> bytes:
    return bytes.fromhex(case["payload_hex"]) if "payload_hex" in case else case["payload"].encode()


def _build_telemetry(document: dict) -> bytes:
    return payloads.telemetry(document.get("metrics"), document.get("ts"), document.get("boot"), document.get("seq"))


# -- the shared vectors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["telemetry_valid"], ids=lambda case: case["name"])
def test_valid_vectors_built_by_the_firmware_parse_back_equal(case):
    document = json.loads(case["payload"])
    expect = case["expect"]
    ts = document.get("ts")
    if ts is not None and ts < EARLIEST_TS:
        # A node never sends a time from before 2020 (an ESP32 counting from 2000): it refuses to build one.
        with pytest.raises(PayloadError, match="before 2020"):
            _build_telemetry(document)
        without_ts = {key: value for key, value in document.items() if key != "ts"}
        parsed = parse_telemetry(case["device"], _build_telemetry(without_ts), RECEIVED)
        assert (parsed.ts, parsed.clock_suspect) == (RECEIVED, False)
    else:
        parsed = parse_telemetry(case["device"], _build_telemetry(document), RECEIVED)
        assert parsed.ts == expect["ts"]
        assert parsed.clock_suspect is expect["clock_suspect"]
    assert dict(parsed.metrics) == expect["metrics"]
    assert {name: type(value) for name, value in parsed.metrics.items()} == {
        name: type(value) for name, value in expect["metrics"].items()
    }
    assert (parsed.boot, parsed.seq) == (expect["boot"], expect["seq"])


@pytest.mark.parametrize(
    "case", [c for c in VECTORS["telemetry_invalid"] if c["name"] not in WIRE_ONLY], ids=lambda case: case["name"]
)
def test_invalid_vectors_are_refused_by_the_builder(case):
    document = json.loads(_wire(case))
    with pytest.raises(PayloadError) as caught:
        _build_telemetry(document)
    assert str(caught.value)
    # and the gateway agrees they are invalid
    with pytest.raises(ContractError):
        parse_telemetry("dev", _wire(case), RECEIVED)


def test_every_invalid_vector_is_either_refused_or_cannot_be_built():
    names = {case["name"] for case in VECTORS["telemetry_invalid"]}
    assert names >= WIRE_ONLY
    assert len(names - WIRE_ONLY) >= 15  # a new vector lands in the refused group unless named here


def test_payload_over_64_kib_is_refused():
    metrics = {"s" + str(index): "x" * 256 for index in range(VECTORS["too_large"]["bytes"] // 256 + 1)}
    with pytest.raises(PayloadError, match="64 KiB"):
        payloads.telemetry(metrics)
    just_fits = {"s" + str(index): "x" * 256 for index in range(200)}
    assert len(payloads.telemetry(just_fits)) <= payloads.MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("device", VECTORS["device_ids_valid"])
def test_valid_device_ids(device):
    assert topics.is_device_id(device)


@pytest.mark.parametrize("device", VECTORS["device_ids_invalid"])
def test_invalid_device_ids(device):
    assert not topics.is_device_id(device)


@settings(deadline=None)
@given(st.one_of(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,70}", fullmatch=True), st.text(max_size=70)))
def test_device_id_check_matches_the_gateway(text):
    assert topics.is_device_id(text) == is_device_id(text)


@pytest.mark.parametrize("topic,site,device,kind", VECTORS["topics_valid"])
def test_device_topics_are_the_gateways(topic, site, device, kind):
    built = topics.device_topic(site, device, kind)
    assert built == topic
    ref = parse_topic(built)
    assert ref is not None and (ref.site, ref.device, ref.kind.value) == (site, device, kind)


def test_gate_topics_and_unknown_kinds():
    assert topics.gate_topic("s1", "gym-east", "scan") == "campus/s1/gate/gym-east/scan"
    assert topics.gate_topic("s1", "gym-east", "cmd") == "campus/s1/gate/gym-east/cmd"
    assert topics.gate_topic("s1", "gym-east", "passage") == "campus/s1/gate/gym-east/passage"
    assert topics.device_topic("s1", "d", "cmd") == "campus/s1/d/cmd"
    with pytest.raises(ValueError, match="unknown device topic kind"):
        topics.device_topic("s1", "d", "scan")
    with pytest.raises(ValueError, match="unknown gate topic kind"):
        topics.gate_topic("s1", "g", "telemetry")


# -- every builder produces what the gateway (or the contract table) accepts -----------------------------------------


def test_telemetry_is_compact_utf8_json():
    data = payloads.telemetry({"temperature": 21.5, "door.open": False, "label": "电脑"}, 1767225590, "b1", 3)
    assert b" " not in data
    assert json.loads(data.decode("utf-8")) == {
        "metrics": {"temperature": 21.5, "door.open": False, "label": "电脑"},
        "ts": 1767225590,
        "boot": "b1",
        "seq": 3,
    }
    assert payloads.telemetry({"t": 1}) == b'{"metrics":{"t":1}}'


def test_status_online_and_offline_parse():
    online = parse_status("env-lab1", payloads.status(True, 1767225590, "b1", "campusnode-0.1.0", "10.0.0.7"), RECEIVED)
    assert (online.online, online.ts, online.boot, online.fw, online.ip) == (
        True,
        1767225590.0,
        "b1",
        "campusnode-0.1.0",
        "10.0.0.7",
    )
    assert online.clock_suspect is False
    will = payloads.status(False, None, "b1", "campusnode-0.1.0")
    offline = parse_status("env-lab1", will, RECEIVED)
    assert (offline.online, offline.ts, offline.ip) == (False, RECEIVED, None)
    assert json.loads(will) == {"state": "offline", "boot": "b1", "fw": "campusnode-0.1.0"}


def test_event_parses_with_defaults_and_message():
    plain = parse_event("env-lab1", payloads.event("boot"), RECEIVED)
    assert (plain.code, plain.severity, plain.message, plain.boot, plain.seq) == ("boot", "info", "", None, None)
    assert json.loads(payloads.event("boot")) == {"code": "boot", "severity": "info"}
    full = parse_event(
        "env-lab1", payloads.event("sensor_fault", "warning", "sht3x: 传感器无应答", 1767225599.5, "b1", 9), RECEIVED
    )
    assert (full.code, full.severity, full.message, full.ts, full.boot, full.seq) == (
        "sensor_fault",
        "warning",
        "sht3x: 传感器无应答",
        1767225599.5,
        "b1",
        9,
    )


def test_gate_scan_and_passage_follow_the_contract_table():
    scan = json.loads(payloads.gate_scan("CP1:abc/def", "a1b2c3d4-7", 1767225590, "out"))
    assert scan == {"code": "CP1:abc/def", "scan_id": "a1b2c3d4-7", "ts": 1767225590, "direction": "out"}
    assert json.loads(payloads.gate_scan("x", "s-1")) == {"code": "x", "scan_id": "s-1"}
    assert json.loads(payloads.gate_passage("s-1", True)) == {"scan_id": "s-1", "passed": True}
    assert json.loads(payloads.gate_passage("s-1", False)) == {"scan_id": "s-1", "passed": False}


# -- builders refuse what the contract forbids -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "metrics,fragment",
    [
        ({}, "non-empty object"),
        (None, "non-empty object"),
        ([("t", 1)], "non-empty object"),
        ({"Temp": 1}, "is not [a-z]"),
        ({"": 1}, "is not [a-z]"),
        ({"t-1": 1}, "is not [a-z]"),
        ({"a" * 65: 1}, "is not [a-z]"),
        ({1: 1}, "is not [a-z]"),
        ({"t": float("nan")}, "not a finite number"),
        ({"t": float("inf")}, "not a finite number"),
        ({"t": -float("inf")}, "not a finite number"),
        ({"t": 2**53 + 1}, "beyond 2^53"),
        ({"t": -(2**53) - 1}, "beyond 2^53"),
        ({"t": "y" * 257}, "longer than 256"),
        ({"t": None}, "not NoneType"),
        ({"t": [1]}, "not list"),
        ({"t": {"v": 1}}, "not dict"),
        ({"t": b"raw"}, "not bytes"),
    ],
)
def test_telemetry_refuses_bad_metrics(metrics, fragment):
    with pytest.raises(PayloadError) as caught:
        payloads.telemetry(metrics)
    assert fragment in str(caught.value)


def test_metric_limits_are_inclusive():
    data = payloads.telemetry({"a" * 64: 2**53, "b": -(2**53), "c": "z" * 256, "d": True, "e": -0.0})
    parsed = parse_telemetry("dev", data, RECEIVED)
    assert parsed.metrics["a" * 64] == 2**53 and parsed.metrics["d"] is True


@pytest.mark.parametrize(
    "ts,fragment",
    [
        (True, "finite number"),
        ("1767225600", "finite number"),
        (float("nan"), "finite number"),
        (float("inf"), "finite number"),
        (820000000, "before 2020"),  # an ESP32 that counts from 2000 and was never set
        (0, "before 2020"),
        (EARLIEST_TS - 0.5, "before 2020"),
    ],
)
def test_every_builder_with_a_ts_refuses_a_clock_that_is_not_set(ts, fragment):
    builders = [
        lambda: payloads.telemetry({"t": 1}, ts),
        lambda: payloads.status(True, ts),
        lambda: payloads.event("boot", ts=ts),
        lambda: payloads.gate_scan("code", "s-1", ts),
    ]
    for build in builders:
        with pytest.raises(PayloadError, match=fragment):
            build()


def test_ts_at_2020_is_accepted():
    parsed = parse_telemetry("dev", payloads.telemetry({"t": 1}, int(EARLIEST_TS)), RECEIVED)
    assert (parsed.ts, parsed.clock_suspect) == (EARLIEST_TS, False)


@pytest.mark.parametrize(
    "boot,seq,fragment",
    [
        ("", 0, "boot"),
        ("b" * 17, 0, "boot"),
        (7, 0, "boot"),
        ("b", -1, "seq"),
        ("b", 1.5, "seq"),
        ("b", True, "seq"),
        ("b", "1", "seq"),
        ("b", 2**53 + 1, "seq"),
    ],
)
def test_identity_is_checked(boot, seq, fragment):
    with pytest.raises(PayloadError, match=fragment):
        payloads.telemetry({"t": 1}, None, boot, seq)
    with pytest.raises(PayloadError, match=fragment):
        payloads.event("code", "info", "", None, boot, seq)


@pytest.mark.parametrize(
    "build,fragment",
    [
        (lambda: payloads.event(""), "must not be empty"),
        (lambda: payloads.event("c" * 65), "longer than 64"),
        (lambda: payloads.event(42), "code must be a string"),
        (lambda: payloads.event("c", "fatal"), "severity must be one of"),
        (lambda: payloads.event("c", "info", "m" * 1025), "longer than 1024"),
        (lambda: payloads.status(True, fw="f" * 65), "fw is longer than 64"),
        (lambda: payloads.status(True, ip=7), "ip must be a string"),
        (lambda: payloads.status(True, boot="b" * 17), "boot"),
        (lambda: payloads.gate_scan("code", ""), "scan_id must not be empty"),
        (lambda: payloads.gate_scan("code", "s" * 65), "scan_id is longer than 64"),
        (lambda: payloads.gate_scan("c" * 4097, "s-1"), "code is longer than 4096"),
        (lambda: payloads.gate_scan(None, "s-1"), "code must be a string"),
        (lambda: payloads.gate_scan("code", "s-1", direction="sideways"), "direction"),
        (lambda: payloads.gate_passage("s-1", 1), "passed must be a bool"),
        (lambda: payloads.gate_passage(5, True), "scan_id must be a string"),
    ],
)
def test_other_builders_refuse_bad_fields(build, fragment):
    with pytest.raises(PayloadError, match=fragment):
        build()


def test_message_limits_are_inclusive():
    event = parse_event("dev", payloads.event("c" * 64, "critical", "m" * 1024), RECEIVED)
    assert (len(event.code), event.severity, len(event.message)) == (64, "critical", 1024)


def test_boot_id_is_12_hex_characters_from_6_bytes():
    assert payloads.boot_id(bytes(range(6))) == "000102030405"
    assert payloads.boot_id(b"\xff\xfe\xfd\xfc\xfb\xfa\x00\x01") == "fffefdfcfbfa"
    with pytest.raises(ValueError, match="6 random bytes"):
        payloads.boot_id(b"12345")


@settings(deadline=None)
@given(st.binary(min_size=6, max_size=32))
def test_boot_id_is_a_valid_boot(entropy):
    boot = payloads.boot_id(entropy)
    assert boot == entropy[:6].hex()
    parsed = parse_telemetry("dev", payloads.telemetry({"t": 1}, None, boot, 0), RECEIVED)
    assert parsed.boot == boot


# -- property tests: payload -> gateway parse ------------------------------------------------------------------------

metric_names = st.from_regex(r"[a-z][a-z0-9_.]{0,63}", fullmatch=True)
metric_values = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=256),
)
timestamps = st.one_of(
    st.none(),
    st.integers(min_value=int(EARLIEST_TS), max_value=int(RECEIVED)),
    st.floats(min_value=EARLIEST_TS, max_value=RECEIVED),
)
boots = st.one_of(st.none(), st.text(min_size=1, max_size=16))
seqs = st.one_of(st.none(), st.integers(min_value=0, max_value=2**53))


@settings(deadline=None)
@given(st.dictionaries(metric_names, metric_values, min_size=1, max_size=8), timestamps, boots, seqs)
def test_telemetry_property(metrics, ts, boot, seq):
    data = payloads.telemetry(metrics, ts, boot, seq)
    document = json.loads(data.decode("utf-8"))
    assert isinstance(document, dict) and set(document) <= {"metrics", "ts", "boot", "seq"}
    parsed = parse_telemetry("dev-1", data, RECEIVED)
    assert dict(parsed.metrics) == metrics
    assert all(type(parsed.metrics[name]) is type(value) for name, value in metrics.items())
    assert parsed.ts == (RECEIVED if ts is None else float(ts)) and math.isfinite(parsed.ts)
    assert parsed.clock_suspect is False
    assert (parsed.boot, parsed.seq) == (boot, seq)


@settings(deadline=None)
@given(
    st.text(min_size=1, max_size=64),
    st.sampled_from(payloads.SEVERITIES),
    st.text(max_size=1024),
    timestamps,
    boots,
    seqs,
)
def test_event_property(code, severity, message, ts, boot, seq):
    parsed = parse_event("dev-1", payloads.event(code, severity, message, ts, boot, seq), RECEIVED)
    assert (parsed.code, parsed.severity, parsed.message) == (code, severity, message)
    assert parsed.ts == (RECEIVED if ts is None else float(ts)) and not parsed.clock_suspect
    assert (parsed.boot, parsed.seq) == (boot, seq)


@settings(deadline=None)
@given(
    st.booleans(),
    timestamps,
    boots,
    st.one_of(st.none(), st.text(max_size=64)),
    st.one_of(st.none(), st.text(max_size=64)),
)
def test_status_property(online, ts, boot, fw, ip):
    parsed = parse_status("dev-1", payloads.status(online, ts, boot, fw, ip), RECEIVED)
    assert (parsed.online, parsed.boot, parsed.fw, parsed.ip) == (online, boot, fw, ip)
    assert parsed.ts == (RECEIVED if ts is None else float(ts)) and not parsed.clock_suspect


@settings(deadline=None)
@given(
    st.text(max_size=300),
    st.text(min_size=1, max_size=64),
    timestamps,
    st.one_of(st.none(), st.sampled_from(payloads.DIRECTIONS)),
    st.booleans(),
)
def test_gate_payloads_property(code, scan_id, ts, direction, passed):
    scan = json.loads(payloads.gate_scan(code, scan_id, ts, direction).decode("utf-8"))
    expected = {"code": code, "scan_id": scan_id}
    if ts is not None:
        expected["ts"] = ts
    if direction is not None:
        expected["direction"] = direction
    assert scan == expected
    assert json.loads(payloads.gate_passage(scan_id, passed)) == {"scan_id": scan_id, "passed": passed}
