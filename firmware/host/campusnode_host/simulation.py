"""What the world does to a simulated node's hardware, so a node run on the host sends plausible, changing values.

- ``env``: room temperature and humidity drifting around a set point, CO2 rising while the room is in use and
  falling while it is empty, a PMS5003 frame every second with particulates around a city's background.
- ``counter``: someone uses the fitness machine now and then, often a few times in a row; each use closes the reed
  contact for a moment, bouncing at both ends, as a real one does.
- ``gate``: a code is scanned when :meth:`Simulation.scan` is called (the runner feeds it lines typed on stdin) or
  every ``scan_every_s``; after the relay opens, the person walks through most of the time.

Driven by the node's own tick clock (``step(now_ms)``), so it runs in real time under ``HostClock`` and in no time
under ``ManualClock``.
"""

import math
import random

from campusnode import config

from campusnode_host.fakes import FakeEdges
from campusnode_host.nodes import Hardware

#: Mean seconds between two sessions on a fitness machine, and the uses in one session.
MEAN_SESSION_GAP_S = 20.0
SESSION_USES = (1, 6)
#: How long a use keeps the contact closed, and the gap between the uses of one session.
CONTACT_MS = (150, 400)
USE_GAP_MS = (900, 2000)
#: How likely someone walks through an opened gate, and how long it takes them.
PASS_PROBABILITY = 0.85
WALK_MS = (800, 2500)


class Simulation:
    def __init__(
        self,
        cfg: config.NodeConfig,
        hardware: Hardware,
        rng: random.Random | None = None,
        scan_every_s: float = 0.0,
        demo_code: str = "DEMO-PASS",
    ) -> None:
        self.cfg = cfg
        self.hardware = hardware
        self.rng = rng or random.Random()
        self.scan_every_ms = int(scan_every_s * 1000)
        self.demo_code = demo_code
        self.scans = 0
        self._edges: list[tuple[int, int, FakeEdges]] = []  # (at_ms, level, source), by time
        self._second: int | None = None
        self._occupied = False
        self._occupancy_change: int | None = None
        self._next_session: int | None = None
        self._next_scan: int | None = None
        self._relay_was_on = False

    # -- the node's world, one loop pass at a time ----------------------------------------------------------

    def step(self, now_ms: int) -> None:
        app = self.cfg.app
        if app == "env":
            self._room(now_ms)
        elif app == "counter":
            self._machine(now_ms)
        else:
            self._gate(now_ms)
        self._release_edges(now_ms)

    def scan(self, code: str) -> None:
        """A code held in front of the scanner: the module sends it as one line."""
        self.scans += 1
        self.hardware.scanner.push(code.encode("utf-8") + b"\r\n")

    # -- env: a classroom ----------------------------------------------------------------------------------

    def _room(self, now_ms: int) -> None:
        second = now_ms // 1000
        if self._second == second:
            return
        self._second = second
        rng = self.rng
        i2c = self.hardware.i2c
        if self._occupancy_change is None or now_ms >= self._occupancy_change:
            self._occupied = not self._occupied if self._occupancy_change is not None else rng.random() < 0.5
            self._occupancy_change = now_ms + rng.randint(5, 20) * 60 * 1000  # a lesson, a break
        # one second of drift: pulled back towards the set point, a little noise on top
        set_point = 22.5 if self._occupied else 21.0
        i2c.temperature = _walk(rng, i2c.temperature, set_point, 0.002, 0.02, 10.0, 35.0)
        i2c.humidity = _walk(rng, i2c.humidity, 50.0 if self._occupied else 42.0, 0.002, 0.05, 15.0, 85.0)
        co2_target = 1100.0 if self._occupied else 430.0
        i2c.co2 = round(_walk(rng, float(i2c.co2), co2_target, 0.004, 2.0, 400.0, 5000.0))
        if self.cfg.env["pms"]:
            pm25 = max(1, round(12 + 6 * math.sin(now_ms / 3_600_000.0) + rng.gauss(0, 1.5)))
            self.hardware.pms.push_pms(max(0, round(pm25 * 0.7)), pm25, round(pm25 * 1.4) + rng.randint(0, 3))

    # -- counter: a fitness-path machine -------------------------------------------------------------------

    def _machine(self, now_ms: int) -> None:
        rng = self.rng
        if self._next_session is None:
            self._next_session = now_ms + round(rng.expovariate(1.0 / MEAN_SESSION_GAP_S) * 1000)
        if now_ms < self._next_session:
            return
        active = self.cfg.counter["active"]
        at = now_ms
        for _ in range(rng.randint(*SESSION_USES)):
            self._contact(self.hardware.pulse, at, rng.randint(*CONTACT_MS), active)
            at += rng.randint(*USE_GAP_MS)
        self._next_session = at + round(rng.expovariate(1.0 / MEAN_SESSION_GAP_S) * 1000)

    # -- gate: a turnstile -----------------------------------------------------------------------------------

    def _gate(self, now_ms: int) -> None:
        if self.scan_every_ms > 0:
            if self._next_scan is None:
                self._next_scan = now_ms + self.scan_every_ms
            elif now_ms >= self._next_scan:
                self._next_scan = now_ms + self.scan_every_ms
                self.scan(self.demo_code + "-" + str(self.scans + 1))
        relay_on = self.hardware.relay.on
        if relay_on and not self._relay_was_on and self.cfg.pins["passage"] is not None:
            if self.rng.random() < PASS_PROBABILITY:
                walk = self.rng.randint(*WALK_MS)
                self._contact(self.hardware.passage, now_ms + walk, 300, self.cfg.gate["passage_active"])
        self._relay_was_on = relay_on

    # -- contacts ----------------------------------------------------------------------------------------------

    def _contact(self, source: FakeEdges, start_ms: int, length_ms: int, active: int) -> None:
        """One closing of a contact, bouncing for a few ms at both ends; its edges arrive when they happen."""
        idle = 1 - active
        edges = [
            (start_ms, active),
            (start_ms + 1, idle),
            (start_ms + 3, active),
            (start_ms + length_ms, idle),
            (start_ms + length_ms + 2, active),
            (start_ms + length_ms + 4, idle),
        ]
        self._edges.extend((at, level, source) for at, level in edges)
        self._edges.sort(key=lambda edge: edge[0])

    def _release_edges(self, now_ms: int) -> None:
        while self._edges and self._edges[0][0] <= now_ms:
            at, level, source = self._edges.pop(0)
            source.push(level, at)


def _walk(
    rng: random.Random, value: float, target: float, pull: float, noise: float, low: float, high: float
) -> float:
    """One step of a mean-reverting random walk, kept within ``[low, high]``."""
    value += (target - value) * pull + rng.gauss(0.0, noise)
    return min(high, max(low, value))
