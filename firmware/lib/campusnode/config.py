"""Per-device configuration: one JSON file (``/config.json`` on the board), parsed once with errors that name the
file and the key, e.g. ``config.json: mqtt.port: must be an integer from 1 to 65535, got 'x'``.

Unknown keys are errors (a typo must not silently fall back to a default). Cross-field rule: the watchdog must
outlast the longest blocking step of the link (a connect: TCP connect plus CONNACK, each up to the socket timeout).
"""

import json

from campusnode import payloads, topics
from campusnode.boards import PINMAPS, pinmap
from campusnode.gatecmd import from_hex

APPS = ("env", "counter", "gate")
#: Seconds of slack the watchdog must leave above two socket timeouts.
WATCHDOG_MARGIN_S = 5


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and key."""


class _Section:
    """Reads one JSON object, remembering which keys were used, so unknown ones can be reported."""

    def __init__(self, source: str, path: str, data: object) -> None:
        if not isinstance(data, dict):
            # ``path`` is "" for the file itself, else the section's name with its trailing dot
            raise ConfigError(source + ": " + (path[:-1] + ":" if path else "the file") + " must be a JSON object")
        self.source = source
        self.path = path
        self.data = data
        self.used: list[str] = []

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source + ": " + self.path + key + ": " + problem)

    def _get(self, key: str, default: object, required: bool) -> object:
        self.used.append(key)
        if key not in self.data:
            if required:
                raise self.fail(key, "is required")
            return default
        return self.data[key]

    def text(self, key: str, default: str | None = None, required: bool = False, empty: bool = False) -> str:
        value = self._get(key, default, required)
        if not isinstance(value, str) or (not value and not empty):
            raise self.fail(key, "must be a non-empty string, got " + repr(value))
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key, default, False)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, "must be an integer from " + str(low) + " to " + str(high) + ", got " + repr(value))
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false, got " + repr(value))
        return value

    def section(self, key: str, required: bool = False) -> "_Section":
        value = self._get(key, {}, required)
        return _Section(self.source, self.path + key + ".", value)

    def identifier(self, key: str, required: bool = True, default: str | None = None) -> str:
        value = self.text(key, default, required)
        if not topics.is_device_id(value):
            raise self.fail(key, "must match [a-z0-9][a-z0-9_-]{0,63} and not be gate, venue or reports")
        return value

    def done(self) -> None:
        for key in self.data:
            if key not in self.used:
                raise self.fail(key, "is not a known setting")


class NodeConfig:
    """Everything a node needs, checked. Attributes are plain values; sections are dicts of checked values."""

    def __init__(self) -> None:
        self.app = ""
        self.site = ""
        self.device = ""
        self.board = ""
        self.pins: dict = {}
        self.wifi_ssid = ""
        self.wifi_password = ""
        self.wifi_timeout_s = 20
        self.mqtt_host = ""
        self.mqtt_port = 1883
        self.mqtt_user = ""
        self.mqtt_password = ""
        self.keepalive_s = 60
        self.ntp_host = "pool.ntp.org"
        self.interval_s = 60
        self.watchdog_s = 30
        self.socket_timeout_s = 5
        self.reconnect_min_s = 1
        self.reconnect_max_s = 60
        self.outbox_capacity = 100
        self.spill_max = 100
        self.spill_interval_s = 900
        self.env: dict = {}
        self.counter: dict = {}
        self.gate: dict = {}
        self.gate_key = b""


def parse(text: str | bytes, source: str = "config.json") -> NodeConfig:
    """Parse and check a configuration; :class:`ConfigError` for the first problem found."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        data = json.loads(text)
    except ValueError as exc:  # also UnicodeError
        raise ConfigError(source + ": not valid JSON (" + str(exc) + ")") from None
    top = _Section(source, "", data)
    cfg = NodeConfig()
    cfg.app = top.text("app", required=True)
    if cfg.app not in APPS:
        raise top.fail("app", "must be one of " + ", ".join(APPS) + ", got " + repr(cfg.app))
    cfg.site = top.identifier("site")
    cfg.device = top.identifier("device")
    cfg.board = top.text("board", "esp32-devkitc")
    if cfg.board not in PINMAPS:
        raise top.fail("board", "must be one of " + ", ".join(sorted(PINMAPS)) + ", got " + repr(cfg.board))
    pins = top.section("pins")
    for name in pins.data:
        value = pins.data[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 48):
            raise pins.fail(name, "must be a GPIO number from 0 to 48 or null, got " + repr(value))
    try:
        cfg.pins = pinmap(cfg.board, pins.data)
    except KeyError as exc:
        raise ConfigError(source + ": pins: " + str(exc.args[0])) from None

    wifi = top.section("wifi", required=True)
    cfg.wifi_ssid = wifi.text("ssid", required=True)
    cfg.wifi_password = wifi.text("password", "", empty=True)
    cfg.wifi_timeout_s = wifi.integer("timeout_s", 20, 1, 120)
    wifi.done()

    mqtt = top.section("mqtt", required=True)
    cfg.mqtt_host = mqtt.text("host", required=True)
    cfg.mqtt_port = mqtt.integer("port", 1883, 1, 65535)
    cfg.mqtt_user = mqtt.text("user", cfg.device)
    cfg.mqtt_password = mqtt.text("password", required=True)
    cfg.keepalive_s = mqtt.integer("keepalive_s", 60, 10, 600)
    mqtt.done()

    cfg.ntp_host = top.text("ntp_host", "pool.ntp.org")
    cfg.interval_s = top.integer("interval_s", 60, 1, 86400)
    cfg.watchdog_s = top.integer("watchdog_s", 30, 5, 600)
    cfg.socket_timeout_s = top.integer("socket_timeout_s", 5, 1, 60)
    cfg.reconnect_min_s = top.integer("reconnect_min_s", 1, 1, 3600)
    cfg.reconnect_max_s = top.integer("reconnect_max_s", 60, 1, 3600)
    if cfg.reconnect_max_s < cfg.reconnect_min_s:
        raise top.fail("reconnect_max_s", "must not be below reconnect_min_s")
    if cfg.watchdog_s < 2 * cfg.socket_timeout_s + WATCHDOG_MARGIN_S:
        raise top.fail(
            "watchdog_s",
            "must be at least 2 x socket_timeout_s + "
            + str(WATCHDOG_MARGIN_S)
            + " = "
            + str(2 * cfg.socket_timeout_s + WATCHDOG_MARGIN_S)
            + " s, so no blocking network step outlasts the watchdog",
        )

    outbox = top.section("outbox")
    cfg.outbox_capacity = outbox.integer("capacity", 100, 1, 1000)  # about 230 bytes of heap each
    cfg.spill_max = outbox.integer("spill", 100, 0, 1000)
    cfg.spill_interval_s = outbox.integer("spill_interval_s", 900, 60, 86400)
    outbox.done()

    env = top.section("env")
    cfg.env = {
        "sht3x": env.flag("sht3x", True),
        "sht3x_address": env.integer("sht3x_address", 0x44, 0x08, 0x77),
        "scd4x": env.flag("scd4x", True),
        "pms": env.flag("pms", True),
    }
    env.done()

    counter = top.section("counter")
    cfg.counter = {
        "metric": counter.text("metric", "uses"),
        "debounce_ms": counter.integer("debounce_ms", 50, 0, 5000),
        "active": counter.integer("active", 0, 0, 1),
        "save_interval_s": counter.integer("save_interval_s", 300, 10, 86400),
    }
    if not payloads.is_metric_name(cfg.counter["metric"]):
        raise counter.fail("metric", "must match [a-z][a-z0-9_.]{0,63}, got " + repr(cfg.counter["metric"]))
    counter.done()

    gate = top.section("gate", required=cfg.app == "gate")
    if cfg.app == "gate":
        cfg.gate = {
            "gate": gate.identifier("gate"),
            "direction": gate.text("direction", "in"),
            "wait_ms": gate.integer("wait_ms", 5000, 500, 60000),
            "open_ms": gate.integer("open_ms", 3000, 100, 60000),
            "passage_window_ms": gate.integer("passage_window_ms", 10000, 500, 120000),
            "passage_active": gate.integer("passage_active", 0, 0, 1),
            "debounce_ms": gate.integer("debounce_ms", 50, 0, 5000),
        }
        if cfg.gate["direction"] not in ("in", "out"):
            raise gate.fail("direction", "must be in or out")
        key_hex = gate.text("key_hex", required=True)
        try:
            cfg.gate_key = from_hex(key_hex)
        except ValueError:
            raise gate.fail("key_hex", "must be hex digits") from None
        if len(cfg.gate_key) < 16:
            raise gate.fail("key_hex", "must be at least 16 bytes (32 hex digits)")
        if cfg.pins.get("relay") is None:
            raise ConfigError(source + ": pins.relay: a gate reader needs a relay pin")
    gate.done()
    if cfg.app == "counter" and cfg.pins.get("pulse") is None:
        raise ConfigError(source + ": pins.pulse: a counter needs a pulse input pin")
    needed: list[str] = []
    if cfg.app == "env" and (cfg.env["sht3x"] or cfg.env["scd4x"]):
        needed += ["i2c_id", "i2c_sda", "i2c_scl"]
    if (cfg.app == "env" and cfg.env["pms"]) or cfg.app == "gate":
        needed += ["uart_id", "uart_tx", "uart_rx"]
    for name in needed:  # a null here would fail on the board only after the watchdog started: a reset loop
        if cfg.pins.get(name) is None:
            raise ConfigError(source + ": pins." + name + ": the " + cfg.app + " app needs this pin")
    top.done()
    return cfg
