"""C plugins: built with Zig's clang from PyPI (`ziglang`).

A directory holds a C plugin when it has a `.c` file and no Cargo.toml or
package.json (those belong to the Rust and AssemblyScript toolchains). Every
`.c` file at its top level is compiled into one module against the SDK
header `sdk/c/ruvector.h`:

    python -m ziglang cc --target=wasm32-freestanding -O2 -g0 -nostdlib
        -Wl,--no-entry -Wl,--export-dynamic -I sdk/c -o plugin.wasm *.c

The build is reproducible, so a pinned hash can be checked by building
again: `-g0` leaves out debug info (zig cc adds it by default, with the
build's directories in it), the sources are named relative to the plugin
directory, and the output file always has the same name (wasm-ld writes it
into the module's name section).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from authoring.toolchain import BuildFailed, ToolchainMissing, run_tool

SDK_DIR = Path(__file__).resolve().parent.parent / "sdk" / "c"
HEADER = "ruvector.h"
OUTPUT_NAME = "plugin.wasm"  # fixed: it is written into the module

FLAGS = (
    "--target=wasm32-freestanding",
    "-O2",
    "-g0",
    "-nostdlib",
    "-Wl,--no-entry",
    "-Wl,--export-dynamic",
)

_OTHER_LANGUAGES = ("Cargo.toml", "package.json")


class CToolchain:
    """The C toolchain: ziglang's `zig cc`, run by this Python interpreter."""

    name = "c"

    def detect(self, directory: Path) -> bool:
        if any((directory / marker).exists() for marker in _OTHER_LANGUAGES):
            return False
        return bool(_sources(directory))

    def build(self, directory: Path) -> bytes:
        """Compile the directory's .c files to wasm.

        Raises ToolchainMissing (no ziglang, or no SDK header) or
        BuildFailed (compiler errors, with the compiler's output).
        """
        _check_installed()
        sources = _sources(directory)
        if not sources:
            raise BuildFailed(f"{directory}: no .c file to build")
        with tempfile.TemporaryDirectory(prefix="ruvector-c-") as tmp:
            out = Path(tmp) / OUTPUT_NAME
            args = [
                sys.executable,
                "-m",
                "ziglang",
                "cc",
                *FLAGS,
                "-I",
                str(SDK_DIR),
                "-o",
                str(out),
                *sources,
            ]
            run_tool(args, cwd=directory, what=f"C plugin {directory}")
            try:
                return out.read_bytes()
            except OSError as exc:
                raise BuildFailed(f"{directory}: the compiler wrote no wasm: {exc}") from exc

    def skeleton(self, name: str) -> Mapping[str, str]:
        return {"plugin.c": SKELETON.replace("{name}", name)}


def _sources(directory: Path) -> list[str]:
    """The top-level .c files, sorted, relative to `directory`."""
    try:
        return sorted(p.name for p in directory.iterdir() if p.suffix == ".c" and p.is_file())
    except OSError:
        return []


def _check_installed() -> None:
    if importlib.util.find_spec("ziglang") is None:
        raise ToolchainMissing(
            "the C toolchain is not installed: pip install ziglang "
            f"(into the environment of {sys.executable})"
        )
    if not (SDK_DIR / HEADER).is_file():
        raise ToolchainMissing(f"the C SDK header is missing: {SDK_DIR / HEADER}")


SKELETON = """\
/* {name}: a RuVector plugin in C (ABI v1). Build: ruvector plugin build .
 * The SDK is one header, sdk/c/ruvector.h; see sdk/c/README.md. */
#define RUVECTOR_IMPLEMENTATION /* in exactly one .c file */
#include "ruvector.h"

/* Once, at start-up: log the configured greeting. */
static void init(void)
{
    char greeting[256];
    rv_config_str("greeting", greeting, sizeof greeting, "hello");
    rv_log_info(greeting);
}

/* Every tick: log the CPU use the host measured (ReadSystemInfo). */
static void tick(int32_t interval_ms)
{
    char text[128];
    rv_buf line = rv_buf_init(text, sizeof text);
    double cpu;
    rv_status status = rv_get_cpu_usage(&cpu);
    (void)interval_ms;
    if (status != RV_OK) {
        rv_buf_str(rv_buf_str(&line, "no CPU figure: "), rv_status_name(status));
        rv_log_warn(text);
        return;
    }
    rv_buf_str(&line, "cpu ");
    rv_buf_f64(&line, cpu, 1);
    rv_buf_str(&line, "%");
    rv_log_info(text);
    rv_report_metric("cpu_percent", cpu);
}

RV_ON_INIT(init)
RV_ON_TICK(tick)
"""

TOOLCHAIN = CToolchain()
