"""The README's minimal configuration file, as it is, runs ``campusgw run`` against a stock Mosquitto (anonymous
clients allowed, as a fresh ``apt-get install mosquitto`` on localhost): it connects, stores a reading, serves it
to the token it created, and stops cleanly on SIGTERM. Only the two ports come from the environment
(``CAMPUSGW__BROKER__URL``, ``CAMPUSGW__API__LISTEN``), since 1883 and 8080 may be taken on the test machine."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from gateway.broker import find_mosquitto, free_port, read_secret, wait_for_port
from gateway.contracts import encode_telemetry
from tests.conftest import http_json, wait_until
from tests.gateway.test_settings import MINIMAL

ROOT = Path(__file__).resolve().parents[2]


def test_the_readmes_minimal_file_runs_the_gateway(tmp_path: Path) -> None:
    broker_port, api_port = free_port(), free_port()
    stock = tmp_path / "mosquitto.conf"
    stock.write_text(f"listener {broker_port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n")
    with (tmp_path / "mosquitto.log").open("wb") as log:
        broker = subprocess.Popen([find_mosquitto(), "-c", str(stock)], stdout=log, stderr=log)
    gateway = None
    try:
        assert wait_for_port("127.0.0.1", broker_port, 10), "mosquitto did not start"
        config = tmp_path / "school" / "gateway.toml"
        config.parent.mkdir()
        config.write_text(MINIMAL, encoding="utf-8")
        env = dict(
            os.environ,
            CAMPUSGW__BROKER__URL=f"mqtt://127.0.0.1:{broker_port}",
            CAMPUSGW__API__LISTEN=f"127.0.0.1:{api_port}",
        )
        with (tmp_path / "gateway.log").open("wb") as log:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(config)], stdout=log, stderr=log, env=env,
                cwd=ROOT,
            )
        base = f"http://127.0.0.1:{api_port}"

        def healthy() -> bool:
            try:
                return bool(http_json(base + "/healthz")["status"] == "ok")
            except OSError:  # not listening yet
                return False

        wait_until(healthy, timeout=30, what="a healthy gateway")
        token_file = config.parent / "api-token"  # beside the database, created on first start
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = read_secret(token_file)

        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="minimal-test", protocol=mqtt.MQTTv5)
        publisher.connect("127.0.0.1", broker_port)
        publisher.loop_start()
        try:
            sent = publisher.publish(
                "campus/test-school/env-lab1/telemetry",
                encode_telemetry({"temperature": 22.5}, ts=time.time(), boot="b1", seq=0),
                qos=1,
            )
            sent.wait_for_publish(10)
        finally:
            publisher.disconnect()
            publisher.loop_stop()

        def stored() -> bool:
            answer = http_json(base + "/api/devices/env-lab1/readings", token=token)
            return [(r["metric"], r["value"]) for r in answer["readings"]] == [("temperature", 22.5)]

        wait_until(stored, timeout=20, what="the reading in the API")
        http_json(base + "/api/devices", expect=401)
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) == 0, (tmp_path / "gateway.log").read_text(errors="replace")[-2000:]
        assert (config.parent / "campus.db").exists(), "the database lies beside the file, as the path is relative"
    finally:
        for process in (gateway, broker):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(15)
