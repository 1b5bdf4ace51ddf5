"""One simulated device: its boot id and message counter, its model, and the faults acting on it right now.

This is the pure part of a device: it turns "time to report" into the MQTT messages a real device would send,
encoded with the contract's own encoders. Which connection carries them, and when, is the runner's business.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.contracts import TopicKind, device_topic, encode_event, encode_status, encode_telemetry
from simulators.faults import FaultKind, garbage_payload
from simulators.model import DeviceContext, DeviceEvent, DeviceModel, Family, Metrics
from simulators.scenario import DeviceSpec, FaultSpec


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One MQTT message as a device sends it; ``boot`` and ``seq`` are set for telemetry and events."""

    device: str
    kind: TopicKind
    topic: str
    payload: bytes
    retain: bool = False
    boot: str | None = None
    seq: int | None = None
    garbage: bool = False


def new_boot_id() -> str:
    """A fresh boot id (12 hex characters). Never seeded: two runs must not reuse one another's identities."""
    return secrets.token_hex(6)


class SimulatedDevice:
    """A device's state between reports. Driven by the runner's scheduler thread only."""

    def __init__(
        self,
        spec: DeviceSpec,
        family: Family,
        site: str,
        timezone: ZoneInfo,
        rng: random.Random,
        *,
        new_boot: Callable[[], str] = new_boot_id,
    ) -> None:
        self.spec = spec
        self.family = family
        self.site = site
        self._timezone = timezone
        self._rng = rng
        self._new_boot = new_boot
        self.boot = ""
        self.boots: list[str] = []
        self.next_seq = 0
        self.running = False
        self._model: DeviceModel | None = None
        self._last_step: float | None = None
        self._last_metrics: Metrics = {}
        self._active: Counter[FaultKind] = Counter()
        self._latest: dict[FaultKind, FaultSpec] = {}
        self._frozen: Metrics | None = None
        self._garbage_sent = 0

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def last_seq(self) -> int:
        """The seq of the last message of the current boot, -1 before the first one."""
        return self.next_seq - 1

    @property
    def publishing(self) -> bool:
        """Running and connected: an ``offline`` fault or a reboot's downtime silences the device."""
        return self.running and not self._active[FaultKind.OFFLINE]

    def faulty(self, kind: FaultKind) -> bool:
        return self._active[kind] > 0

    def power_on(self, now: float) -> None:
        """(Re)start: a new boot id, seq from 0, a fresh model whose running totals start from 0."""
        self.boot = self._new_boot()
        self.boots.append(self.boot)
        self.next_seq = 0
        context = DeviceContext(self.spec.id, self.spec.room, self.spec.schedule, self._timezone, self._rng)
        self._model = self.family.build(context)
        self._last_step = now
        self._frozen = None
        self.running = True

    def power_off(self) -> None:
        self.running = False

    def status(self, online: bool, ts: float) -> Outgoing:
        """The retained presence message; online carries the boot id and firmware, offline is what a will says."""
        payload = (
            encode_status(True, ts=round(ts, 3), boot=self.boot, fw=self.family.firmware)
            if online
            else encode_status(False, ts=round(ts, 3), boot=self.boot)
        )
        topic = device_topic(self.site, self.spec.id, TopicKind.STATUS)
        return Outgoing(self.spec.id, TopicKind.STATUS, topic, payload, retain=True)

    def report(self, now: float, ts: float) -> list[Outgoing]:
        """The periodic report at simulated time ``now``: telemetry and any events, shaped by active faults."""
        if not self.running:
            return []
        metrics, events = self._advance(now)
        if not self.publishing:
            return []
        messages = [self._telemetry_or_garbage(metrics, ts)]
        topic = device_topic(self.site, self.spec.id, TopicKind.EVENT)
        for event in events:
            seq = self._take_seq()
            payload = encode_event(
                event.code, severity=event.severity, message=event.message, ts=round(ts, 3), boot=self.boot, seq=seq
            )
            messages.append(Outgoing(self.spec.id, TopicKind.EVENT, topic, payload, boot=self.boot, seq=seq))
        return messages

    def burst(self, count: int, now: float, ts: float) -> list[Outgoing]:
        """``count`` telemetry messages at once, as a device flushing a backlog or stuck in a loop."""
        if not self.publishing:
            return []
        return [self._telemetry_or_garbage(self._advance(now)[0], ts) for _ in range(count)]

    def start_fault(self, fault: FaultSpec) -> None:
        self._active[fault.kind] += 1
        self._latest[fault.kind] = fault
        if fault.kind is FaultKind.STUCK and self._frozen is None:
            self._frozen = dict(self._last_metrics) or None

    def end_fault(self, fault: FaultSpec) -> None:
        if self._active[fault.kind] > 0:
            self._active[fault.kind] -= 1
        if fault.kind is FaultKind.STUCK and not self._active[FaultKind.STUCK]:
            self._frozen = None

    def _advance(self, now: float) -> tuple[Metrics, list[DeviceEvent]]:
        assert self._model is not None, "power_on() first"
        dt = max(0.0, now - (self._last_step if self._last_step is not None else now))
        self._last_step = now
        metrics = self._model.step(now, dt)
        return metrics, self._model.take_events()

    def _take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def _telemetry_or_garbage(self, metrics: Metrics, ts: float) -> Outgoing:
        topic = device_topic(self.site, self.spec.id, TopicKind.TELEMETRY)
        if self.faulty(FaultKind.GARBAGE):
            variants = self._latest[FaultKind.GARBAGE].params.variants
            variant = variants[self._garbage_sent % len(variants)]
            self._garbage_sent += 1
            metric = sorted(self.family.metrics)[0]
            payload = garbage_payload(variant, metric, self._rng, ts=ts)
            return Outgoing(self.spec.id, TopicKind.TELEMETRY, topic, payload, garbage=True)
        if self.faulty(FaultKind.STUCK):
            if self._frozen is None:
                self._frozen = dict(metrics)
            metrics = dict(self._frozen)
        if self.faulty(FaultKind.OUT_OF_RANGE):
            params = self._latest[FaultKind.OUT_OF_RANGE].params
            absurd = {params.metric: params.value} if params.metric and params.value is not None else self.family.absurd
            metrics = {**metrics, **absurd}
        else:
            self._last_metrics = metrics
        seq = self._take_seq()
        payload = encode_telemetry(metrics, ts=round(ts, 3), boot=self.boot, seq=seq)
        return Outgoing(self.spec.id, TopicKind.TELEMETRY, topic, payload, boot=self.boot, seq=seq)
