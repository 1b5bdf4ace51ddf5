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
