"""The plugins the benchmarks run, written as WAT, and the values to load them
(specs for the executor, plugin directories for the reconciler).

Each ABI v1 module gets the same prelude as the test plugins (memory, a bump
allocator, rv_abi_version). Where a figure needs a loop, on_tick's argument is
the iteration count, so one module serves every size of run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import wasmtime

from executor.spec import Limits, PluginSpec
from hostcalls.abi import HOST_FUNCTIONS
from hostcalls.capabilities import parse

# Copied from tests/plugins.py: the bench must not import tests/.
PRELUDE = """
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (func (export "rv_abi_version") (result i32) (i32.const 1))
  (func $alloc (export "rv_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap)
      (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
                  (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1)))
                  (i32.const -1))
              (then (return (i32.const 0))))))
    (local.get $p))
"""

# Limits for plugins that run long on purpose: nothing may stop them.
UNBOUNDED = Limits(
    fuel_per_call=1 << 62,
    max_call_ms=60_000,
    max_host_calls_per_call=1 << 30,
)


def module(body: str, imports: Iterable[str] = ()) -> bytes:
    """An ABI v1 module: the prelude, `body`, and each named host import as `$name`."""
    lines = [_import_line(name) for name in imports]
    return bytes(wasmtime.wat2wasm("(module\n" + "\n".join(lines) + PRELUDE + body + "\n)"))


def _import_line(name: str) -> str:
    fn = HOST_FUNCTIONS[name]
    params = f"(param {' '.join(fn.params)})" if fn.params else ""
    results = f"(result {' '.join(fn.results)})" if fn.results else ""
    return f'(import "ruvector" "{name}" (func ${name} {params} {results}))'


def spec(
    name: str, wasm: bytes, approved: Iterable[str] = (), limits: Limits | None = None
) -> PluginSpec:
    """A spec whose capabilities are all declared and approved."""
    caps = frozenset(parse(c) for c in approved)
    return PluginSpec(
        name=name,
        version="1.0.0",
        wasm=wasm,
        wasm_sha256=hashlib.sha256(wasm).hexdigest(),
        declared=caps,
        approved=caps,
        limits=limits or Limits(),
    )


NOOP = module('(func (export "on_tick") (param i32))')


def numbered_noop(k: int) -> bytes:
    """A no-op plugin whose bytes differ for each k: start-up compiles each one."""
    return module(
        f'(global (export "id") i32 (i32.const {k}))\n(func (export "on_tick") (param i32))'
    )


def numbered_hostcall(k: int) -> bytes:
    """A plugin importing get_cpu_usage whose bytes differ for each k: each
    is compiled afresh and links a host function."""
    return module(
        f'(global (export "id") i32 (i32.const {k}))\n'
        '(func (export "on_tick") (param i32) (drop (call $get_cpu_usage)))',
        imports=["get_cpu_usage"],
    )


# A config schema as plugins ship them (examples/hello's): one bounded string.
CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"greeting": {"type": "string", "maxLength": 200}},
    "additionalProperties": False,
}


def plugin_dir(
    directory: Path, name: str, wasm: bytes, config_schema: Mapping[str, object] | None = None
) -> Path:
    """Write a plugin directory, as `dir:` sources are: `wasm` as plugin.wasm,
    the config schema if given, and a manifest.toml naming them, the wasm's
    sha256 pinned, no capabilities."""
    directory.mkdir(parents=True)
    (directory / "plugin.wasm").write_bytes(wasm)
    extra = {}
    if config_schema is not None:
        (directory / "config.schema.json").write_text(json.dumps(config_schema))
        extra["config_schema"] = "config.schema.json"
    fields = {
        "name": name,
        "version": "1.0.0",
        "author": "bench",
        "description": "a no-op plugin",
        "license": "MIT",
        "min_ruvector_version": "0.1.0",
        "wasm_file": "plugin.wasm",
        "wasm_sha256": hashlib.sha256(wasm).hexdigest(),
        **extra,
    }
    # json.dumps gives a valid TOML basic string for these values.
    lines = [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    lines += ["capabilities = []", 'platforms = ["linux", "macos", "windows"]']
    (directory / "manifest.toml").write_text("\n".join(lines) + "\n")
    return directory


def _counted_loop(body: str) -> str:
    """on_tick running `body` as many times as its argument says."""
    return f"""
  (global $sink (mut f64) (f64.const 0))
  (func (export "on_tick") (param $n i32)
    (local $acc f64)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        {body}
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (global.set $sink (local.get $acc)))
"""


# get_cpu_usage in a loop; the sum keeps every result live.
HOSTCALL_LOOP = module(
    _counted_loop("(local.set $acc (f64.add (local.get $acc) (call $get_cpu_usage)))"),
    imports=["get_cpu_usage"],
)
# The same loop without the call: its own cost, to subtract.
EMPTY_LOOP = module(
    _counted_loop("(local.set $acc (f64.add (local.get $acc) (f64.const 1)))"),
)


def _spin_loop(body: str) -> bytes:
    """on_tick running integer arithmetic `body` as many times as its argument says."""
    return module(f"""
  (global $out (mut i32) (i32.const 0))
  (func (export "on_tick") (param $n i32)
    (local $x i32) (local $y i32)
    (local.set $x (i32.const 12345))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        {body}
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (global.set $out (i32.add (local.get $x) (local.get $y))))
""")


# Fuel's cost depends on the loop body: metering adds a count and a check to
# each iteration. A body whose own dependency chain is long (a multiply, a few
# cycles) runs those extra instructions in its shadow; a body of cheap
# single-cycle operations pays for them in full. Both are measured.
SPIN_MULTIPLY = _spin_loop("""
        (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245)) (i32.const 12345)))
        (local.set $y (i32.xor (local.get $y) (i32.rotl (local.get $x) (i32.const 7))))""")
SPIN_CHEAP = _spin_loop("""
        (local.set $x (i32.add (local.get $x) (local.get $n)))
        (local.set $y (i32.xor (local.get $y) (i32.shl (local.get $n) (i32.const 3))))
        (local.set $x (i32.sub (local.get $x) (i32.and (local.get $y) (i32.const 255))))""")

# Extism's calling convention: an export taking nothing, returning 0 for success.
EXTISM_NOOP = bytes(wasmtime.wat2wasm('(module (func (export "noop") (result i32) (i32.const 0)))'))
