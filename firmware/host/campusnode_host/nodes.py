"""Builds a node for a parsed :class:`~campusnode.config.NodeConfig` on CPython, as ``board/runtime.py`` does on
the board, with the board's parts swapped for host ones:

| board (``runtime.py``)              | host (here)                                          |
|-------------------------------------|------------------------------------------------------|
| ``UmqttTransport``                  | :class:`PahoTransport` (same socket timeout)         |
| ``BoardClock`` (ticks, NTP)         | the clock passed in (``HostClock``, ``ManualClock``) |
| ``StationWifi``                     | the Wi-Fi passed in (``FakeWifi``)                   |
| ``machine.I2C``, UARTs, pins, relay | the fakes of one :class:`Hardware`                   |
| ``FlashStore`` (``/data``)          | ``DirStore(state)``: the spill file and the total    |
| ``RtcStore`` (RTC memory)           | ``DirStore(state / "rtc")``                          |

Everything else (the node, its link, outbox and app) is the firmware's own code, unchanged.
"""

import os
from pathlib import Path

from campusnode import config, payloads
from campusnode.apps.counter import CounterApp
from campusnode.apps.env import EnvApp
from campusnode.apps.gate import GateApp
from campusnode.backoff import Backoff
from campusnode.clock import Clock
from campusnode.gatecmd import GateGuard
from campusnode.link import Watchdog
from campusnode.node import App, Node
from campusnode.outbox import Outbox
from campusnode.sensors import Pms, Scd4x, Sht3x
from campusnode.totals import TotalKeeper
from campusnode.transport import Transport, Wifi

from campusnode_host.fakes import DirStore, FakeEdges, FakeI2C, FakeRelay, FakeUart
from campusnode_host.paho_transport import PahoTransport

#: The counter's running total, in the flash folder and in the RTC folder (the board's ``uses.bin``).
TOTAL_NAME = "uses.bin"


class Hardware:
    """The simulated parts a node's app is wired to; whoever drives the simulation changes their values."""

    def __init__(self) -> None:
        self.i2c = FakeI2C()  # SHT3x at 0x44 (or as configured), SCD4x at 0x62
        self.pms = FakeUart()  # PMS5003 frames
        self.scanner = FakeUart()  # QR scanner lines
        self.pulse = FakeEdges()  # reed or hall contact of a fitness machine
        self.passage = FakeEdges()  # passage sensor behind the turnstile
        self.relay = FakeRelay()  # turnstile unlock


class StateStores:
    """Where a host node keeps what the board keeps in flash and in RTC memory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.flash = DirStore(self.directory)
        self.rtc = DirStore(self.directory / "rtc")


def build_app(cfg: config.NodeConfig, hardware: Hardware, stores: StateStores) -> App:
    """The app ``cfg.app`` names, wired to ``hardware`` (mirrors ``runtime.build_app``)."""
    pins = cfg.pins
    if cfg.app == "env":
        sht = Sht3x(hardware.i2c, cfg.env["sht3x_address"]) if cfg.env["sht3x"] else None
        scd = Scd4x(hardware.i2c) if cfg.env["scd4x"] else None
        pms = Pms(hardware.pms) if cfg.env["pms"] else None
        return EnvApp(cfg.interval_s, sht, scd, pms)
    if cfg.app == "counter":
        keeper = TotalKeeper(stores.rtc, stores.flash, TOTAL_NAME, cfg.counter["save_interval_s"] * 1000)
        return CounterApp(
            cfg.interval_s,
            hardware.pulse,
            keeper,
            cfg.counter["debounce_ms"],
            cfg.counter["active"],
            cfg.counter["metric"],
        )
    gate = cfg.gate
    return GateApp(
        gate["gate"],
        GateGuard(cfg.gate_key, cfg.site, gate["gate"], gate["wait_ms"]),
        hardware.scanner,
        hardware.relay,
        hardware.passage if pins["passage"] is not None else None,
        gate["direction"],
        gate["open_ms"],
        gate["passage_window_ms"],
        gate["passage_active"],
        gate["debounce_ms"],
        cfg.interval_s,
    )


def paho_transport(cfg: config.NodeConfig) -> PahoTransport:
    """The node's MQTT connection: client id = device id, the config's credentials and socket timeout."""
    return PahoTransport(
        cfg.device,
        cfg.mqtt_host,
        cfg.mqtt_port,
        cfg.mqtt_user,
        cfg.mqtt_password,
        cfg.keepalive_s,
        cfg.socket_timeout_s,
    )


def build_node(
    cfg: config.NodeConfig,
    hardware: Hardware,
    state: Path,
    clock: Clock,
    wifi: Wifi,
    boot: str | None = None,
    outbox: Outbox | None = None,
    transport: Transport | None = None,
) -> Node:
    """A node as ``runtime.build_node`` makes it; ``boot`` is a fresh random id unless given.

    ``state`` is the node's flash: the spill file and the counter's total stay there across restarts (a new
    ``build_node`` on the same folder is a reboot).
    """
    stores = StateStores(state)
    return Node(
        cfg.site,
        cfg.device,
        boot if boot is not None else payloads.boot_id(os.urandom(6)),
        build_app(cfg, hardware, stores),
        clock,
        transport if transport is not None else paho_transport(cfg),
        wifi,
        Backoff(cfg.reconnect_min_s * 1000, cfg.reconnect_max_s * 1000),
        outbox if outbox is not None else Outbox(cfg.outbox_capacity),
        cfg.keepalive_s,
        cfg.wifi_timeout_s,
        stores.flash,
        cfg.spill_max,
        cfg.spill_interval_s,
        Watchdog(),
    )


def load_config(path: Path) -> config.NodeConfig:
    """Read and check a node's config.json; :class:`config.ConfigError` (naming the file and key) or ``OSError``."""
    return config.parse(Path(path).read_bytes(), str(path))
