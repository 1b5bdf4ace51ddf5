"""``python -m campusnode_host CONFIG.json [--state DIR]``: one node, as on the board, against a real broker.

The node's own code (``firmware/lib/campusnode``) runs its main loop over paho-mqtt, with simulated sensors whose
values drift (see ``simulation.py``), until Ctrl-C or SIGTERM; then it shuts down as the board does on a clean
stop: the app stops, what is still unsent goes to the spill file, ``offline`` is published and the connection
closed. Started again on the same ``--state`` folder it is the same node after a reboot: a new ``boot``, the
spilled messages restored, the counter's total kept.

A gate reader scans each line typed on stdin, and a demo code every ``--scan-every`` seconds.
"""

import argparse
import queue
import random
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

try:
    import campusnode  # noqa: F401
except ImportError:  # run from a checkout with only firmware/host on the path: lib is its sibling
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lib"))

from campusnode import config
from campusnode.apps.gate import GateApp
from campusnode.node import SPILL_NAME, Node
from campusnode.transport import MessageHandler, Transport

from campusnode_host.fakes import FakeWifi, HostClock
from campusnode_host.nodes import Hardware, build_node, load_config, paho_transport
from campusnode_host.simulation import Simulation

LOOP_S = 0.02  # the board's LOOP_MS
PROG = "campusnode_host"


class _ConsoleTransport(Transport):
    """The node's MQTT transport, saying what the broker confirmed."""

    def __init__(self, inner: Transport, quiet: bool) -> None:
        self.inner = inner
        self.quiet = quiet

    def connect(self, will_topic: str, will_payload: bytes, handler: MessageHandler) -> None:
        self.inner.connect(will_topic, will_payload, handler)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.inner.publish(topic, payload, retain)
        if not self.quiet:
            _say("sent " + topic + (" (retained) " if retain else " ") + payload.decode("utf-8"))

    def subscribe(self, topic: str) -> None:
        self.inner.subscribe(topic)

    def poll(self) -> None:
        self.inner.poll()

    def ping(self) -> None:
        self.inner.ping()

    def disconnect(self) -> None:
        self.inner.disconnect()

    def close(self) -> None:
        self.inner.close()


class _StdinLines:
    """Lines typed on stdin, read by one daemon thread (the main loop never blocks on the terminal)."""

    def __init__(self) -> None:
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._read, name="campusnode-stdin", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in sys.stdin:
                self.lines.put(line.strip())
        except (OSError, ValueError):
            pass  # stdin closed

    def take(self) -> list[str]:
        taken = []
        while True:
            try:
                taken.append(self.lines.get_nowait())
            except queue.Empty:
                return [line for line in taken if line]


class _Stop:
    """SIGINT and SIGTERM end the loop between two steps; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True


def _say(text: str) -> None:
    print(time.strftime("%H:%M:%S") + " " + text, flush=True)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m " + PROG, description="Run one campusnode (env, counter or gate) on this computer."
    )
    parser.add_argument("config", type=Path, help="the node's config.json (the same file the board reads)")
    parser.add_argument(
        "--state", type=Path, help="the node's flash: spill file and counter total (default: DEVICE.state beside it)"
    )
    parser.add_argument("--password-file", type=Path, help="read mqtt.password from this file instead")
    parser.add_argument(
        "--scan-every", type=float, default=30.0, help="gate reader: scan a demo code this often, in s (0: never)"
    )
    parser.add_argument("--seed", type=int, help="random seed of the simulated hardware")
    parser.add_argument("--quiet", action="store_true", help="do not print every queued message")
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    print(PROG + ": cannot start: " + message, file=sys.stderr)
    return 2


class _Watch:
    """Says when the link, the relay or the gate's checks change."""

    def __init__(self, node: Node, hardware: Hardware) -> None:
        self.node = node
        self.hardware = hardware
        self._up = False
        self._failures = 0
        self._relay = False
        self._rejected = 0

    def check(self) -> None:
        link = self.node.link
        if link.up != self._up:
            self._up = link.up
            self._failures = link.failures
            if link.up:
                _say("connected to the broker (" + str(link.connects) + " connection(s) so far)")
            else:
                _say("link down: " + link.last_error)
        if link.failures != self._failures:
            self._failures = link.failures
            if not link.up:
                _say("cannot connect: " + link.last_error + "; trying again")
        relay = self.hardware.relay.on
        if relay != self._relay:
            self._relay = relay
            _say("relay on: the gate is open" if relay else "relay off: the gate is closed")
        app = self.node.app
        if isinstance(app, GateApp) and app.rejections != self._rejected:
            self._rejected = app.rejections
            _say("gate: command ignored: " + app.rejected[-1])


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        cfg = load_config(args.config)
        if args.password_file is not None:
            cfg.mqtt_password = args.password_file.read_text(encoding="utf-8").strip()
    except config.ConfigError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(str(exc.filename or args.config) + ": " + (exc.strerror or str(exc)))
    state = args.state if args.state is not None else args.config.resolve().parent / (cfg.device + ".state")
    hardware = Hardware()
    try:
        transport = _ConsoleTransport(paho_transport(cfg), args.quiet)
        node = build_node(cfg, hardware, state, HostClock(), FakeWifi(), transport=transport)
    except OSError as exc:
        return _fail("state folder " + str(state) + ": " + (exc.strerror or str(exc)))
    simulation = Simulation(cfg, hardware, random.Random(args.seed), args.scan_every if cfg.app == "gate" else 0)
    stdin = _StdinLines() if cfg.app == "gate" else None
    stop = _Stop()
    watch = _Watch(node, hardware)

    _say(
        cfg.app + " node " + cfg.device + " of site " + cfg.site + ", boot " + node.boot + ", broker "
        + cfg.mqtt_host + ":" + str(cfg.mqtt_port) + " as " + cfg.mqtt_user + "; state in " + str(state)
    )
    node.start()
    if node.restored:
        _say("restored " + str(node.restored) + " unsent message(s) from " + str(state / SPILL_NAME))
    node.event("boot", "info", "reset cause: simulator start")
    if stdin is not None:
        _say("gate " + cfg.gate["gate"] + ": type a code and Enter to scan it")
    try:
        while not stop.requested:
            now = node.clock.ticks_ms()
            if stdin is not None:
                for code in stdin.take():
                    simulation.scan(code)
            simulation.step(now)
            node.step(now)
            watch.check()
            time.sleep(LOOP_S)
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: shut down now
    node.shutdown()
    waiting = len(node.outbox)
    kept = "; " + str(waiting) + " unsent, kept in " + str(state / SPILL_NAME) if waiting and cfg.spill_max else ""
    _say("stopped: " + str(node.link.sent) + " message(s) sent" + kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
