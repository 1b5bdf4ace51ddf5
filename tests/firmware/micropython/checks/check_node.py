"""A whole node under MicroPython, driven by fakes: a fitness-path counter through a broker outage with its clock
unset (nothing lost, nothing sent twice, ``ts`` stamped from ticks once NTP answers, the outbox spilled to flash
and restored after a reboot), a gate reader acting on a signed command for its own scan, and an environment
node whose sensor stops answering and comes back."""

import json

from _support import FakeBroker, FakeBytes, FakeEdges, FakeI2C, FakeRelay, FakeWifi, ManualClock, run
from campusnode import gatecmd, sensors
from campusnode.apps.counter import CounterApp
from campusnode.apps.env import EnvApp
from campusnode.apps.gate import GateApp
from campusnode.backoff import Backoff
from campusnode.node import SPILL_NAME, Node
from campusnode.outbox import Outbox
from campusnode.totals import TotalKeeper
from campusnode.transport import MemoryStore

SITE = "test-school"
DEVICE = "path-bench-3"
STATUS = "campus/test-school/path-bench-3/status"


def _counter_node(clock, broker, wifi, spill, rtc, flash, boot="a1b2c3"):
    edges = FakeEdges()
    keeper = TotalKeeper(rtc, flash, "uses.bin", 300000)
    app = CounterApp(60, edges, keeper, 50, 0)
    node = Node(
        SITE, DEVICE, boot, app, clock, broker, wifi, Backoff(1000, 8000), Outbox(50),
        keepalive_s=60, wifi_timeout_s=20, spill=spill, spill_max=100, spill_interval_s=60,
    )
    return node, edges


def _telemetry(broker):
    return broker.documents("/telemetry")


def test_counter_through_a_broker_outage_and_a_reboot():
    clock = ManualClock(ticks=1000)
    broker = FakeBroker()
    wifi = FakeWifi()
    spill = MemoryStore()
    rtc = MemoryStore()
    flash = MemoryStore()
    node, edges = _counter_node(clock, broker, wifi, spill, rtc, flash)
    node.start()

    # connected: online (retained) first, the last will says offline, the command topic subscribed
    run(node, clock, 200)
    assert node.link.up and broker.connects == 1
    assert broker.published[0][0] == STATUS and broker.published[0][2] is True
    assert json.loads(broker.published[0][1])["state"] == "online"
    assert broker.will[0] == STATUS and json.loads(broker.will[1]) == {"state": "offline", "boot": "a1b2c3",
                                                                        "fw": "campusnode-0.1.0"}
    assert broker.subscribed == ["campus/test-school/path-bench-3/cmd"]
    assert clock.syncs >= 1 and clock.unix() is None  # NTP unreachable: no ts yet
    first = _telemetry(broker)
    assert len(first) == 1 and first[0]["metrics"]["uses"] == 0 and "ts" not in first[0]

    # two uses: reported within 5 s
    edges.press(clock.ticks + 10)
    edges.press(clock.ticks + 600)
    run(node, clock, 6000)
    assert [document["metrics"]["uses"] for document in _telemetry(broker)] == [0, 2]

    # the link dies under the next publish; uses go on; the node keeps them and retries with backoff
    broker.drop_at_publish = True
    for index in range(3):
        edges.press(clock.ticks + 100 + 1000 * index)
    run(node, clock, 130000)  # past the 60 s report and the 60 s spill interval
    assert not broker.up
    assert not node.link.up and node.link.failures >= 3
    assert broker.wills_published == 1
    waiting = node.outbox.records()
    assert len(waiting) >= 2, len(waiting)
    assert all(record.ts is None and record.ticks is not None for record in waiting)
    created = {record.seq: record.ticks for record in waiting}
    assert node.spill_writes >= 1 and spill.read(SPILL_NAME)

    # back: NTP answers on reconnect, the waiting readings get their ts from their ticks and go out in order
    clock.ntp_reachable = True
    broker.up = True
    run(node, clock, 10000)
    assert node.link.up and broker.connects >= 2 and len(node.outbox) == 0
    documents = _telemetry(broker)
    assert [document["seq"] for document in documents] == list(range(len(documents)))  # none lost, none twice
    assert all(document["boot"] == "a1b2c3" for document in documents)
    uses = [document["metrics"]["uses"] for document in documents]
    assert uses == sorted(uses) and uses[-1] == 5, uses
    stamped = [document for document in documents if document["seq"] in created]
    assert len(stamped) == len(created)
    for document in stamped:
        true_ts = clock.true_unix_ms(created[document["seq"]]) // 1000
        assert abs(document["ts"] - true_ts) <= 1, (document, true_ts)
    assert documents[-1]["metrics"]["node.link_failures"] >= 3
    assert spill.read(SPILL_NAME) is None  # delivered: the flash copy is removed

    # a clean shutdown while the broker is away keeps the unsent reading in flash for the next boot
    broker.up = False
    node.telemetry({"uses": 5, "node.note": "before shutdown"})
    node.shutdown()
    assert spill.read(SPILL_NAME)
    last_seq = node.seq - 1
    clock.advance(5000)
    broker.up = True
    again, _ = _counter_node(clock, broker, wifi, spill, rtc, flash, boot="d4e5f6")
    again.start()
    assert again.restored == 1
    assert again.app.keeper.total == 5  # the total survived in RTC memory and flash
    run(again, clock, 1000)
    documents = _telemetry(broker)
    restored = [document for document in documents if document["metrics"].get("node.note") == "before shutdown"]
    assert len(restored) == 1 and restored[0]["boot"] == "a1b2c3" and restored[0]["seq"] == last_seq
    fresh = [document for document in documents if document.get("boot") == "d4e5f6"]
    assert fresh and fresh[0]["seq"] == 0 and fresh[0]["metrics"]["uses"] == 5


def test_gate_reader_opens_only_for_its_own_signed_scan():
    key = bytes(range(32))
    clock = ManualClock(ticks=1000)
    clock.ntp_reachable = True
    broker = FakeBroker()
    scanner = FakeBytes()
    relay = FakeRelay()
    passage = FakeEdges()
    guard = gatecmd.GateGuard(key, SITE, "gym-east", 5000)
    app = GateApp("gym-east", guard, scanner, relay, passage, "in", open_ms=3000, passage_window_ms=10000)
    node = Node(SITE, "reader-1", "0badcafe", app, clock, broker, FakeWifi(), Backoff(1000, 8000), Outbox(20))
    node.start()
    run(node, clock, 200)
    assert "campus/test-school/gate/gym-east/cmd" in broker.subscribed

    scanner.waiting = b"PASS:v1.abc\r\n"
    run(node, clock, 100)
    scans = broker.documents("/gate/gym-east/scan")
    assert len(scans) == 1 and scans[0]["code"] == "PASS:v1.abc" and scans[0]["direction"] == "in"
    scan_id = scans[0]["scan_id"]
    assert guard.waiting == scan_id

    expires = clock.unix() + 30
    forged = {"scan_id": scan_id, "action": "open", "expires": expires, "sig": "0" * 64, "reason": "ok"}
    broker.inbox.append(("campus/test-school/gate/gym-east/cmd", json.dumps(forged).encode()))
    run(node, clock, 100)
    assert not relay.on and app.rejected == ["bad_signature"]

    good = dict(forged, sig=gatecmd.sign(key, SITE, "gym-east", scan_id, "open", expires))
    broker.inbox.append(("campus/test-school/gate/gym-east/cmd", json.dumps(good).encode()))
    run(node, clock, 100)
    assert relay.on and app.opened == 1
    broker.inbox.append(("campus/test-school/gate/gym-east/cmd", json.dumps(good).encode()))  # a replay
    run(node, clock, 100)
    assert app.opened == 1 and app.rejected[-1] == "replay"

    passage.press(clock.ticks + 50, length_ms=300)
    run(node, clock, 1000)
    assert not relay.on
    passages = broker.documents("/gate/gym-east/passage")
    assert passages == [{"scan_id": scan_id, "passed": True}], passages
    events = broker.documents("/event")
    assert [event["code"] for event in events].count("gate_cmd_rejected") == 2


def test_environment_node_reports_and_tells_of_a_sensor_fault_once():
    clock = ManualClock(ticks=1000)
    clock.ntp_reachable = True
    broker = FakeBroker()
    bus = FakeI2C()
    uart = FakeBytes()
    app = EnvApp(60, sensors.Sht3x(bus), sensors.Scd4x(bus), sensors.Pms(uart))
    node = Node(SITE, "env-lab1", "e1e2e3", app, clock, broker, FakeWifi(), Backoff(1000, 8000), Outbox(20))
    node.start()
    uart.waiting = sensors.pms_frame(3, 12, 20)
    run(node, clock, 500)
    (first,) = broker.documents("/telemetry")
    metrics = first["metrics"]
    assert metrics["temperature"] == 25.0 and metrics["humidity"] == 50.0 and metrics["co2"] == 612
    assert metrics["pm2_5"] == 12 and metrics["node.outbox"] >= 0
    assert isinstance(first["ts"], int) and first["seq"] == 0

    bus.fail.append(0x44)
    run(node, clock, 60000)
    run(node, clock, 60000)
    codes = [event["code"] for event in broker.documents("/event")]
    assert codes == ["sensor_fault"], codes  # once, not at every report
    later = broker.documents("/telemetry")[-1]["metrics"]
    assert "temperature" not in later and later["co2"] == 612

    bus.fail.remove(0x44)
    run(node, clock, 60000)
    events = broker.documents("/event")
    assert [event["code"] for event in events] == ["sensor_fault", "sensor_ok"]
    assert broker.documents("/telemetry")[-1]["metrics"]["temperature"] == 25.0
    assert app.sensor_errors == 2
