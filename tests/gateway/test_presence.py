"""Device presence: retained status, last will, silence per device type; every change is an event."""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt

from gateway.contracts import encode_status, encode_telemetry


def _state(gw, device: str):
    return gw.get(f"/api/devices/{device}")["online"]


def _kinds(gw, device: str) -> list[str]:
    return [e["kind"] for e in reversed(gw.get(f"/api/devices/{device}")["events"])]


def test_retained_status_and_last_will(broker, gateway_factory):
    gw = gateway_factory()
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="env-lab1", protocol=mqtt.MQTTv5)
    device.username_pw_set("env-lab1", broker.password("env-lab1"))  # a per-device broker user
    topic = f"campus/{broker.site}/env-lab1/status"
    device.will_set(topic, encode_status(False), qos=1, retain=True)
    device.connect(broker.host, broker.port, keepalive=5)
    device.loop_start()
    device.publish(
        topic, encode_status(True, boot="b1", fw="1.0.3", ip="10.0.0.7"), qos=1, retain=True
    ).wait_for_publish(5)
    gw.wait_for(lambda: _state(gw, "env-lab1") is True, what="online")
    assert gw.get("/api/devices/env-lab1")["fw"] == "1.0.3"
    # the device dies without a DISCONNECT: the broker publishes its last will
    device.loop_stop()
    sock = device.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    gw.wait_for(lambda: _state(gw, "env-lab1") is False, what="offline from the last will")
    assert _kinds(gw, "env-lab1")[-2:] == ["online", "offline"]
    events = gw.get("/api/devices/env-lab1")["events"]
    assert events[0]["detail"]["cause"] == "status"


def test_a_new_gateway_reads_the_retained_status(broker, gateway_factory, publisher):
    publisher.device("printer-01", "status", encode_status(True), retain=True)
    gw = gateway_factory()
    gw.wait_for(lambda: _state(gw, "printer-01") is True, what="online from the retained status")


def test_silence_longer_than_the_type_timeout_means_offline(gateway_factory, publisher):
    gw = gateway_factory(
        extra=(
            "[presence]\ncheck_interval_s = 0.2\n[presence.timeouts]\nenv_sensor = 1.0\n"
            '[[devices]]\nid = "env-lab1"\ntype = "env_sensor"\n'
            '[[devices]]\nid = "printer-01"\ntype = "printer_3d"\n'
        )
    )
    publisher.device("env-lab1", "telemetry", encode_telemetry({"temperature": 20.0}))
    publisher.device("printer-01", "telemetry", encode_telemetry({"bed_temp": 60}))
    gw.wait_for(lambda: _state(gw, "env-lab1") is True, what="online from telemetry")
    gw.wait_for(lambda: _state(gw, "env-lab1") is False, timeout=10, what="offline after 1 s of silence")
    assert gw.get("/api/devices/env-lab1")["state_reason"] == "silent"
    assert _state(gw, "printer-01") is True  # printers wait 120 s
    publisher.device("env-lab1", "telemetry", encode_telemetry({"temperature": 20.5}))
    gw.wait_for(lambda: _state(gw, "env-lab1") is True, what="back online")
    assert _kinds(gw, "env-lab1") == ["declared", "online", "offline", "online"]
    metrics = gw.gateway.metrics.render().decode()
    assert 'campusgw_presence_changes_total{cause="silent",state="offline"} 1.0' in metrics
    assert "campusgw_devices_online 2.0" in metrics
