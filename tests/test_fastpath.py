"""executor.fastpath on its own, against the reference binding.

Each test drives both bindings (executor.binding.ReferenceBinding over
wasmtime-py's high-level API, executor.fastpath.FastBinding over the C API's
unchecked entry points) through the same module and compares what they did:
results, the values host functions saw, memory, fuel burnt to the unit, the
trap or exception raised. The executor's own tests run every adversarial
plugin through both as well (the call_api fixture in conftest).
"""

from __future__ import annotations

import gc
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import wasmtime

from executor import fastpath
from executor.binding import Binding, CheckedMemory, Meter, ReferenceBinding
from executor.engine import EngineSettings, make_engine
from executor.fastpath import FastBinding
from executor.sandbox import _classify
from hostcalls.abi import HOST_FUNCTIONS
from hostcalls.guest import FaultKind, GuestAborted, GuestFault
from tests.plugins import import_line

FUEL = 10_000_000
METER = Meter(FUEL, 1000)
ENGINE = make_engine(EngineSettings())

# Allocation modes, set through on_memory_pressure(mode).
BUMP, ZERO, OUTSIDE, TRAPS, CALLS_HOST = range(5)

# on_tick(mode): what the hook does.
MODULE = f"""(module
  {import_line("get_cpu_usage")}
  {import_line("get_process_memory")}
  {import_line("log")}
  {import_line("report_metric")}
  {import_line("show_notification")}
  (memory (export "memory") 1)
  (data (i32.const 100) "hello")
  (global $heap (mut i32) (i32.const 8192))
  (global $mode (mut i32) (i32.const {BUMP}))
  (func (export "rv_abi_version") (result i32) (i32.const 1))
  (func (export "rv_alloc") (param $n i32) (result i32) (local $p i32)
    (block $bump
      (block $calls (block $traps (block $outside (block $zero
        (br_table $bump $zero $outside $traps $calls $bump (global.get $mode)))
        (return (i32.const 0)))
        (return (i32.const 0xfff00000)))
        unreachable)
      (drop (call $log (i32.const 2) (i32.const 100) (i32.const 5))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func (export "on_memory_pressure") (param i32) (global.set $mode (local.get 0)))
  (func $recurse (param i32) (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func (export "on_tick") (param $m i32)
    (block $cpu (block $pm (block $log (block $metric (block $note
    (block $loop (block $rec (block $div (block $oob (block $unreach (block $nop
      (br_table $nop $unreach $oob $div $rec $loop $note $metric $log $pm $cpu $nop
        (local.get $m)))
      (return))
      unreachable)
      (drop (i32.load (i32.const 0x7ffffff0))) (return))
      (drop (i32.div_s (i32.const 1) (i32.sub (local.get $m) (local.get $m)))) (return))
      (call $recurse (i32.const 0)) (return))
      (loop $l (br $l)))
      (i32.store (i32.const 16)
        (call $show_notification (i32.const 100) (i32.const 5) (i32.const 100) (i32.const 2)))
      (return))
      (i32.store (i32.const 16) (call $report_metric (i32.const -1) (i32.const 7) (f64.const -2.5)))
      (return))
      (i32.store (i32.const 16) (call $log (i32.const -1) (i32.const 0x7fffffff) (i32.const 3)))
      (return))
      (i64.store (i32.const 8) (call $get_process_memory (i32.const -7)))
      (return))
    (f64.store (i32.const 0) (call $get_cpu_usage)))
  (func (export "on_process_launch") (param i32 i32 i32)
    (i32.store (i32.const 32) (local.get 0))
    (i32.store (i32.const 36) (local.get 1))
    (i32.store (i32.const 40) (local.get 2)))
)"""
NOP, UNREACHABLE, OOB, DIV, RECURSE, LOOP, NOTE, METRIC, LOG, PROCESS_MEMORY, CPU = range(11)

MAKERS: dict[str, Callable[[wasmtime.Store, Meter], Binding]] = {
    "reference": ReferenceBinding,
    "fast": FastBinding,
}


@dataclass
class Host:
    """Host functions that record what they were given and answer from a table."""

    seen: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    answers: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def handler(self, name: str) -> Callable[..., int | float]:
        def handle(mem: CheckedMemory, *args: Any) -> int | float:
            self.seen.append((name, args))
            return self.answers[name](mem, *args)  # type: ignore[no-any-return]

        return handle


DEFAULT_ANSWERS: dict[str, Callable[..., Any]] = {
    "get_cpu_usage": lambda mem: 12.5,
    "get_process_memory": lambda mem, pid: pid * 2**33 - 5,
    "log": lambda mem, level, ptr, n: -3,
    "report_metric": lambda mem, ptr, n, value: 0 if value == -2.5 else 1,
    # reads "hello", writes it back through rv_alloc; the packed result truncates to i32
    "show_notification": lambda mem, tp, tl, mp, ml: mem.write_result(
        "show_notification", mem.read("show_notification", tp, tl, 64) + b"!"
    ),
}


@dataclass
class Instance:
    binding: Binding
    host: Host
    module: wasmtime.Module

    def run(self, export: str, *args: int) -> tuple[int, int]:
        return self.binding.run(True, export, args)

    store: wasmtime.Store

    def memory(self, start: int, end: int) -> bytes:
        """Linear memory, read through wasmtime-py's own API."""
        mem = self.exports["memory"]
        assert isinstance(mem, wasmtime.Memory)
        return bytes(mem.read(self.store, start, end))

    @property
    def exports(self) -> Any:
        b = self.binding
        return b.exports  # type: ignore[attr-defined]


def make(
    api: str,
    wat: str = MODULE,
    answers: dict[str, Callable[..., Any]] | None = None,
    meter: Meter = METER,
) -> Instance:
    store = wasmtime.Store(ENGINE)
    store.set_epoch_deadline(1000)
    store.set_fuel(FUEL)
    binding = MAKERS[api](store, meter)
    host = Host(answers={**DEFAULT_ANSWERS, **(answers or {})})
    module = wasmtime.Module(ENGINE, wat)
    linker = wasmtime.Linker(ENGINE)
    for imp in module.imports:
        assert imp.name is not None
        binding.define(linker, HOST_FUNCTIONS[imp.name], host.handler(imp.name))
    binding.instantiate(linker, module)
    return Instance(binding, host, module, store)


@pytest.fixture
def both() -> Iterator[dict[str, Instance]]:
    made = {api: make(api) for api in MAKERS}
    yield made
    for inst in made.values():
        inst.binding.close()


def outcome(inst: Instance, fn: Callable[[], object]) -> tuple[str, str]:
    """What a call raised, as the sandbox would report it."""
    try:
        fn()
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        v = _classify("on_tick", exc)
        return v.kind.name, v.detail
    except GuestAborted as exc:
        v = _classify("on_tick", exc.cause)
        return "aborted " + v.kind.name, v.detail
    except GuestFault as exc:
        return "fault " + exc.kind.name, str(exc)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "ok", ""


# -- the pin -------------------------------------------------------------------


def test_the_installed_wasmtime_is_the_one_the_fast_path_is_built_for() -> None:
    assert fastpath.unsupported() is None


def test_another_wasmtime_major_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "wasmtime_version", lambda: "51.0.0")
    why = fastpath.unsupported()
    assert why is not None and "51.0.0" in why and "50.x" in why


def test_the_pin_in_pyproject_matches_the_fast_path() -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    pins = [d for d in project["project"]["dependencies"] if d.startswith("wasmtime")]
    major = fastpath.WASMTIME_MAJOR
    assert pins == [f"wasmtime>={major},<{major + 1}"]


# -- calls -----------------------------------------------------------------------


def test_calls_return_the_same_values(both: dict[str, Instance]) -> None:
    for inst in both.values():
        assert inst.binding.call("rv_abi_version") == 1
        assert inst.binding.call("rv_alloc", 16) == 8192
        assert inst.binding.call("rv_alloc", 16) == 8208
        assert inst.binding.call("on_tick", NOP) is None


def test_three_arguments_arrive_in_order_with_their_signs(both: dict[str, Instance]) -> None:
    memories = []
    for inst in both.values():
        inst.run("on_process_launch", -1, 0x7FFFFFFF, -(2**31))
        memories.append(inst.memory(32, 44))
    assert memories[0] == memories[1] == struct.pack("<iii", -1, 0x7FFFFFFF, -(2**31))


def test_fuel_burnt_is_the_same_to_the_unit(both: dict[str, Instance]) -> None:
    spent = {}
    for api, inst in both.items():
        left = [inst.run("on_tick", mode)[0] for mode in (NOP, CPU, PROCESS_MEMORY, LOG, NOTE)]
        spent[api] = [FUEL - x for x in left]
    assert spent["fast"] == spent["reference"]
    assert all(s > 0 for s in spent["fast"])


def test_memory_size_is_reported_alike(both: dict[str, Instance]) -> None:
    for inst in both.values():
        assert inst.run("on_tick", NOP)[1] == 65536 == inst.binding.memory_size()


def test_a_wrong_argument_count_is_refused_before_any_call(both: dict[str, Instance]) -> None:
    inst = both["fast"]
    with pytest.raises(TypeError, match="on_tick takes 1 arguments, not 2"):
        inst.run("on_tick", 1, 2)
    with pytest.raises(TypeError):
        inst.binding.call("on_process_launch", 1)
    assert inst.run("on_tick", NOP)[0] > 0  # the instance is untouched


# -- traps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind", "detail"),
    [
        (UNREACHABLE, "TRAP", "unreachable"),
        (OOB, "TRAP", "out of bounds memory access"),
        (DIV, "TRAP", "integer divide by zero"),
        (RECURSE, "TRAP", "wasm stack overflow"),
        (LOOP, "FUEL", "used its whole fuel budget"),
    ],
)
def test_traps_are_classified_alike(
    both: dict[str, Instance], mode: int, kind: str, detail: str
) -> None:
    seen = {api: outcome(inst, partial(inst.run, "on_tick", mode)) for api, inst in both.items()}
    assert seen["fast"] == seen["reference"]
    assert seen["fast"][0] == kind and detail in seen["fast"][1]


def test_a_deadline_interrupts_alike() -> None:
    for api in MAKERS:
        inst = make(api, meter=Meter(10**15, 1))
        ticker = EngineTicker()
        try:
            inst.binding.arm(True)
            with ticker:
                got = outcome(inst, partial(inst.binding.call, "on_tick", LOOP))
        finally:
            inst.binding.close()
        assert got == ("DEADLINE", "ran past its time limit"), api


class EngineTicker:
    """Moves the shared engine's epoch from a thread while in the block."""

    def __enter__(self) -> None:
        import threading

        self.stop = threading.Event()

        def tick() -> None:
            while not self.stop.wait(0.005):
                ENGINE.increment_epoch()

        self.thread = threading.Thread(target=tick, daemon=True)
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_fuel_left_after_a_trap_is_read_alike() -> None:
    left = {}
    for api in MAKERS:
        inst = make(api, meter=Meter(5000, 1000))
        with pytest.raises(wasmtime.Trap):
            inst.run("on_tick", LOOP)
        left[api] = inst.binding.disarm()
        inst.binding.close()
    assert left["fast"] == left["reference"] == (0, 65536)


# -- host functions ---------------------------------------------------------------


def test_host_functions_see_and_return_the_same_values(both: dict[str, Instance]) -> None:
    results = {}
    for api, inst in both.items():
        for mode in (CPU, PROCESS_MEMORY, LOG, METRIC):
            inst.run("on_tick", mode)
        results[api] = (inst.host.seen, inst.memory(0, 24))
    assert results["fast"] == results["reference"]
    seen, memory = results["fast"]
    assert seen == [
        ("get_cpu_usage", ()),
        ("get_process_memory", (-7,)),
        ("log", (-1, 0x7FFFFFFF, 3)),
        ("report_metric", (-1, 7, -2.5)),
    ]
    cpu, pm, status = struct.unpack_from("<dqi", memory)
    assert (cpu, pm, status) == (12.5, -7 * 2**33 - 5, 0)


@pytest.mark.parametrize("value", [math.inf, -0.0, 1e308, 5e-324])
def test_float_results_keep_their_bits(value: float) -> None:
    got = []
    for api in MAKERS:
        inst = make(api, answers={"get_cpu_usage": lambda mem: value})
        inst.run("on_tick", CPU)
        got.append(inst.memory(0, 8))
        inst.binding.close()
    assert got[0] == got[1] == struct.pack("<d", value)


def test_nan_results_stay_nan() -> None:
    for api in MAKERS:
        inst = make(api, answers={"get_cpu_usage": lambda mem: math.nan})
        inst.run("on_tick", CPU)
        assert math.isnan(struct.unpack("<d", inst.memory(0, 8))[0]), api
        inst.binding.close()


def test_memory_is_read_and_written_through_rv_alloc(both: dict[str, Instance]) -> None:
    for inst in both.values():
        inst.run("on_tick", NOTE)
        packed = struct.unpack("<i", inst.memory(16, 20))[0]
        # (ptr << 32 | len) as an i64 truncated to the i32 result: the length
        assert packed == 6
        assert inst.memory(8192, 8198) == b"hello!"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            lambda mem, *a: mem.read("log", 0x7FFF0000, 4, 64),
            ("fault BAD_POINTER", "outside linear memory of 65536 bytes"),
        ),
        (
            lambda mem, *a: mem.read("log", 0, 65, 64),
            ("fault TOO_LARGE", "65 bytes; the cap is 64"),
        ),
        (
            lambda mem, *a: (_ for _ in ()).throw(GuestFault(FaultKind.ABUSE, "log", "too many")),
            ("fault ABUSE", "too many"),
        ),
        (lambda mem, *a: 1 // 0, ("ZeroDivisionError", "integer division or modulo by zero")),
    ],
)
def test_host_function_failures_come_back_as_themselves(
    answer: Callable[..., Any], expected: tuple[str, str]
) -> None:
    got = {}
    for api in MAKERS:
        inst = make(api, answers={"log": answer})
        got[api] = outcome(inst, partial(inst.run, "on_tick", LOG))
        inst.binding.close()
    assert got["fast"] == got["reference"]
    assert got["fast"][0] == expected[0] and expected[1] in got["fast"][1]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ZERO, ("ok", "")),
        (OUTSIDE, ("fault BAD_ALLOCATOR", "rv_alloc returned 0xfff00000, outside memory")),
        (TRAPS, ("aborted TRAP", "unreachable")),
        (CALLS_HOST, ("fault ABUSE", "host call from inside rv_alloc")),
    ],
)
def test_a_misbehaving_allocator_is_caught_alike(mode: int, expected: tuple[str, str]) -> None:
    got = {}
    for api in MAKERS:
        inst = make(api)
        inst.run("on_memory_pressure", mode)
        got[api] = outcome(inst, partial(inst.run, "on_tick", NOTE))
        got[api] += (inst.memory(16, 20),)  # type: ignore[assignment]
        inst.binding.close()
    assert got["fast"] == got["reference"]
    assert got["fast"][0] == expected[0] and expected[1] in got["fast"][1]
    if mode == ZERO:  # NO_MEMORY (-10) reached the plugin
        assert struct.unpack("<i", got["fast"][2])[0] == -10  # type: ignore[misc]


# -- instantiation ------------------------------------------------------------------

START = f"""(module
  {import_line("log")}
  (memory (export "memory") 1)
  (data (i32.const 100) "hello")
  (global $heap (mut i32) (i32.const 8192))
  (func (export "rv_abi_version") (result i32) (i32.const 1))
  (func (export "rv_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func $start (i32.store (i32.const 16) (call $log (i32.const 2) (i32.const 100) (i32.const 5))))
  (start $start)
)"""


def test_a_start_function_reaches_memory_and_rv_alloc_through_its_caller() -> None:
    def echo(mem: CheckedMemory, level: int, ptr: int, n: int) -> int:
        return mem.write_result("log", mem.read("log", ptr, n, 64).upper()) & 0xFFFFFFFF

    for api in MAKERS:
        inst = make(api, START, {"log": echo})
        assert inst.memory(16, 20) == struct.pack("<i", 5), api
        assert inst.memory(8192, 8197) == b"HELLO", api
        inst.binding.close()


def test_a_fault_in_a_start_function_is_raised_as_itself() -> None:
    def fault(mem: CheckedMemory, *args: int) -> int:
        raise GuestFault(FaultKind.BAD_ENCODING, "log", "not UTF-8")

    for api in MAKERS:
        with pytest.raises(GuestFault, match="not UTF-8"):
            make(api, START, {"log": fault})


def test_an_export_of_the_wrong_type_is_never_called_unchecked() -> None:
    # The loader refuses this module; the fast path checks again on its own,
    # since calling it unchecked would be memory corruption, not an error.
    wat = """(module (memory (export "memory") 1)
      (func (export "rv_abi_version") (result i32) (i32.const 1))
      (func (export "rv_alloc") (param i32) (result i32) (i32.const 0))
      (func (export "on_tick") (param i64 i64)))"""
    with pytest.raises(wasmtime.WasmtimeError, match="on_tick does not have the type of ABI v1"):
        make("fast", wat)


# -- lifetime -----------------------------------------------------------------------


def test_closing_frees_the_store_and_the_callbacks() -> None:
    inst = make("fast")
    inst.run("on_tick", CPU)
    binding = inst.binding
    assert isinstance(binding, FastBinding)
    binding.close()
    assert binding._callbacks == [] and binding.memory_size() == 0
    del inst, binding
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, FastBinding)]


def test_another_wasmtime_falls_back_to_the_reference_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from executor.executor import Executor
    from executor.spec import ExecutorSettings
    from tests.plugins import COUNTER, spec

    monkeypatch.setattr(fastpath, "wasmtime_version", lambda: "51.0.0")
    ex = Executor(ExecutorSettings(state_dir=str(tmp_path)))
    try:
        assert ex.api == "reference"
        assert "wasmtime 51.0.0 is installed" in caplog.text
        plugin = ex.load(spec("counter", COUNTER))
        assert isinstance(plugin.sandbox._binding, ReferenceBinding)
        ex.tick()
        assert plugin.metrics.calls == 2 and not plugin.metrics.violations  # on_init, on_tick
        status = ex.status()
        assert status["call_api"] == "reference"
        assert "51.0.0" in str(status["call_api_note"])
    finally:
        ex.shutdown()


# -- what the review found (each crashed the process or differed before) -------------


def test_a_start_functions_rv_alloc_of_the_wrong_type_is_refused_not_called() -> None:
    # The loader refuses such a module; the fast path must not rely on that:
    # called unchecked with the wrong arity, wasmtime aborts the process.
    wat = START.replace(
        '(func (export "rv_alloc") (param $n i32) (result i32) (local $p i32)',
        '(func (export "rv_alloc") (param $n i32) (param i32) (result i32) (local $p i32)',
    )

    def echo(mem: CheckedMemory, level: int, ptr: int, n: int) -> int:
        return mem.write_result("log", b"x")

    for api in MAKERS:
        with pytest.raises(GuestAborted):
            make(api, wat, {"log": echo})


@pytest.mark.parametrize("value", [50, True, None])
def test_an_f64_host_function_must_answer_a_float(value: object) -> None:
    for api in MAKERS:
        inst = make(api, answers={"get_cpu_usage": lambda mem: value})
        kind, detail = outcome(inst, partial(inst.run, "on_tick", CPU))
        inst.binding.close()
        assert kind == "TypeError", (api, detail)


@pytest.mark.parametrize("use", ["arm", "disarm", "write", "run"])
def test_a_closed_binding_raises_instead_of_touching_freed_memory(use: str) -> None:
    inst = make("fast")
    binding = inst.binding
    binding.close()
    calls: dict[str, Callable[[], object]] = {
        "arm": lambda: binding.arm(True),
        "disarm": binding.disarm,
        "write": lambda: binding.write(0, b"x"),
        "run": lambda: binding.run(True, "on_tick", (NOP,)),
    }
    with pytest.raises((ValueError, KeyError)):
        calls[use]()


def test_fuel_asked_of_an_engine_without_it_is_the_same_error() -> None:
    engine = make_engine(EngineSettings(fuel=False))
    module = wasmtime.Module(
        engine,
        """(module (memory (export "memory") 1)
             (func (export "rv_alloc") (param i32) (result i32) (i32.const 0)))""",
    )
    messages = []
    for make_binding in MAKERS.values():
        store = wasmtime.Store(engine)
        binding = make_binding(store, Meter(FUEL, 10))
        binding.instantiate(wasmtime.Linker(engine), module)
        with pytest.raises(wasmtime.WasmtimeError) as failed:
            binding.arm(True)
        messages.append(str(failed.value))
        binding.close()
    assert messages[0] == messages[1] and "fuel is not configured" in messages[0]


def test_a_wasmtime_lacking_a_symbol_is_reported_not_crashed_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A patch release may drop a private part or a C symbol the fast path
    # uses: the executor must then run on the reference binding.
    monkeypatch.setattr(fastpath, "_LOAD_ERROR", "no wasmtime_func_call_unchecked")
    assert "no wasmtime_func_call_unchecked" in str(fastpath.unsupported())
    monkeypatch.setattr(fastpath, "_LOAD_ERROR", None)
    monkeypatch.setattr(fastpath, "_private_parts", lambda: [("Func._func", False)])
    why = str(fastpath.unsupported())
    assert "lacks what the fast path uses: Func._func" in why
    from executor.sandbox import resolve_api

    assert resolve_api("fast") == ("reference", why)


def test_every_private_part_the_fast_path_uses_is_there() -> None:
    assert [name for name, present in fastpath._private_parts() if not present] == []
