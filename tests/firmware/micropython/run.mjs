// Runs a check script under the real MicroPython 1.27 interpreter (the webassembly port, pyscript variant) in Node.
//
//   node tests/firmware/micropython/run.mjs checks/check_outbox.py [more checks...]
//
// The interpreter's virtual file system gets what a board's flash would hold, and nothing from the host:
//   /lib/campusnode/...           the firmware's pure modules (firmware/lib/campusnode without board/)
//   /checks/*.py                  the check scripts and their helpers (checks/_*.py)
//   /contracts/vectors.json       the MQTT contract's shared test vectors (gateway/contracts/vectors.json)
// sys.path is /checks and /lib only: the pyscript build's frozen extras (hmac, abc, pathlib, functools, ...),
// which an ESP32 does not have, cannot be imported, so the firmware sees the built-in modules alone.
//
// A check script is plain MicroPython: functions named test_* with asserts, run in name order. Each prints
// "ok" or "FAIL" with its traceback; then "modules ..." names the firmware modules the check imported, and the
// last line is "RESULT <check> passed=<n> failed=<n>". The exit code is 0 only when every check ran at least
// one test and none failed (1 otherwise, 2 for a usage error).

import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..", "..");
// FIRMWARE_LIB points at another copy of firmware/lib (to try a change, or a mutant, without touching the tree).
const firmwarePackage = join(resolve(process.env.FIRMWARE_LIB || join(repo, "firmware", "lib")), "campusnode");
const vectors = join(repo, "gateway", "contracts", "vectors.json");
const checksDir = join(here, "checks");
// Hardware shell: imports machine, network, umqtt; only a board runs it.
const boardOnly = new Set(["board"]);

function pureModules(dir, rel = "") {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name === "__pycache__" || (rel === "" && boardOnly.has(name))) continue;
      found.push(...pureModules(path, rel + name + "/"));
    } else if (name.endsWith(".py")) {
      found.push(rel + name);
    }
  }
  return found;
}

function mkdirs(FS, path) {
  let current = "";
  for (const part of path.split("/").filter(Boolean)) {
    current += "/" + part;
    if (!FS.analyzePath(current).exists) FS.mkdir(current);
  }
}

function copyInto(FS, source, target) {
  mkdirs(FS, dirname(target));
  FS.writeFile(target, readFileSync(source));
}

// The driver runs inside MicroPython: it imports one check module and runs its test_* functions.
function driver(module) {
  return `
import sys
while sys.path:
    sys.path.pop()
sys.path.append("/checks")
sys.path.append("/lib")
_impl = sys.implementation
print("interpreter", _impl.name, ".".join(str(part) for part in _impl.version[:3]), sys.platform)
_module = __import__(${JSON.stringify(module)})
_passed = 0
_failed = 0
for _name in sorted(name for name in dir(_module) if name.startswith("test_")):
    try:
        getattr(_module, _name)()
    except Exception as _exc:
        _failed += 1
        print("FAIL", _name)
        sys.print_exception(_exc)
    else:
        _passed += 1
        print("ok  ", _name)
print("modules", " ".join(sorted(name for name in sys.modules if name.startswith("campusnode"))))
print("RESULT", ${JSON.stringify(module)}, "passed=" + str(_passed), "failed=" + str(_failed))
`;
}

async function runCheck(scriptPath) {
  const module = basename(scriptPath).replace(/\.py$/, "");
  const mp = await loadMicroPython({
    stdout: (line) => process.stdout.write(line + "\n"),
    stderr: (line) => process.stderr.write(line + "\n"),
  });
  const FS = mp.FS;
  const modules = pureModules(firmwarePackage);
  for (const rel of modules) copyInto(FS, join(firmwarePackage, rel), "/lib/campusnode/" + rel);
  for (const name of readdirSync(checksDir).sort()) {
    if (name.endsWith(".py")) copyInto(FS, join(checksDir, name), "/checks/" + name);
  }
  // A script given from elsewhere (or a changed copy) replaces the one of the same name.
  copyInto(FS, scriptPath, "/checks/" + module + ".py");
  copyInto(FS, vectors, "/contracts/vectors.json");
  console.log(`${module}: ${modules.length} pure modules in /lib/campusnode`);
  try {
    mp.runPython(driver(module));
  } catch (error) {
    if (error.name !== "PythonError") throw error;
    console.log(`FAIL ${module} did not run: ${error.type}`);
    console.log(error.message);
    return false;
  }
  const passed = mp.globals.get("_passed");
  const failed = mp.globals.get("_failed");
  return failed === 0 && passed > 0;
}

const scripts = process.argv.slice(2);
if (scripts.length === 0) {
  console.error("usage: node run.mjs CHECK.py [CHECK.py ...]");
  process.exit(2);
}
let ok = true;
for (const script of scripts) {
  // Each check gets a fresh interpreter: no module state leaks from one to the next.
  if (!(await runCheck(resolve(script)))) ok = false;
}
process.exit(ok ? 0 : 1);
