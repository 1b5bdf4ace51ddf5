"""The three node apps on CPython (``firmware/lib`` unchanged, ``campusnode_host`` for the transport and the
hardware) through the real PahoTransport, a real Mosquitto with the ``deploy/`` users and ACLs, and a real gateway
that stores what they send: every reading a node made is stored once, across a Wi-Fi drop, a clean reboot and a
watchdog reset; the gate reader acts only on a signed command for its own scan.

Credentials, as ``deploy/``'s ACL allows them:

- the env node and the counter connect as their own device users (the device id as user name), which may use
  only ``campus/{site}/{device}/...``;
- the gate reader connects as its own gate-reader user (``campusgw broker config --gate-reader DEVICE:GATE``), whose
  ACL adds its gate's ``scan``, ``passage`` and ``cmd`` topics: a plain device user has no rights on
  ``campus/{site}/gate/...``, so it could neither send a scan nor receive a command (Mosquitto 2.0 even grants the
  subscription and then drops the messages without a word).

The env node and the counter run on a ``ManualClock`` (minutes of readings in well under a second); the gate
reader on the ``HostClock``, because its timeouts race real messages from the broker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from campusnode import config
from campusnode.apps.gate import GateApp
from campusnode.node import SPILL_NAME, Node
from campusnode.outbox import Outbox, Record
from campusnode.totals import decode_total
from campusnode_host.fakes import FakeWifi, HostClock, ManualClock
from campusnode_host.nodes import TOTAL_NAME, Hardware, build_node

from gateway.broker import GATEWAY_USER
from gateway.contracts import TopicKind, sign_gate_command
from gateway.store.identities import stored_seqs
from tests.conftest import SITE, Broker, RunningGateway, running_broker, wait_until
from tests.firmware.conftest import HOST, LIB
from tests.simulators.conftest import Observer

ENV = "env-lab1"
COUNTER = "fit-bench-01"
READER = "gate-reader-east"
GATE = "east"
GATE_KEY = bytes(range(1, 33))
STEP_MS = 100
GATE_SETTINGS = {"gate": GATE, "key_hex": GATE_KEY.hex(), "wait_ms": 15000, "open_ms": 500, "passage_window_ms": 1500}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """The shared fixture's broker, with device users for the counter and the gate reader (with its gate's rights)
    besides the env node's."""
    with running_broker(tmp_path / "broker", (ENV, COUNTER, READER), ((READER, GATE),)) as running:
        yield running


def node_config(broker: Broker, app: str, device: str, user: str, **settings: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "app": app,
        "site": SITE,
        "device": device,
        "wifi": {"ssid": "campus-iot"},
        "mqtt": {"host": broker.host, "port": broker.port, "user": user, "password": broker.password(user)},
    }
    document.update(settings)
    return document


# -- a node on the bench ------------------------------------------------------------------------------------


class Ledger(Outbox):
    """The node's outbox, remembering every numbered message put into it (made, or restored from flash)."""

    def __init__(self, capacity: int, made: dict[tuple[str, int], Record]) -> None:
        super().__init__(capacity)
        self.made = made

    def put(self, record: Record) -> bool:
        if record.boot is not None and record.seq is not None:
            self.made.setdefault((record.boot, record.seq), record)
        return super().put(record)


class Bench:
    """One node with its simulated hardware, Wi-Fi and flash folder; ``reboot`` starts a new node on the same
    flash, as the board does after a reset."""

    def __init__(
        self,
        document: dict[str, Any],
        state: Path,
        *,
        realtime: bool = False,
        world: Callable[[Bench], None] | None = None,
    ) -> None:
        self.cfg = config.parse(json.dumps(document))
        self.state = state
        self.realtime = realtime
        self.world = world
        self.hardware = Hardware()
        self.wifi = FakeWifi()
        self.made: dict[tuple[str, int], Record] = {}
        self.elapsed_ms = 0
        self.clock: ManualClock | HostClock = HostClock() if realtime else ManualClock(0, int(time.time()) - 3600)
        self.node = self._start()

    def _start(self) -> Node:
        outbox = Ledger(self.cfg.outbox_capacity, self.made)
        node = build_node(self.cfg, self.hardware, self.state, self.clock, self.wifi, outbox=outbox)
        node.start()
        return node

    def reboot(self, clean: bool) -> Node:
        """A clean one (``shutdown``: unsent messages to flash, ``offline``), or a watchdog reset: RAM is gone,
        the TCP connection dies without a word, flash and RTC memory stay."""
        old = self.node
        if clean:
            old.shutdown()
        else:
            old.link.transport.close()
        unix = self.clock.unix()
        assert unix is not None
        self.clock = ManualClock(0, unix + 2)  # a new boot: ticks from 0, no time until NTP answers
        self.node = self._start()
        assert self.node.boot != old.boot and self.node.seq == 0
        return self.node

    def step(self) -> None:
        if isinstance(self.clock, ManualClock):
            self.clock.advance(STEP_MS)
        self.elapsed_ms += STEP_MS
        if self.world is not None:
            self.world(self)
        self.node.step(self.clock.ticks_ms())

    def run(self, seconds: float) -> None:
        for _ in range(int(seconds * 1000) // STEP_MS):
            self.step()

    def run_until(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
            self.step()
            if self.realtime:
                time.sleep(0.005)

    def deliver(self) -> None:
        """Step until the link is up and the outbox empty."""
        self.run_until(lambda: self.node.link.up and not len(self.node.outbox), "the outbox delivered")

    def press(self, uses: int) -> None:
        """Someone uses the fitness machine ``uses`` times, a second apart (the contact bounces)."""
        start = self.clock.ticks_ms()
        for index in range(uses):
            self.hardware.pulse.pulse(start + index * 1000, 200, active=self.cfg.counter["active"])

    def spilled(self) -> set[tuple[str, int]]:
        path = self.state / SPILL_NAME
        if not path.exists():
            return set()
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {(line["boot"], line["seq"]) for line in lines}


def classroom(bench: Bench) -> None:
    """The env node's room: temperature rising 0.01 °C a second (so every reading is a different value), a
    PMS5003 frame every second."""
    i2c = bench.hardware.i2c
    i2c.temperature = round(15.0 + bench.elapsed_ms // 1000 * 0.01, 2)
    if bench.elapsed_ms % 1000 == 0:
        second = bench.elapsed_ms // 1000
        bench.hardware.pms.push_pms(5 + second % 7, 9 + second % 11, 15 + second % 13)


# -- what the gateway stored --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """One device's messages in a form both sides can give: telemetry identities per boot, readings as
    ``(metric, value)`` with their multiplicity, and device events by identity."""

    seqs: dict[str, list[int]]
    readings: Counter[tuple[str, object]]
    events: Counter[tuple[str, int, str]]


def expected(made: dict[tuple[str, int], Record], lost: Iterable[tuple[str, int]] = ()) -> Stored:
    lost = set(lost)
    seqs: dict[str, list[int]] = {}
    readings: Counter[tuple[str, object]] = Counter()
    events: Counter[tuple[str, int, str]] = Counter()
    for (boot, seq), record in sorted(made.items()):
        if (boot, seq) in lost:
            continue
        if record.kind == "telemetry":
            seqs.setdefault(boot, []).append(seq)
            readings.update(record.body["metrics"].items())
        elif record.kind == "event":  # events share the boot's numbering and are de-duplicated by it too
            seqs.setdefault(boot, []).append(seq)
            events[(boot, seq, record.body["code"])] += 1
    return Stored(seqs, readings, events)


def stored(gateway: RunningGateway, device: str) -> Stored:
    conn = sqlite3.connect(f"file:{gateway.settings.storage.path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT id FROM devices WHERE device = ?", (device,)).fetchone()
        if row is None:
            return Stored({}, Counter(), Counter())
        (device_id,) = row
        seqs = {
            boot: stored_seqs(runs)
            for boot, runs in conn.execute("SELECT boot, runs FROM message_runs WHERE device_id = ?", (device_id,))
        }
        readings: Counter[tuple[str, object]] = Counter(
            conn.execute(
                "SELECT s.metric, r.value FROM readings_all r JOIN series s ON s.id = r.series_id "
                "WHERE s.device_id = ?",
                (device_id,),
            ).fetchall()
        )
        events: Counter[tuple[str, int, str]] = Counter()
        for (detail,) in conn.execute(
            "SELECT detail FROM device_events WHERE device_id = ? AND kind = 'event'", (device_id,)
        ):
            fields = json.loads(detail)
            events[(fields["boot"], fields["seq"], fields["code"])] += 1
        return Stored(seqs, readings, events)
    finally:
        conn.close()


def assert_stored_exactly_once(gateway: RunningGateway, device: str, want: Stored) -> None:
    try:
        wait_until(lambda: stored(gateway, device) == want, timeout=10, what=f"everything {device} sent, stored")
    except AssertionError:
        assert stored(gateway, device) == want  # shows what differs
    time.sleep(0.3)  # a duplicate would arrive right behind
    assert stored(gateway, device) == want


def device(gateway: RunningGateway, name: str) -> dict[str, Any]:
    body: dict[str, Any] = gateway.get(f"/api/devices/{name}")
    return body


def presence_events(gateway: RunningGateway, name: str) -> list[tuple[str, str]]:
    """(kind, cause) of the device's online/offline events, oldest first."""
    events = [e for e in device(gateway, name)["events"] if e["kind"] in ("online", "offline")]
    return [(e["kind"], e["detail"]["cause"]) for e in reversed(events)]


def duplicates(gateway: RunningGateway) -> float:
    found = re.search(r"^campusgw_duplicates_total (\S+)$", gateway.gateway.metrics.render().decode(), re.M)
    return float(found.group(1)) if found else 0.0


# -- the env node -------------------------------------------------------------------------------------------


def test_env_node_readings_survive_a_wifi_drop_and_a_reboot_stored_once(
    broker: Broker, gateway_factory: Callable[..., RunningGateway], tmp_path: Path
) -> None:
    gateway = gateway_factory()
    bench = Bench(
        node_config(broker, "env", ENV, ENV, interval_s=10, outbox={"spill_interval_s": 60}),
        tmp_path / "env-flash",
        world=classroom,
    )
    bench.deliver()
    bench.run(30)
    assert_stored_exactly_once(gateway, ENV, expected(bench.made))
    assert device(gateway, ENV)["online"] is True
    first = len(bench.made)
    assert first >= 4

    # (a) Wi-Fi drops for two minutes; the CO2 sensor fails meanwhile and recovers
    bench.wifi.available = False
    bench.step()
    wait_until(lambda: device(gateway, ENV)["online"] is False, what="offline by the last will")
    bench.hardware.i2c.fail.add(0x62)
    bench.run(70)
    assert bench.spilled(), "a copy of the backlog in flash after spill_interval_s offline"
    bench.hardware.i2c.fail.discard(0x62)
    bench.run(50)
    assert not bench.node.link.up and len(bench.node.outbox) >= 12
    codes = [r.body["code"] for r in bench.made.values() if r.kind == "event"]
    assert codes == ["sensor_fault", "sensor_ok"]
    bench.wifi.available = True
    bench.deliver()
    assert not (bench.state / SPILL_NAME).exists(), "the flash copy goes once everything is delivered"
    assert_stored_exactly_once(gateway, ENV, expected(bench.made))
    wait_until(lambda: device(gateway, ENV)["online"] is True, what="online again")
    assert presence_events(gateway, ENV)[-2:] == [("offline", "status"), ("online", "status")]
    temperatures = [r["value"] for r in gateway.get(f"/api/devices/{ENV}/readings?metric=temperature")["readings"]]
    want = [r.body["metrics"]["temperature"] for r in bench.made.values() if r.kind == "telemetry"]
    assert sorted(temperatures) == sorted(want) and len(set(want)) == len(want)

    # (b) offline again, then a clean reboot: the unsent readings go to flash and come back with the new boot
    bench.wifi.available = False
    bench.run(35)
    waiting = {(r.boot, r.seq) for r in bench.node.outbox.records()}
    assert len(waiting) >= 3
    first_boot = bench.node.boot
    node = bench.reboot(clean=True)
    assert bench.spilled() == waiting and node.restored == len(waiting)
    bench.wifi.available = True
    bench.deliver()
    bench.run(25)
    bench.deliver()
    want_stored = expected(bench.made)
    assert set(want_stored.seqs) == {first_boot, node.boot} and want_stored.seqs[node.boot][0] == 0
    assert_stored_exactly_once(gateway, ENV, want_stored)
    assert any(e["kind"] == "reboot" for e in device(gateway, ENV)["events"])
    assert not (bench.state / SPILL_NAME).exists()

    # (c) stopped cleanly just after the network came back, while sending the backlog: the flash copy of the
    # backlog, all delivered by the stop, must not be sent again at the next start
    bench.wifi.available = False
    bench.run(130)
    assert bench.spilled()
    bench.wifi.available = True
    bench.run_until(lambda: bench.node.link.up and 0 < len(bench.node.outbox) <= 10, "the backlog half sent")
    assert bench.spilled()
    bench.node.shutdown()
    assert not len(bench.node.outbox) and not (bench.state / SPILL_NAME).exists()
    assert_stored_exactly_once(gateway, ENV, expected(bench.made))


class _TickingClock(ManualClock):
    """A clock whose ticks move on while a loop pass runs (1 ms per reading), as the board's do."""

    def ticks_ms(self) -> int:
        self.ticks += 1
        return self.ticks


def test_a_reading_made_in_the_pass_that_sets_the_clock_is_sent_with_its_time(broker: Broker, tmp_path: Path) -> None:
    observer = Observer(broker, client_id="test-ts-observer")
    try:
        cfg = config.parse(json.dumps(node_config(broker, "env", ENV, ENV, interval_s=60)))
        clock = _TickingClock(0, int(time.time()) - 60)
        node = build_node(cfg, Hardware(), tmp_path / "flash", clock, FakeWifi())
        node.start()
        for _ in range(3):  # join Wi-Fi; then start the SHT3x, make the reading and connect, in one pass each
            clock.advance(STEP_MS)
            node.step(clock.ticks_ms())
        assert node.link.up and clock.set
        while len(node.outbox):
            node.step(clock.ticks_ms())
        observer.wait_for(lambda: bool(observer.messages(ENV, TopicKind.TELEMETRY)), what="the first reading")
        first = json.loads(observer.messages(ENV, TopicKind.TELEMETRY)[0].payload)
        unix = clock.unix()
        assert unix is not None and first["seq"] == 0 and unix - 2 <= first.get("ts", 0) <= unix
        node.shutdown()
    finally:
        observer.close()


# -- the fitness-path counter -------------------------------------------------------------------------------


def latest_uses(gateway: RunningGateway) -> Any:
    return device(gateway, COUNTER)["latest"]["uses"]["value"]


def test_counter_total_survives_wifi_drop_reboot_and_watchdog_reset_stored_once(
    broker: Broker, gateway_factory: Callable[..., RunningGateway], tmp_path: Path
) -> None:
    gateway = gateway_factory()
    bench = Bench(
        node_config(broker, "counter", COUNTER, COUNTER, interval_s=10, outbox={"spill_interval_s": 60}),
        tmp_path / "counter-flash",
    )
    bench.deliver()
    bench.press(3)
    bench.run(10)
    assert_stored_exactly_once(gateway, COUNTER, expected(bench.made))
    assert latest_uses(gateway) == 3

    # (a) Wi-Fi drop: uses go on being counted and sent as running totals once it is back
    bench.wifi.available = False
    bench.step()
    wait_until(lambda: device(gateway, COUNTER)["online"] is False, what="offline by the last will")
    bench.press(4)
    bench.run(45)
    assert len(bench.node.outbox) >= 4
    bench.wifi.available = True
    bench.deliver()
    assert_stored_exactly_once(gateway, COUNTER, expected(bench.made))
    wait_until(lambda: device(gateway, COUNTER)["online"] is True, what="online again")
    assert latest_uses(gateway) == 7

    # (b) clean reboot: the total is in flash, the new boot counts on from it
    first_boot = bench.node.boot
    node = bench.reboot(clean=True)
    assert decode_total((bench.state / TOTAL_NAME).read_bytes()) == 7
    bench.deliver()
    bench.press(2)
    bench.run(10)
    bench.deliver()
    assert_stored_exactly_once(gateway, COUNTER, expected(bench.made))
    assert latest_uses(gateway) == 9
    first_of_new_boot = bench.made[(node.boot, 0)]
    assert first_of_new_boot.body["metrics"]["uses"] == 7 and first_boot != node.boot
    assert ("offline", "status") in presence_events(gateway, COUNTER)

    # (c) a watchdog reset halfway through sending a backlog: what the flash copy held is sent again (stored
    # once), what was made after the copy is lost with the RAM, and the total survives in RTC memory
    bench.wifi.available = False
    bench.press(1)
    bench.run(70)
    assert bench.node.spill_writes >= 1 and bench.spilled()
    bench.press(1)
    bench.run(80)
    assert len(bench.node.outbox) > 10, "more than one burst waiting"
    bench.wifi.available = True
    sent = bench.node.link.sent
    bench.run_until(lambda: bench.node.link.sent > sent, "the first burst sent")
    waiting = {(r.boot, r.seq) for r in bench.node.outbox.records()}
    assert waiting
    spilled = bench.spilled()
    resent = spilled - waiting  # delivered already, still in the (stale) flash copy
    assert resent, "the flash copy holds messages the broker has confirmed"
    lost = waiting - spilled
    before = duplicates(gateway)
    node = bench.reboot(clean=False)
    assert node.restored == len(spilled)
    bench.deliver()
    bench.run(10)
    bench.deliver()
    assert_stored_exactly_once(gateway, COUNTER, expected(bench.made, lost))
    wait_until(lambda: duplicates(gateway) == before + len(resent), what="the resent copies counted as duplicates")
    assert latest_uses(gateway) == 11
    assert bench.made[(node.boot, 0)].body["metrics"]["uses"] == 11
    bench.node.shutdown()


# -- the gate reader ----------------------------------------------------------------------------------------


class GateDesk:
    """What the access service does for the test: reads the reader's scans and passages, sends commands."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def _payloads(self, kind: str) -> list[dict[str, Any]]:
        topic = f"campus/{SITE}/gate/{GATE}/{kind}"
        return [json.loads(m.payload) for m in self.observer.messages() if m.topic == topic]

    def scans(self) -> list[dict[str, Any]]:
        return self._payloads("scan")

    def passages(self) -> list[dict[str, Any]]:
        return self._payloads("passage")

    def command(
        self,
        scan_id: str,
        action: str,
        *,
        key: bytes = GATE_KEY,
        expires: int | None = None,
        sig: str | None = None,
        signed: bool = True,
    ) -> None:
        expires = int(time.time()) + 30 if expires is None else expires
        body: dict[str, Any] = {"scan_id": scan_id, "action": action, "reason": "test", "expires": expires}
        if signed:
            body["sig"] = sig or sign_gate_command(key, SITE, GATE, scan_id, action, expires)
        info = self.observer.client.publish(f"campus/{SITE}/gate/{GATE}/cmd", json.dumps(body).encode(), qos=1)
        info.wait_for_publish(5)


def test_gate_reader_opens_only_for_a_signed_command_for_its_own_scan(
    broker: Broker, gateway_factory: Callable[..., RunningGateway], tmp_path: Path
) -> None:
    gateway = gateway_factory()
    observer = Observer(broker, client_id="test-access-desk")
    try:
        desk = GateDesk(observer)
        bench = Bench(
            node_config(broker, "gate", READER, READER, interval_s=2, gate=GATE_SETTINGS),
            tmp_path / "reader-flash",
            realtime=True,
        )
        app = bench.node.app
        assert isinstance(app, GateApp)
        relay = bench.hardware.relay
        bench.deliver()

        def scan(code: str) -> str:
            bench.hardware.scanner.push(code.encode() + b"\r\n")
            bench.run_until(lambda: any(s["code"] == code for s in desk.scans()), f"the scan of {code}")
            found = next(s for s in desk.scans() if s["code"] == code)
            assert found["direction"] == "in" and isinstance(found["ts"], int)
            return str(found["scan_id"])

        def rejected(reason: str) -> None:
            count = app.rejections
            bench.run_until(lambda: app.rejections > count, f"the command rejected ({reason})")
            assert app.rejected[-1] == reason and not relay.on

        first = scan("PASS-0001")
        desk.command(first, "open", signed=False)
        rejected("malformed")
        desk.command(first, "open", key=bytes(32))
        rejected("bad_signature")
        desk.command(first, "open", sig="0" * 64)
        rejected("bad_signature")
        desk.command("someone-else-1", "open")
        rejected("not_waiting")
        desk.command(first, "open", expires=int(time.time()) - 60)
        rejected("expired")
        assert True not in relay.history

        desk.command(first, "open")
        bench.run_until(lambda: relay.on, "the relay to open")
        desk.command(first, "open")
        rejected_replay = app.rejections
        bench.run_until(lambda: app.rejections > rejected_replay, "the replay rejected")
        assert app.rejected[-1] == "replay"
        bench.hardware.passage.pulse(bench.clock.ticks_ms(), 200, active=0)
        bench.run_until(lambda: bool(desk.passages()), "the passage message")
        assert desk.passages() == [{"scan_id": first, "passed": True}] and not relay.on

        second = scan("PASS-0002")
        desk.command(second, "deny")
        bench.run_until(lambda: app.denied == 1, "the deny")
        assert relay.history.count(True) == 1

        third = scan("PASS-0003")
        desk.command(third, "open")
        bench.run_until(lambda: len(desk.passages()) == 2, "the passage window to close", timeout=15)
        assert desk.passages()[-1] == {"scan_id": third, "passed": False} and not relay.on
        assert relay.history.count(True) == 2

        bench.deliver()
        want = expected(bench.made)
        assert [code for (_, _, code) in want.events] == ["gate_cmd_rejected"] * 6
        assert ("gate.rejected", 6) in want.readings, "its counts go out every interval_s"
        assert_stored_exactly_once(gateway, READER, want)
        bench.node.shutdown()
    finally:
        observer.close()


# -- python -m campusnode_host ------------------------------------------------------------------------------


def _runner(arguments: list[str], **options: Any) -> subprocess.Popen[bytes]:
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join((str(LIB), str(HOST))))
    return subprocess.Popen([sys.executable, "-m", "campusnode_host", *arguments], env=environment, **options)


def test_the_host_runner_sends_drifting_readings_until_ctrl_c(
    broker: Broker, gateway_factory: Callable[..., RunningGateway], tmp_path: Path
) -> None:
    gateway = gateway_factory()
    path = tmp_path / "env.json"
    path.write_text(json.dumps(node_config(broker, "env", ENV, ENV, interval_s=1)), encoding="utf-8")
    log = tmp_path / "runner.log"
    with log.open("wb") as output:
        process = _runner([str(path), "--seed", "7"], stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(
            lambda: len(gateway.get(f"/api/devices/{ENV}/readings?metric=co2")["readings"]) >= 3,
            timeout=20,
            what="three readings from the runner",
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text(encoding="utf-8")
    assert "Traceback" not in text and "stopped:" in text, text
    wait_until(lambda: device(gateway, ENV)["online"] is False, what="offline after Ctrl-C")
    assert device(gateway, ENV)["state_reason"] == "status"  # said goodbye, not silent
    latest = device(gateway, ENV)["latest"]
    assert 10 <= latest["temperature"]["value"] <= 35 and 400 <= latest["co2"]["value"] <= 5000
    assert {"humidity", "pm2_5", "node.outbox"} <= set(latest)
    co2 = [r["value"] for r in gateway.get(f"/api/devices/{ENV}/readings?metric=co2")["readings"]]
    assert len(set(co2)) > 1, "the simulated room changes"
    assert (tmp_path / f"{ENV}.state").is_dir()


def test_the_host_runner_names_the_bad_key_of_a_config(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "app": "env",
                "site": SITE,
                "device": ENV,
                "wifi": {"ssid": "x"},
                "mqtt": {"host": "127.0.0.1", "password": "p"},
                "interval_s": 0,
            }
        )
    )
    process = _runner([str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.decode().strip() == (
        f"campusnode_host: cannot start: {path}: interval_s: must be an integer from 1 to 86400, got 0"
    )
    assert not (tmp_path / f"{ENV}.state").exists()


def test_a_device_user_cannot_send_gate_scans(broker: Broker) -> None:
    """Why a gate reader needs ``campusgw broker config --gate-reader``: under deploy/'s ACL a plain device user's
    scans are confirmed by the broker and then dropped (firmware/README.md says so)."""
    topic = f"campus/{SITE}/gate/{GATE}/scan"
    received: list[bytes] = []
    subscribed: list[int] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="acl-watcher", protocol=mqtt.MQTTv311)
    watcher.username_pw_set(GATEWAY_USER, broker.password(GATEWAY_USER))
    watcher.on_message = lambda _c, _u, message: received.append(bytes(message.payload))
    watcher.on_subscribe = lambda _c, _u, mid, _codes, _p: subscribed.append(mid)
    clients = [watcher]
    for user in (ENV, GATEWAY_USER):
        sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"acl-{user}", protocol=mqtt.MQTTv311)
        sender.username_pw_set(user, broker.password(user))
        clients.append(sender)

    def pump(until: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 5
        while not until():
            assert time.monotonic() < deadline
            for client in clients:
                client.loop(0.01)

    try:
        for client in clients:
            client.connect(broker.host, broker.port)
        watcher.subscribe(topic, qos=1)
        pump(lambda: bool(subscribed))
        denied = clients[1].publish(topic, b'{"code":"X","scan_id":"device-user"}', qos=1)
        pump(denied.is_published)  # confirmed by the broker ...
        allowed = clients[2].publish(topic, b'{"code":"X","scan_id":"gateway-user"}', qos=1)
        pump(lambda: allowed.is_published() and bool(received))
        assert received == [b'{"code":"X","scan_id":"gateway-user"}']  # ... and dropped, while this one arrives
    finally:
        for client in clients:
            client.disconnect()
