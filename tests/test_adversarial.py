"""The adversarial corpus: each plugin breaks the rules in one way.

For each, the host survives, the right violation or refusal is reported, and
a well-behaved plugin loaded beside it keeps ticking.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
import wasmtime

from executor.executor import Executor
from executor.loader import check_module
from executor.spec import Limits
from hostcalls.capabilities import CapabilityError, grant, parse
from ruvector.errors import PluginRefused
from tests.plugins import COUNTER, NOOP, PRELUDE, Strings, module, spec

TICKS = 4

# name -> (body, imports, limits, expected violation kind, detail fragment)
RUNTIME_CASES = {
    "infinite-loop": (
        '(func (export "on_tick") (param i32) (loop $l (br $l)))',
        [],
        Limits(),
        "FUEL",
        "fuel",
    ),
    "slow-loop": (
        '(func (export "on_tick") (param i32) (loop $l (br $l)))',
        [],
        Limits(fuel_per_call=10**15, max_call_ms=50),
        "DEADLINE",
        "time limit",
    ),
    "grow-bomb": (
        """(func (export "on_tick") (param i32)
             (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))))""",
        [],
        Limits(max_memory_mb=2),
        "MEMORY",
        "2 MiB",
    ),
    "deep-recursion": (
        '(func $r (export "on_tick") (param i32) (call $r (i32.add (local.get 0) (i32.const 1))))',
        [],
        Limits(),
        "TRAP",
        "stack overflow",
    ),
    "trap-in-init": ('(func (export "on_init") unreachable)', [], Limits(), "TRAP", "on_init"),
    "oob-pointer": (
        '(func (export "on_tick") (param i32) (drop (call $log (i32.const 2) (i32.const 0x7fff0000) (i32.const 4))))',
        ["log"],
        Limits(),
        "HOSTCALL",
        "outside linear memory",
    ),
    "negative-pointer": (
        '(func (export "on_tick") (param i32) (drop (call $log (i32.const 2) (i32.const -8) (i32.const 4))))',
        ["log"],
        Limits(),
        "HOSTCALL",
        "outside linear memory",
    ),
    "oob-length": (
        '(func (export "on_tick") (param i32) (drop (call $get_config (i32.const 65500) (i32.const 200))))',
        ["get_config"],
        Limits(),
        "HOSTCALL",
        "outside linear memory",
    ),
    "huge-log-string": (
        """(func (export "on_tick") (param i32)
             (drop (memory.grow (i32.const 64)))
             (drop (call $log (i32.const 2) (i32.const 0) (i32.const 3000000))))""",
        ["log"],
        Limits(),
        "HOSTCALL",
        "cap",
    ),
    "log-flood": (
        """(data (i32.const 16) "flood")
           (func (export "on_tick") (param i32) (local $i i32)
             (loop $l
               (drop (call $log (i32.const 2) (i32.const 16) (i32.const 5)))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000)))))""",
        ["log"],
        Limits(fuel_per_call=10**9, max_call_ms=5000),
        "HOSTCALL",
        "host calls",
    ),
    "bad-utf8": (
        """(data (i32.const 16) "\\ff\\fe")
           (func (export "on_tick") (param i32) (drop (call $log (i32.const 2) (i32.const 16) (i32.const 2))))""",
        ["log"],
        Limits(),
        "HOSTCALL",
        "UTF-8",
    ),
}


@pytest.mark.parametrize("case", sorted(RUNTIME_CASES))
def test_runtime_violation_disables_only_the_offender(case, make_executor, recorder) -> None:
    body, imports, limits, kind, fragment = RUNTIME_CASES[case]
    ex: Executor = make_executor()
    ex.load(spec("good", COUNTER))
    ex.load(spec("bad", module(body, imports), limits=limits))
    for _ in range(TICKS):
        ex.tick()

    kinds = recorder.kinds("bad")
    assert kinds[:3] == [kind] * 3, recorder.violations
    assert fragment in str(recorder.violations[0][1])
    assert not ex.plugins["bad"].enabled
    assert recorder.disabled_[0][0] == "bad"
    assert any(p == "ruvector" and "'bad' was disabled" in m for p, _, m in recorder.notes)
    # the good one ticked every time, undisturbed
    assert recorder.kinds("good") == []
    assert ex.plugins["good"].state.metrics_snapshot()["ticks"]["last"] == TICKS


def test_log_flood_is_throttled_before_it_is_stopped(make_executor, recorder) -> None:
    body, imports, limits, _, _ = RUNTIME_CASES["log-flood"]
    ex = make_executor()
    ex.load(spec("bad", module(body, imports), limits=limits))
    ex.tick()
    flood = [m for m in recorder.messages("bad") if m == "flood"]
    assert len(flood) == Limits().max_log_lines_per_tick


def test_disabled_state_survives_a_restart(make_executor, recorder) -> None:
    body, imports, limits, _, _ = RUNTIME_CASES["infinite-loop"]
    bad = spec("bad", module(body, imports), limits=limits)
    ex = make_executor()
    ex.load(bad)
    for _ in range(3):
        ex.tick()
    ex.shutdown()
    recorder.disabled_.clear()

    again = make_executor()
    plugin = again.load(bad)
    assert not plugin.enabled
    assert recorder.disabled_ and "3 violations" in recorder.disabled_[0][1]
    again.tick()  # a disabled plugin is never called
    assert plugin.metrics.calls == 0
    # a new build of the plugin starts with a clean record
    rebuilt = spec("bad", module(body + '(func (export "x"))', imports), limits=limits)
    again.unload("bad")
    assert again.load(rebuilt).enabled


def test_violation_restarts_the_instance(make_executor, recorder) -> None:
    """After a trap the instance is rebuilt and on_init runs again."""
    s = Strings()
    body = f"""
      (global $n (mut i32) (i32.const 0))
      (func (export "on_init") (drop (call $log (i32.const 2) {s("init")})))
      (func (export "on_tick") (param i32)
        (global.set $n (i32.add (global.get $n) (i32.const 1)))
        (if (i32.eq (global.get $n) (i32.const 2)) (then unreachable)))"""
    body = s.data() + body
    ex = make_executor()
    ex.load(spec("flaky", module(body, ["log"])))
    for _ in range(3):  # ok, trap, restart and ok
        ex.tick()
    assert recorder.kinds("flaky") == ["TRAP"]
    assert recorder.messages("flaky").count("init") == 2
    assert ex.plugins["flaky"].metrics.restarts == 1
    assert ex.plugins["flaky"].enabled


# -- refused before any code runs ---------------------------------------------

KILLER = module(
    '(func (export "on_tick") (param i32) (drop (call $kill_process (i32.const 1))))',
    ["kill_process"],
)
START_LOGS = Strings()
# A start function proves "before any of its code runs": it would log.
_START = f"""(func $start (drop (call $log (i32.const 2) {START_LOGS("ran")}))) (start $start)"""
WITH_START = START_LOGS.data() + _START


def _no_prelude(body: str) -> bytes:
    return module(body, prelude=False)


REFUSALS = {
    "import-undeclared": (
        spec("p", KILLER),
        "ruvector.kill_process needs capability KillProcess, which the manifest does not declare",
    ),
    "import-unapproved": (spec("p", KILLER, caps=["KillProcess"]), "approve KillProcess"),
    "import-unknown": (
        spec(
            "p",
            _no_prelude('(import "ruvector" "run_command" (func)) (memory (export "memory") 1)'),
        ),
        "no such host function",
    ),
    "import-other-module": (
        spec(
            "p",
            _no_prelude(
                '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'
            ),
        ),
        "only module 'ruvector'",
    ),
    "import-wrong-signature": (
        spec("p", _no_prelude('(import "ruvector" "log" (func (param i32)))')),
        "ABI v1 defines",
    ),
    "hash-mismatch": (spec("p", NOOP, sha256="0" * 64), "SHA-256 mismatch"),
    "malformed": (spec("p", b"\0asm\x01\0\0\0\x01\xff\xff"), "malformed wasm"),
    "malformed-content": (
        spec("p", b"\0asm\x01\0\0\0\x01\x02\x01\x61"),
        "failed to parse WebAssembly module: invalid leading byte",
    ),
    "too-many-functions": (
        spec("p", module("(func)" * 50_001)),
        "functions; the limit is 50000",
    ),
    "too-many-exports": (
        spec("p", module("".join(f'(func (export "e{i}"))' for i in range(1025)))),
        "declares 1028 exports; the limit is 1024",
    ),
    "wat-text": (spec("p", b'(module (memory (export "memory") 1))'), "WAT text"),
    "garbage": (spec("p", b"MZ\x90\0 a windows exe"), "not a wasm binary"),
    "no-memory": (
        spec(
            "p",
            _no_prelude(
                '(func (export "rv_alloc") (param i32) (result i32) i32.const 0) (func (export "rv_abi_version") (result i32) i32.const 1)'
            ),
        ),
        "missing required export 'memory'",
    ),
    "no-allocator": (
        spec(
            "p",
            _no_prelude(
                '(memory (export "memory") 1) (func (export "rv_abi_version") (result i32) i32.const 1)'
            ),
        ),
        "missing required export 'rv_alloc'",
    ),
    "no-abi-version": (
        spec(
            "p",
            _no_prelude(
                '(memory (export "memory") 1) (func (export "rv_alloc") (param i32) (result i32) i32.const 0)'
            ),
        ),
        "missing required export 'rv_abi_version'",
    ),
    "wrong-hook-signature": (
        spec("p", module('(func (export "on_tick"))')),
        "export 'on_tick' has signature () -> (); ABI v1 requires (i32) -> ()",
    ),
    "wrong-alloc-signature": (
        spec(
            "p",
            _no_prelude(
                '(memory (export "memory") 1) (func (export "rv_alloc") (param i64) (result i64) i64.const 0) (func (export "rv_abi_version") (result i32) i32.const 1)'
            ),
        ),
        "export 'rv_alloc' has signature (i64) -> (i64)",
    ),
    "huge-initial-memory": (
        spec(
            "p",
            _no_prelude(
                PRELUDE.replace('(memory (export "memory") 1)', '(memory (export "memory") 2000)')
            ),
        ),
        "initial memory is 125 MiB; the cap is 64 MiB",
    ),
    "huge-table": (spec("p", module("(table 100000 funcref)")), "cannot instantiate"),
    "abi-version-2": (
        spec(
            "p",
            _no_prelude(
                PRELUDE.replace("(i32.const 1))\n  (func $alloc", "(i32.const 2))\n  (func $alloc")
            ),
        ),
        "declares ABI version 2; this host supports 1",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_plugins_never_run_and_others_keep_ticking(case, make_executor, recorder) -> None:
    bad, fragment = REFUSALS[case]
    ex = make_executor()
    ex.load(spec("good", COUNTER))
    with pytest.raises(PluginRefused) as info:
        ex.load(bad)
    assert info.value.plugin == "p"
    assert fragment in info.value.reason, info.value.reason
    assert "p" not in ex.plugins
    ex.tick()
    assert ex.plugins["good"].state.metrics_snapshot()["ticks"]["last"] == 1


def test_refused_import_runs_no_code(make_executor, recorder) -> None:
    wasm = module(
        WITH_START
        + '(func (export "on_tick") (param i32) (drop (call $kill_process (i32.const 1))))',
        ["log", "kill_process"],
    )
    ex = make_executor()
    with pytest.raises(PluginRefused, match="kill_process"):
        ex.load(spec("p", wasm, caps=["KillProcess"]))
    assert recorder.messages("p") == []


def test_load_all_reports_each_refusal_and_loads_the_rest(make_executor, recorder) -> None:
    ex = make_executor()
    refusals = ex.load_all([spec("a", b"(module)"), spec("good", COUNTER), spec("b", KILLER)])
    assert [r.plugin for r in refusals] == ["a", "b"]
    assert [p for p, _ in recorder.refusals] == ["a", "b"]
    assert list(ex.plugins) == ["good"]


def test_hash_is_checked_on_the_bytes_compiled(make_executor) -> None:
    ex = make_executor()
    good = spec("p", NOOP)
    swapped = replace(good, wasm=COUNTER)  # same pinned hash, other bytes
    with pytest.raises(PluginRefused, match="SHA-256 mismatch"):
        ex.load(swapped)
    assert hashlib.sha256(NOOP).hexdigest() == good.wasm_sha256


def test_run_command_is_refused_outright() -> None:
    with pytest.raises(CapabilityError, match="RunCommand is not available"):
        parse("RunCommand")


def test_rv_alloc_may_not_call_the_host(make_executor, recorder) -> None:
    """The host calls rv_alloc inside a host call: re-entry would nest without end."""
    wasm = _no_prelude(
        """(import "ruvector" "get_memory_status" (func $gms (result i64)))
           (memory (export "memory") 1)
           (func (export "rv_abi_version") (result i32) i32.const 1)
           (func (export "rv_alloc") (param i32) (result i32) (drop (call $gms)) i32.const 16)
           (func (export "on_tick") (param i32) (drop (call $gms)))"""
    )
    ex = make_executor()
    ex.load(spec("good", COUNTER))
    ex.load(spec("reentrant", wasm, caps=["ReadSystemInfo"]))
    ex.tick()
    assert recorder.kinds("reentrant") == ["HOSTCALL"]
    assert "host call from inside rv_alloc" in str(recorder.violations[0][1])
    assert ex.plugins["good"].state.metrics_snapshot()["ticks"]["last"] == 1


def test_a_function_imported_twice_is_linked_once(make_executor, recorder) -> None:
    body = (
        '(import "ruvector" "log" (func $log2 (param i32 i32 i32) (result i32)))'
        + PRELUDE
        + """(data (i32.const 16) "twice")
           (func (export "on_tick") (param i32)
             (drop (call $log (i32.const 2) (i32.const 16) (i32.const 5)))
             (drop (call $log2 (i32.const 2) (i32.const 16) (i32.const 5))))"""
    )
    ex = make_executor()
    ex.load(spec("p", module(body, ["log"], prelude=False)))
    ex.tick()
    assert recorder.messages("p") == ["twice", "twice"]


class _ExhaustedCompiler:
    """A host with no room left for code: compiling fails as wasmtime does then."""

    def __init__(self, engine: object) -> None:
        self.engine = engine

    def compile(self, wasm: bytes, sha256: str) -> object:
        raise wasmtime.WasmtimeError(
            "unable to make memory executable\n\nCaused by:\n"
            "    Cannot allocate memory (os error 12)"
        )


def test_a_host_out_of_room_is_not_blamed_on_the_plugin(make_executor) -> None:
    # 4 to 6 memory mappings per loaded plugin: past vm.max_map_count (65530 by
    # default on Linux), 11,000 to 16,000 plugins in, compiling fails. The module
    # is valid, so the refusal must say the host could not, not "malformed".
    ex = make_executor()
    good = spec("p", NOOP)
    with pytest.raises(PluginRefused) as refused:
        check_module(good, grant((), ()), _ExhaustedCompiler(ex.engine))  # type: ignore[arg-type]
    assert "valid wasm, but the host could not compile it" in refused.value.reason
    assert "Cannot allocate memory" in refused.value.reason
    assert "malformed" not in refused.value.reason
    bad = spec("p", b"\0asm\x01\0\0\0\x01\x02\x01\x61")  # passes the section count
    with pytest.raises(PluginRefused, match="malformed wasm"):
        check_module(bad, grant((), ()), _ExhaustedCompiler(ex.engine))  # type: ignore[arg-type]
