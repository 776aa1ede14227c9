"""Plugins written as WAT inside the tests, and the values to load them.

`module(body, imports=[...])` wraps a module body with the ABI v1 basics
(memory, a bump allocator, rv_abi_version) and the named host imports, each
bound to `$name`. Data for strings goes in the body with `(data ...)` at
offsets below 4096; the allocator hands out memory from 8192 up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import wasmtime

from executor.spec import Limits, PluginSpec
from hostcalls.abi import HOST_FUNCTIONS
from hostcalls.capabilities import parse

PRELUDE = """
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (func (export "rv_abi_version") (result i32) (i32.const 1))
  (func $alloc (export "rv_alloc") (param $n i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (if (i32.lt_u (local.get $end) (local.get $p)) (then (return (i32.const 0))))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end)
                  (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))) (i32.const -1))
              (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $p))
"""


def import_line(name: str) -> str:
    fn = HOST_FUNCTIONS[name]
    params = f"(param {' '.join(fn.params)})" if fn.params else ""
    results = f"(result {' '.join(fn.results)})" if fn.results else ""
    return f'(import "ruvector" "{name}" (func ${name} {params} {results}))'


def wat(body: str, imports: Iterable[str] = (), prelude: bool = True) -> str:
    lines = [import_line(n) for n in imports]
    return "(module\n" + "\n".join(lines) + (PRELUDE if prelude else "") + body + "\n)"


def module(body: str, imports: Iterable[str] = (), prelude: bool = True) -> bytes:
    return bytes(wasmtime.wat2wasm(wat(body, imports, prelude)))


def spec(
    name: str,
    wasm: bytes,
    caps: Iterable[str] = (),
    approved: Iterable[str] = (),
    config: Mapping[str, object] | None = None,
    limits: Limits | None = None,
    sha256: str | None = None,
) -> PluginSpec:
    return PluginSpec(
        name=name,
        version="1.0.0",
        wasm=wasm,
        wasm_sha256=sha256 or hashlib.sha256(wasm).hexdigest(),
        declared=frozenset(parse(c) for c in caps),
        approved=frozenset(parse(c) for c in approved),
        config=dict(config or {}),
        limits=limits or Limits(),
    )


# A plugin that does nothing but count its ticks into the metric "ticks".
COUNTER = module(
    """
  (data (i32.const 16) "ticks")
  (global $n (mut i32) (i32.const 0))
  (func (export "on_tick") (param i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (drop (call $report_metric (i32.const 16) (i32.const 5) (f64.convert_i32_u (global.get $n)))))
""",
    imports=["report_metric"],
)

NOOP = module('(func (export "on_tick") (param i32))')


class Strings:
    """Lays out string constants for a WAT body.

    `s("text")` returns the `ptr len` operand pair for the string, placing it
    in a data segment below 4096; `s.data()` returns the segments.
    """

    def __init__(self, start: int = 16) -> None:
        self._next = start
        self._at: dict[str, int] = {}

    def __call__(self, text: str) -> str:
        raw = text.encode()
        if text not in self._at:
            self._at[text] = self._next
            self._next += (len(raw) + 8) & ~7
            assert self._next < 4096, "string area full"
        return f"(i32.const {self._at[text]}) (i32.const {len(raw)})"

    def data(self) -> str:
        return "\n".join(f'(data (i32.const {at}) "{_escape(t)}")' for t, at in self._at.items())


def _escape(text: str) -> str:
    return "".join(
        c if c.isalnum() or c in " ._-/:,{}[]" else f"\\{b:02x}" for c in text for b in c.encode()
    )
