"""Payload builders and topic names under MicroPython, against the contract's shared test vectors."""

import json

from _support import load_vectors, message, raises
from campusnode import payloads, topics

VECTORS = load_vectors()
#: Reasons a builder must refuse itself: the node never sends what the gateway would dead-letter.
BUILDER_REASONS = (
    "non_finite",
    "integer_out_of_range",
    "nested_value",
    "string_too_long",
    "bad_metric_name",
    "empty_metrics",
    "missing_metrics",
    "bad_ts",
    "bad_identity",
)
#: What only a receiver sees (bytes that are not JSON, not UTF-8, not an object, nested too deep): no builder
#: makes such bytes, so there is nothing to refuse.
WIRE_REASONS = ("malformed_json", "invalid_utf8", "not_object", "too_deep")
_SENTINELS = {"__nan__": float("nan"), "__inf__": float("inf"), "__-inf__": float("-inf")}


def _document(text: str) -> object:
    """JSON as MicroPython reads it; NaN and Infinity (which its json rejects) become the floats they name."""
    text = text.replace("-Infinity", '"__-inf__"').replace("Infinity", '"__inf__"').replace("NaN", '"__nan__"')
    document = json.loads(text)
    if isinstance(document, dict) and isinstance(document.get("metrics"), dict):
        metrics = document["metrics"]
        for name in list(metrics):
            if isinstance(metrics[name], str) and metrics[name] in _SENTINELS:
                metrics[name] = _SENTINELS[metrics[name]]
    return document


def _build(document: dict) -> bytes:
    return payloads.telemetry(document.get("metrics"), document.get("ts"), document.get("boot"), document.get("seq"))


def test_valid_vectors_build_the_same_document():
    built = 0
    for vector in VECTORS["telemetry_valid"]:
        if vector["expect"]["clock_suspect"]:
            continue
        document = _document(vector["payload"])
        data = _build(document)
        assert isinstance(data, bytes), vector["name"]
        again = json.loads(data)
        expect = {key: document[key] for key in ("metrics", "ts", "boot", "seq") if key in document}
        assert again == expect, vector["name"] + ": " + repr(again)
        assert again["metrics"] == vector["expect"]["metrics"], vector["name"]
        assert again.get("boot") == vector["expect"]["boot"], vector["name"]
        assert again.get("seq") == vector["expect"]["seq"], vector["name"]
        # compact JSON: never longer than the vector's own text
        assert len(data) <= len(vector["payload"].encode("utf-8")), vector["name"]
        built += 1
    assert built >= 5, built


def test_a_node_never_sends_a_ts_the_gateway_would_flag_as_an_unset_clock():
    refused = 0
    for vector in VECTORS["telemetry_valid"]:
        document = _document(vector["payload"])
        ts = document.get("ts")
        if vector["expect"]["clock_suspect"] and ts is not None and ts < payloads.EARLIEST_TS:
            exc = raises(payloads.PayloadError, _build, document)
            assert "2020" in message(exc), message(exc)
            refused += 1
    assert refused >= 1


def test_invalid_vectors_are_refused_by_the_builders():
    seen = []
    for vector in VECTORS["telemetry_invalid"]:
        reason = vector["reason"]
        assert reason in BUILDER_REASONS or reason in WIRE_REASONS, "new reason " + reason + ": sort it here"
        if reason in WIRE_REASONS:
            continue
        document = _document(vector["payload"])
        assert isinstance(document, dict), vector["name"]
        raises(payloads.PayloadError, _build, document)
        if reason not in seen:
            seen.append(reason)
    missing = [reason for reason in BUILDER_REASONS if reason not in seen]
    assert not missing, "no vector exercised " + repr(missing)


def test_too_large_payload_is_refused():
    limit = VECTORS["too_large"]["bytes"] - 1
    assert limit == payloads.MAX_PAYLOAD_BYTES
    metrics = {}
    index = 0
    size = 0
    while size <= limit:
        metrics["m" + str(index)] = "x" * payloads.MAX_STRING_CHARS
        size += payloads.MAX_STRING_CHARS + 10
        index += 1
    exc = raises(payloads.PayloadError, payloads.telemetry, metrics)
    assert "64 KiB" in message(exc), message(exc)


def test_integers_at_the_limit_and_bools_are_values():
    data = payloads.telemetry({"energy_wh": 2**53, "printing": True, "t": -(2**53)}, None, "b", 2**53)
    assert json.loads(data) == {"metrics": {"energy_wh": 2**53, "printing": True, "t": -(2**53)}, "boot": "b",
                                "seq": 2**53}
    raises(payloads.PayloadError, payloads.telemetry, {"t": 2**53 + 1})
    raises(payloads.PayloadError, payloads.telemetry, {"t": 1}, None, "b", True)


def test_other_builders():
    status = json.loads(payloads.status(True, 1767225600, "a1b2c3", "campusnode-0.1.0", "10.0.0.7"))
    assert status == {"state": "online", "ts": 1767225600, "boot": "a1b2c3", "fw": "campusnode-0.1.0",
                      "ip": "10.0.0.7"}
    assert json.loads(payloads.status(False)) == {"state": "offline"}
    event = json.loads(payloads.event("sensor_fault", "warning", "sht3x: no answer", None, "b", 3))
    assert event == {"code": "sensor_fault", "severity": "warning", "message": "sht3x: no answer", "boot": "b",
                     "seq": 3}
    raises(payloads.PayloadError, payloads.event, "x", "fatal")
    raises(payloads.PayloadError, payloads.event, "")
    raises(payloads.PayloadError, payloads.event, "c" * 65)
    scan = json.loads(payloads.gate_scan("PASS:abc", "s-1", None, "in"))
    assert scan == {"code": "PASS:abc", "scan_id": "s-1", "direction": "in"}
    raises(payloads.PayloadError, payloads.gate_scan, "PASS:abc", "s-1", None, "sideways")
    raises(payloads.PayloadError, payloads.gate_scan, "PASS:abc", "")
    assert json.loads(payloads.gate_passage("s-1", False)) == {"scan_id": "s-1", "passed": False}
    raises(payloads.PayloadError, payloads.gate_passage, "s-1", 1)


def test_chinese_text_is_utf8():
    data = payloads.telemetry({"input": "电脑"})
    assert json.loads(data.decode("utf-8"))["metrics"]["input"] == "电脑"
    raises(payloads.PayloadError, payloads.telemetry, {"input": "电" * 257})


def test_boot_id():
    boot = payloads.boot_id(bytes((0, 1, 2, 0xAB, 0xCD, 0xEF, 9)))
    assert boot == "000102abcdef", boot
    payloads.check_identity(boot, 0)
    raises(ValueError, payloads.boot_id, b"12345")


def test_device_ids():
    for text in VECTORS["device_ids_valid"]:
        assert topics.is_device_id(text), text
    for text in VECTORS["device_ids_invalid"]:
        assert not topics.is_device_id(text), text


def test_topics():
    for topic, site, device, kind in VECTORS["topics_valid"]:
        assert topics.device_topic(site, device, kind) == topic
    assert topics.gate_topic("test-school", "gym-east", "cmd") == "campus/test-school/gate/gym-east/cmd"
    raises(ValueError, topics.device_topic, "s1", "d1", "scan")
    raises(ValueError, topics.gate_topic, "s1", "g1", "telemetry")
