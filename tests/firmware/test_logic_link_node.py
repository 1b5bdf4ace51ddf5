"""The link (backoff with jitter and a cap, Wi-Fi join timeout, reconnect after a transport failure, retained online
status, last will, outbox popped only after a confirmed publish) and the node (identity, time stamping, stale scans,
spill to flash while offline bounded by ``spill_interval_s``, restore after a reboot), driven through a transport
that fails on demand."""

from __future__ import annotations

import json

import pytest
from campusnode import FW_VERSION, payloads
from campusnode.backoff import Backoff
from campusnode.link import DOWN, JOINING, UP, Link, LinkListener, Watchdog
from campusnode.node import NTP_RETRY_MS, SPILL_NAME, App, Node
from campusnode.outbox import Outbox, Record
from campusnode.transport import MemoryStore, MessageHandler
from campusnode_host.fakes import DirStore, FakeWifi, ManualClock

from gateway.contracts import parse_event, parse_status, parse_telemetry
from tests.firmware._logic_support import BOOT, DEVICE, RECEIVED, SITE, FaultyTransport, Rig

STATUS = "campus/" + SITE + "/" + DEVICE + "/status"
TELEMETRY = "campus/" + SITE + "/" + DEVICE + "/telemetry"


def telemetry_seqs(rig: Rig) -> list[tuple[str, int]]:
    return [(document["boot"], document["seq"]) for document in rig.transport.documents("/telemetry")]


def wait_for_connect(rig: Rig, limit_ms: int = 120_000, step_ms: int = 10) -> int:
    """Step until the transport sees a new connect attempt; the tick it happened at."""
    before = rig.transport.connects
    for _ in range(limit_ms // step_ms):
        rig.run(step_ms, step_ms)
        if rig.transport.connects > before:
            return rig.clock.ticks
    raise AssertionError("no connect attempt")


# -- backoff ---------------------------------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_cap():
    backoff = Backoff(1000, 8000)
    bases = [1000, 2000, 4000, 8000, 8000, 8000]
    for base in bases:
        delay = backoff.next_ms()
        assert base // 2 <= delay <= base
    assert backoff.attempts == len(bases)
    backoff.reset()
    assert backoff.attempts == 0
    assert 500 <= backoff.next_ms() <= 1000


def test_backoff_jitter_spreads_a_fleet():
    first = [Backoff(1000, 60_000).next_ms() for _ in range(300)]
    assert len(set(first)) > 50
    assert min(first) >= 500 and max(first) <= 1000


def test_backoff_is_never_zero():
    backoff = Backoff(1, 1)
    assert all(backoff.next_ms() == 1 for _ in range(100))


@pytest.mark.parametrize("low,high", [(0, 10), (-1, 10), (10, 5)])
def test_backoff_refuses_bad_bounds(low, high):
    with pytest.raises(ValueError):
        Backoff(low, high)


# -- connecting ------------------------------------------------------------------------------------------------------


def test_connects_with_a_last_will_and_announces_online_retained():
    rig = Rig().start()
    rig.online()
    assert rig.node.link.state == UP
    will_topic, will = rig.transport.will
    assert will_topic == STATUS
    offline = parse_status(DEVICE, will, RECEIVED)
    assert (offline.online, offline.boot, offline.fw) == (False, BOOT, FW_VERSION)
    topic, payload, retain = rig.transport.published[0]
    assert (topic, retain) == (STATUS, True)
    online = parse_status(DEVICE, payload, RECEIVED)
    assert (online.online, online.boot, online.fw, online.ip) == (True, BOOT, FW_VERSION, "10.0.0.7")
    assert rig.transport.subscribed == ["campus/" + SITE + "/" + DEVICE + "/cmd"]
    assert rig.clock.set  # the first connect asks NTP
    assert rig.node.link.connects == 1 and rig.node.link.failures == 0


def test_online_status_has_a_ts_once_the_clock_is_set():
    rig = Rig()
    rig.clock.sync()
    rig.start().online()
    online = json.loads(rig.transport.published[0][1])
    assert online["ts"] == rig.unix()
    assert online["state"] == "online"


def test_wifi_join_times_out_then_retries_after_a_backoff():
    rig = Rig(wifi_timeout_s=20).start()
    rig.wifi.available = False
    rig.run(20)  # begins joining at tick 1020
    assert rig.node.link.state == JOINING
    rig.run(19_900)
    link = rig.node.link
    assert link.state == JOINING and link.failures == 0
    rig.run(120, step_ms=120)  # 20 020 ms after joining began
    assert link.state == DOWN and link.failures == 1
    assert link.last_error == "Wi-Fi did not connect within 20 s"
    assert link.next_attempt is not None and 500 <= link.next_attempt - rig.clock.ticks <= 1000
    rig.wifi.available = True
    rig.run(1100)
    assert link.state == UP and rig.transport.connects == 1
    assert rig.wifi.joins == 1


def test_broker_refusals_back_off_exponentially_with_a_cap_and_reset_on_success():
    rig = Rig().start()
    rig.transport.fail_connects = 6
    attempts = [wait_for_connect(rig) for _ in range(7)]
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:], strict=False)]
    for gap, base in zip(gaps, [1000, 2000, 4000, 8000, 8000, 8000], strict=True):
        assert base // 2 <= gap <= base + 10
    link = rig.node.link
    assert link.state == UP and link.failures == 6 and link.connects == 1
    assert link.last_error == "broker: no CONNACK within 5 s"
    assert link.backoff.attempts == 0
    assert rig.transport.closes >= 6  # a failed connect is closed before the next attempt
    rig.transport.drop()  # a later failure starts from the minimum again
    rig.run(20)
    assert link.state == DOWN
    assert link.next_attempt is not None and link.next_attempt - rig.clock.ticks <= 1000


def test_reconnect_after_the_broker_drops_the_connection():
    rig = Rig().start()
    rig.online()
    rig.transport.drop()
    rig.node.telemetry({"t": 1})
    rig.run(20)
    link = rig.node.link
    assert link.state == DOWN and link.last_error == "connection lost"
    assert len(rig.node.outbox) == 1  # waits for the next connection
    rig.run(1100)
    assert link.state == UP and link.connects == 2
    statuses = [topic for topic, _, retain in rig.transport.published if topic == STATUS and retain]
    assert len(statuses) == 2  # online announced again on every connection
    assert telemetry_seqs(rig) == [(BOOT, 0)]
    assert len(rig.node.outbox) == 0


def test_wifi_lost_while_connected():
    rig = Rig().start()
    rig.online()
    rig.wifi.available = False
    rig.node.telemetry({"t": 1})
    rig.run(20)
    assert rig.node.link.state == DOWN and rig.node.link.last_error == "Wi-Fi lost"
    assert rig.transport.closes == 1 and telemetry_seqs(rig) == []
    rig.run(30_000)
    rig.wifi.available = True
    rig.run(30_000)
    assert rig.node.link.up and telemetry_seqs(rig) == [(BOOT, 0)]


# -- delivery --------------------------------------------------------------------------------------------------------


def test_outbox_is_popped_only_after_a_confirmed_publish_and_resent_identically():
    rig = Rig().start()
    for value in range(3):
        rig.node.telemetry({"t": value})
    rig.transport.fail_publishes = 1
    rig.transport.publishes_before_failure = 2  # the online status and seq 0 are confirmed, seq 1 is not
    rig.run(5_000)
    assert rig.node.link.failures == 1 and rig.node.link.up
    lost = [payload for topic, payload in rig.transport.attempted if topic == TELEMETRY]
    assert [json.loads(payload)["seq"] for payload in lost] == [0, 1, 1, 2]
    assert lost[1] == lost[2]  # the very same message: the gateway stores it once
    assert telemetry_seqs(rig) == [(BOOT, 0), (BOOT, 1), (BOOT, 2)]
    assert len(rig.node.outbox) == 0


def test_a_burst_is_bounded():
    rig = Rig(capacity=100).start()
    for value in range(25):
        rig.node.telemetry({"t": value})
    rig.online()
    assert rig.transport.on("/telemetry") == []  # the connect was this pass's blocking step
    rig.run(20)
    assert len(rig.transport.on("/telemetry")) == 10
    rig.run(40)
    assert len(rig.transport.on("/telemetry")) == 25


def test_an_invalid_record_is_dropped_and_counted_and_the_rest_flows():
    rig = Rig().start()
    rig.node.outbox.put(Record("telemetry", TELEMETRY, {"metrics": {"Bad Name": 1}}, 0, None, BOOT, 99))
    rig.node.telemetry({"t": 1})
    rig.online()
    rig.run(20)
    assert rig.node.outbox.invalid == 1
    assert telemetry_seqs(rig) == [(BOOT, 0)]


def test_keepalive_ping_when_idle():
    rig = Rig(keepalive_s=60).start()
    rig.online()
    rig.run(29_960)
    assert rig.transport.pings == 0
    rig.run(40)
    assert rig.transport.pings == 1
    rig.node.telemetry({"t": 1})
    rig.run(29_000)
    assert rig.transport.pings == 1  # the publish counted as traffic


class QueuesOnCommand(App):
    """Queues an event when a command arrives (as a gate reader reporting a rejected command does)."""

    def on_message(self, node: Node, topic: str, payload: bytes, now_ms: int) -> None:
        node.event("cmd_seen", "info", payload.decode())


def test_a_message_arriving_during_a_publish_with_a_full_outbox_loses_nothing_unsent():
    rig = Rig(QueuesOnCommand(), capacity=3).start()
    for value in range(3):
        rig.node.telemetry({"t": value})
    rig.online()
    # seq 0 is in flight when a command arrives; its event pushes seq 0 (the oldest) out of the full outbox
    rig.transport.during_publish.append(("campus/" + SITE + "/" + DEVICE + "/cmd", b"x"))
    rig.run(20)
    assert telemetry_seqs(rig) == [(BOOT, 0), (BOOT, 1), (BOOT, 2)]  # seq 1 was not popped in seq 0's place
    assert [document["seq"] for document in rig.transport.documents("/event")] == [3]
    assert len(rig.node.outbox) == 0


# -- shutdown --------------------------------------------------------------------------------------------------------


def test_shutdown_sends_what_it_can_says_offline_retained_and_disconnects():
    rig = Rig().start()
    rig.online()
    rig.node.telemetry({"t": 1})
    rig.node.shutdown()
    assert telemetry_seqs(rig) == [(BOOT, 0)]
    topic, payload, retain = rig.transport.published[-1]
    assert (topic, retain) == (STATUS, True)
    assert parse_status(DEVICE, payload, RECEIVED).online is False
    assert rig.transport.disconnects == 1
    assert rig.node.link.state == DOWN


def test_shutdown_while_offline_publishes_nothing():
    rig = Rig().start()
    rig.offline()
    rig.run(3_000)
    rig.node.shutdown()
    assert rig.transport.published == [] and rig.transport.disconnects == 0


def test_shutdown_with_a_failing_broker_closes_the_connection():
    rig = Rig().start()
    rig.online()
    rig.transport.fail_publishes = 1
    rig.node.shutdown()
    assert rig.transport.closes >= 1 and rig.node.link.state == DOWN


# -- node identity and time stamping ---------------------------------------------------------------------------------


def test_seq_counts_every_numbered_message_from_zero_within_a_boot():
    rig = Rig().start()
    rig.online()
    rig.node.telemetry({"t": 1})
    rig.node.event("boot", "info", "reset cause: power on")
    rig.node.telemetry({"t": 2})
    rig.node.gate_scan("gym-east", "QR", "b-1", "in", 5000)  # gate messages carry no seq
    rig.run(20)
    telemetry = [parse_telemetry(DEVICE, payload, rig.unix()) for payload in rig.transport.on("/telemetry")]
    event = parse_event(DEVICE, rig.transport.on("/event")[0], rig.unix())
    assert [(reading.boot, reading.seq) for reading in telemetry] == [(BOOT, 0), (BOOT, 2)]
    assert (event.boot, event.seq, event.message) == (BOOT, 1, "reset cause: power on")
    scan = json.loads(rig.transport.on("/gate/gym-east/scan")[0])
    assert "seq" not in scan and "boot" not in scan and scan["scan_id"] == "b-1"


def test_a_message_that_breaks_the_contract_fails_at_its_maker():
    rig = Rig().start()
    with pytest.raises(payloads.PayloadError):
        rig.node.telemetry({"Temperature": 21.0})
    assert len(rig.node.outbox) == 0


def test_site_and_device_must_be_valid_ids():
    clock = ManualClock()
    with pytest.raises(ValueError, match="valid ids"):
        Node("Test School", DEVICE, BOOT, App(), clock, FaultyTransport(), FakeWifi(), Backoff(1, 2), Outbox(1))
    with pytest.raises(payloads.PayloadError, match="boot"):
        Node(SITE, DEVICE, "b" * 17, App(), clock, FaultyTransport(), FakeWifi(), Backoff(1, 2), Outbox(1))


def test_readings_made_before_the_clock_is_set_are_stamped_with_the_time_they_were_made():
    rig = Rig().start()
    rig.offline()
    rig.run(20)
    made_at = []
    for _ in range(3):
        rig.clock.advance(60_000 - rig.clock.ticks % 1000)
        made_at.append(rig.clock.ticks)
        rig.node.telemetry({"t": 1})
    rig.run(5_000)
    assert all(record.ts is None for record in rig.node.outbox.records())
    rig.online()
    rig.run(20)
    assert rig.clock.set
    unix_now = rig.unix()
    sent = [parse_telemetry(DEVICE, payload, unix_now) for payload in rig.transport.on("/telemetry")]
    expected = [(rig.clock._unix_base + ticks) // 1000 for ticks in made_at]  # the fake clock's truth
    assert len(sent) == 3
    for reading, truth in zip(sent, expected, strict=True):
        assert truth - 1 <= reading.ts <= truth  # whole seconds, from the tick age
        assert not reading.clock_suspect


def test_without_ntp_readings_go_without_ts_and_ntp_is_retried():
    rig = Rig().start()
    rig.clock.ntp_reachable = False
    rig.online()
    assert rig.clock.syncs == 1
    rig.node.telemetry({"t": 1})
    rig.run(20)
    document = rig.transport.documents("/telemetry")[0]
    assert "ts" not in document  # the gateway uses its receive time: never a made-up one
    rig.run(NTP_RETRY_MS)
    assert rig.clock.syncs == 2
    rig.clock.ntp_reachable = True
    rig.run(NTP_RETRY_MS)
    assert rig.clock.syncs == 3 and rig.clock.set
    rig.run(NTP_RETRY_MS * 4)
    assert rig.clock.syncs == 3  # once set, only every few hours


class Esp32ClockUnset(ManualClock):
    """An ESP32 RTC counting from 2000 that nobody set: ``time.time()`` plus the 2000 offset lands in 2000."""

    def unix(self) -> int | None:
        return 946684800 + self.ticks // 1000

    def sync(self) -> bool:
        self.syncs += 1
        return False


def test_never_a_2000_epoch_or_pre_2020_ts():
    rig = Rig(clock=Esp32ClockUnset()).start()
    rig.online()
    rig.node.telemetry({"t": 1})
    rig.node.event("boot")
    rig.run(20)
    for suffix in ("/telemetry", "/event", "/status"):
        for document in rig.transport.documents(suffix):
            assert "ts" not in document


def test_stale_gate_scans_are_dropped_and_counted_not_sent_late():
    rig = Rig().start()
    rig.offline()
    rig.run(20)
    rig.node.gate_scan("gym-east", "QR-1", "b-1", "in", 5000)
    rig.node.telemetry({"t": 1})
    rig.run(5_100)
    assert rig.node.outbox.expired == 1
    rig.online()
    rig.run(20)
    assert rig.transport.on("/scan") == []
    assert telemetry_seqs(rig) == [(BOOT, 0)]


def test_health_counters():
    rig = Rig(capacity=2).start()
    for value in range(5):
        rig.node.telemetry({"t": value})
    assert rig.node.health() == {"node.outbox": 2, "node.discards": 3, "node.reconnects": 0, "node.link_failures": 0}
    parse_telemetry(DEVICE, payloads.telemetry(rig.node.health()), RECEIVED)  # they are valid metrics


# -- spilling to flash -----------------------------------------------------------------------------------------------


def test_spill_while_offline_is_bounded_by_spill_interval(tmp_path):
    flash = DirStore(tmp_path)
    rig = Rig(spill=flash, spill_max=20, spill_interval_s=900, capacity=200).start()
    rig.offline()
    for _ in range(120):  # two hours offline, a reading a minute
        rig.run(60_000, step_ms=500)
        rig.node.telemetry({"t": 1})
    assert 1 <= flash.writes == rig.node.spill_writes <= 7_200 // 900 + 1
    lines = flash.read(SPILL_NAME).decode().splitlines()
    assert len(lines) == 20
    assert json.loads(lines[-1])["seq"] >= 100  # the newest readings
    rig.online()
    rig.run(1_000)
    assert len(rig.node.outbox) == 0
    assert flash.read(SPILL_NAME) is None  # delivered: the copy is removed
    assert flash.writes == rig.node.spill_writes  # and nothing was written while online


def test_no_spill_while_online_or_when_disabled(tmp_path):
    flash = DirStore(tmp_path)
    online = Rig(spill=flash, spill_interval_s=60).start()
    for _ in range(30):
        online.run(60_000, step_ms=500)
        online.node.telemetry({"t": 1})
    assert len(online.transport.on("/telemetry")) == 29
    disabled = Rig(spill=flash, spill_max=0, spill_interval_s=60).start()
    disabled.offline()
    disabled.node.telemetry({"t": 1})
    disabled.run(600_000, step_ms=1000)
    disabled.node.shutdown()
    assert flash.writes == 0 and flash.read(SPILL_NAME) is None


def test_a_reboot_restores_the_spill_and_resends_the_same_messages(tmp_path):
    flash = DirStore(tmp_path)
    before = Rig(spill=flash, boot="aaaaaaaaaaaa").start()
    before.offline()
    before.run(20)
    for value in range(5):
        before.node.telemetry({"t": value})
    before.node.gate_scan("gym-east", "QR", "a-1", "in", 5000)  # a scan nobody will wait for after a reboot
    before.node.shutdown()
    assert len(flash.read(SPILL_NAME).decode().splitlines()) == 5

    after = Rig(spill=flash, boot="bbbbbbbbbbbb")
    after.node.telemetry({"t": 100})  # made before start: restored records still go first
    after.start()
    assert after.node.restored == 5
    after.online()
    after.run(20)
    assert telemetry_seqs(after) == [("aaaaaaaaaaaa", seq) for seq in range(5)] + [("bbbbbbbbbbbb", 0)]
    assert [document["metrics"]["t"] for document in after.transport.documents("/telemetry")] == [0, 1, 2, 3, 4, 100]
    assert after.transport.on("/scan") == []
    assert flash.read(SPILL_NAME) is None


def test_a_corrupt_spill_file_is_skipped():
    store = MemoryStore()
    store.write(SPILL_NAME, b"\xff\xfe not utf-8")
    rig = Rig(spill=store).start()
    assert rig.node.restored == 0 and len(rig.node.outbox) == 0
    store.write(SPILL_NAME, b'garbage\n{"k": "telemetry"}\n')
    rig = Rig(spill=store).start()
    assert rig.node.restored == 0 and rig.node.outbox.invalid == 2


# -- the watchdog ----------------------------------------------------------------------------------------------------


class _TimedTransport(FaultyTransport):
    """Counts the socket waits each call may take at worst (a write, then an answer to wait for), so a test can
    check that the link feeds the watchdog before two of them have passed (``watchdog_s >= 2 x socket_timeout_s +
    margin``, which the configuration enforces)."""

    WAITS = {"connect": 2, "publish": 2, "subscribe": 2, "poll": 1, "ping": 1}

    def __init__(self) -> None:
        super().__init__()
        self.since_feed = 0
        self.worst = 0

    def _wait(self, call: str) -> None:
        self.since_feed += self.WAITS[call]
        self.worst = max(self.worst, self.since_feed)

    def connect(self, will_topic: str, will_payload: bytes, handler: MessageHandler) -> None:
        self._wait("connect")
        super().connect(will_topic, will_payload, handler)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self._wait("publish")
        super().publish(topic, payload, retain)

    def subscribe(self, topic: str) -> None:
        self._wait("subscribe")
        super().subscribe(topic)

    def poll(self) -> None:
        self._wait("poll")
        super().poll()

    def ping(self) -> None:
        self._wait("ping")
        super().ping()


class _CountingWatchdog(Watchdog):
    def __init__(self, transport: _TimedTransport) -> None:
        self.transport = transport
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1
        self.transport.since_feed = 0


def test_no_step_waits_more_than_two_socket_timeouts_between_watchdog_feeds():
    clock = ManualClock(ticks=1000, unix_at_start=int(RECEIVED))
    transport = _TimedTransport()
    watchdog = _CountingWatchdog(transport)

    class Listener(LinkListener):
        def online_status(self) -> bytes:
            return b'{"state":"online"}'

        def offline_status(self) -> bytes:
            return b'{"state":"offline"}'

        def connected(self, now_ms: int) -> None:
            pass

        def on_message(self, topic: str, payload: bytes) -> None:
            pass

    link = Link(
        transport, FakeWifi("10.0.0.7"), clock, Backoff(1000, 8000), Listener(), STATUS,
        ["campus/" + SITE + "/" + DEVICE + "/cmd"], keepalive_s=10, wifi_timeout_s=20, watchdog=watchdog,
    )
    outbox = Outbox(50)
    for seq in range(25):
        outbox.put(Record("telemetry", TELEMETRY, {"metrics": {"t": seq}}, None, int(RECEIVED), BOOT, seq))
    for _ in range(20):  # connect, announce, subscribe, then bursts of publishes and keep-alive pings
        link.service(clock.ticks, outbox)
        transport.since_feed = 0  # the main loop feeds the watchdog on every pass
        clock.advance(6000)
    assert link.state == UP and len(outbox) == 0 and transport.pings > 0
    assert transport.worst <= 2, f"{transport.worst} socket waits passed between two feeds"
