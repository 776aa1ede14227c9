"""AssemblyScript plugins: `asc` with the SDK in sdk/assemblyscript.

A plugin directory holds `package.json` (naming the `assemblyscript`
package) and its entry file `assembly/index.ts`, which imports the SDK as
`"ruvector"`. Building needs no network and nothing installed in the plugin:

- the compiler is the plugin's own `node_modules/assemblyscript` if it has
  one (its author pinned it), else the SDK's, which `npm ci` installs from
  the SDK's package-lock.json;
- the compiler options are the SDK's `asconfig.json`: the minimal runtime
  whose collector the SDK's hooks run, the 64 MiB memory ceiling, the abort
  handler that keeps the module free of `env` imports, and the `path`
  under which `"ruvector"` resolves. A plugin's own asconfig.json is not read, so every
  plugin gets the settings the SDK was written for.

The SDK is found at $RUVECTOR_ASSEMBLYSCRIPT_SDK, else in the RuVector
checkout this module belongs to.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from authoring.toolchain import BuildFailed, Toolchain, ToolchainMissing, run_tool

SDK_ENV = "RUVECTOR_ASSEMBLYSCRIPT_SDK"
ASC_VERSION = "0.28.20"  # sdk/assemblyscript/package.json pins the same
ENTRY = Path("assembly") / "index.ts"
_ASC_JS = Path("node_modules") / "assemblyscript" / "bin" / "asc.js"


def sdk_dir() -> Path:
    """Where the AssemblyScript SDK is: $RUVECTOR_ASSEMBLYSCRIPT_SDK or the checkout's."""
    configured = os.environ.get(SDK_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "sdk" / "assemblyscript"


class AssemblyScript:
    name = "assemblyscript"

    def detect(self, directory: Path) -> bool:
        """A package.json naming the assemblyscript package, or .ts files under assembly/."""
        if _names_assemblyscript(directory / "package.json"):
            return True
        assembly = directory / "assembly"
        return assembly.is_dir() and any(assembly.glob("*.ts"))

    def build(self, directory: Path) -> bytes:
        """Compile assembly/index.ts with asc and the SDK's asconfig.json.

        Raises ToolchainMissing (no node, no SDK, compiler not installed)
        or BuildFailed (no entry file, compiler errors).
        """
        sdk = sdk_dir()
        config = sdk / "asconfig.json"
        if not config.is_file():
            raise ToolchainMissing(
                f"the AssemblyScript SDK is not at {sdk} (no asconfig.json): "
                f"set {SDK_ENV} to a RuVector checkout's sdk/assemblyscript"
            )
        node = shutil.which("node")
        if node is None:
            raise ToolchainMissing(
                "node is not installed (needed to build AssemblyScript plugins): install "
                f"Node.js 20 or newer with npm, then run `npm ci --prefix {sdk}`"
            )
        asc = _compiler(directory, sdk)
        if not (directory / ENTRY).is_file():
            raise BuildFailed(f"{directory}: no {ENTRY.as_posix()}, the plugin's entry file")
        with tempfile.TemporaryDirectory(prefix="ruvector-asc-") as tmp:
            out = Path(tmp) / "plugin.wasm"
            run_tool(
                [node, str(asc), ENTRY.as_posix(), "--config", str(config), "--outFile", str(out)],
                cwd=directory,
                what=f"AssemblyScript plugin {directory}",
            )
            try:
                return out.read_bytes()
            except OSError as exc:
                raise BuildFailed(f"asc reported success but wrote no wasm: {exc}") from None

    def skeleton(self, name: str) -> Mapping[str, str]:
        """package.json, assembly/index.ts and .gitignore of a plugin that
        logs its greeting at start-up and the CPU usage every tick."""
        package = {
            "name": name,
            "version": "0.1.0",
            "private": True,
            "description": f"The {name} RuVector plugin, in AssemblyScript",
            "scripts": {"build": "ruvector plugin build ."},
            "devDependencies": {"assemblyscript": ASC_VERSION},
        }
        return {
            "package.json": json.dumps(package, indent=2) + "\n",
            ENTRY.as_posix(): _SKELETON_SOURCE,
            ".gitignore": "node_modules/\n",
        }


def _names_assemblyscript(package_json: Path) -> bool:
    try:
        package = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(package, dict):
        return False
    for section in ("dependencies", "devDependencies"):
        deps = package.get(section)
        if isinstance(deps, dict) and "assemblyscript" in deps:
            return True
    return False


def _compiler(directory: Path, sdk: Path) -> Path:
    for home in (directory, sdk):
        asc = home / _ASC_JS
        if asc.is_file():
            return asc
    raise ToolchainMissing(
        f"the AssemblyScript compiler is not installed: run `npm ci --prefix {sdk}` "
        f"(installs assemblyscript {ASC_VERSION} from the SDK's package-lock.json)"
    )


_SKELETON_SOURCE = """\
// The plugin's entry file. The SDK ("ruvector") is documented in
// sdk/assemblyscript/README.md of RuVector; the ABI in docs/abi.md.
import { Plugin, register, configString, getCpuUsage, info, warn } from "ruvector";

// Required by ABI v1, then the hooks this plugin handles: export only those.
export { rv_alloc, rv_abi_version, on_init, on_tick } from "ruvector";

class Main extends Plugin {
  ticks: i32 = 0;

  onInit(): void {
    info(configString("greeting", "hello"));
  }

  onTick(intervalMs: i32): void {
    this.ticks++;
    const cpu = getCpuUsage(); // ReadSystemInfo
    if (cpu.ok) info("tick " + this.ticks.toString() + ": cpu " + cpu.value.toString() + "%");
    else warn("tick " + this.ticks.toString() + ": no CPU figure (" + cpu.statusName + ")");
  }
}

register(new Main());
"""

TOOLCHAIN: Toolchain = AssemblyScript()
