"""Run a scenario: devices on a shared (or per-device) set of MQTT links, one scheduler thread, faults on time.

:class:`Simulation` owns everything it starts: the paho loop threads of its links and one scheduler thread
(``campusgw-sim-scheduler``). The scheduler is the only thread that touches device state; it wakes for the next
report or fault, and when a link (re)connects, to announce its devices online. ``stop()`` says goodbye (offline
status, or the last will in per-device mode), waits a bounded time for the broker to confirm what is outstanding,
disconnects and joins every thread.

Time: a scenario second lasts ``1 / speed`` real seconds. Models see a simulated clock (it may start at the
scenario's ``clock_start`` and runs ``speed`` times faster); ``ts`` in payloads is always the real time, as the
contract wants.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from gateway.contracts import TopicKind, device_topic
from simulators.device import Outgoing, SimulatedDevice
from simulators.errors import BrokerUnavailable, SimulatorError
from simulators.families import FAMILIES
from simulators.faults import FaultKind
from simulators.link import BrokerAddress, Link, LinkCounters, LinkOptions
from simulators.scenario import ConnectionMode, FaultSpec, Scenario

SCHEDULER_THREAD = "campusgw-sim-scheduler"
#: Longest the scheduler sleeps, so announcements and resends are never late by more than this.
_HOUSEKEEPING_S = 0.25


@dataclass(frozen=True, slots=True)
class SimulationStats:
    """A snapshot of a running (or stopped) simulation's counters."""

    devices: int
    online: int
    published: int
    confirmed: int
    resent: int
    rejected: int
    dropped: int
    pending: int
    garbage: int
    links_connected: int
    links: int
    elapsed_s: float
    last_seq: Mapping[str, int]
    boots: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class _Report:
    device: int


@dataclass(frozen=True, slots=True)
class _FaultStart:
    fault: FaultSpec


@dataclass(frozen=True, slots=True)
class _FaultEnd:
    fault: FaultSpec


@dataclass(frozen=True, slots=True)
class _PowerOn:
    device: int


_Action = _Report | _FaultStart | _FaultEnd | _PowerOn


class Simulation:
    """A scenario running against a broker; ``start()`` returns once every link is connected."""

    def __init__(
        self,
        scenario: Scenario,
        url: str,
        username: str,
        password: str,
        *,
        site: str | None = None,
        speed: float = 1.0,
        seed: int | None = None,
        connect_timeout_s: float = 10.0,
        drain_timeout_s: float = 5.0,
        reconnect_max_s: int = 10,
        max_pending: int = 100_000,
    ) -> None:
        if not speed > 0:
            raise SimulatorError(f"speed must be above 0, got {speed}")
        self.scenario = scenario.with_site(site) if site else scenario
        self.speed = speed
        self._address = BrokerAddress.parse(url)
        self._connect_timeout_s = connect_timeout_s
        self._drain_timeout_s = drain_timeout_s
        rng = random.Random(seed)
        zone = zoneinfo.ZoneInfo(self.scenario.timezone)
        self._devices = [
            SimulatedDevice(spec, FAMILIES[spec.family], self.scenario.site, zone, random.Random(rng.getrandbits(64)))
            for spec in self.scenario.devices
        ]
        self._index = {device.id: number for number, device in enumerate(self._devices)}
        self._jitter = random.Random(rng.getrandbits(64))
        self._per_device = self.scenario.connection is ConnectionMode.PER_DEVICE
        self._links = self._make_links(username, password, reconnect_max_s, max_pending)
        self._link_of = [self._links[n % len(self._links)] for n in range(len(self._devices))]
        self._members: dict[str, list[int]] = {}
        for number, link in enumerate(self._link_of):
            self._members.setdefault(link.name, []).append(number)
        self._announce: set[str] = set()
        self._announce_lock = threading.Lock()
        self._queue: list[tuple[float, int, _Action]] = []
        self._order = itertools.count()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False
        self._started_at = 0.0
        self._clock_origin = 0.0
        self._garbage = 0
        self.error: BaseException | None = None

    # -- life cycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect every link (raising :class:`BrokerUnavailable` if the broker will not have us), then run."""
        if self._opened:
            raise SimulatorError("a simulation runs once; make a new one")
        self._opened = True
        for link in self._links:
            link.open()
        try:
            self._wait_connected()
        except BaseException:
            self._close_links(with_will=False)
            raise
        self._started_at = time.monotonic()
        self._clock_origin = self.scenario.clock_origin(time.time())
        for number, device in enumerate(self._devices):
            device.power_on(self._clock_origin)
            first = self._jitter.uniform(0.0, device.spec.interval_s)
            self._schedule(first, _Report(number))
        for fault in self.scenario.faults:
            self._schedule(fault.at_s, _FaultStart(fault))
            if fault.duration_s > 0:
                self._schedule(fault.end_s, _FaultEnd(fault))
        with self._announce_lock:
            self._announce.update(link.name for link in self._links)
        self._thread = threading.Thread(target=self._run, name=SCHEDULER_THREAD)
        self._thread.start()

    def stop(self) -> None:
        """Stop reporting, say goodbye, wait (bounded) for confirmations, disconnect and join every thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._close_links(with_will=self._per_device)

    def __enter__(self) -> Simulation:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> SimulationStats:
        counters = [link.counters() for link in self._links]

        def total(name: str) -> int:
            return sum(getattr(counter, name) for counter in counters)

        started = self._started_at or time.monotonic()
        return SimulationStats(
            devices=len(self._devices),
            online=sum(device.publishing for device in self._devices),
            published=total("published"),
            confirmed=total("confirmed"),
            resent=total("resent"),
            rejected=total("rejected"),
            dropped=total("dropped"),
            pending=total("pending"),
            garbage=self._garbage,
            links_connected=sum(link.connected for link in self._links),
            links=len(self._links),
            elapsed_s=(time.monotonic() - started) * self.speed if self._started_at else 0.0,
            last_seq={device.id: device.last_seq for device in self._devices},
            boots={device.id: tuple(device.boots) for device in self._devices},
        )

    def link_counters(self) -> dict[str, LinkCounters]:
        return {link.name: link.counters() for link in self._links}

    # -- set-up --------------------------------------------------------------------------------------------

    def _make_links(self, username: str, password: str, reconnect_max_s: int, max_pending: int) -> list[Link]:
        site = self.scenario.site
        if self._per_device:
            options = [
                LinkOptions(
                    f"sim-{site}-{device.id}",
                    username,
                    password,
                    will_topic=device_topic(site, device.id, TopicKind.STATUS),
                    max_inflight=20,
                    max_pending=max_pending,
                    reconnect_max_s=reconnect_max_s,
                )
                for device in self._devices
            ]
        else:
            count = min(self.scenario.shared_links, len(self._devices))
            options = [
                LinkOptions(f"sim-{site}-shared-{n}", username, password, max_pending=max_pending,
                            reconnect_max_s=reconnect_max_s)
                for n in range(count)
            ]
        return [Link(self._address, option, self._link_connected) for option in options]

    def _wait_connected(self) -> None:
        deadline = time.monotonic() + self._connect_timeout_s
        for link in self._links:
            while not link.wait_connected(0.05):
                if link.refusal is not None:
                    raise BrokerUnavailable(
                        f"the broker at {self._address.host}:{self._address.port} refused "
                        f"{link.options.username!r}: {link.refusal}"
                    )
                if time.monotonic() > deadline:
                    reason = link.failure or "no answer"
                    raise BrokerUnavailable(f"{reason} within {self._connect_timeout_s:g} s")

    def _link_connected(self, link: Link) -> None:
        """On paho's thread: ask the scheduler to announce this link's devices."""
        with self._announce_lock:
            self._announce.add(link.name)
        self._wake.set()

    # -- scheduler thread ----------------------------------------------------------------------------------

    def _schedule(self, scenario_s: float, action: _Action) -> None:
        heapq.heappush(self._queue, (self._started_at + scenario_s / self.speed, next(self._order), action))

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._announce_links()
                for link in self._links:
                    link.resend_orphans()
                now = time.monotonic()
                while self._queue and self._queue[0][0] <= now and not self._stopping.is_set():
                    due, _, action = heapq.heappop(self._queue)
                    self._handle(action, due)
                wait = _HOUSEKEEPING_S if not self._queue else self._queue[0][0] - time.monotonic()
                self._wake.wait(min(max(wait, 0.0), _HOUSEKEEPING_S))
                self._wake.clear()
            self._farewell()
        except Exception as exc:  # kept for the caller: a scheduler crash must not go unnoticed
            self.error = exc

    def _simulated_now(self) -> float:
        return self._clock_origin + (time.monotonic() - self._started_at) * self.speed

    def _send(self, number: int, messages: list[Outgoing]) -> None:
        link = self._link_of[number]
        for message in messages:
            if link.publish(message) and message.garbage:
                self._garbage += 1

    def _announce_links(self) -> None:
        with self._announce_lock:
            names, self._announce = self._announce, set()
        for name in names:
            for number in self._members[name]:
                device = self._devices[number]
                if device.publishing:
                    self._send(number, [device.status(True, time.time())])

    def _handle(self, action: _Action, due: float) -> None:
        if isinstance(action, _Report):
            device = self._devices[action.device]
            self._send(action.device, device.report(self._simulated_now(), time.time()))
            interval = device.spec.interval_s / self.speed * self._jitter.uniform(0.98, 1.02)
            next_due = max(due + interval, time.monotonic())
            heapq.heappush(self._queue, (next_due, next(self._order), action))
        elif isinstance(action, _FaultStart):
            self._start_fault(action.fault)
        elif isinstance(action, _FaultEnd):
            number = self._index[action.fault.device]
            device = self._devices[number]
            was_publishing = device.publishing
            device.end_fault(action.fault)
            if device.publishing and not was_publishing:
                self._come_online(number)
        else:
            self._devices[action.device].power_on(self._simulated_now())
            self._come_online(action.device)

    def _start_fault(self, fault: FaultSpec) -> None:
        number = self._index[fault.device]
        device = self._devices[number]
        if fault.kind is FaultKind.BURST:
            self._send(number, device.burst(fault.params.count, self._simulated_now(), time.time()))
        elif fault.kind is FaultKind.REBOOT:
            if device.publishing:
                self._go_offline(number, announce=fault.params.downtime_s > 0)
            device.power_off()
            if fault.params.downtime_s > 0:
                self._schedule(fault.at_s + fault.params.downtime_s, _PowerOn(number))
            else:
                device.power_on(self._simulated_now())
                self._come_online(number)
        else:
            was_publishing = device.publishing
            device.start_fault(fault)
            if was_publishing and not device.publishing:
                self._go_offline(number, announce=True)

    def _go_offline(self, number: int, *, announce: bool) -> None:
        """The device vanishes: its connection drops (per-device: the will fires) or its offline status is sent."""
        if self._per_device:
            self._link_of[number].drop()
        elif announce:
            self._send(number, [self._devices[number].status(False, time.time())])

    def _come_online(self, number: int) -> None:
        device = self._devices[number]
        if not device.publishing:
            return
        link = self._link_of[number]
        if self._per_device and link.dropped:
            link.reopen()  # announced online once connected
        else:
            self._send(number, [device.status(True, time.time())])

    def _farewell(self) -> None:
        """The devices leave. In shared mode the process is the only one who knows: it says so, retained (in
        per-device mode each link's will says it when ``_close_links`` disconnects)."""
        for number, device in enumerate(self._devices):
            if device.publishing and not self._per_device:
                self._send(number, [device.status(False, time.time())])
            device.power_off()

    # -- shutdown ------------------------------------------------------------------------------------------

    def _close_links(self, *, with_will: bool) -> None:
        deadline = time.monotonic() + self._drain_timeout_s
        for link in self._links:
            if link.connected:
                link.wait_confirmed(max(0.0, deadline - time.monotonic()))
        for link in self._links:
            link.disconnect(with_will=with_will and not link.dropped)
        for link in self._links:
            link.join()
