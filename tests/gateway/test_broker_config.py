"""``campusgw broker config``: the files it writes, their permissions, and that deploy/ shows exactly them."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
from typer.testing import CliRunner

from gateway.__main__ import app
from gateway.broker import BrokerLayout, hash_password, render_acl, render_config

DEPLOY = Path(__file__).parents[2] / "deploy" / "mosquitto"


def test_deploy_folder_matches_the_generator():
    layout = BrokerLayout(directory=Path("/etc/mosquitto/campusgw"), site="example-school", lan="0.0.0.0:1883")
    assert (DEPLOY / "campusgw.conf").read_text() == render_config(layout)
    assert (DEPLOY / "acl").read_text() == render_acl(layout)


def test_password_hash_is_mosquittos_pbkdf2_format():
    line = hash_password("secret", salt=bytes.fromhex("e882c029ad9ac5b3a8e0338e"))
    assert (
        line
        == "$7$101$6ILAKa2axbOo4DOO$wEPhGbyAHLpFPJeQ/LK+/jeLxC1ADsvg/r1RhYOX6rIS63pLhO2AVS/kIFOhDlgMD2o1tb"
        "KsLiky8cZq64fGmQ=="
    )


def test_command_writes_private_secrets_and_keeps_them(tmp_path):
    runner = CliRunner()
    args = ["broker", "config", "--site", "s1", "--out", str(tmp_path / "b"), "--device", "env-1", "--port", "1999"]
    assert runner.invoke(app, args).exit_code == 0
    secret = tmp_path / "b" / "credentials" / "env-1.secret"
    first = secret.read_text()
    assert secret.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "b" / "passwd").stat().st_mode & 0o777 == 0o600
    assert runner.invoke(app, args).exit_code == 0
    assert secret.read_text() == first  # never rotated behind the devices' backs
    conf = (tmp_path / "b" / "mosquitto.conf").read_text()
    assert "listener 1999 127.0.0.1" in conf and "allow_anonymous false" in conf
    bad = runner.invoke(app, ["broker", "config", "--site", "S 1", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "--site" in bad.output


def _connect(broker, user: str, password: str) -> mqtt.ReasonCode:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{user}", protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    result: list[mqtt.ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: result.append(reason)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        deadline = 50
        while not result and deadline:
            import time

            time.sleep(0.1)
            deadline -= 1
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0]


def test_broker_refuses_anonymous_and_wrong_passwords(broker):
    assert _connect(broker, "simulator", broker.simulator_password).is_failure is False
    assert _connect(broker, "simulator", "wrong").is_failure
    assert _connect(broker, "", "").is_failure


def test_a_device_user_may_only_publish_its_own_topics(broker, publisher):
    import time

    seen: list[str] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="acl-watch", protocol=mqtt.MQTTv5)
    watcher.username_pw_set("campusgw", broker.password("campusgw"))
    watcher.on_message = lambda _c, _u, message: seen.append(message.topic)
    watcher.connect(broker.host, broker.port)
    watcher.subscribe(f"campus/{broker.site}/#", qos=1)
    watcher.loop_start()
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="env-lab1", protocol=mqtt.MQTTv5)
    device.username_pw_set("env-lab1", broker.password("env-lab1"))
    device.connect(broker.host, broker.port)
    device.loop_start()
    try:
        time.sleep(0.3)
        device.publish(f"campus/{broker.site}/env-lab1/telemetry", b'{"metrics":{"t":1}}', qos=1).wait_for_publish(5)
        device.publish(f"campus/{broker.site}/printer-01/telemetry", b'{"metrics":{"t":1}}', qos=1).wait_for_publish(5)
        time.sleep(0.5)
    finally:
        for client in (device, watcher):
            client.disconnect()
            client.loop_stop()
    assert f"campus/{broker.site}/env-lab1/telemetry" in seen
    assert f"campus/{broker.site}/printer-01/telemetry" not in seen


def test_a_gate_reader_may_use_its_own_gate_only(tmp_path):
    import getpass
    import time

    from gateway.broker import MosquittoProcess, free_port, read_secret, write_broker_config

    layout = BrokerLayout(
        directory=tmp_path / "broker",
        site="s1",
        port=free_port(),
        run_as=getpass.getuser(),
        devices=("reader-east",),
        gate_readers=(("reader-east", "east"),),
    )
    secrets = write_broker_config(layout)
    acl = layout.acl.read_text()
    assert "user reader-east\ntopic write campus/s1/gate/east/scan\n" in acl
    seen: list[tuple[str, bytes]] = []
    with MosquittoProcess(layout) as process:
        watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gate-watch", protocol=mqtt.MQTTv5)
        watcher.username_pw_set("campusgw", read_secret(secrets["campusgw"]))
        watcher.on_message = lambda _c, _u, message: seen.append((message.topic, bytes(message.payload)))
        watcher.connect(process.layout.bind, process.layout.port)
        watcher.subscribe("campus/s1/#", qos=1)
        watcher.loop_start()
        reader = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="reader-east", protocol=mqtt.MQTTv311)
        reader.username_pw_set("reader-east", read_secret(secrets["reader-east"]))
        reader.on_message = lambda _c, _u, message: seen.append(("reader got " + message.topic, b""))
        reader.connect(process.layout.bind, process.layout.port)
        reader.subscribe("campus/s1/gate/east/cmd", qos=1)
        reader.loop_start()
        try:
            time.sleep(0.3)
            for gate in ("east", "west"):
                reader.publish(f"campus/s1/gate/{gate}/scan", b'{"code":"X","scan_id":"1"}', qos=1).wait_for_publish(5)
            reader.publish("campus/s1/gate/east/passage", b'{"scan_id":"1","passed":true}', qos=1).wait_for_publish(5)
            watcher.publish("campus/s1/gate/east/cmd", b'{"scan_id":"1"}', qos=1).wait_for_publish(5)
            deadline = time.monotonic() + 5
            while len(seen) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
        finally:
            for client in (reader, watcher):
                client.disconnect()
                client.loop_stop()
    topics = sorted(topic for topic, _ in seen)
    assert topics == [
        "campus/s1/gate/east/cmd",
        "campus/s1/gate/east/passage",
        "campus/s1/gate/east/scan",
        "reader got campus/s1/gate/east/cmd",
    ], "the west gate's scan is refused"


def test_gate_reader_option_is_checked(tmp_path):
    runner = CliRunner()
    base = ["broker", "config", "--site", "s1", "--out", str(tmp_path / "b")]
    ok = runner.invoke(app, [*base, "--gate-reader", "reader-east:east"])
    assert ok.exit_code == 0, ok.output
    assert "topic read campus/s1/gate/east/cmd" in (tmp_path / "b" / "acl").read_text()
    assert (tmp_path / "b" / "credentials" / "reader-east.secret").exists()
    bad = runner.invoke(app, [*base, "--gate-reader", "reader-east"])
    assert bad.exit_code == 2 and "DEVICE:GATE" in bad.output
