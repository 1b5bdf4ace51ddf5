"""A typed reader over one parsed TOML table that remembers where it is, so every error names file and key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from simulators.errors import ScenarioError

_REQUIRED: Final = object()


class TableReader:
    """Reads keys of one table; ``finish()`` rejects the keys nobody asked for (a typo is an error, not a no-op)."""

    def __init__(self, table: Mapping[str, object], where: str, source: str, *, separator: str = " ") -> None:
        self._table = table
        self._where = where
        self._source = source
        self._separator = separator
        self._read: set[str] = set()

    @property
    def where(self) -> str:
        return self._where

    def error(self, key: str, message: str) -> ScenarioError:
        place = f"{self._where}{self._separator}{key}" if self._where else f"key {key}"
        return ScenarioError(f"{self._source}: {place}: {message}")

    def has(self, key: str) -> bool:
        return key in self._table

    def _get(self, key: str, default: object) -> object:
        self._read.add(key)
        if key in self._table:
            return self._table[key]
        if default is _REQUIRED:
            raise self.error(key, "is required")
        return default

    def text(self, key: str, default: str | object = _REQUIRED) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_kind(value)}")
        return value

    def optional_text(self, key: str) -> str | None:
        self._read.add(key)
        return self.text(key) if key in self._table else None

    def integer(self, key: str, default: int | object = _REQUIRED, *, low: int, high: int) -> int:
        value = self._get(key, default)
        if type(value) is not int:
            raise self.error(key, f"must be an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, key: str, default: float | object = _REQUIRED, *, low: float, high: float = math.inf) -> float:
        value = self._get(key, default)
        if type(value) not in (int, float):
            raise self.error(key, f"must be a number, got {_kind(value)}")
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number) or not low <= number <= high:
            bound = f"at least {low}" if high == math.inf else f"between {low} and {high}"
            raise self.error(key, f"must be {bound}, got {value}")
        return number

    def optional_number(self, key: str, *, low: float = -math.inf) -> float | None:
        self._read.add(key)
        return self.number(key, low=low) if key in self._table else None

    def texts(self, key: str, default: tuple[str, ...] | object = _REQUIRED) -> tuple[str, ...]:
        value = self._get(key, default)
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(key, "must be a list of strings")
        return tuple(value)

    def table(self, key: str) -> TableReader:
        value = self._get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, got {_kind(value)}")
        if not self._where:
            return TableReader(value, f"[{key}]", self._source)
        return TableReader(value, f"{self._where} {key}", self._source, separator=".")

    def tables(self, key: str) -> list[TableReader]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(key, f"must be an array of tables ([[{key}]]), got {_kind(value)}")
        return [TableReader(item, f"[[{key}]] #{index}", self._source) for index, item in enumerate(value, 1)]

    def all_keys(self) -> list[str]:
        self._read.update(self._table)
        return list(self._table)

    def finish(self) -> None:
        unknown = sorted(set(self._table) - self._read)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)
