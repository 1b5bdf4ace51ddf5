"""Scenario files: the shipped ones load, and every mistake is reported with the file and the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.contracts import is_device_id
from gateway.settings import DeviceDeclaration
from simulators.errors import ScenarioError
from simulators.families import FAMILIES
from simulators.faults import FaultKind, Garbage
from simulators.scenario import (
    ConnectionMode,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
    resolve_scenario,
    scenario_devices,
)

MINIMAL = """
site = "s1"
[[groups]]
family = "env_sensor"
count = 2
id_prefix = "env-"
room = "c101"
"""


def test_the_shipped_scenarios_load() -> None:
    assert {"school", "demo", "tiny"} <= set(builtin_scenarios())
    for path in builtin_scenarios().values():
        scenario = load_scenario(path)
        ids = [device.id for device in scenario.devices]
        assert len(ids) == len(set(ids))
        assert all(is_device_id(device) for device in ids)


def test_school_has_about_300_devices_in_named_rooms() -> None:
    school = load_scenario("school")
    assert 280 <= len(school.devices) <= 320
    families = {device.family for device in school.devices}
    assert families == set(FAMILIES)
    assert school.connection is ConnectionMode.SHARED
    rooms = {device.room for device in school.devices}
    assert {"maker-lab-1", "c101", "c606", "gym-hall", "fitness-path"} <= rooms
    assert all(device.name for device in school.devices)


def test_demo_is_small_and_takes_a_device_offline_and_back() -> None:
    demo = load_scenario("demo")
    assert 20 <= len(demo.devices) <= 40
    offline = [fault for fault in demo.faults if fault.kind is FaultKind.OFFLINE]
    assert offline and all(fault.duration_s > 0 for fault in offline)
    assert demo.clock_start is not None


def test_scenario_devices_declare_cleanly_in_the_gateway_config() -> None:
    declared = scenario_devices(load_scenario("demo"))
    assert {device.type for device in declared} <= set(FAMILIES)
    for device in declared:
        DeviceDeclaration(id=device.id, type=device.type, name=device.name, room=device.room, units=dict(device.units))
    printer = next(device for device in declared if device.id == "printer-01")
    assert printer.type == "printer_3d" and printer.room == "maker-lab" and printer.name == "3D printer 01"
    assert printer.units["nozzle_temp"] == "°C"


def test_groups_with_rooms_name_devices_by_room() -> None:
    scenario = parse_scenario(
        'site = "s1"\n[[groups]]\nfamily = "smart_socket"\ncount = 2\nid_prefix = "socket-"\n'
        'rooms = ["C 101", "c102"]\nname = "Socket {n} in {room}"\n'
    )
    assert [(device.id, device.name) for device in scenario.devices] == [
        ("socket-c-101-01", "Socket 1 in C 101"),
        ("socket-c-101-02", "Socket 2 in C 101"),
        ("socket-c102-01", "Socket 1 in c102"),
        ("socket-c102-02", "Socket 2 in c102"),
    ]


def test_intervals_by_family_and_by_group() -> None:
    scenario = parse_scenario(MINIMAL + "interval = 2.5\n[intervals]\nenv_sensor = 7\n")
    assert {device.interval_s for device in scenario.devices} == {2.5}
    scenario = parse_scenario(MINIMAL + "[intervals]\nenv_sensor = 7\n")
    assert {device.interval_s for device in scenario.devices} == {7.0}


def test_fault_parameters_are_read_per_kind() -> None:
    scenario = parse_scenario(
        MINIMAL
        + '[[faults]]\ndevice = "env-01"\nkind = "burst"\nat = 5\nparams = { count = 7 }\n'
        + '[[faults]]\ndevice = "env-02"\nkind = "garbage"\nat = 1\nduration = 2\nparams = { variants = ["nan"] }\n'
        + '[[faults]]\ndevice = "env-02"\nkind = "reboot"\nat = 9\nparams = { downtime = 3 }\n'
    )
    burst, garbage, reboot = scenario.faults
    assert burst.params.count == 7 and burst.duration_s == 0
    assert garbage.params.variants == (Garbage.NAN,) and garbage.end_s == 3
    assert reboot.params.downtime_s == 3


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("site = 'Bad Site'\n" + MINIMAL.split("\n", 2)[2], "key site"),
        (MINIMAL + "colour = 'red'\n", "[[groups]] #1 colour: unknown key"),
        (MINIMAL.replace("count = 2", "count = 0"), "[[groups]] #1 count: must be between 1"),
        (MINIMAL.replace("count = 2", "count = 'two'"), "[[groups]] #1 count: must be an integer"),
        (MINIMAL.replace('"env_sensor"', '"toaster"'), "[[groups]] #1 family: unknown family 'toaster'"),
        (MINIMAL.replace('"env-"', '"Env-"'), "[[groups]] #1 id_prefix: makes device id 'Env-01'"),
        (MINIMAL + 'name = "{floor}"\n', "[[groups]] #1 name: bad pattern"),
        (MINIMAL + MINIMAL.split("\n", 2)[2], "[[groups]] #2 id_prefix: makes device id 'env-01' again"),
        (MINIMAL + "[intervals]\ntoaster = 3\n", "[intervals] toaster: unknown family"),
        (MINIMAL + "[intervals]\nenv_sensor = 0\n", "[intervals] env_sensor: must be between"),
        ("site = 's1'\n", "key groups: a scenario needs at least one"),
        ("connection = 'carrier-pigeon'\n" + MINIMAL, "key connection: must be 'shared' or 'per_device'"),
        (MINIMAL.replace('site = "s1"', 'site = "s1"\ntimezone = "Mars/Olympus"'), "key timezone: unknown"),
        (MINIMAL.replace('site = "s1"', 'site = "s1"\nclock_start = "noon"'), "key clock_start: must be"),
        (MINIMAL + '[[faults]]\ndevice = "env-09"\nkind = "stuck"\nat = 1\nduration = 1\n',
         "[[faults]] #1 device: no device 'env-09'"),
        (MINIMAL + '[[faults]]\ndevice = "env-01"\nkind = "melt"\nat = 1\n', "[[faults]] #1 kind: unknown fault"),
        (MINIMAL + '[[faults]]\ndevice = "env-01"\nkind = "stuck"\nat = 1\n', "[[faults]] #1 duration: is required"),
        (MINIMAL + '[[faults]]\ndevice = "env-01"\nkind = "stuck"\nat = -1\nduration = 1\n',
         "[[faults]] #1 at: must be at least 0"),
        (MINIMAL + '[[faults]]\ndevice = "env-01"\nkind = "burst"\nat = 1\nduration = 4\n',
         "[[faults]] #1 duration: a burst fault happens at one moment"),
        (MINIMAL + '[[faults]]\ndevice = "env-01"\nkind = "burst"\nat = 1\nparams = { size = 4 }\n',
         "[[faults]] #1 params.size: unknown key"),
        (MINIMAL + '[[faults]]\ndevice = "env-01"\nkind = "garbage"\nat = 1\nduration = 1\n'
         'params = { variants = ["confetti"] }\n', "[[faults]] #1 params.variants: unknown variant 'confetti'"),
        (MINIMAL + '[[faults]]\ndevice = "env-01"\nkind = "out_of_range"\nat = 1\nduration = 1\n'
         'params = { metric = "power_w", value = 1 }\n', "[[faults]] #1 params.metric: env_sensor has no metric"),
        ("site = \n", "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(text: str, where: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, source="school.toml")
    message = str(caught.value)
    assert message.startswith("school.toml: "), message
    assert where in message, message
    assert "\n" not in message


def test_per_device_connections_are_limited() -> None:
    text = "connection = 'per_device'\n" + MINIMAL.replace("count = 2", "count = 300")
    with pytest.raises(ScenarioError, match="key connection: 'per_device' opens one connection per device"):
        parse_scenario(text, source="big.toml")


def test_missing_file_names_the_path_and_the_builtins(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nowhere\.toml: no such scenario file \(built-in scenarios: .*demo"):
        load_scenario(tmp_path / "nowhere.toml")


def test_a_builtin_name_resolves_unless_a_file_of_that_name_exists() -> None:
    assert resolve_scenario("demo") == builtin_scenarios()["demo"]
    assert resolve_scenario(Path("demo.toml")) == builtin_scenarios()["demo"]


def test_site_override_is_validated() -> None:
    scenario = parse_scenario(MINIMAL)
    assert scenario.with_site("north-school").site == "north-school"
    with pytest.raises(ScenarioError, match="site 'gate' is not a valid site code"):
        scenario.with_site("gate")


def test_clock_start_picks_the_latest_weekday() -> None:
    scenario = parse_scenario(MINIMAL.replace('site = "s1"', 'site = "s1"\nclock_start = "09:30"'))
    zone = ZoneInfo("Asia/Shanghai")
    sunday_evening = dt.datetime(2025, 3, 16, 20, 0, tzinfo=zone).timestamp()
    origin = dt.datetime.fromtimestamp(scenario.clock_origin(sunday_evening), zone)
    assert (origin.date(), origin.hour, origin.minute) == (dt.date(2025, 3, 14), 9, 30)
    fixed = parse_scenario(MINIMAL.replace('site = "s1"', 'site = "s1"\nclock_start = "2025-03-12T16:45"'))
    assert dt.datetime.fromtimestamp(fixed.clock_origin(sunday_evening), zone).hour == 16
    assert parse_scenario(MINIMAL).clock_origin(sunday_evening) == sunday_evening
