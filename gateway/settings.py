"""One TOML file parsed once into frozen, validated settings.

``load(path)`` reads the file, applies ``CAMPUSGW__SECTION__KEY`` environment overrides, resolves paths relative to
the file and validates everything; any problem becomes a :class:`ConfigError` naming the section and key. There is
no module-level settings instance: the composition root passes settings down.
"""

from __future__ import annotations

import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.contracts import DEVICE_ID_PATTERN, METRIC_NAME_PATTERN, is_device_id
from gateway.errors import ConfigError

ENV_PREFIX = "CAMPUSGW__"

#: Device types the simulators and the dashboard know; anything else is allowed but gets the default timeout.
DEVICE_TYPES = (
    "printer_3d",
    "laser_cutter",
    "env_sensor",
    "smart_socket",
    "classroom_display",
    "people_counter",
    "air_quality",
    "fitness_equipment",
    "unknown",
)

#: Silence after which a device of a type counts as offline, unless ``[presence.timeouts]`` says otherwise.
DEFAULT_TIMEOUTS_S = {
    "printer_3d": 120.0,
    "laser_cutter": 120.0,
    "env_sensor": 300.0,
    "smart_socket": 300.0,
    "classroom_display": 300.0,
    "people_counter": 180.0,
    "air_quality": 300.0,
    "fitness_equipment": 900.0,
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Section):
    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = ""
    username: str = ""
    password_file: Path | None = None
    session_expiry_s: Annotated[int, Field(ge=60, le=4_294_967_295)] = 7 * 24 * 3600
    keepalive_s: Annotated[int, Field(ge=5, le=600)] = 30

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"mqtts?://[^/:\s]+(:\d{1,5})?/?", value):
            raise ValueError("must look like mqtt://HOST:PORT or mqtts://HOST:PORT")
        return value.rstrip("/")

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0] if self._has_port else self.url.split("://", 1)[1]

    @property
    def port(self) -> int:
        if self._has_port:
            return int(self.url.rsplit(":", 1)[1])
        return 8883 if self.tls else 1883

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def _has_port(self) -> bool:
        return re.search(r":\d+$", self.url) is not None


class IngestSettings(_Section):
    queue_size: Annotated[int, Field(ge=10, le=65_535)] = 4000
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 1000
    batch_interval_ms: Annotated[int, Field(ge=1, le=60_000)] = 200
    discovery_cap: Annotated[int, Field(ge=0, le=1_000_000)] = 1000

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> IngestSettings:
        if self.batch_size > self.queue_size:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed queue_size ({self.queue_size})")
        return self


class StorageSettings(_Section):
    path: Path = Path("campus.db")
    retention_days: Annotated[float, Field(gt=0)] = 30.0
    max_db_mb: Annotated[float, Field(ge=0)] = 0.0
    disk_watermark_mb: Annotated[float, Field(ge=0)] = 200.0
    minute_rollup_days: Annotated[float, Field(gt=0)] = 90.0
    hour_rollup_days: Annotated[float, Field(gt=0)] = 3650.0
    maintenance_interval_s: Annotated[float, Field(gt=0)] = 60.0
    rollup_interval_s: Annotated[float, Field(gt=0)] = 5.0


class ApiSettings(_Section):
    listen: str = "127.0.0.1:8080"
    token_file: Path | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65_535:
            raise ValueError("must be HOST:PORT, for example 127.0.0.1:8080")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class PresenceSettings(_Section):
    default_timeout_s: Annotated[float, Field(gt=0)] = 300.0
    check_interval_s: Annotated[float, Field(gt=0)] = 5.0
    timeouts: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)

    def timeout_for(self, device_type: str) -> float:
        if device_type in self.timeouts:
            return self.timeouts[device_type]
        return DEFAULT_TIMEOUTS_S.get(device_type, self.default_timeout_s)


class DeviceDeclaration(_Section):
    id: Annotated[str, Field(pattern=f"^{DEVICE_ID_PATTERN}$")]
    type: str = "unknown"
    name: str = ""
    room: str = ""
    units: dict[Annotated[str, Field(pattern=f"^{METRIC_NAME_PATTERN}$")], str] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if not is_device_id(value):
            raise ValueError(f"{value!r} is reserved by the MQTT contract")
        return value


class Settings(_Section):
    site: Annotated[str, Field(pattern=f"^{DEVICE_ID_PATTERN}$")]
    timezone: str = "Asia/Shanghai"
    broker: BrokerSettings = BrokerSettings()
    ingest: IngestSettings = IngestSettings()
    storage: StorageSettings = StorageSettings()
    api: ApiSettings = ApiSettings()
    presence: PresenceSettings = PresenceSettings()
    devices: tuple[DeviceDeclaration, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _unique_devices(self) -> Settings:
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device {device.id!r} is declared twice")
            seen.add(device.id)
        return self

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"campusgw-{self.site}"

    @property
    def token_path(self) -> Path:
        return self.api.token_file or self.storage.path.parent / "api-token"

    @property
    def session_secret_path(self) -> Path:
        return self.storage.path.parent / "session-secret"


def _env_overrides(document: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            raise ConfigError(f"environment variable {name}: empty key")
        target = document
        for key in keys[:-1]:
            child = target.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name}: {key!r} is not a section")
            target = child
        target[keys[-1]] = value


def _resolve_paths(document: dict[str, Any], base: Path) -> None:
    for section, key in (("storage", "path"), ("api", "token_file"), ("broker", "password_file")):
        values = document.get(section)
        if isinstance(values, dict) and isinstance(values.get(key), str) and values[key]:
            path = Path(values[key]).expanduser()
            values[key] = str(path if path.is_absolute() else base / path)
    storage = document.setdefault("storage", {})
    if isinstance(storage, dict) and "path" not in storage:
        storage["path"] = str(base / "campus.db")


def _describe(location: tuple[int | str, ...], document: dict[str, Any]) -> str:
    """Name the place of an error the way the file's author wrote it: ``[section] key`` or ``[[devices]] #2``."""
    if not location:
        return "(top level)"
    head, *rest = location
    if head == "devices" and rest and isinstance(rest[0], int):
        devices = document.get("devices") or []
        index = rest[0]
        ident = devices[index].get("id") if index < len(devices) and isinstance(devices[index], dict) else None
        where = f"[[devices]] #{index + 1}" + (f" (id {ident!r})" if ident else "")
        return f"{where} {'.'.join(map(str, rest[1:]))}".strip()
    if not rest:
        return f"[{head}]" if isinstance(document.get(str(head)), dict) else f"key {head}"
    return f"[{head}] {'.'.join(map(str, rest))}"


def parse(document: dict[str, Any], *, source: str = "config") -> Settings:
    try:
        return Settings.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(error["loc"])
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                top_section = len(location) == 1 and isinstance(document.get(str(location[0])), dict)
                message = "unknown section" if top_section else "unknown key"
            message = message.removeprefix("Value error, ")
            problems.append(f"{source}: {_describe(location, document)}: {message}")
        raise ConfigError("\n".join(problems)) from None


def load(path: Path | str, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, override from the environment, resolve paths and validate one configuration file."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _env_overrides(document, os.environ if environ is None else environ)
    _resolve_paths(document, path.resolve().parent)
    return parse(document, source=str(path))
