"""The three node apps on the simulated hardware: the environment node (SHT3x, SCD4x, PMS; a failing sensor or a
CRC error gives no value, never a bogus one), the fitness-path counter (debounced uses as a running total that
survives reboots) and the gate reader (scan with its scan_id, the relay driven only by a valid command for the scan
it waits for, the passage reported)."""

from __future__ import annotations

import json

import pytest
from campusnode.apps.counter import SOON_MS, CounterApp
from campusnode.apps.env import EnvApp
from campusnode.apps.gate import GateApp
from campusnode.gatecmd import GateGuard
from campusnode.sensors import Pms, Scd4x, Sht3x, pms_frame, with_crc
from campusnode.totals import TotalKeeper, decode_total
from campusnode.transport import MemoryStore
from campusnode_host.fakes import DirStore, FakeEdges, FakeI2C, FakeRelay, FakeUart

from gateway.contracts import parse_event, parse_telemetry, sign_gate_command
from tests.firmware._logic_support import BOOT, SITE, Rig

KEY = bytes(range(32))
GATE = "gym-east"
GATE_CMD = "campus/" + SITE + "/gate/" + GATE + "/cmd"


def readings(rig: Rig) -> list[dict]:
    """Every confirmed telemetry message, parsed by the gateway."""
    received = rig.unix() + 1
    return [dict(parse_telemetry(rig.node.device, data, received).metrics) for data in rig.transport.on("/telemetry")]


def events(rig: Rig) -> list[tuple[str, str, str]]:
    received = rig.unix() + 1
    parsed = [parse_event(rig.node.device, data, received) for data in rig.transport.on("/event")]
    return [(event.code, event.severity, event.message) for event in parsed]


# -- environment node ------------------------------------------------------------------------------------------------


class EnvRig:
    def __init__(self, interval_s: int = 60, sht: bool = True, scd: bool = True, pms: bool = True) -> None:
        self.bus = FakeI2C()
        self.uart = FakeUart()
        self.app = EnvApp(
            interval_s,
            Sht3x(self.bus) if sht else None,
            Scd4x(self.bus) if scd else None,
            Pms(self.uart) if pms else None,
        )
        self.rig = Rig(self.app)


def test_env_reports_every_sensor_in_one_message():
    env = EnvRig()
    env.bus.temperature, env.bus.humidity, env.bus.co2 = 23.37, 48.25, 731
    env.uart.push_pms(4, 11, 17)
    env.rig.start().online()
    env.rig.run(100)
    (metrics,) = readings(env.rig)
    assert metrics["temperature"] == pytest.approx(23.37, abs=0.01)
    assert metrics["humidity"] == pytest.approx(48.2, abs=0.11)
    assert (metrics["co2"], metrics["pm1_0"], metrics["pm2_5"], metrics["pm10"]) == (731, 4, 11, 17)
    assert metrics["node.outbox"] >= 0 and metrics["node.discards"] == 0
    assert events(env.rig) == []
    assert env.app.reports == 1


def test_env_collects_the_sht3x_measurement_on_a_later_pass():
    env = EnvRig(scd=False, pms=False)
    env.rig.start()
    env.rig.offline()
    env.rig.run(20)  # starts the measurement
    assert len(env.rig.node.outbox) == 0
    env.rig.run(20)  # 20 ms later: collected
    assert [record.kind for record in env.rig.node.outbox.records()] == ["telemetry"]


def test_env_reports_every_interval_and_never_repeats_a_stale_pm_value():
    env = EnvRig(interval_s=60)
    env.uart.push_pms(1, 2, 3)
    env.rig.start().online()
    env.rig.run(60_000)
    env.rig.run(100)
    first, second = readings(env.rig)
    assert first["pm2_5"] == 2
    assert "pm2_5" not in second  # no new frame came in that minute
    assert second["co2"] == 612 and "temperature" in second


def test_a_failing_sht3x_is_left_out_and_reported_once_until_it_answers_again():
    env = EnvRig(interval_s=10)
    env.bus.fail.add(0x44)
    env.rig.start().online()
    env.rig.run(30_100)  # four reports
    assert all("temperature" not in metrics and "humidity" not in metrics for metrics in readings(env.rig))
    assert all(metrics["co2"] == 612 for metrics in readings(env.rig))
    faults = [event for event in events(env.rig) if event[0] == "sensor_fault"]
    assert len(faults) == 1 and faults[0][1] == "warning" and faults[0][2].startswith("sht3x: ")
    env.bus.fail.discard(0x44)
    env.rig.run(10_000)
    assert readings(env.rig)[-1]["temperature"] == pytest.approx(21.5, abs=0.01)
    assert events(env.rig)[-1] == ("sensor_ok", "info", "sht3x answers again")
    assert env.app.sensor_errors >= 4


def test_a_crc_error_gives_no_value_never_a_bogus_one():
    env = EnvRig()
    env.bus.corrupt.update({0x44, 0x62})
    env.rig.start().online()
    env.rig.run(100)
    assert readings(env.rig) == []  # nothing trustworthy to report at all
    codes = [(code, message) for code, _, message in events(env.rig)]
    assert ("sensor_fault", "scd4x: CRC mismatch in word 0") in codes
    assert ("sensor_fault", "sht3x: CRC mismatch in word 0") in codes


def test_a_corrupt_pms_frame_is_dropped_and_counted():
    env = EnvRig(sht=False, scd=False)
    frame = bytearray(pms_frame(5, 999, 20))
    frame[30] ^= 0x10
    env.uart.push(bytes(frame))
    env.rig.start().online()
    env.rig.run(100)
    assert readings(env.rig) == []
    assert env.app.pms is not None and env.app.pms.bad_frames == 1
    env.uart.push_pms(5, 12, 20)
    env.rig.run(60_000)
    assert readings(env.rig)[-1]["pm2_5"] == 12


class ColdScd4xBus(FakeI2C):
    """An SCD4x that was not powered when the node started: it measures only after ``start_periodic_measurement``
    (0x21B1) and answers "no data" to ``get_data_ready_status`` until then."""

    def __init__(self) -> None:
        super().__init__()
        self.scd_started = False

    def writeto(self, address: int, data: bytes) -> int:
        written = super().writeto(address, data)
        if address == 0x62 and data[:2] == b"\x21\xb1":
            self.scd_started = True
        return written

    def readfrom(self, address: int, count: int) -> bytes:
        if address == 0x62 and self._last.get(0x62) == 0xE4B8 and not self.scd_started:
            return with_crc(0x8000)
        return super().readfrom(address, count)


def test_an_scd4x_absent_at_boot_is_started_once_it_answers():
    bus = ColdScd4xBus()
    bus.fail.add(0x62)
    app = EnvApp(10, None, Scd4x(bus), None)
    rig = Rig(app).start()
    rig.online()
    rig.run(100)
    bus.fail.discard(0x62)
    rig.run(30_000)
    assert bus.scd_started
    assert readings(rig)[-1]["co2"] == 612
    assert [code for code, _, _ in events(rig)] == ["sensor_fault", "sensor_ok"]


# -- fitness-path counter --------------------------------------------------------------------------------------------


class LossyEdges(FakeEdges):
    def lost(self) -> int:
        return 3


def counter_rig(rtc: MemoryStore, flash: DirStore, boot: str = BOOT, edges: FakeEdges | None = None) -> Rig:
    keeper = TotalKeeper(rtc, flash, "uses.bin", 300_000)
    app = CounterApp(600, edges or FakeEdges(), keeper, debounce_ms=50, active=0)
    return Rig(app, boot=boot, device="bench-press-3")


def test_counter_reports_debounced_uses_as_a_running_total(tmp_path):
    rig = counter_rig(MemoryStore(), DirStore(tmp_path))
    rig.start().online()
    rig.run(100)
    assert [metrics["uses"] for metrics in readings(rig)] == [0]  # announced at start
    edges = rig.app.edges
    for number in range(5):  # a set of five repetitions, each contact bouncing
        edges.pulse(rig.clock.ticks + 100 + number * 600, length_ms=300, active=0)
    rig.run(3_500)
    assert len(readings(rig)) == 1  # not one message per use
    rig.run(SOON_MS)
    assert [metrics["uses"] for metrics in readings(rig)] == [0, 5]  # one report per burst, soon after it
    rig.run(600_000)
    assert [metrics["uses"] for metrics in readings(rig)][-1] == 5  # totals, not deltas: the interval repeats it
    assert readings(rig)[-1]["node.lost_edges"] == 0


def test_counter_reports_lost_edges(tmp_path):
    rig = counter_rig(MemoryStore(), DirStore(tmp_path), edges=LossyEdges())
    rig.start().online()
    rig.run(100)
    assert readings(rig)[0]["node.lost_edges"] == 3


def test_counter_total_survives_a_reset_and_a_power_cut(tmp_path):
    rtc, flash = MemoryStore(), DirStore(tmp_path)
    first = counter_rig(rtc, flash, boot="aaaaaaaaaaaa")
    first.start().online()
    for number in range(7):
        first.app.edges.pulse(first.clock.ticks + 100 + number * 500, active=0)
    first.run(10_000)
    assert readings(first)[-1]["uses"] == 7
    # watchdog reset: no clean shutdown, RTC memory survives
    second = counter_rig(rtc, flash, boot="bbbbbbbbbbbb")
    second.start().online()
    second.run(100)
    assert readings(second)[0]["uses"] == 7
    second.app.edges.pulse(second.clock.ticks + 100, active=0)
    second.run(6_000)
    second.node.shutdown()  # clean: the flash copy is written
    assert decode_total(flash.read("uses.bin")) == 8
    # power cut: RTC memory is gone, the flash copy remains
    third = counter_rig(MemoryStore(), flash, boot="cccccccccccc")
    third.start().online()
    third.run(100)
    assert readings(third)[0]["uses"] == 8
    identities = [json.loads(data)["boot"] for data in third.transport.on("/telemetry")]
    assert identities == ["cccccccccccc"]  # a new boot: the gateway sees a continuing total, no collision


def test_counter_flash_writes_stay_bounded_in_a_busy_hour(tmp_path):
    flash = DirStore(tmp_path)
    rig = counter_rig(MemoryStore(), flash)
    rig.start().online()
    edges = rig.app.edges
    for _ in range(60):
        for number in range(20):  # twenty uses a minute, for an hour
            edges.pulse(rig.clock.ticks + 100 + number * 2_500, length_ms=400, active=0)
        rig.run(60_000, step_ms=100)
    assert rig.app.keeper.total == 1200
    assert flash.writes <= 3_600_000 // 300_000 + 1
    assert readings(rig)[-1]["uses"] == 1200


# -- gate reader -----------------------------------------------------------------------------------------------------


class GateRig:
    def __init__(self, passage: bool = True) -> None:
        self.uart = FakeUart()
        self.relay = FakeRelay()
        self.edges = FakeEdges() if passage else None
        self.guard = GateGuard(KEY, SITE, GATE, wait_ms=5000)
        self.app = GateApp(
            GATE, self.guard, self.uart, self.relay, self.edges, "in", open_ms=3000, passage_window_ms=10_000
        )
        self.rig = Rig(self.app, device="gate-east-1")
        self.rig.start().online()

    def scan(self, code: str = "CP1.pass.abc") -> dict:
        before = len(self.rig.transport.on("/scan"))
        self.uart.push(code.encode() + b"\r\n")
        self.rig.run(40)
        scans = self.rig.transport.documents("/scan")
        assert len(scans) == before + 1
        return scans[-1]

    def command(self, scan_id: str, action: str = "open", expires_in: int = 30, key: bytes = KEY) -> bytes:
        expires = self.rig.unix() + expires_in
        return json.dumps(
            {
                "scan_id": scan_id,
                "action": action,
                "reason": "ok" if action == "open" else "no_pass",
                "expires": expires,
                "sig": sign_gate_command(key, SITE, GATE, scan_id, action, expires),
            }
        ).encode()

    def send(self, payload: bytes, topic: str = GATE_CMD) -> None:
        self.rig.transport.incoming.append((topic, payload))
        self.rig.run(20)

    def rejections(self) -> list[str]:
        return [message for code, _, message in events(self.rig) if code == "gate_cmd_rejected"]


def test_gate_subscribes_to_its_command_topic():
    gate = GateRig()
    assert GATE_CMD in gate.rig.transport.subscribed
    assert gate.relay.history == [False]  # the relay starts off


def test_a_scan_is_published_with_its_scan_id():
    gate = GateRig()
    scan = gate.scan("CP1.pass.abc")
    assert scan == {"code": "CP1.pass.abc", "scan_id": BOOT[:8] + "-1", "ts": gate.rig.unix(), "direction": "in"}
    assert gate.guard.waiting == scan["scan_id"]
    assert gate.scan("CP1.pass.def")["scan_id"] == BOOT[:8] + "-2"


def test_the_same_code_held_at_the_scanner_is_one_scan():
    gate = GateRig()
    gate.scan("CP1.pass.abc")
    gate.uart.push(b"CP1.pass.abc\r\n")
    gate.rig.run(100)
    assert len(gate.rig.transport.on("/scan")) == 1


def test_a_valid_open_drives_the_relay_and_the_passage_is_published():
    gate = GateRig()
    scan_id = gate.scan()["scan_id"]
    gate.send(gate.command(scan_id))
    assert gate.relay.on and gate.app.opened == 1
    assert gate.edges is not None
    gate.edges.pulse(gate.rig.clock.ticks + 300, length_ms=400, active=0)  # someone walks through
    gate.rig.run(1_000)
    assert gate.rig.transport.documents("/passage") == [{"scan_id": scan_id, "passed": True}]
    assert not gate.relay.on
    assert gate.relay.history == [False, True, False]
    assert gate.rejections() == []


def test_an_open_nobody_walks_through_times_out():
    gate = GateRig()
    scan_id = gate.scan()["scan_id"]
    gate.send(gate.command(scan_id))
    gate.rig.run(3_100)
    assert not gate.relay.on  # unlocked for open_ms only
    assert gate.rig.transport.on("/passage") == []
    gate.rig.run(7_000)
    assert gate.rig.transport.documents("/passage") == [{"scan_id": scan_id, "passed": False}]


def test_a_deny_never_touches_the_relay():
    gate = GateRig()
    scan_id = gate.scan()["scan_id"]
    gate.send(gate.command(scan_id, "deny"))
    gate.rig.run(11_000)
    assert gate.relay.history == [False]
    assert gate.app.denied == 1 and gate.app.opened == 0
    assert gate.rig.transport.on("/passage") == []


@pytest.mark.parametrize("reason", ["not_waiting", "bad_signature", "expired", "malformed"])
def test_anything_but_a_valid_command_for_the_awaited_scan_leaves_the_relay_off(reason):
    gate = GateRig()
    scan_id = gate.scan()["scan_id"]
    payload = {
        "not_waiting": gate.command("someone-else-7"),
        "bad_signature": gate.command(scan_id, key=b"the key of another gate!"),
        "expired": gate.command(scan_id, expires_in=-1),
        "malformed": b'{"scan_id": "' + scan_id.encode() + b'", "action": "open"}',
    }[reason]
    gate.send(payload)
    assert gate.relay.history == [False]
    assert gate.app.rejected == [reason]
    assert len(gate.rejections()) == 1 and gate.rejections()[0].startswith(reason + " for scan ")


def test_a_replayed_command_opens_once():
    gate = GateRig()
    scan_id = gate.scan()["scan_id"]
    payload = gate.command(scan_id)
    gate.send(payload)
    gate.rig.run(11_000)
    gate.send(payload)
    assert gate.relay.history.count(True) == 1 and not gate.relay.on
    assert gate.app.opened == 1 and gate.app.rejected == ["replay"]


def test_an_answer_after_the_wait_is_too_late():
    gate = GateRig()
    scan_id = gate.scan()["scan_id"]
    gate.rig.run(5_100)
    assert gate.app.rejected == ["no_answer"]
    gate.send(gate.command(scan_id))
    assert gate.relay.history == [False]
    assert gate.app.rejected == ["no_answer", "too_late"]


def test_commands_on_other_topics_are_ignored():
    gate = GateRig()
    scan_id = gate.scan()["scan_id"]
    gate.send(gate.command(scan_id), topic="campus/" + SITE + "/gate/gym-west/cmd")
    gate.send(gate.command(scan_id), topic="campus/" + SITE + "/gate-east-1/cmd")
    assert gate.relay.history == [False] and gate.app.rejected == []
    gate.send(gate.command(scan_id))
    assert gate.relay.on


def test_a_passage_without_an_open_is_reported():
    gate = GateRig()
    assert gate.edges is not None
    gate.edges.pulse(gate.rig.clock.ticks + 100, active=0)
    gate.rig.run(1_000)
    assert [code for code, _, _ in events(gate.rig)] == ["unexpected_passage"]
    assert gate.rig.transport.on("/passage") == []


def test_a_new_open_ends_the_previous_window():
    gate = GateRig(passage=False)
    first = gate.scan("A")["scan_id"]
    gate.send(gate.command(first))
    second = gate.scan("B")["scan_id"]
    gate.send(gate.command(second))
    assert gate.rig.transport.documents("/passage") == [{"scan_id": first, "passed": False}]
    assert gate.relay.on
    gate.rig.run(10_100)
    assert gate.rig.transport.documents("/passage")[-1] == {"scan_id": second, "passed": False}


def test_a_scan_made_offline_expires_instead_of_opening_later():
    gate = GateRig()
    gate.rig.transport.drop()
    gate.rig.offline()
    gate.uart.push(b"CP1.pass.late\r\n")
    gate.rig.run(6_000)
    assert gate.rig.node.outbox.expired == 1
    assert gate.app.rejected == ["no_answer"]
    gate.rig.online()
    gate.rig.run(100)
    assert gate.rig.transport.on("/scan") == []


def test_stopping_the_gate_locks_it():
    gate = GateRig()
    scan_id = gate.scan()["scan_id"]
    gate.send(gate.command(scan_id))
    assert gate.relay.on
    gate.rig.node.shutdown()
    assert not gate.relay.on
