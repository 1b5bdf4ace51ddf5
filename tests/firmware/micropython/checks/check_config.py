"""Configuration parsing under MicroPython: a good file gives checked values; each bad one fails with a message
that names the file and the key."""

import json

from _support import message, raises
from campusnode import config

BASE = {
    "app": "counter",
    "site": "test-school",
    "device": "path-bench-3",
    "wifi": {"ssid": "campus-iot", "password": "secret"},
    "mqtt": {"host": "10.0.0.2", "password": "pw"},
}
GATE_KEY = "000102030405060708090a0b0c0d0e0f"


def _with(changes=None, **sections) -> dict:
    document = json.loads(json.dumps(BASE))  # a deep copy
    for name, section in sections.items():
        if section is None:
            document.pop(name, None)
        elif isinstance(section, dict) and isinstance(document.get(name), dict):
            document[name].update(section)
        else:
            document[name] = section
    if changes:
        document.update(changes)
    return document


def _error(document, source="config.json") -> str:
    text = document if isinstance(document, (str, bytes)) else json.dumps(document)
    return message(raises(config.ConfigError, config.parse, text, source))


def test_a_good_file_with_defaults():
    cfg = config.parse(json.dumps(BASE))
    assert cfg.app == "counter" and cfg.site == "test-school" and cfg.device == "path-bench-3"
    assert cfg.board == "esp32-devkitc" and cfg.pins["pulse"] == 27 and cfg.pins["led"] == 2
    assert cfg.mqtt_port == 1883 and cfg.mqtt_user == "path-bench-3" and cfg.keepalive_s == 60
    assert cfg.wifi_password == "secret" and cfg.wifi_timeout_s == 20
    assert cfg.watchdog_s == 30 and cfg.socket_timeout_s == 5
    assert cfg.outbox_capacity == 100 and cfg.spill_max == 100
    assert cfg.counter == {"metric": "uses", "debounce_ms": 50, "active": 0, "save_interval_s": 300}
    assert cfg.gate == {} and cfg.gate_key == b""


def test_bytes_and_a_gate_reader():
    document = _with(
        {"app": "gate", "board": "esp32-c3", "pins": {"passage": None}},
        gate={"gate": "gym-east", "key_hex": GATE_KEY, "direction": "out"},
    )
    cfg = config.parse(json.dumps(document).encode("utf-8"), "/config.json")
    assert cfg.gate["gate"] == "gym-east" and cfg.gate["direction"] == "out" and cfg.gate["wait_ms"] == 5000
    assert cfg.gate_key == bytes(range(16))
    assert cfg.pins["relay"] == 10 and cfg.pins["passage"] is None


def test_errors_name_the_file_and_key():
    cases = (
        ("not json", "config.json: not valid JSON"),
        (b"\xff\xfe{}", "config.json: not valid JSON"),
        ("[1]", "config.json: the file must be a JSON object"),
        (_with(app=None), "config.json: app: is required"),
        (_with(app="heater"), "config.json: app: must be one of env, counter, gate, got 'heater'"),
        (_with(site="Test School"), "config.json: site: must match [a-z0-9][a-z0-9_-]{0,63}"),
        (_with(device="gate"), "config.json: device: must match"),
        (_with(board="esp8266"), "config.json: board: must be one of esp32-c3, esp32-devkitc, got 'esp8266'"),
        (_with(mqtt={"port": "x"}), "config.json: mqtt.port: must be an integer from 1 to 65535, got 'x'"),
        (_with(mqtt={"port": 70000}), "config.json: mqtt.port: must be an integer from 1 to 65535, got 70000"),
        (_with(mqtt={"port": True}), "config.json: mqtt.port: must be an integer from 1 to 65535, got True"),
        (_with(mqtt={"hots": "x"}), "config.json: mqtt.hots: is not a known setting"),
        (_with(mqtt={"password": ""}), "config.json: mqtt.password: must be a non-empty string"),
        (_with(wifi=None), "config.json: wifi: is required"),
        (_with(wifi="campus"), "config.json: wifi: must be a JSON object"),
        (_with({"intervl_s": 30}), "config.json: intervl_s: is not a known setting"),
        (_with({"interval_s": 0}), "config.json: interval_s: must be an integer from 1 to 86400, got 0"),
        (_with({"watchdog_s": 14}), "config.json: watchdog_s: must be at least 2 x socket_timeout_s + 5 = 15 s"),
        (_with({"reconnect_min_s": 10, "reconnect_max_s": 5}), "config.json: reconnect_max_s: must not be below"),
        (_with(outbox={"capacity": 0}), "config.json: outbox.capacity: must be an integer from 1 to 1000"),
        (_with(counter={"active": 2}), "config.json: counter.active: must be an integer from 0 to 1, got 2"),
        (_with(env={"sht3x": "yes"}), "config.json: env.sht3x: must be true or false, got 'yes'"),
        (_with(pins={"pulse": 99}), "config.json: pins.pulse: must be a GPIO number from 0 to 48 or null"),
        (_with(pins={"buzzer": 4}), "config.json: pins: unknown pin 'buzzer'"),
        (_with(pins={"pulse": None}), "config.json: pins.pulse: a counter needs a pulse input pin"),
        (_with({"app": "gate"}), "config.json: gate: is required"),
        (_with({"app": "gate"}, gate={"gate": "g1"}), "config.json: gate.key_hex: is required"),
        (_with({"app": "gate"}, gate={"gate": "g1", "key_hex": "xyz0"}), "config.json: gate.key_hex: must be hex"),
        (_with({"app": "gate"}, gate={"gate": "g1", "key_hex": "00ff"}), "config.json: gate.key_hex: must be at least"),
        (_with({"app": "gate"}, gate={"gate": "g1", "key_hex": GATE_KEY, "direction": "up"}),
         "config.json: gate.direction: must be in or out"),
        (_with({"app": "gate", "pins": {"relay": None}}, gate={"gate": "g1", "key_hex": GATE_KEY}),
         "config.json: pins.relay: a gate reader needs a relay pin"),
        (_with({"app": "gate"}, gate={"gate": "g1", "key_hex": GATE_KEY, "open": 1}),
         "config.json: gate.open: is not a known setting"),
    )
    for document, expect in cases:
        got = _error(document)
        assert got.startswith(expect), "expected " + repr(expect) + ", got " + repr(got)


def test_the_source_name_is_the_one_given():
    assert _error(_with(app=None), "/config.json") == "/config.json: app: is required"


def test_config_error_is_a_value_error():
    assert issubclass(config.ConfigError, ValueError)
