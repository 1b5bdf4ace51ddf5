"""One simulated device without a broker: boot ids, seq, reboots, and what each fault does to its messages."""

from __future__ import annotations

import datetime as dt
import json
import random
from zoneinfo import ZoneInfo

import pytest

from gateway.contracts import ContractError, TopicKind, parse_event, parse_status, parse_telemetry
from simulators.device import Outgoing, SimulatedDevice
from simulators.families import FAMILIES
from simulators.faults import FaultKind, Garbage
from simulators.model import Schedule
from simulators.scenario import DeviceSpec, FaultParams, FaultSpec

ZONE = ZoneInfo("Asia/Shanghai")
MORNING = dt.datetime(2025, 3, 12, 9, 0, tzinfo=ZONE).timestamp()


def _device(family: str = "smart_socket", device: str = "socket-01") -> SimulatedDevice:
    spec = DeviceSpec(device, family, "Socket", "c101", FAMILIES[family].schedule, 10.0)
    simulated = SimulatedDevice(spec, FAMILIES[family], "test-school", ZONE, random.Random(4))
    simulated.power_on(MORNING)
    return simulated


def _reports(device: SimulatedDevice, count: int, start: float = MORNING, step: float = 10.0) -> list[Outgoing]:
    messages: list[Outgoing] = []
    for n in range(1, count + 1):
        messages += device.report(start + n * step, start + n * step)
    return messages


def _metrics(message: Outgoing) -> dict[str, object]:
    return dict(parse_telemetry(message.device, message.payload, MORNING).metrics)


def test_seq_counts_from_zero_within_a_boot_and_topics_follow_the_contract() -> None:
    device = _device()
    messages = _reports(device, 5)
    assert [message.seq for message in messages] == [0, 1, 2, 3, 4]
    assert {message.topic for message in messages} == {"campus/test-school/socket-01/telemetry"}
    for message in messages:
        telemetry = parse_telemetry("socket-01", message.payload, MORNING + 60)
        assert (telemetry.boot, telemetry.seq) == (device.boot, message.seq)
        assert len(device.boot) <= 16
    assert device.last_seq == 4


def test_events_share_the_seq_counter_so_identities_never_collide() -> None:
    device = _device("classroom_display", "display-c101")
    messages = _reports(device, 20_000, step=60.0)  # two weeks of lessons: some faults and clears
    events = [message for message in messages if message.kind is TopicKind.EVENT]
    assert events, "a display raised no event in two weeks"
    for event in events:
        assert parse_event("display-c101", event.payload, MORNING).seq == event.seq
    assert [message.seq for message in messages] == list(range(len(messages)))


def test_status_online_carries_boot_and_firmware_offline_is_plain() -> None:
    device = _device()
    online = device.status(True, MORNING)
    assert online.retain and online.topic == "campus/test-school/socket-01/status"
    parsed = parse_status("socket-01", online.payload, MORNING)
    assert parsed.online and parsed.boot == device.boot and parsed.fw == FAMILIES["smart_socket"].firmware
    assert not parse_status("socket-01", device.status(False, MORNING).payload, MORNING).online


def test_reboot_gives_a_new_boot_seq_zero_and_counters_from_zero() -> None:
    device = _device()
    before = _reports(device, 50, step=60.0)
    first_boot = device.boot
    assert float(_metrics(before[-1])["energy_wh"]) > 0  # type: ignore[arg-type]
    device.power_off()
    assert device.report(MORNING + 4000, MORNING + 4000) == []
    device.power_on(MORNING + 4000)
    after = _reports(device, 1, start=MORNING + 4000)
    assert device.boot != first_boot and device.boots == [first_boot, device.boot]
    assert after[0].seq == 0 and after[0].boot == device.boot
    assert float(_metrics(after[0])["energy_wh"]) < float(_metrics(before[-1])["energy_wh"])  # type: ignore[arg-type]


def test_boot_ids_are_not_seeded() -> None:
    assert _device().boot != _device().boot


def test_offline_silences_the_device_but_time_goes_on() -> None:
    device = _device()
    fault = FaultSpec("socket-01", FaultKind.OFFLINE, 0.0, 60.0)
    device.start_fault(fault)
    assert not device.publishing
    assert _reports(device, 3) == []
    device.end_fault(fault)
    assert [message.seq for message in _reports(device, 2, start=MORNING + 30)] == [0, 1]


def test_stuck_repeats_the_last_values() -> None:
    device = _device("env_sensor", "env-01")
    last = _metrics(_reports(device, 3)[-1])
    fault = FaultSpec("env-01", FaultKind.STUCK, 0.0, 60.0)
    device.start_fault(fault)
    stuck = [_metrics(message) for message in _reports(device, 10, start=MORNING + 30, step=600.0)]
    assert all(metrics == last for metrics in stuck)
    device.end_fault(fault)
    moving = [_metrics(message) for message in _reports(device, 10, start=MORNING + 7000, step=600.0)]
    assert any(metrics != last for metrics in moving)


def test_out_of_range_sends_absurd_but_wellformed_values() -> None:
    device = _device("env_sensor", "env-01")
    device.start_fault(FaultSpec("env-01", FaultKind.OUT_OF_RANGE, 0.0, 60.0))
    metrics = _metrics(_reports(device, 1)[0])
    assert metrics["temperature"] == 500.0 and metrics["humidity"] == 180.0
    override = FaultSpec("env-01", FaultKind.OUT_OF_RANGE, 0.0, 60.0, FaultParams(metric="co2", value=-1.0))
    device.start_fault(override)
    assert _metrics(_reports(device, 1, start=MORNING + 20)[0])["co2"] == -1.0


def test_garbage_cycles_through_variants_without_using_seq() -> None:
    device = _device("env_sensor", "env-01")
    _reports(device, 2)
    fault = FaultSpec("env-01", FaultKind.GARBAGE, 0.0, 60.0, FaultParams(variants=tuple(Garbage)))
    device.start_fault(fault)
    garbage = _reports(device, len(Garbage), start=MORNING + 30)
    assert all(message.garbage and message.seq is None for message in garbage)
    for message in garbage:
        with pytest.raises(ContractError):
            parse_telemetry("env-01", message.payload, MORNING)
    device.end_fault(fault)
    assert _reports(device, 1, start=MORNING + 400)[0].seq == 2


def test_burst_sends_many_valid_messages_at_once() -> None:
    device = _device()
    burst = device.burst(250, MORNING + 5, MORNING + 5)
    assert [message.seq for message in burst] == list(range(250))
    assert all(json.loads(message.payload)["boot"] == device.boot for message in burst)


def test_schedules_differ_by_place() -> None:
    assert FAMILIES["fitness_equipment"].schedule is Schedule.FITNESS_PATH
    assert FAMILIES["people_counter"].schedule is Schedule.VENUE
