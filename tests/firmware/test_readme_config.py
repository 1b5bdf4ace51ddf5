"""firmware/README.md cannot drift from the firmware: each config.json example in it parses with
``campusnode.config.parse``, every key ``config.py`` reads is in its table with the same default and range, and its
pin table is ``boards.py``'s."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from campusnode import config
from campusnode.boards import PIN_NAMES, PINMAPS

README = Path(__file__).resolve().parents[2] / "firmware" / "README.md"
CONFIG_TABLE = "| key | default | allowed | what it does |"
PIN_TABLE = "| pin (`pins.…`) |"
#: Keys whose default is not a constant (the table says what it is in words).
COMPUTED_DEFAULTS = {"mqtt.user": "the device id"}


def _text() -> str:
    return README.read_text(encoding="utf-8")


def _examples() -> list[str]:
    return re.findall(r"^```json\n(.*?)^```", _text(), re.M | re.S)


def _table(header: str) -> dict[str, list[str]]:
    """The rows of the table whose header line starts with ``header``, by the key in their first cell."""
    lines = _text().splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(header))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        key = cells[0].strip("`")
        assert key not in rows, f"{key} documented twice"
        rows[key] = cells
    return rows


@dataclass
class Setting:
    defaults: list[object] = field(default_factory=list)
    required: bool = False
    ranges: set[tuple[int, int]] = field(default_factory=set)


@pytest.fixture
def accepted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Setting]]:
    """Every key ``config.parse`` reads while parsing the README's examples, with its default, whether it is
    required, and its range (integers)."""
    settings: dict[str, Setting] = {}
    read = config._Section._get
    integer = config._Section.integer

    def recording_get(section: config._Section, key: str, default: object, required: bool) -> object:
        setting = settings.setdefault(section.path + key, Setting())
        setting.defaults.append(default)
        setting.required |= required
        return read(section, key, default, required)

    def recording_integer(section: config._Section, key: str, default: int, low: int, high: int) -> int:
        settings.setdefault(section.path + key, Setting()).ranges.add((low, high))
        return integer(section, key, default, low, high)

    monkeypatch.setattr(config._Section, "_get", recording_get)
    monkeypatch.setattr(config._Section, "integer", recording_integer)
    for example in _examples():
        config.parse(example, "README.md")
    yield settings


def test_every_example_config_parses() -> None:
    examples = _examples()
    apps = [config.parse(example, "README.md").app for example in examples]
    assert sorted(apps) == sorted(config.APPS), "one example per app"


def test_every_key_is_documented_with_its_default_and_range(accepted: dict[str, Setting]) -> None:
    rows = _table(CONFIG_TABLE)
    pins = _table(PIN_TABLE)
    assert {key for key in accepted if not key.startswith("pins.")} == set(rows), "keys config.py reads"
    assert {f"pins.{name}" for name in PIN_NAMES} == set(pins)
    for key, setting in accepted.items():
        _, default, allowed, meaning = rows[key]
        assert meaning, key
        if default.startswith("`"):
            documented = json.loads(default.split("`")[1])
            assert all(value == documented for value in setting.defaults), (key, setting.defaults, documented)
        elif default.startswith("required"):
            assert setting.required, f"{key} is not required"
        else:
            assert COMPUTED_DEFAULTS.get(key) == default, f"{key}: default {default!r}"
        for low, high in setting.ranges:
            assert re.search(rf"\b{low} to {high}\b", allowed), f"{key}: range {low} to {high}, documented {allowed!r}"


def test_the_pin_table_is_boards_py() -> None:
    header = next(line for line in _text().splitlines() if line.startswith(PIN_TABLE))
    boards = [cell.strip().strip("`") for cell in header.strip().strip("|").split("|")[1:-1]]
    assert sorted(boards) == sorted(PINMAPS)
    for name, cells in _table(PIN_TABLE).items():
        pin = name.removeprefix("pins.")
        for board, cell in zip(boards, cells[1:-1], strict=True):
            value = PINMAPS[board][pin]
            assert cell == ("none" if value is None else str(value)), f"{board} {name}: {cell} is not {value}"
