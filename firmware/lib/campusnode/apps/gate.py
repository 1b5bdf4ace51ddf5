"""Gate reader: a UART QR scanner, a relay that unlocks the turnstile, a passage sensor.

1. A code read by the scanner is sent on ``gate/{gate}/scan`` with a fresh ``scan_id``; the reader then waits
   ``wait_ms`` for the access service's answer (a newer scan replaces the one waited for).
2. A ``gate/{gate}/cmd`` drives the relay only if it is for that scan, still in time by the reader's own ticks,
   correctly signed with the gate's key, not expired (once the clock is set) and not seen before; anything else
   is ignored, counted and reported as a ``gate_cmd_rejected`` event.
3. After an ``open`` the relay stays on ``open_ms`` (or until someone passes), and the passage sensor decides
   within ``passage_window_ms`` whether the person went through: ``gate/{gate}/passage`` says so either way.
4. Every ``interval_s`` (when given) its counts and the node's health go out as telemetry, so the gateway hears
   from a quiet gate too (a device silent for longer than its type's timeout is shown offline).
"""

from campusnode.debounce import PulseCounter
from campusnode.gatecmd import GateGuard
from campusnode.node import App, Node
from campusnode.pins import ByteSource, EdgeSource, Output
from campusnode.scanner import LineReader

#: Rejection reasons kept in ``rejected`` (newest last); ``rejections`` counts them all.
REMEMBERED_REJECTIONS = 16


class GateApp(App):
    def __init__(
        self,
        gate: str,
        guard: GateGuard,
        scanner: ByteSource,
        relay: Output,
        passage: EdgeSource | None,
        direction: str | None = "in",
        open_ms: int = 3000,
        passage_window_ms: int = 10000,
        passage_active: int = 0,
        debounce_ms: int = 50,
        interval_s: int = 0,
    ) -> None:
        self.gate = gate
        self.guard = guard
        self.scanner = scanner
        self.relay = relay
        self.passage = passage
        self.direction = direction
        self.open_ms = open_ms
        self.passage_window_ms = passage_window_ms
        self.lines = LineReader()
        self.passes = PulseCounter(debounce_ms, passage_active)
        self.scans = 0
        self.opened = 0
        self.denied = 0
        self.rejected: list[str] = []
        self.rejections = 0
        self.interval_ms = interval_s * 1000
        self._due: int | None = None
        self._open_scan: str | None = None
        self._opened_at = 0
        self._relay_on = False

    def subscriptions(self, node: Node) -> list[str]:
        return [node.gate_topic(self.gate, "cmd")]

    def start(self, node: Node, now_ms: int) -> None:
        self.relay.set(False)

    def step(self, node: Node, now_ms: int) -> None:
        clock = node.clock
        data = self.scanner.read()
        if data:
            for code in self.lines.feed(data, now_ms, clock):
                self._scanned(node, code, now_ms)
        if self.guard.timed_out(now_ms, clock):
            self._reject("no_answer")
        passed = 0
        if self.passage is not None:
            for level, at in self.passage.take():
                passed += self.passes.feed(level, at, clock)
            passed += self.passes.poll(now_ms, clock)
        if self._open_scan is not None:
            elapsed = clock.diff(now_ms, self._opened_at)
            if passed:
                self._finish(node, True)
            elif elapsed > self.passage_window_ms:
                self._finish(node, False)
            elif self._relay_on and elapsed > self.open_ms:
                self._set_relay(False)
        elif passed:
            node.event("unexpected_passage", "warning", "passage at gate " + self.gate + " without an open command")
        if self.interval_ms > 0 and (self._due is None or clock.diff(now_ms, self._due) >= 0):
            self._due = now_ms + self.interval_ms
            metrics: dict = {
                "gate.scans": self.scans,
                "gate.opened": self.opened,
                "gate.denied": self.denied,
                "gate.rejected": self.rejections,
            }
            metrics.update(node.health())
            node.telemetry(metrics)

    def _reject(self, reason: str) -> None:
        self.rejections += 1
        self.rejected.append(reason)
        if len(self.rejected) > REMEMBERED_REJECTIONS:
            self.rejected.pop(0)

    def _scanned(self, node: Node, code: str, now_ms: int) -> None:
        self.scans += 1
        scan_id = node.boot[:8] + "-" + str(self.scans)
        node.gate_scan(self.gate, code, scan_id, self.direction, self.guard.wait_ms)
        self.guard.expect(scan_id, now_ms)

    def on_message(self, node: Node, topic: str, payload: bytes, now_ms: int) -> None:
        if topic != node.gate_topic(self.gate, "cmd"):
            return
        verdict = self.guard.check(payload, now_ms, node.clock.unix(), node.clock)
        if not verdict.accepted:
            self._reject(verdict.reason)
            node.event("gate_cmd_rejected", "warning", verdict.reason + " for scan " + str(verdict.scan_id))
            return
        if verdict.action == "open" and verdict.scan_id is not None:
            if self._open_scan is not None:  # a new open ends the previous one's window
                self._finish(node, False)
            self.opened += 1
            self._open_scan = verdict.scan_id
            self._opened_at = now_ms
            self._set_relay(True)
        else:
            self.denied += 1

    def _finish(self, node: Node, passed: bool) -> None:
        scan_id = self._open_scan
        self._open_scan = None
        self._set_relay(False)
        if scan_id is not None:
            node.gate_passage(self.gate, scan_id, passed)

    def _set_relay(self, on: bool) -> None:
        self._relay_on = on
        self.relay.set(on)

    def stop(self, node: Node, now_ms: int) -> None:
        self._set_relay(False)

    @property
    def relay_on(self) -> bool:
        return self._relay_on
