"""Environment node: temperature and humidity (SHT3x), CO2 (SCD4x), PM1.0/PM2.5/PM10 (PMS5003-style UART).

Every ``interval_s`` it starts an SHT3x measurement, collects it 20 ms later (on a later loop pass, never
sleeping), adds the newest CO2 and PM values and queues one telemetry message. A sensor that fails is left out of
that message and reported once as an event (``sensor_fault``), and once more when it recovers (``sensor_ok``).
"""

from campusnode.node import App, Node
from campusnode.sensors import Pms, Scd4x, SensorError, Sht3x

SHT_WAIT_MS = 20


def _round(value: float, digits: int) -> float:
    return float(round(value, digits))


class EnvApp(App):
    def __init__(self, interval_s: int, sht: Sht3x | None, scd: Scd4x | None, pms: Pms | None) -> None:
        self.interval_ms = interval_s * 1000
        self.sht = sht
        self.scd = scd
        self.pms = pms
        self._due: int | None = None
        self._collect_at: int | None = None
        self._co2: int | None = None
        self._sht_started = False
        self._scd_started = False
        self._faulty: list[str] = []
        self.reports = 0
        self.sensor_errors = 0

    def start(self, node: Node, now_ms: int) -> None:
        if self.scd is not None:
            self._scd_started = self._guard(node, "scd4x", self.scd.start)[0]
        self._due = now_ms

    def _guard(self, node: Node, name: str, action: object) -> tuple[bool, object]:
        """Call a driver method; a failure is counted and reported once, until the sensor answers again."""
        try:
            result = action()  # type: ignore[operator]
        except (OSError, SensorError) as exc:
            self.sensor_errors += 1
            if name not in self._faulty:
                self._faulty.append(name)
                node.event("sensor_fault", "warning", name + ": " + str(exc))
            return False, None
        if name in self._faulty:
            self._faulty.remove(name)
            node.event("sensor_ok", "info", name + " answers again")
        return True, result

    def step(self, node: Node, now_ms: int) -> None:
        clock = node.clock
        if self.pms is not None:
            self._guard(node, "pms", self.pms.poll)
        if self.scd is not None and self._due is not None and clock.diff(now_ms, self._due) >= 0:
            if self._scd_started:
                ok, ready = self._guard(node, "scd4x", self.scd.ready)
            else:  # it did not answer at boot: it measures only once started
                self._scd_started = self._guard(node, "scd4x", self.scd.start)[0]
                ok, ready = False, None
            if ok and ready:
                ok, reading = self._guard(node, "scd4x", self.scd.read)
                if ok and isinstance(reading, tuple):
                    self._co2 = reading[0]
        if self._due is not None and clock.diff(now_ms, self._due) >= 0:
            self._due = now_ms + self.interval_ms
            self._sht_started = self.sht is not None and self._guard(node, "sht3x", self.sht.start)[0]
            self._collect_at = now_ms + SHT_WAIT_MS if self._sht_started else now_ms
        if self._collect_at is not None and clock.diff(now_ms, self._collect_at) >= 0:
            self._collect_at = None
            self._report(node)

    def _report(self, node: Node) -> None:
        metrics: dict = {}
        if self.sht is not None and self._sht_started:
            ok, climate = self._guard(node, "sht3x", self.sht.collect)
            if ok and isinstance(climate, tuple):
                metrics["temperature"] = _round(climate[0], 2)
                metrics["humidity"] = _round(climate[1], 1)
        if self._co2 is not None:
            metrics["co2"] = self._co2
            self._co2 = None
        if self.pms is not None and self.pms.latest is not None:
            for name, value in self.pms.latest.items():
                metrics[name] = value
            self.pms.latest = None
        if not metrics:
            return
        metrics.update(node.health())
        node.telemetry(metrics)
        self.reports += 1
