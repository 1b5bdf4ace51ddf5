"""Fitness-path equipment counter: a reed or hall contact closes once per use; debounced uses are sent as a
running total (``uses``) that survives reboots (see ``totals``), every ``interval_s`` and shortly after a use."""

from campusnode.debounce import PulseCounter
from campusnode.node import App, Node
from campusnode.pins import EdgeSource
from campusnode.totals import TotalKeeper

#: A use is reported at most this soon after it happened (uses come in bursts: one report per burst).
SOON_MS = 5000


class CounterApp(App):
    def __init__(
        self,
        interval_s: int,
        edges: EdgeSource,
        keeper: TotalKeeper,
        debounce_ms: int,
        active: int = 0,
        metric: str = "uses",
    ) -> None:
        self.interval_ms = interval_s * 1000
        self.edges = edges
        self.keeper = keeper
        self.metric = metric
        self.counter = PulseCounter(debounce_ms, active)
        self._due: int | None = None
        self._changed = False
        self._soon: int | None = None

    def start(self, node: Node, now_ms: int) -> None:
        total = self.keeper.load()
        self.counter.count = total
        self._due = now_ms

    def step(self, node: Node, now_ms: int) -> None:
        clock = node.clock
        added = 0
        for level, at in self.edges.take():
            added += self.counter.feed(level, at, clock)
        added += self.counter.poll(now_ms, clock)
        if added:
            self.keeper.add(added)
            if self._soon is None:
                self._soon = now_ms + SOON_MS
        self.keeper.tick(now_ms, clock)
        due = self._due is not None and clock.diff(now_ms, self._due) >= 0
        soon = self._soon is not None and clock.diff(now_ms, self._soon) >= 0
        if due or soon:
            self._due = now_ms + self.interval_ms
            self._soon = None
            metrics: dict = {self.metric: self.keeper.total, "node.lost_edges": self.edges.lost()}
            metrics.update(node.health())
            node.telemetry(metrics)

    def stop(self, node: Node, now_ms: int) -> None:
        self.keeper.flush(now_ms)
