"""Ingest through a real Mosquitto: bad input becomes dead letters, redelivery is stored once, reboots are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.contracts import encode_telemetry

VECTORS = json.loads((Path(__file__).parents[2] / "gateway" / "contracts" / "vectors.json").read_text("utf-8"))


def _metric(gw, name: str, **labels: str) -> float:
    text = gw.gateway.metrics.render().decode()
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _bad_payloads() -> list[tuple[str, bytes, str]]:
    cases = []
    for case in VECTORS["telemetry_invalid"]:
        payload = bytes.fromhex(case["payload_hex"]) if "payload_hex" in case else case["payload"].encode()
        cases.append((case["name"], payload, case["reason"]))
    cases.append(("too_large", b'{"metrics":{"t":1},"pad":"' + b"x" * 70_000 + b'"}', "too_large"))
    return cases


def test_every_bad_input_class_becomes_a_counted_dead_letter(gateway_factory, publisher):
    gw = gateway_factory()
    cases = _bad_payloads()
    for _name, payload, _reason in cases:
        publisher.device("env-lab1", "telemetry", payload)
    publisher.device("Bad_Device", "telemetry", encode_telemetry({"t": 1}))  # upper case: not a device id
    # the gateway keeps working after all of that
    publisher.device("env-lab1", "telemetry", encode_telemetry({"temperature": 21.5}, boot="b", seq=0))

    gw.wait_for(lambda: len(gw.get("/api/devices/env-lab1/readings")["readings"]) == 1, what="the good reading")
    body = gw.get("/api/deadletters?limit=1000")
    stored = {(d["reason"], d["size"]) for d in body["deadletters"]}
    for name, payload, reason in cases:
        assert (reason, len(payload)) in stored, name
    assert any(d["reason"] == "bad_device_id" for d in body["deadletters"])
    expected: dict[str, int] = {}
    for _name, _payload, reason in cases:
        expected[reason] = expected.get(reason, 0) + 1
    expected["bad_device_id"] = 1
    assert body["counts"] == expected
    for reason, count in expected.items():
        assert _metric(gw, "campusgw_messages_rejected_total", reason=reason) == count
    # payloads are kept byte for byte: the invalid UTF-8 one comes back in base64
    utf8 = next(d for d in body["deadletters"] if d["reason"] == "invalid_utf8")
    assert utf8["payload"] is None and utf8["payload_base64"]
    assert _metric(gw, "campusgw_readings_stored_total") == 1


def test_clock_suspect_ts_is_replaced_and_flagged(gateway_factory, publisher):
    gw = gateway_factory()
    publisher.device("env-lab1", "telemetry", encode_telemetry({"co2": 600}, ts=820_000_000, boot="b", seq=0))
    gw.wait_for(lambda: gw.get("/api/devices/env-lab1/readings").get("readings"), what="reading")
    reading = gw.get("/api/devices/env-lab1/readings")["readings"][0]
    assert reading["quality"] == ["clock_suspect"]
    assert reading["ts"] > 1_700_000_000
    assert gw.get("/api/deadletters")["deadletters"] == []


def test_redelivered_messages_are_stored_once_and_counted(gateway_factory, publisher):
    gw = gateway_factory()
    for _ in range(3):
        for seq in range(5):
            publisher.device("printer-01", "telemetry", encode_telemetry({"bed_temp": 60 + seq}, boot="x1", seq=seq))
    gw.wait_for(lambda: _metric(gw, "campusgw_duplicates_total") == 10, what="10 duplicates counted")
    readings = gw.get("/api/devices/printer-01/readings")["readings"]
    assert [r["value"] for r in readings] == [60, 61, 62, 63, 64]


def test_reboot_with_seq_from_zero_stores_everything(gateway_factory, publisher):
    gw = gateway_factory()
    for boot in ("first", "second"):
        for seq in range(3):
            publisher.device("printer-01", "telemetry", encode_telemetry({"jobs": seq}, boot=boot, seq=seq))
    gw.wait_for(lambda: len(gw.get("/api/devices/printer-01/readings")["readings"]) == 6, what="6 readings")
    events = [e["kind"] for e in gw.get("/api/devices/printer-01")["events"]]
    assert "reboot" in events
    assert _metric(gw, "campusgw_duplicates_total") == 0


def test_messages_without_identity_are_stored_and_counted(gateway_factory, publisher):
    gw = gateway_factory()
    for _ in range(2):
        publisher.device("env-lab1", "telemetry", encode_telemetry({"humidity": 40}))
    gw.wait_for(lambda: len(gw.get("/api/devices/env-lab1/readings")["readings"]) == 2, what="2 readings")
    assert _metric(gw, "campusgw_messages_without_identity_total") == 2


def test_discovery_cap_turns_extra_devices_into_dead_letters(gateway_factory, publisher):
    gw = gateway_factory(extra="[ingest]\ndiscovery_cap = 3\n")
    for index in range(6):
        publisher.device(f"stray-{index}", "telemetry", encode_telemetry({"t": index}))
    gw.wait_for(lambda: gw.get("/api/deadletters")["counts"].get("discovery_cap") == 3, what="3 refused devices")
    names = sorted(d["device"] for d in gw.get("/api/devices")["devices"])
    assert names == ["stray-0", "stray-1", "stray-2"]
    # a known device keeps sending after the cap is reached
    publisher.device("stray-1", "telemetry", encode_telemetry({"t": 99}))
    gw.wait_for(lambda: len(gw.get("/api/devices/stray-1/readings")["readings"]) == 2, what="second reading")


def test_declared_devices_have_type_room_and_units(gateway_factory, publisher):
    gw = gateway_factory(
        extra=(
            '[[devices]]\nid = "env-lab1"\ntype = "env_sensor"\nname = "创客教室 温湿度"\nroom = "maker-lab"\n'
            'units = { temperature = "°C", humidity = "%" }\n'
        )
    )
    publisher.device("env-lab1", "telemetry", encode_telemetry({"temperature": 22.0, "humidity": 45}))
    gw.wait_for(lambda: gw.get("/api/devices/env-lab1")["latest"].get("humidity"), what="latest values")
    device = gw.get("/api/devices/env-lab1")
    assert (device["type"], device["room"], device["name"]) == ("env_sensor", "maker-lab", "创客教室 温湿度")
    assert device["latest"]["temperature"]["unit"] == "°C"


@pytest.mark.parametrize(
    "kind,payload,reason",
    [
        ("status", b'{"state":"sleeping"}', "bad_state"),
        ("event", b'{"severity":"major"}', "bad_event"),
        ("status", b"", "malformed_json"),
    ],
)
def test_bad_status_and_events_are_dead_letters(gateway_factory, publisher, kind, payload, reason):
    gw = gateway_factory()
    publisher.device("env-lab1", kind, payload)
    gw.wait_for(lambda: gw.get("/api/deadletters")["counts"].get(reason) == 1, what=reason)


def test_device_events_are_stored(gateway_factory, publisher):
    gw = gateway_factory()
    publisher.device("printer-01", "event", b'{"code":"E12","severity":"major","message":"nozzle clog"}')
    gw.wait_for(
        lambda: any(
            e["kind"] == "event"
            for e in gw.get("/api/devices/printer-01")["events"]
            if gw.get("/api/devices").get("devices")
        ),
        what="event",
    )
    event = next(e for e in gw.get("/api/devices/printer-01")["events"] if e["kind"] == "event")
    assert event["detail"]["code"] == "E12" and event["detail"]["severity"] == "major"
