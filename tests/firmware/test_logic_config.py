"""Node configuration: one JSON file parsed once; every error names the file and the key; unknown keys are errors;
the watchdog outlasts the link's longest blocking step; pins come from the board's map with overrides."""

from __future__ import annotations

import copy
import json

import pytest
from campusnode import boards, config
from campusnode.config import WATCHDOG_MARGIN_S, ConfigError
from hypothesis import given, settings
from hypothesis import strategies as st

KEY_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

BASE = {
    "app": "env",
    "site": "test-school",
    "device": "env-lab1",
    "wifi": {"ssid": "campus-iot"},
    "mqtt": {"host": "192.168.1.10", "password": "s3cret"},
}


def make(**changes) -> dict:
    document = copy.deepcopy(BASE)
    for path, value in changes.items():
        target = document
        keys = path.split("__")
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return document


DELETE = object()


def parse(document: dict, source: str = "config.json") -> config.NodeConfig:
    return config.parse(json.dumps(document), source)


def gate_config(**changes) -> dict:
    document = make(app="gate", device="gate-east-1", gate={"gate": "gym-east", "key_hex": KEY_HEX})
    for path, value in changes.items():
        target = document
        keys = path.split("__")
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return document


def test_minimal_env_config_has_the_documented_defaults():
    cfg = parse(BASE)
    assert (cfg.app, cfg.site, cfg.device, cfg.board) == ("env", "test-school", "env-lab1", "esp32-devkitc")
    assert (cfg.wifi_ssid, cfg.wifi_password, cfg.wifi_timeout_s) == ("campus-iot", "", 20)
    assert (cfg.mqtt_host, cfg.mqtt_port, cfg.mqtt_user, cfg.mqtt_password, cfg.keepalive_s) == (
        "192.168.1.10",
        1883,
        "env-lab1",  # the device id is the broker user unless given
        "s3cret",
        60,
    )
    assert (cfg.ntp_host, cfg.interval_s, cfg.watchdog_s, cfg.socket_timeout_s) == ("pool.ntp.org", 60, 30, 5)
    assert (cfg.reconnect_min_s, cfg.reconnect_max_s) == (1, 60)
    assert (cfg.outbox_capacity, cfg.spill_max, cfg.spill_interval_s) == (100, 100, 900)
    assert cfg.env == {"sht3x": True, "sht3x_address": 0x44, "scd4x": True, "pms": True}
    assert cfg.counter == {"metric": "uses", "debounce_ms": 50, "active": 0, "save_interval_s": 300}
    assert cfg.gate == {} and cfg.gate_key == b""
    assert cfg.pins == boards.PINMAPS["esp32-devkitc"]


def test_full_gate_config():
    cfg = parse(
        gate_config(
            board="esp32-c3",
            pins={"relay": 10, "passage": None, "led": 8},
            gate__direction="out",
            gate__wait_ms=4000,
            gate__open_ms=2000,
            gate__passage_window_ms=8000,
            gate__passage_active=1,
            gate__debounce_ms=20,
            mqtt__user="gate-user",
            mqtt__port=8883,
            wifi__password="pw",
            wifi__timeout_s=30,
        )
    )
    assert cfg.gate == {
        "gate": "gym-east",
        "direction": "out",
        "wait_ms": 4000,
        "open_ms": 2000,
        "passage_window_ms": 8000,
        "passage_active": 1,
        "debounce_ms": 20,
    }
    assert cfg.gate_key == bytes(range(32))
    assert (cfg.pins["relay"], cfg.pins["passage"], cfg.pins["led"], cfg.pins["i2c_sda"]) == (10, None, 8, 4)
    assert (cfg.mqtt_user, cfg.mqtt_port, cfg.wifi_password, cfg.wifi_timeout_s) == ("gate-user", 8883, "pw", 30)


def test_counter_config():
    cfg = parse(make(app="counter", counter={"metric": "uses.total", "debounce_ms": 30, "active": 1}))
    assert cfg.counter == {"metric": "uses.total", "debounce_ms": 30, "active": 1, "save_interval_s": 300}
    assert cfg.pins["pulse"] == 27


def test_bytes_are_accepted():
    assert config.parse(json.dumps(BASE).encode("utf-8")).device == "env-lab1"


# -- errors name the file and the key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document,message",
    [
        (make(app=DELETE), "config.json: app: is required"),
        (make(app="thermostat"), "config.json: app: must be one of env, counter, gate, got 'thermostat'"),
        (make(app=3), "config.json: app: must be a non-empty string, got 3"),
        (make(site=DELETE), "config.json: site: is required"),
        (make(site="Test School"), "config.json: site: must match [a-z0-9][a-z0-9_-]{0,63}"),
        (make(device="gate"), "config.json: device: must match"),
        (make(device=""), "config.json: device: must be a non-empty string"),
        (make(board="arduino"), "config.json: board: must be one of esp32-c3, esp32-devkitc, got 'arduino'"),
        (make(wifi=DELETE), "config.json: wifi: is required"),
        (make(wifi="campus-iot"), "config.json: wifi: must be a JSON object"),
        (make(wifi__ssid=DELETE), "config.json: wifi.ssid: is required"),
        (make(wifi__ssid=""), "config.json: wifi.ssid: must be a non-empty string, got ''"),
        (make(wifi__timeout_s=0), "config.json: wifi.timeout_s: must be an integer from 1 to 120, got 0"),
        (make(wifi__timeout_s=True), "config.json: wifi.timeout_s: must be an integer from 1 to 120, got True"),
        (make(mqtt=DELETE), "config.json: mqtt: is required"),
        (make(mqtt__host=DELETE), "config.json: mqtt.host: is required"),
        (make(mqtt__password=DELETE), "config.json: mqtt.password: is required"),
        (make(mqtt__port="x"), "config.json: mqtt.port: must be an integer from 1 to 65535, got 'x'"),
        (make(mqtt__port=70000), "config.json: mqtt.port: must be an integer from 1 to 65535, got 70000"),
        (make(mqtt__port=1883.0), "config.json: mqtt.port: must be an integer from 1 to 65535, got 1883.0"),
        (make(mqtt__keepalive_s=5), "config.json: mqtt.keepalive_s: must be an integer from 10 to 600"),
        (make(interval_s=0), "config.json: interval_s: must be an integer from 1 to 86400, got 0"),
        (make(ntp_host=""), "config.json: ntp_host: must be a non-empty string"),
        (make(socket_timeout_s=61), "config.json: socket_timeout_s: must be an integer from 1 to 60"),
        (
            make(reconnect_min_s=10, reconnect_max_s=5),
            "config.json: reconnect_max_s: must not be below reconnect_min_s",
        ),
        (make(outbox__capacity=0), "config.json: outbox.capacity: must be an integer from 1 to 1000, got 0"),
        (make(outbox__spill=1001), "config.json: outbox.spill: must be an integer from 0 to 1000"),
        (make(outbox__spill_interval_s=59), "config.json: outbox.spill_interval_s: must be an integer from 60 to"),
        (make(env__sht3x="yes"), "config.json: env.sht3x: must be true or false, got 'yes'"),
        (make(env__sht3x_address=0x80), "config.json: env.sht3x_address: must be an integer from 8 to 119"),
        (make(counter__active=2), "config.json: counter.active: must be an integer from 0 to 1, got 2"),
        (make(counter__save_interval_s=5), "config.json: counter.save_interval_s: must be an integer from 10"),
        (make(counter__metric="Uses"), "config.json: counter.metric: must match [a-z][a-z0-9_.]{0,63}"),
        (make(counter__metric="2uses"), "config.json: counter.metric: must match [a-z][a-z0-9_.]{0,63}"),
        (make(pins__relay=49), "config.json: pins.relay: must be a GPIO number from 0 to 48 or null, got 49"),
        (make(pins__relay=-1), "config.json: pins.relay: must be a GPIO number from 0 to 48 or null, got -1"),
        (make(pins__relay=True), "config.json: pins.relay: must be a GPIO number from 0 to 48 or null, got True"),
        (make(pins__relay="26"), "config.json: pins.relay: must be a GPIO number"),
        (make(pins__buzzer=4), "config.json: pins: unknown pin 'buzzer'"),
        (make(pins=[1]), "config.json: pins: must be a JSON object"),
        (make(outbox=5), "config.json: outbox: must be a JSON object"),
    ],
)
def test_each_error_names_the_file_and_the_key(document, message):
    with pytest.raises(ConfigError) as caught:
        parse(document)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "document,message",
    [
        (gate_config(gate=DELETE), "config.json: gate: is required"),
        (gate_config(gate__gate=DELETE), "config.json: gate.gate: is required"),
        (gate_config(gate__gate="Gym East"), "config.json: gate.gate: must match"),
        (gate_config(gate__direction="up"), "config.json: gate.direction: must be in or out"),
        (gate_config(gate__wait_ms=100), "config.json: gate.wait_ms: must be an integer from 500 to 60000, got 100"),
        (gate_config(gate__open_ms=50), "config.json: gate.open_ms: must be an integer from 100"),
        (gate_config(gate__passage_window_ms=200_000), "config.json: gate.passage_window_ms: must be an integer"),
        (gate_config(gate__passage_active=-1), "config.json: gate.passage_active: must be an integer from 0 to 1"),
        (gate_config(gate__key_hex=DELETE), "config.json: gate.key_hex: is required"),
        (gate_config(gate__key_hex="xyz0" * 8), "config.json: gate.key_hex: must be hex digits"),
        (gate_config(gate__key_hex="abc"), "config.json: gate.key_hex: must be hex digits"),
        (gate_config(gate__key_hex="00" * 15), "config.json: gate.key_hex: must be at least 16 bytes (32 hex digits)"),
        (gate_config(pins={"relay": None}), "config.json: pins.relay: a gate reader needs a relay pin"),
        (gate_config(gate__pin=3), "config.json: gate.pin: is not a known setting"),
        (make(app="counter", pins={"pulse": None}), "config.json: pins.pulse: a counter needs a pulse input pin"),
    ],
)
def test_gate_and_counter_errors(document, message):
    with pytest.raises(ConfigError) as caught:
        parse(document)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "document,key",
    [
        (make(interval=60), "interval"),
        (make(wifi__pasword="x"), "wifi.pasword"),
        (make(mqtt__tls=True), "mqtt.tls"),
        (make(outbox__size=10), "outbox.size"),
        (make(env__bme280=True), "env.bme280"),
        (make(counter__metrc="uses"), "counter.metrc"),
    ],
)
def test_unknown_keys_are_errors_not_silent_defaults(document, key):
    with pytest.raises(ConfigError) as caught:
        parse(document)
    assert str(caught.value) == "config.json: " + key + ": is not a known setting"


def test_the_source_name_is_the_one_given():
    with pytest.raises(ConfigError) as caught:
        parse(make(mqtt__port=0), "/config.json")
    assert str(caught.value).startswith("/config.json: mqtt.port: ")


@pytest.mark.parametrize("text", ["", "{", "not json", '{"app": "env",}'])
def test_invalid_json_names_the_file(text):
    with pytest.raises(ConfigError, match=r"^config\.json: not valid JSON"):
        config.parse(text)


def test_invalid_utf8_names_the_file():
    with pytest.raises(ConfigError, match=r"^node\.json: not valid JSON"):
        config.parse(b'{"app": "\xff"}', "node.json")


@pytest.mark.parametrize("text", ["[]", "42", '"env"', "null"])
def test_the_file_must_hold_an_object(text):
    with pytest.raises(ConfigError, match=r"^config\.json: the file must be a JSON object"):
        config.parse(text)


# -- the watchdog rule -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("socket_timeout_s", [1, 5, 10, 20])
def test_watchdog_must_outlast_two_socket_timeouts_plus_margin(socket_timeout_s):
    least = 2 * socket_timeout_s + WATCHDOG_MARGIN_S
    cfg = parse(make(socket_timeout_s=socket_timeout_s, watchdog_s=max(5, least)))
    assert cfg.watchdog_s >= least
    if least - 1 >= 5:
        with pytest.raises(ConfigError) as caught:
            parse(make(socket_timeout_s=socket_timeout_s, watchdog_s=least - 1))
        assert str(caught.value) == (
            "config.json: watchdog_s: must be at least 2 x socket_timeout_s + 5 = "
            + str(least)
            + " s, so no blocking network step outlasts the watchdog"
        )


def test_default_watchdog_with_a_long_socket_timeout_is_refused():
    with pytest.raises(ConfigError, match="watchdog_s: must be at least 2 x socket_timeout_s"):
        parse(make(socket_timeout_s=20))  # the default 30 s watchdog < 45 s


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=5, max_value=600))
def test_watchdog_rule_property(socket_timeout_s, watchdog_s):
    document = make(socket_timeout_s=socket_timeout_s, watchdog_s=watchdog_s)
    if watchdog_s >= 2 * socket_timeout_s + WATCHDOG_MARGIN_S:
        assert parse(document).watchdog_s == watchdog_s
    else:
        with pytest.raises(ConfigError, match="^config.json: watchdog_s: "):
            parse(document)


# -- pins ------------------------------------------------------------------------------------------------------------


def test_pin_overrides_and_null():
    cfg = parse(make(pins={"i2c_sda": 18, "i2c_scl": 19, "led": None}))
    assert (cfg.pins["i2c_sda"], cfg.pins["i2c_scl"], cfg.pins["led"]) == (18, 19, None)
    assert cfg.pins["uart_rx"] == boards.PINMAPS["esp32-devkitc"]["uart_rx"]
    assert boards.PINMAPS["esp32-devkitc"]["i2c_sda"] == 21  # the board's map is not changed by a node's overrides


def test_board_pinmaps_are_complete_and_avoid_strapping_and_flash_pins():
    for name, pins in boards.PINMAPS.items():
        assert set(pins) == set(boards.PIN_NAMES), name
    devkit = boards.PINMAPS["esp32-devkitc"]
    gpios = [devkit[name] for name in boards.PIN_NAMES if name not in ("i2c_id", "uart_id", "led")]
    assert not set(gpios) & {0, 2, 5, 12, 15, 6, 7, 8, 9, 10, 11}
    assert len(set(gpios)) == len(gpios)
    c3 = boards.PINMAPS["esp32-c3"]
    c3_gpios = [c3[name] for name in boards.PIN_NAMES if name not in ("i2c_id", "uart_id", "led")]
    assert not set(c3_gpios) & {2, 8, 9, 18, 19, 20, 21}
    assert len(set(c3_gpios)) == len(c3_gpios)
    assert devkit["uart_id"] != 0 and c3["uart_id"] != 0  # UART0 carries the REPL


def test_pinmap_errors():
    with pytest.raises(KeyError, match="unknown board 'uno'"):
        boards.pinmap("uno")
    with pytest.raises(KeyError, match="unknown pin 'sda'"):
        boards.pinmap("esp32-c3", {"sda": 1})
    assert boards.pinmap("esp32-c3", None) == boards.PINMAPS["esp32-c3"]
