"""A node: its identity (site, device, ``boot`` picked at each start, ``seq`` per message), its outbox and its
link, and the app that decides what to measure and send.

``step`` is the whole of one main-loop pass: the app's own work, stamping readings made before the clock was set,
dropping stale gate scans, one bounded link step, NTP retries, and the rare, bounded spill of the outbox to flash.
Pure: the clock, transport, Wi-Fi and stores are passed in.
"""

from campusnode import FW_VERSION, payloads, topics
from campusnode.backoff import Backoff
from campusnode.clock import Clock
from campusnode.link import Link, LinkListener, Watchdog
from campusnode.outbox import Outbox, Record
from campusnode.transport import Store, Transport, Wifi

SPILL_NAME = "outbox.jsonl"
#: While the clock is not set, ask NTP this often; once set, this often to correct drift.
NTP_RETRY_MS = 30 * 1000
NTP_RESYNC_MS = 6 * 3600 * 1000


class App:
    """What a node app does; the node calls these from its main loop."""

    def subscriptions(self, node: "Node") -> list[str]:
        return []

    def start(self, node: "Node", now_ms: int) -> None:
        pass

    def step(self, node: "Node", now_ms: int) -> None:
        pass

    def on_message(self, node: "Node", topic: str, payload: bytes, now_ms: int) -> None:
        pass

    def stop(self, node: "Node", now_ms: int) -> None:
        pass


class Node(LinkListener):
    def __init__(
        self,
        site: str,
        device: str,
        boot: str,
        app: App,
        clock: Clock,
        transport: Transport,
        wifi: Wifi,
        backoff: Backoff,
        outbox: Outbox,
        keepalive_s: int = 60,
        wifi_timeout_s: int = 20,
        spill: Store | None = None,
        spill_max: int = 100,
        spill_interval_s: int = 900,
        watchdog: Watchdog | None = None,
    ) -> None:
        if not topics.is_device_id(site) or not topics.is_device_id(device):
            raise ValueError("site and device must be valid ids")
        payloads.check_identity(boot, 0)
        self.site = site
        self.device = device
        self.boot = boot
        self.app = app
        self.clock = clock
        self.outbox = outbox
        self.seq = 0
        self.now_ms = clock.ticks_ms()
        self._spill = spill
        self.spill_max = spill_max
        self.spill_interval_ms = spill_interval_s * 1000
        self._spilled_at: int | None = None
        self.spill_writes = 0
        self._spill_dirty = False
        self._ntp_due: int | None = None
        self.restored = 0
        self.link = Link(
            transport,
            wifi,
            clock,
            backoff,
            self,
            self.topic("status"),
            [self.topic("cmd")] + app.subscriptions(self),
            keepalive_s,
            wifi_timeout_s,
            watchdog,
        )
        self.wifi = wifi

    # -- identity and messages ------------------------------------------------------------------------------

    def topic(self, kind: str) -> str:
        return topics.device_topic(self.site, self.device, kind)

    def gate_topic(self, gate: str, kind: str) -> str:
        return topics.gate_topic(self.site, gate, kind)

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq

    def _record(self, kind: str, topic: str, body: dict, ttl_ms: int | None = None, numbered: bool = True) -> Record:
        now = self.clock.ticks_ms()
        unix = self.clock.unix()
        record = Record(
            kind,
            topic,
            body,
            now,
            unix if unix is not None and unix >= payloads.EARLIEST_TS else None,
            self.boot if numbered else None,
            self._next_seq() if numbered else None,
            ttl_ms,
        )
        record.encode()  # a message that breaks the contract fails here, at its maker, not in the outbox
        self.outbox.put(record)
        return record

    def telemetry(self, metrics: dict) -> Record:
        """Queue a telemetry message (``seq`` taken now, ``ts`` now or once the clock is set)."""
        return self._record("telemetry", self.topic("telemetry"), {"metrics": metrics})

    def event(self, code: str, severity: str = "info", message: str = "") -> Record:
        return self._record("event", self.topic("event"), {"code": code, "severity": severity, "message": message})

    def gate_scan(self, gate: str, code: str, scan_id: str, direction: str | None, ttl_ms: int) -> Record:
        body = {"code": code, "scan_id": scan_id}
        if direction is not None:
            body["direction"] = direction
        return self._record("scan", self.gate_topic(gate, "scan"), body, ttl_ms, numbered=False)

    def gate_passage(self, gate: str, scan_id: str, passed: bool) -> Record:
        return self._record(
            "passage", self.gate_topic(gate, "passage"), {"scan_id": scan_id, "passed": passed}, numbered=False
        )

    # -- the link's questions --------------------------------------------------------------------------------

    def online_status(self) -> bytes:
        unix = self.clock.unix()
        ts = unix if unix is not None and unix >= payloads.EARLIEST_TS else None
        return payloads.status(True, ts, self.boot, FW_VERSION, self.wifi.address())

    def offline_status(self) -> bytes:
        return payloads.status(False, None, self.boot, FW_VERSION)

    def connected(self, now_ms: int) -> None:
        if self.clock.unix() is None:
            self._sync_clock(now_ms)

    def on_message(self, topic: str, payload: bytes) -> None:
        self.app.on_message(self, topic, payload, self.now_ms)

    # -- the main loop ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Restore what the last clean shutdown spilled, then start the app."""
        self.now_ms = self.clock.ticks_ms()
        if self._spill is not None:
            data = self._spill.read(SPILL_NAME)
            if data:
                try:
                    lines = data.decode("utf-8").split("\n")
                except ValueError:
                    lines = []
                fresh = self.outbox.records()
                for _ in fresh:
                    self.outbox.pop()
                self.restored = self.outbox.load_lines(lines)
                for record in fresh:
                    self.outbox.put(record)
                self._spill_dirty = True
        self.app.start(self, self.now_ms)

    def step(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.app.step(self, now_ms)
        clock = self.clock
        unix = clock.unix()
        if unix is not None and self.outbox.unstamped():
            # ticks read with unix: a record made during this pass is younger than ``now_ms``
            self.outbox.stamp(unix, clock.ticks_ms(), clock)
        self.outbox.drop_expired(now_ms, clock)
        self.link.service(now_ms, self.outbox)
        if self.link.up and self._ntp_due is not None and clock.diff(now_ms, self._ntp_due) >= 0:
            self._sync_clock(now_ms)
        self._maybe_spill(now_ms)

    def _sync_clock(self, now_ms: int) -> None:
        synced = self.clock.sync()
        self._ntp_due = now_ms + (NTP_RESYNC_MS if synced else NTP_RETRY_MS)
        unix = self.clock.unix()
        if synced and unix is not None:
            self.outbox.stamp(unix, self.clock.ticks_ms(), self.clock)  # not now_ms: the connect and NTP took time

    def _maybe_spill(self, now_ms: int) -> None:
        """While offline with records waiting, keep a copy in flash, at most once per ``spill_interval_s``;
        once everything is delivered, remove the copy (one write)."""
        if self._spill is None or self.spill_max <= 0:
            return
        if len(self.outbox) == 0:
            if self._spill_dirty:
                self._spill.remove(SPILL_NAME)
                self._spill_dirty = False
            return
        if self.link.up:
            return
        if self._spilled_at is not None and self.clock.diff(now_ms, self._spilled_at) < self.spill_interval_ms:
            return
        if self._spilled_at is None:  # the first interval starts when the node starts
            self._spilled_at = now_ms
            return
        self.spill_now(now_ms)

    def spill_now(self, now_ms: int) -> None:
        """Write the newest ``spill_max`` waiting records to flash (replaces the previous copy)."""
        if self._spill is None or self.spill_max <= 0:
            return
        lines = self.outbox.spill_lines(self.spill_max)
        if not lines:
            return
        self._spill.write(SPILL_NAME, ("\n".join(lines) + "\n").encode("utf-8"))
        self._spilled_at = now_ms
        self._spill_dirty = True
        self.spill_writes += 1

    def shutdown(self) -> None:
        """Clean shutdown: stop the app, keep what is still unsent in flash, say ``offline`` and disconnect."""
        now = self.clock.ticks_ms()
        self.app.stop(self, now)
        if self.link.up:
            self.link.service(now, self.outbox)
        if len(self.outbox):
            self.spill_now(now)
        else:
            self._maybe_spill(now)  # everything delivered: an older copy in flash would be sent again
        self.link.shutdown()

    def health(self) -> dict:
        """Counters worth watching from the gateway (sent as ``node.*`` metrics)."""
        return {
            "node.outbox": len(self.outbox),
            "node.discards": self.outbox.discards,
            "node.reconnects": self.link.connects,
            "node.link_failures": self.link.failures,
        }
