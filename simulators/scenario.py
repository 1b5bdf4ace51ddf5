"""Scenarios: which devices a simulated school has, how often they report, and which faults happen when.

A scenario is one TOML file (``simulators/scenarios/*.toml``) parsed once into frozen objects; every error names
the file and the key. The format::

    name = "demo"                  # optional, defaults to the file name
    site = "demo-school"           # the school's code; a runner may override it
    timezone = "Asia/Shanghai"     # for school hours and daily cycles
    clock_start = "09:30"          # simulated clock starts at this local time on the latest weekday (optional)
    connection = "shared"          # or "per_device": one MQTT connection and last will per device
    shared_links = 4               # MQTT connections shared by all devices in "shared" mode

    [intervals]                    # publish interval per family, in scenario seconds
    env_sensor = 30

    [[groups]]                     # devices made in bulk
    family = "printer_3d"
    count = 6                      # devices, or devices per room when "rooms" is given
    id_prefix = "printer-"         # ids printer-01 .. printer-06 (or printer-<room>[-NN] with rooms)
    room = "maker-lab-1"           # or rooms = ["c101", "c102"]
    name = "3D printer {n}"        # {n} number, {number} zero-padded number, {room}, {id}

    [[faults]]
    device = "printer-01"
    kind = "offline"               # offline, stuck, out_of_range, garbage, burst, reboot
    at = 60                        # scenario seconds after start
    duration = 30                  # for window faults
    params = { }                   # burst: count; reboot: downtime; garbage: variants; out_of_range: metric, value
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.contracts import DEVICE_ID_PATTERN, is_device_id
from simulators._reader import TableReader
from simulators.errors import ScenarioError
from simulators.families import FAMILIES
from simulators.faults import WINDOW_FAULTS, FaultKind, Garbage
from simulators.model import Schedule

SCENARIO_DIR = Path(__file__).parent / "scenarios"
#: Above this many devices "per_device" mode would need too many sockets and threads for one process.
MAX_PER_DEVICE_CONNECTIONS = 250
MAX_DEVICES = 5000


class ConnectionMode(enum.StrEnum):
    SHARED = "shared"
    PER_DEVICE = "per_device"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One simulated device as the scenario declares it."""

    id: str
    family: str
    name: str
    room: str
    schedule: Schedule
    interval_s: float


@dataclass(frozen=True, slots=True)
class FaultParams:
    """Parameters of a fault; each kind reads only its own (the parser rejects the others)."""

    count: int = 100
    downtime_s: float = 0.0
    variants: tuple[Garbage, ...] = tuple(Garbage)
    metric: str | None = None
    value: float | None = None


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault scheduled for one device, ``at_s`` scenario seconds after the start."""

    device: str
    kind: FaultKind
    at_s: float
    duration_s: float = 0.0
    params: FaultParams = field(default_factory=FaultParams)

    @property
    def end_s(self) -> float:
        return self.at_s + self.duration_s


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    source: str
    site: str
    timezone: str
    connection: ConnectionMode
    shared_links: int
    devices: tuple[DeviceSpec, ...]
    faults: tuple[FaultSpec, ...] = ()
    clock_start: str | None = None
    description: str = ""

    def with_site(self, site: str) -> Scenario:
        if not is_device_id(site):
            raise ScenarioError(f"site {site!r} is not a valid site code ({DEVICE_ID_PATTERN}, not reserved)")
        return replace(self, site=site)

    def clock_origin(self, now: float) -> float:
        """The simulated Unix time at the start of a run that really starts at ``now``."""
        if self.clock_start is None:
            return now
        zone = zoneinfo.ZoneInfo(self.timezone)
        moment = _clock_start(self.clock_start)
        if isinstance(moment, dt.datetime):
            return moment.replace(tzinfo=zone).timestamp()
        day = dt.datetime.fromtimestamp(now, zone).date()
        while day.weekday() >= 5:
            day -= dt.timedelta(days=1)
        return dt.datetime.combine(day, moment, zone).timestamp()


@dataclass(frozen=True, slots=True)
class ScenarioDevice:
    """What the gateway needs to declare a simulated device in its ``[[devices]]`` configuration."""

    id: str
    type: str
    name: str
    room: str
    units: Mapping[str, str]


def scenario_devices(scenario: Scenario) -> tuple[ScenarioDevice, ...]:
    """The devices of a scenario with their type (the family name), name, room and metric units."""
    return tuple(
        ScenarioDevice(spec.id, spec.family, spec.name, spec.room, dict(FAMILIES[spec.family].units))
        for spec in scenario.devices
    )


def builtin_scenarios() -> dict[str, Path]:
    """The scenarios shipped with the package, by name (``school``, ``demo``, ``tiny``)."""
    return {path.stem: path for path in sorted(SCENARIO_DIR.glob("*.toml"))}


def resolve_scenario(path: Path | str) -> Path:
    """A scenario file, or the built-in scenario of that name when no such file exists."""
    candidate = Path(path)
    if not candidate.exists() and candidate.parent == Path(".") and candidate.stem in builtin_scenarios():
        return builtin_scenarios()[candidate.stem]
    return candidate


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate one scenario file (or a built-in scenario by name)."""
    path = resolve_scenario(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(builtin_scenarios())
        raise ScenarioError(f"{path}: no such scenario file (built-in scenarios: {known})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(text, source=str(path), default_name=path.stem)


def parse_scenario(text: str, *, source: str = "scenario", default_name: str = "scenario") -> Scenario:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    top = TableReader(document, "", source)
    name = top.text("name", default_name)
    site = top.text("site")
    if not is_device_id(site):
        raise top.error("site", f"{site!r} is not a valid site code ({DEVICE_ID_PATTERN}, not reserved)")
    timezone = top.text("timezone", "Asia/Shanghai")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise top.error("timezone", f"unknown time zone {timezone!r} (an IANA name such as Asia/Shanghai)") from None
    clock_start = top.optional_text("clock_start")
    if clock_start is not None:
        try:
            _clock_start(clock_start)
        except ValueError:
            raise top.error("clock_start", "must be HH:MM, HH:MM:SS or a local time like 2025-03-12T09:30") from None
    mode_text = top.text("connection", ConnectionMode.SHARED.value)
    if mode_text not in ConnectionMode.__members__.values():
        raise top.error("connection", f"must be 'shared' or 'per_device', got {mode_text!r}")
    shared_links = top.integer("shared_links", 4, low=1, high=64)
    description = top.text("description", "")
    intervals = _intervals(top.table("intervals"))
    devices = _devices(top.tables("groups"), intervals)
    if not devices:
        raise top.error("groups", "a scenario needs at least one [[groups]] entry")
    if len(devices) > MAX_DEVICES:
        raise top.error("groups", f"{len(devices)} devices is more than the {MAX_DEVICES} one simulator can run")
    connection = ConnectionMode(mode_text)
    if connection is ConnectionMode.PER_DEVICE and len(devices) > MAX_PER_DEVICE_CONNECTIONS:
        raise top.error(
            "connection",
            f"'per_device' opens one connection per device; {len(devices)} devices is more than "
            f"{MAX_PER_DEVICE_CONNECTIONS}: use 'shared'",
        )
    known = {spec.id: spec for spec in devices}
    faults = tuple(_fault(reader, known) for reader in top.tables("faults"))
    top.finish()
    return Scenario(name, source, site, timezone, connection, shared_links, devices, faults, clock_start, description)


def _clock_start(text: str) -> dt.time | dt.datetime:
    if "T" in text or "-" in text:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    return dt.time.fromisoformat(text)


def _intervals(reader: TableReader) -> dict[str, float]:
    intervals = {name: family.default_interval_s for name, family in FAMILIES.items()}
    for key in reader.all_keys():
        if key not in FAMILIES:
            raise reader.error(key, f"unknown family (known: {', '.join(FAMILIES)})")
        intervals[key] = reader.number(key, low=0.01, high=86_400)
    return intervals


_SLUG = re.compile(r"[^a-z0-9_-]+")


def _devices(groups: list[TableReader], intervals: Mapping[str, float]) -> tuple[DeviceSpec, ...]:
    devices: list[DeviceSpec] = []
    made_by: dict[str, str] = {}
    for group in groups:
        family = group.text("family")
        if family not in FAMILIES:
            raise group.error("family", f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
        count = group.integer("count", low=1, high=MAX_DEVICES)
        prefix = group.text("id_prefix")
        digits = group.integer("digits", 2, low=1, high=6)
        first = group.integer("first", 1, low=0, high=999_999)
        if group.has("room") and group.has("rooms"):
            raise group.error("rooms", "give either room or rooms, not both")
        rooms = group.texts("rooms") if group.has("rooms") else (group.text("room", ""),)
        pattern = group.text("name", "{id}")
        interval = group.number("interval", intervals[family], low=0.01, high=86_400)
        schedule_text = group.text("schedule", FAMILIES[family].schedule.value)
        if schedule_text not in Schedule.__members__.values():
            raise group.error("schedule", f"must be one of {', '.join(Schedule)}, got {schedule_text!r}")
        group.finish()
        for room in rooms:
            for n in range(first, first + count):
                number = f"{n:0{digits}d}"
                if group.has("rooms"):
                    slug = _SLUG.sub("-", room.lower()).strip("-")
                    device = f"{prefix}{slug}" if count == 1 else f"{prefix}{slug}-{number}"
                else:
                    device = f"{prefix}{number}"
                if not is_device_id(device):
                    raise group.error("id_prefix", f"makes device id {device!r}, not {DEVICE_ID_PATTERN}")
                if device in made_by:
                    raise group.error("id_prefix", f"makes device id {device!r} again (also made by {made_by[device]})")
                made_by[device] = group.where
                try:
                    name = pattern.format(n=n, number=number, room=room, id=device)
                except (KeyError, IndexError, ValueError) as exc:
                    hint = "use {n}, {number}, {room} or {id}"
                    raise group.error("name", f"bad pattern {pattern!r} ({exc}): {hint}") from None
                devices.append(DeviceSpec(device, family, name, room, Schedule(schedule_text), interval))
    return tuple(devices)


def _fault(reader: TableReader, devices: Mapping[str, DeviceSpec]) -> FaultSpec:
    device = reader.text("device")
    if device not in devices:
        raise reader.error("device", f"no device {device!r} in this scenario")
    kind_text = reader.text("kind")
    if kind_text not in FaultKind.__members__.values():
        raise reader.error("kind", f"unknown fault kind {kind_text!r} (known: {', '.join(FaultKind)})")
    kind = FaultKind(kind_text)
    at = reader.number("at", low=0.0)
    if kind in WINDOW_FAULTS:
        duration = reader.number("duration", low=0.0)
        if duration <= 0:
            raise reader.error("duration", f"a {kind} fault needs a duration above 0 seconds")
    else:
        duration = 0.0
        if reader.has("duration"):
            raise reader.error("duration", f"a {kind} fault happens at one moment and takes no duration")
    params = _params(reader.table("params"), kind, devices[device].family)
    reader.finish()
    return FaultSpec(device, kind, at, duration, params)


def _params(reader: TableReader, kind: FaultKind, family: str) -> FaultParams:
    params = FaultParams()
    if kind is FaultKind.BURST:
        params = replace(params, count=reader.integer("count", 100, low=1, high=100_000))
    elif kind is FaultKind.REBOOT:
        params = replace(params, downtime_s=reader.number("downtime", 0.0, low=0.0, high=86_400))
    elif kind is FaultKind.GARBAGE:
        variants = reader.texts("variants", tuple(Garbage))
        for variant in variants:
            if variant not in Garbage.__members__.values():
                raise reader.error("variants", f"unknown variant {variant!r} (known: {', '.join(Garbage)})")
        if not variants:
            raise reader.error("variants", "needs at least one variant")
        params = replace(params, variants=tuple(Garbage(variant) for variant in variants))
    elif kind is FaultKind.OUT_OF_RANGE:
        metric = reader.optional_text("metric")
        if metric is not None and metric not in FAMILIES[family].metrics:
            raise reader.error("metric", f"{family} has no metric {metric!r}")
        value = reader.optional_number("value")
        if (metric is None) != (value is None):
            raise reader.error("value" if metric else "metric", "give metric and value together")
        params = replace(params, metric=metric, value=value)
    reader.finish()
    return params
