"""At-least-once from publisher to disk, exactly once in the database: 10,000 messages through a broker restart and
through a gateway killed with SIGKILL, each restarted mid-stream."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.broker import free_port
from gateway.contracts import encode_telemetry
from gateway.settings import load
from gateway.store.identities import stored_seqs
from tests.conftest import GatewayProcess, RunningGateway, wait_until, write_gateway_config

TOTAL = 10_000
DEVICES = 20
METRICS = 3

pytestmark = pytest.mark.slow


class ConfirmingPublisher:
    """Publishes ``TOTAL`` messages at QoS 1 and resends, with the same boot and seq, any the broker did not confirm."""

    def __init__(self, broker, client_id: str) -> None:
        self.broker = broker
        self._mids: dict[int, int] = {}  # message index -> MQTT packet id of its latest send
        self._acked: set[int] = set()  # packet ids the broker confirmed (fewer than 65,535 sends: no reuse)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.username_pw_set("simulator", broker.simulator_password)
        client.max_inflight_messages_set(200)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(0.2, 2)
        client.on_publish = lambda _c, _u, mid, reason, _p: None if reason.is_failure else self._acked.add(mid)
        self.client = client

    @staticmethod
    def message(index: int) -> tuple[str, bytes]:
        device = f"dev-{index % DEVICES:02d}"
        seq = index // DEVICES
        payload = encode_telemetry({"a": index, "b": index * 0.5, "c": index % 2 == 0}, boot="boot1", seq=seq)
        return f"campus/test-school/{device}/telemetry", payload

    def _publish(self, index: int) -> None:
        topic, payload = self.message(index)
        self._mids[index] = self.client.publish(topic, payload, qos=1).mid

    def _unconfirmed(self) -> list[int]:
        return [index for index, mid in self._mids.items() if mid not in self._acked]

    def run(self, halfway: Callable[[], None]) -> None:
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        try:
            for index in range(TOTAL):
                self._publish(index)
                if index == TOTAL // 2:
                    halfway()
                if index % 500 == 0:
                    time.sleep(0.02)  # a stream, not a single burst
            deadline = time.monotonic() + 90
            waited = 0
            while self._unconfirmed() and time.monotonic() < deadline:
                time.sleep(1.0)
                waited += 1
                if waited % 10 == 0 and self.client.is_connected():
                    for index in self._unconfirmed():  # still not confirmed: send again, same boot and seq
                        self._publish(index)
            missing = self._unconfirmed()
            assert not missing, f"{len(missing)} messages never confirmed by the broker"
        finally:
            self.client.disconnect()
            self.client.loop_stop()


def _stored(db: Path) -> tuple[int, int, int]:
    """(messages, readings, distinct values of metric ``a``, unique per message) in the gateway's database."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        messages = sum(len(stored_seqs(runs)) for (runs,) in conn.execute("SELECT runs FROM message_runs"))
        readings = conn.execute("SELECT count(*) FROM readings_all").fetchone()[0]
        distinct = conn.execute(
            "SELECT count(DISTINCT r.value) FROM readings_all r JOIN series s ON s.id = r.series_id "
            "WHERE s.metric = 'a'"
        ).fetchone()[0]
        return messages, readings, distinct
    finally:
        conn.close()


def _assert_exactly_once(db: Path) -> None:
    wait_until(lambda: _stored(db)[0] == TOTAL, timeout=120, what=f"{TOTAL} messages stored")
    time.sleep(0.5)
    messages, readings, distinct = _stored(db)
    assert messages == TOTAL
    assert readings == TOTAL * METRICS, "a reading was lost or stored twice"
    assert distinct == TOTAL
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        runs = conn.execute(
            "SELECT d.device, m.runs FROM message_runs m JOIN devices d ON d.id = m.device_id"
        ).fetchall()
    finally:
        conn.close()
    assert len(runs) == DEVICES
    # every device's one boot holds one run of consecutive seqs: nothing missing in between
    assert all(json.loads(value) == [[0, TOTAL // DEVICES - 1]] for _, value in runs), runs[:3]


def test_no_reading_lost_or_duplicated_across_a_broker_restart(broker, tmp_path):
    config = write_gateway_config(tmp_path / "gw", broker, extra="[ingest]\ndiscovery_cap = 100\n")
    gateway = RunningGateway(load(config, {})).start()
    try:
        at_restart: list[int] = []

        def restart_broker() -> None:
            db = gateway.settings.storage.path
            # half is published, the rest not yet: the restart falls mid-stream once the first batch is stored
            wait_until(lambda: _stored(db)[0] > 0, timeout=30, what="some messages stored before the restart")
            at_restart.append(_stored(db)[0])
            broker.process.stop()  # SIGTERM: Mosquitto saves its persistent store
            time.sleep(0.5)
            broker.process.start()

        ConfirmingPublisher(broker, "pub-broker-restart").run(restart_broker)
        _assert_exactly_once(gateway.settings.storage.path)
        assert 0 < at_restart[0] < TOTAL, "the restart must fall mid-stream"
        assert gateway.gateway.metrics.render().decode().count("campusgw_messages_rejected_total{") == 0
    finally:
        gateway.stop()


def test_no_reading_lost_or_duplicated_when_the_gateway_is_killed(broker, tmp_path):
    config = write_gateway_config(
        tmp_path / "gw", broker, extra="[ingest]\ndiscovery_cap = 100\n", api_port=free_port()
    )
    process = GatewayProcess(config)
    process.start()
    db = tmp_path / "gw" / "campus.db"
    try:
        wait_until(lambda: db.exists() and "connected" in process.log.read_text(), timeout=30, what="gateway up")

        at_kill: list[int] = []

        def kill_and_restart() -> None:
            wait_until(lambda: _stored(db)[0] > 0, timeout=30, what="some messages stored before the kill")
            at_kill.append(_stored(db)[0])
            process.kill()  # SIGKILL: no chance to flush or acknowledge
            time.sleep(0.5)
            process.start()

        ConfirmingPublisher(broker, "pub-gateway-kill").run(kill_and_restart)
        _assert_exactly_once(db)
        assert 0 < at_kill[0] < TOTAL, "the kill must fall mid-stream"
    finally:
        process.kill()
