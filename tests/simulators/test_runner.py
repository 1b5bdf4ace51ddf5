"""The simulation against a real Mosquitto, observed as the gateway would see it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gateway.broker import SIMULATOR_USER, free_port
from gateway.contracts import TopicKind, parse_event, parse_status, parse_telemetry
from simulators.errors import BrokerUnavailable
from simulators.families import FAMILIES
from simulators.runner import SCHEDULER_THREAD, Simulation
from simulators.scenario import Scenario, load_scenario
from tests.conftest import Broker
from tests.simulators.conftest import Observer


def _simulation(broker: Broker, scenario: Scenario, **options: object) -> Simulation:
    return Simulation(
        scenario, broker.url, SIMULATOR_USER, broker.simulator_password, site=broker.site, seed=1,
        reconnect_max_s=2, **options,  # type: ignore[arg-type]
    )


@contextmanager
def _running(simulation: Simulation) -> Iterator[Simulation]:
    simulation.start()
    try:
        yield simulation
    finally:
        simulation.stop()
    assert simulation.error is None


def _sim_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("paho-mqtt-client-sim-", SCHEDULER_THREAD))]


def _seqs(observer: Observer, device: str, boot: str) -> list[int]:
    """Seqs of ``device``'s telemetry and events of one boot, in arrival order (duplicates kept)."""
    seqs = []
    for message in observer.messages(device):
        if message.kind is TopicKind.TELEMETRY:
            parsed = parse_telemetry(device, message.payload, message.at)
            identity = (parsed.boot, parsed.seq)
        elif message.kind is TopicKind.EVENT:
            event = parse_event(device, message.payload, message.at)
            identity = (event.boot, event.seq)
        else:
            continue
        if identity[0] == boot and identity[1] is not None:
            seqs.append(identity[1])
    return seqs


def test_tiny_school_reports_contract_telemetry(broker: Broker, observer: Observer) -> None:
    simulation = _simulation(broker, load_scenario("tiny"), speed=10)
    with _running(simulation):
        devices = [device.id for device in simulation.scenario.devices]
        observer.wait_for(lambda: all(len(observer.telemetry(d)) >= 8 for d in devices), what="8 reports each")
    stats = simulation.stats()
    assert stats.published == stats.confirmed and stats.pending == 0 and stats.dropped == 0
    assert _sim_threads() == []
    observer.wait_for(lambda: all(len(_seqs(observer, d, stats.boots[d][0])) == stats.last_seq[d] + 1 for d in devices),
                      what="every message")
    for spec in simulation.scenario.devices:
        family = FAMILIES[spec.family]
        (boot,) = stats.boots[spec.id]
        telemetry = observer.telemetry(spec.id)
        assert all(set(reading.metrics) == family.metrics for reading in telemetry)
        assert all(reading.boot == boot and not reading.clock_suspect for reading in telemetry)
        assert sorted(_seqs(observer, spec.id, boot)) == list(range(stats.last_seq[spec.id] + 1))
        for counter in family.counters:
            values = [float(reading.metrics[counter]) for reading in telemetry]
            assert values == sorted(values), f"{spec.id}.{counter} went down within one boot"
        statuses = observer.messages(spec.id, TopicKind.STATUS)
        first, last = (parse_status(spec.id, m.payload, m.at) for m in (statuses[0], statuses[-1]))
        assert first.online and first.boot == boot and first.fw == family.firmware
        assert not last.online, "shared mode says goodbye with a retained offline status"
        kinds = [message.kind for message in observer.messages(spec.id)]
        assert kinds.index(TopicKind.STATUS) < kinds.index(TopicKind.TELEMETRY)


FAULTS = """
name = "faults"
site = "x"
shared_links = 1
[intervals]
env_sensor = 1
smart_socket = 1
[[groups]]
family = "env_sensor"
count = 4
id_prefix = "env-"
room = "c101"
[[groups]]
family = "smart_socket"
count = 2
id_prefix = "socket-"
room = "c101"
[[faults]]
device = "env-01"
kind = "offline"
at = 2
duration = 4
[[faults]]
device = "env-02"
kind = "stuck"
at = 2
duration = 5
[[faults]]
device = "env-03"
kind = "out_of_range"
at = 2
duration = 4
[[faults]]
device = "env-04"
kind = "garbage"
at = 2
duration = 15
[[faults]]
device = "socket-01"
kind = "burst"
at = 3
params = { count = 50 }
[[faults]]
device = "socket-02"
kind = "reboot"
at = 3
"""


def test_each_fault_kind_does_what_it_says(broker: Broker, observer: Observer) -> None:
    from simulators.scenario import parse_scenario

    simulation = _simulation(broker, parse_scenario(FAULTS), speed=10)
    with _running(simulation):
        time.sleep(2.2)  # 22 scenario seconds: every fault has started and ended
    stats = simulation.stats()
    assert stats.published == stats.confirmed
    observer.wait_for(lambda: len(observer.telemetry("env-01")) >= stats.last_seq["env-01"] + 1, what="env-01")

    # offline (shared mode): a retained offline status with the boot, silence, then online again with the same boot
    statuses = [parse_status("env-01", m.payload, m.at) for m in observer.messages("env-01", TopicKind.STATUS)]
    assert [status.online for status in statuses] == [True, False, True, False]
    assert {status.boot for status in statuses} == set(stats.boots["env-01"])
    went, came = (m.at for m in observer.messages("env-01", TopicKind.STATUS)[1:3])
    silent = [t for t in observer.telemetry("env-01") if went < t.ts < came]
    assert silent == [] and came - went > 0.3
    assert [t.seq for t in observer.telemetry("env-01")] == list(range(stats.last_seq["env-01"] + 1))

    # stuck: the same metrics again and again, moving before and after
    stuck: list[dict[str, object]] = [dict(t.metrics) for t in observer.telemetry("env-02")]
    longest = max(sum(1 for _ in run) for run in _runs(stuck))
    assert longest >= 4 and len({json.dumps(m, sort_keys=True) for m in stuck}) > 3

    # out of range: absurd, well-formed values during the window only
    temperatures = [t.metrics["temperature"] for t in observer.telemetry("env-03")]
    assert 500.0 in temperatures and temperatures[0] != 500.0 and temperatures[-1] != 500.0

    # garbage: every variant reached the broker and fails the contract; good messages before and after
    bad, reasons = 0, set()
    for message in observer.messages("env-04", TopicKind.TELEMETRY):
        try:
            parse_telemetry("env-04", message.payload, message.at)
        except ValueError as exc:
            bad += 1
            reasons.add(getattr(exc, "reason", None))
    assert bad == stats.garbage >= 13 and len(reasons) >= 11
    assert [t.seq for t in observer.telemetry("env-04")] == list(range(stats.last_seq["env-04"] + 1))

    # burst: 50 extra messages at once, seq unbroken
    burst = observer.telemetry("socket-01")
    assert len(burst) >= 50 + 10 and [t.seq for t in burst] == list(range(len(burst)))

    # reboot: a new boot, seq from 0, online status with the new boot
    first, second = stats.boots["socket-02"]
    assert first != second
    assert _seqs(observer, "socket-02", second)[0] == 0
    online = [parse_status("socket-02", m.payload, m.at) for m in observer.messages("socket-02", TopicKind.STATUS)]
    assert [(status.online, status.boot) for status in online[:2]] == [(True, first), (True, second)]


def _runs(items: list[dict[str, object]]) -> Iterator[list[dict[str, object]]]:
    run: list[dict[str, object]] = []
    for item in items:
        if run and item != run[-1]:
            yield run
            run = []
        run.append(item)
    if run:
        yield run


PER_DEVICE = """
site = "x"
connection = "per_device"
[intervals]
env_sensor = 1
[[groups]]
family = "env_sensor"
count = 2
id_prefix = "env-"
room = "c101"
[[faults]]
device = "env-01"
kind = "offline"
at = 2
duration = 5
[[faults]]
device = "env-02"
kind = "reboot"
at = 3
"""


def test_per_device_connections_carry_a_last_will(
    broker: Broker, observer: Observer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulators.link import Link
    from simulators.scenario import parse_scenario

    # When env-01 powers on again it measures at once, while its new connection is still being set up: readings
    # from then on are legitimate even though they reach the broker before its "online" status. Note the moment.
    reopened: list[float] = []
    reopen = Link.reopen

    def noting_reopen(link: Link) -> None:
        if link.name.endswith("env-01"):
            reopened.append(time.time())
        reopen(link)

    monkeypatch.setattr(Link, "reopen", noting_reopen)
    simulation = _simulation(broker, parse_scenario(PER_DEVICE), speed=10)
    with _running(simulation):
        assert simulation.stats().links == 2
        time.sleep(1.2)
    stats = simulation.stats()
    assert stats.published == stats.confirmed
    observer.wait_for(lambda: len(observer.messages("env-01", TopicKind.STATUS)) >= 4, what="the will at stop")
    statuses = observer.messages("env-01", TopicKind.STATUS)
    payloads = [m.payload for m in statuses]
    assert payloads[1] == b'{"state":"offline"}', "the broker published the last will"
    assert payloads[3] == b'{"state":"offline"}', "stop disconnects with the will (reason code 4)"
    assert [parse_status("env-01", p, 0).online for p in payloads] == [True, False, True, False]
    went, came = statuses[1].at, statuses[2].at
    (powered_on,) = reopened
    assert went < powered_on < came
    assert powered_on - went > 0.3, "the fault keeps it offline for 5 simulated s (0.5 s at speed 10)"
    assert [t for t in observer.telemetry("env-01") if went < t.ts < powered_on] == [], "no readings while off"
    (boot,) = stats.boots["env-01"]
    assert sorted(_seqs(observer, "env-01", boot)) == list(range(stats.last_seq["env-01"] + 1))
    # a reboot drops the connection (the will fires) and comes back with a new boot
    first, second = stats.boots["env-02"]
    reboot = [parse_status("env-02", m.payload, m.at) for m in observer.messages("env-02", TopicKind.STATUS)]
    assert [(s.online, s.boot) for s in reboot[:3]] == [(True, first), (False, None), (True, second)]
    assert sorted(_seqs(observer, "env-02", second)) == list(range(stats.last_seq["env-02"] + 1))
    assert _sim_threads() == []


def test_a_broker_restart_loses_nothing_the_simulator_published(broker: Broker, observer: Observer) -> None:
    simulation = _simulation(broker, load_scenario("tiny"), speed=20)
    with _running(simulation):
        time.sleep(1.0)
        broker.process.stop()
        time.sleep(1.0)  # the devices keep reporting into the ledger
        assert simulation.stats().pending > 0
        broker.process.start()
        observer.wait_for(lambda: simulation.stats().links_connected == 2, timeout=15, what="reconnection")
        time.sleep(1.0)
    stats = simulation.stats()
    assert stats.pending == 0 and stats.published == stats.confirmed and stats.dropped == 0
    for device, last_seq in stats.last_seq.items():
        (boot,) = stats.boots[device]
        expected = set(range(last_seq + 1))

        def arrived(device: str = device, boot: str = boot, expected: set[int] = expected) -> bool:
            return set(_seqs(observer, device, boot)) >= expected

        observer.wait_for(arrived, timeout=15, what=f"every seq of {device} up to {last_seq}")


def test_a_refused_login_is_a_clear_error(broker: Broker) -> None:
    simulation = Simulation(load_scenario("tiny"), broker.url, SIMULATOR_USER, "wrong", connect_timeout_s=5)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="refused 'simulator'"):
        simulation.start()
    assert time.monotonic() - started < 4
    assert _sim_threads() == []


def test_an_unreachable_broker_is_a_clear_error() -> None:
    simulation = Simulation(load_scenario("tiny"), f"mqtt://127.0.0.1:{free_port()}", "u", "p", connect_timeout_s=0.5)
    with pytest.raises(BrokerUnavailable, match="cannot reach the broker at 127.0.0.1"):
        simulation.start()
    simulation.stop()
    assert _sim_threads() == []
