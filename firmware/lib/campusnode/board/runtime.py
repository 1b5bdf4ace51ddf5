"""The main loop on the board: read ``/config.json``, build the node for its app, then feed the watchdog and step
the node every ``LOOP_MS`` until power goes. An unexpected error spills the outbox and resets the board."""

import machine
import os
import time

from campusnode import config, payloads
from campusnode.apps.counter import CounterApp
from campusnode.apps.env import EnvApp
from campusnode.apps.gate import GateApp
from campusnode.backoff import Backoff
from campusnode.board.hw import EdgeCapture, FlashStore, PinOutput, RtcStore, UartSource, i2c
from campusnode.board.net import StationWifi, UmqttTransport
from campusnode.board.timebase import BoardClock
from campusnode.gatecmd import GateGuard
from campusnode.link import Watchdog
from campusnode.node import App, Node
from campusnode.outbox import Outbox
from campusnode.sensors import Pms, Scd4x, Sht3x
from campusnode.totals import TotalKeeper

LOOP_MS = 20
CONFIG_PATH = "/config.json"
_CAUSES = {
    machine.PWRON_RESET: "power on",
    machine.HARD_RESET: "hard reset",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deep sleep",
    machine.SOFT_RESET: "soft reset",
}


class BoardWatchdog(Watchdog):
    def __init__(self, timeout_s: int) -> None:
        self._wdt = machine.WDT(timeout=timeout_s * 1000)

    def feed(self) -> None:
        self._wdt.feed()


def build_app(cfg: config.NodeConfig) -> App:
    pins = cfg.pins
    if cfg.app == "env":
        bus = i2c(pins["i2c_id"], pins["i2c_sda"], pins["i2c_scl"])
        sht = Sht3x(bus, cfg.env["sht3x_address"]) if cfg.env["sht3x"] else None
        scd = Scd4x(bus) if cfg.env["scd4x"] else None
        pms = Pms(UartSource(pins["uart_id"], pins["uart_tx"], pins["uart_rx"]).uart) if cfg.env["pms"] else None
        return EnvApp(cfg.interval_s, sht, scd, pms)
    if cfg.app == "counter":
        keeper = TotalKeeper(RtcStore(), FlashStore(), "uses.bin", cfg.counter["save_interval_s"] * 1000)
        edges = EdgeCapture(pins["pulse"], pull_up=cfg.counter["active"] == 0)
        return CounterApp(
            cfg.interval_s, edges, keeper, cfg.counter["debounce_ms"], cfg.counter["active"], cfg.counter["metric"]
        )
    gate = cfg.gate
    guard = GateGuard(cfg.gate_key, cfg.site, gate["gate"], gate["wait_ms"])
    scanner = UartSource(pins["uart_id"], pins["uart_tx"], pins["uart_rx"])
    passage = EdgeCapture(pins["passage"], pull_up=gate["passage_active"] == 0) if pins["passage"] is not None else None
    return GateApp(
        gate["gate"],
        guard,
        scanner,
        PinOutput(pins["relay"]),
        passage,
        gate["direction"],
        gate["open_ms"],
        gate["passage_window_ms"],
        gate["passage_active"],
        gate["debounce_ms"],
        cfg.interval_s,
    )


def build_node(cfg: config.NodeConfig, watchdog: Watchdog) -> Node:
    clock = BoardClock(cfg.ntp_host)
    transport = UmqttTransport(
        cfg.device,
        cfg.mqtt_host,
        cfg.mqtt_port,
        cfg.mqtt_user,
        cfg.mqtt_password,
        cfg.keepalive_s,
        cfg.socket_timeout_s,
    )
    return Node(
        cfg.site,
        cfg.device,
        payloads.boot_id(os.urandom(6)),
        build_app(cfg),
        clock,
        transport,
        StationWifi(cfg.wifi_ssid, cfg.wifi_password, cfg.device),
        Backoff(cfg.reconnect_min_s * 1000, cfg.reconnect_max_s * 1000),
        Outbox(cfg.outbox_capacity),
        cfg.keepalive_s,
        cfg.wifi_timeout_s,
        FlashStore(),
        cfg.spill_max,
        cfg.spill_interval_s,
        watchdog,
    )


def load_config(path: str = CONFIG_PATH) -> config.NodeConfig:
    with open(path) as handle:
        return config.parse(handle.read(), path)


def main() -> None:
    try:
        cfg = load_config()
    except (OSError, config.ConfigError) as exc:
        # No watchdog yet: the REPL stays usable to fix the file.
        print("campusnode: cannot start:", exc)
        return
    watchdog = BoardWatchdog(cfg.watchdog_s)
    node = build_node(cfg, watchdog)
    node.start()
    cause = _CAUSES.get(machine.reset_cause(), "unknown")
    node.event("boot", "warning" if cause == "watchdog" else "info", "reset cause: " + cause)
    try:
        while True:
            watchdog.feed()
            node.step(time.ticks_ms())
            time.sleep_ms(LOOP_MS)
    except KeyboardInterrupt:
        node.shutdown()
        print("campusnode: stopped; the watchdog resets the board in", cfg.watchdog_s, "s")
    except Exception as exc:  # noqa: BLE001 - last resort on the board: keep the data, start again
        print("campusnode: fatal:", repr(exc))
        try:
            node.shutdown()
        finally:
            machine.reset()
