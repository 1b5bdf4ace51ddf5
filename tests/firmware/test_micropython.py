"""The firmware's pure logic under the real MicroPython 1.27 interpreter (the webassembly port, in Node).

Each script in ``micropython/checks/`` is run by ``micropython/run.mjs`` in a fresh interpreter whose file
system holds ``firmware/lib/campusnode`` (without ``board/``) and the contract vectors, with nothing importable
but MicroPython's built-in modules and those files. Node and the interpreter's npm package are installed by
``scripts/bootstrap --test``; without them these tests fail, they do not skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "micropython"
RUNNER = HARNESS / "run.mjs"
PACKAGE = HARNESS / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
CHECKS = sorted((HARNESS / "checks").glob("check_*.py"))
PURE = HERE.parents[1] / "firmware" / "lib" / "campusnode"
RELEASE = "1.27.0"

_RESULT = re.compile(r"^RESULT (?P<check>\S+) passed=(?P<passed>\d+) failed=(?P<failed>\d+)$", re.MULTILINE)
_MODULES = re.compile(r"^modules (?P<names>.*)$", re.MULTILINE)
_SET_UP = "scripts/bootstrap --test installs it"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not installed: {_SET_UP} (Debian packages nodejs and npm)", pytrace=False)
    if not (PACKAGE / "micropython.mjs").is_file():
        pytest.fail(
            f"the MicroPython interpreter is not installed in {PACKAGE.relative_to(HERE.parents[1])}: "
            f"run `npm ci` in {HARNESS.relative_to(HERE.parents[1])} ({_SET_UP})",
            pytrace=False,
        )
    return node


@cache
def _run(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_node(), str(RUNNER), str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HARNESS,
        check=False,
    )


def _summary(result: subprocess.CompletedProcess[str]) -> re.Match[str]:
    found = _RESULT.search(result.stdout)
    assert found is not None, f"no RESULT line (exit code {result.returncode}):\n{result.stdout}\n{result.stderr}"
    return found


def test_there_are_checks() -> None:
    assert len(CHECKS) >= 8, CHECKS


@pytest.mark.parametrize("script", CHECKS, ids=[script.stem for script in CHECKS])
def test_check_passes_under_micropython(script: Path) -> None:
    result = _run(script)
    output = f"{result.stdout}\n{result.stderr}"
    assert f"interpreter micropython {RELEASE} webassembly" in result.stdout, output
    assert result.returncode == 0, output
    summary = _summary(result)
    assert summary["check"] == script.stem
    assert int(summary["failed"]) == 0, output
    assert int(summary["passed"]) > 0, output


def test_every_pure_module_runs_under_micropython() -> None:
    pure = {
        ".".join(("campusnode", *path.relative_to(PURE).with_suffix("").parts)).removesuffix(".__init__")
        for path in PURE.rglob("*.py")
        if "board" not in path.relative_to(PURE).parts and "__pycache__" not in path.parts
    }
    imported: set[str] = set()
    for script in CHECKS:
        found = _MODULES.search(_run(script).stdout)
        assert found is not None, _run(script).stdout
        imported.update(found["names"].split())
    assert sorted(pure - imported) == [], "pure modules no check imports under MicroPython"
    assert not [name for name in imported if name == "campusnode.board" or name.startswith("campusnode.board.")]


def test_the_runner_fails_a_failing_check(tmp_path: Path) -> None:
    script = tmp_path / "check_broken.py"
    script.write_text(
        "def test_fine():\n    pass\n\n\ndef test_broken():\n    assert 1 + 1 == 3, 'arithmetic'\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [_node(), str(RUNNER), str(script)], capture_output=True, text=True, timeout=120, cwd=HARNESS, check=False
    )
    assert result.returncode == 1, result.stdout
    assert "FAIL test_broken" in result.stdout and "AssertionError: arithmetic" in result.stdout
    summary = _summary(result)
    assert (summary["passed"], summary["failed"]) == ("1", "1")


def test_the_runner_fails_a_check_that_cannot_import(tmp_path: Path) -> None:
    # the pyscript build freezes an hmac module that an ESP32 does not have: the harness keeps it unimportable
    script = tmp_path / "check_imports_hmac.py"
    script.write_text("import hmac\n\n\ndef test_never_runs():\n    pass\n", encoding="utf-8")
    result = subprocess.run(
        [_node(), str(RUNNER), str(script)], capture_output=True, text=True, timeout=120, cwd=HARNESS, check=False
    )
    assert result.returncode == 1, result.stdout
    assert "did not run: ImportError" in result.stdout, result.stdout
