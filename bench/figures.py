"""The figures: each function measures one group, with its peers, and returns rows.

Ours is always the executor's real path (Executor, Sandbox, PluginHost as
the CLI builds them); peers are the plainest use of their library that does
the same work. Targets are those of issue 6. The reconciler's figures are in
bench.reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import extism
import wasmtime

from bench import fixtures
from bench.fixtures import spec
from bench.timing import Runner, Stat, interleaved, minus, ratio
from executor.engine import EngineSettings
from executor.executor import Executor, LoadedPlugin
from executor.sandbox import CallResult, Sandbox
from executor.spec import Api, ExecutorSettings, Limits, PluginSpec

TICK_ARG = 5000  # what on_tick receives: the default tick interval in ms


@dataclass(frozen=True)
class Size:
    """How much work each figure does; `QUICK` trades precision for time."""

    repeats: int = 5
    dispatch_calls: int = 20_000  # no-op calls per repeat
    one_plugin_ticks: int = 3_000
    host_calls_per_hook: int = 10_000  # get_cpu_usage calls inside one on_tick
    host_call_hooks: int = 10  # such on_tick calls per repeat
    hundred_plugin_ticks: int = 200
    spin_iterations: int = 50_000_000
    tick_plugins: int = 100
    startup_plugins: int = 50
    # The reconciler's figures (bench.reconcile) start processes, so their
    # defaults are small, for a smoke run; FULL and QUICK set real sizes.
    plan_plugins: int = 3  # installed, for a `ruvector plan` with nothing to change
    plan_runs: int = 1  # plan processes (and each peer) per repeat
    reconcile_plugins: tuple[int, int, int] = (1, 2, 4)  # new plugins per reconcile
    reconcile_batch: int = 1  # each size reconciles max(1, batch // size) times a repeat
    registry_plugins: int = 3  # reconciled from a loopback registry (bench.registry)
    processlist_processes: int = 0  # processes on the machine, topped up (bench.processlist)
    processlist_hooks: int = 2  # hooks of CALLS_PER_HOOK calls per repeat
    # Group 9 (bench.scale) loads hundreds of plugins: small defaults here too.
    scale_plugins: tuple[int, int, int, int] = (1, 2, 3, 4)  # no-op plugins per executor
    scale_ticks: int = 2  # ticks of each executor per repeat
    work_plugins: tuple[int, int] = (2, 3)  # plugins reading the process list each tick
    work_ticks: int = 2
    memory_plugins: int = 3  # idle plugins whose resident memory is measured
    memory_first_ticks: int = 2  # ticks before the growth baseline
    memory_ticks: int = 5  # ticks over which growth is measured
    churn_plugins: int = 5  # loaded and unloaded in a row
    # Group 11 (bench.capacity): chrome-tab-limiter plugins.
    capacity_probe: int = 2  # plugins of the probe executor the bounds come from
    capacity_max: int = 3  # most plugins of the direct run (FULL: no cap)
    capacity_ticks: int = 1  # timed ticks of the direct run


FULL = Size(
    plan_plugins=100,
    plan_runs=2,
    reconcile_plugins=(10, 100, 1000),
    reconcile_batch=100,
    registry_plugins=50,
    scale_plugins=(1, 10, 100, 500),
    scale_ticks=100,
    work_plugins=(20, 100),
    work_ticks=20,
    memory_plugins=100,
    memory_first_ticks=100,
    memory_ticks=10_000,
    churn_plugins=1_000,
    processlist_processes=520,
    processlist_hooks=20,
    capacity_probe=200,
    capacity_max=1_000_000,
    capacity_ticks=5,
)
QUICK = Size(
    repeats=3,
    dispatch_calls=2_000,
    one_plugin_ticks=300,
    host_call_hooks=2,
    hundred_plugin_ticks=20,
    spin_iterations=10_000_000,
    plan_plugins=100,
    reconcile_plugins=(10, 50, 200),
    reconcile_batch=50,
    scale_plugins=(1, 10, 100, 500),
    scale_ticks=10,
    work_plugins=(20, 100),
    work_ticks=5,
    memory_plugins=100,
    memory_first_ticks=100,
    memory_ticks=1_000,
    churn_plugins=200,
    processlist_processes=520,
    processlist_hooks=5,
    capacity_probe=100,
    capacity_max=2_000,
    capacity_ticks=2,
)


@dataclass(frozen=True)
class Figure:
    group: str
    label: str
    stat: Stat  # seconds for time units, bytes for sizes, a plain number for "x", "%", "n"
    unit: str  # "µs", "ms", "x", "%", "B", "kB", "MB" (bytes, scaled 10³, 10⁶) or "n" (a count)
    target: float | None = None  # issue 6 or 3, in `unit`; met when the median is at most this

    def scaled(self, value: float) -> float:
        scale = {
            "µs": 1e6,
            "ms": 1e3,
            "x": 1.0,
            "%": 100.0,
            "B": 1.0,
            "kB": 1e-3,
            "MB": 1e-6,
            "n": 1.0,
        }
        return value * scale[self.unit]

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.scaled(self.stat.median) <= self.target


class Lab:
    """Executors on state dirs under one root; shuts them all down at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: list[Executor] = []

    def executor(
        self, name: str, engine: EngineSettings | None = None, api: Api = "fast"
    ) -> Executor:
        settings = ExecutorSettings(
            state_dir=str(self.root / name),
            tick_interval_ms=TICK_ARG,
            call_api=api,
        )
        ex = Executor(settings, engine_settings=engine)
        self._made.append(ex)
        return ex

    def check(self) -> None:
        """Raise if any plugin broke a limit: its figures would time traps, not calls."""
        for ex in self._made:
            for plugin in ex.plugins.values():
                m = plugin.metrics
                if m.violations or m.host_errors or not plugin.enabled:
                    raise RuntimeError(f"bench plugin {plugin.name} broke a limit: {m}")

    def retire(self) -> None:
        """Check and shut down every executor made so far."""
        self.check()
        self.close()
        self._made.clear()

    def close(self) -> None:
        for ex in self._made:
            ex.shutdown()


# -- 1. no-op dispatch -------------------------------------------------------


def dispatch(lab: Lab, size: Size) -> list[Figure]:
    """One no-op on_tick as Executor.tick() dispatches it, its variants, and peers.

    Inside a tick the executor holds the epoch ticker running for the whole
    pass, so that is where each plugin's call is measured; a lone call
    outside a tick also wakes the ticker, and is shown apart.
    """
    fast = lab.executor("dispatch")
    reference = lab.executor("dispatch-reference", api="reference")
    lone = lab.executor("dispatch-lone").load(spec("noop", fixtures.NOOP)).sandbox
    t = interleaved(
        {
            "fast": spanned_calls(fast, fast.load(spec("noop", fixtures.NOOP))),
            "reference": spanned_calls(reference, reference.load(spec("noop", fixtures.NOOP))),
            "lone": hook_calls(lone, TICK_ARG),
            "wasmtime": _wasmtime_noop(),
            "extism": _extism_noop(),
        },
        size.dispatch_calls,
        size.repeats,
    )
    g = "1. no-op on_tick dispatch (fuel refill, deadline, call, checks, metrics)"
    return [
        Figure(
            g,
            "ours: Sandbox.call('on_tick') and its accounting, in a tick",
            Stat.of(t["fast"]),
            "µs",
        ),
        Figure(g, "the same through the reference binding", Stat.of(t["reference"]), "µs"),
        Figure(g, "ours, a lone call outside a tick (wakes the ticker)", Stat.of(t["lone"]), "µs"),
        Figure(g, "wasmtime-py Func.__call__ + set_fuel", Stat.of(t["wasmtime"]), "µs"),
        Figure(g, "Extism Plugin.call", Stat.of(t["extism"]), "µs"),
        Figure(g, "ours / Extism", Stat.of(ratio(t["fast"], t["extism"])), "x", 0.2),
        Figure(g, "ours / wasmtime-py", Stat.of(ratio(t["fast"], t["wasmtime"])), "x"),
        Figure(g, "fast path / reference binding", Stat.of(ratio(t["fast"], t["reference"])), "x"),
    ]


def spanned_calls(ex: Executor, plugin: LoadedPlugin, arg: int = TICK_ARG) -> Runner:
    """on_tick(arg) as Executor.tick() dispatches it: inside the ticker's span,
    the result accounted into the plugin's metrics by the executor."""
    call, settle, ticker = plugin.sandbox.call, ex._settle, ex.ticker

    def run(n: int) -> None:
        with ticker.running():
            for _ in range(n):
                ticker.epoch += 1  # epoch_moved
                settle(plugin, call("on_tick", arg))

    return run


def hook_calls(box: Sandbox, arg: int) -> Runner:
    """on_tick(arg) through the sandbox, the executor's own path."""
    call = box.call

    def run(n: int) -> None:
        for _ in range(n):
            call("on_tick", arg)

    return run


def tick_runner(ex: Executor) -> Runner:
    """Executor.tick() as at the real 5 s spacing: see epoch_moved."""
    tick, ticker = ex.tick, ex.ticker

    def run(n: int) -> None:
        for _ in range(n):
            ticker.epoch += 1  # epoch_moved
            tick()

    return run


# epoch_moved: 5 s apart, the epoch ticker has moved the epoch since each
# plugin's last call, so each call arms its deadline again (a C call). Back
# to back, calls would mostly skip it; advancing the ticker's count (not the
# engine's epoch) before each call or tick makes them pay it, as in use.


def status_runner(ex: Executor) -> Runner:
    """state/executor.json as run() has it written after every tick at the 5 s
    spacing: the snapshot on this thread, the write on the status thread,
    waited for."""
    publish, flush = ex.publish_status, ex.status_writer.flush

    def run(n: int) -> None:
        for _ in range(n):
            publish(force=True)
            flush()

    return run


def snapshot_runner(ex: Executor) -> Runner:
    """What run() itself pays for the status file after a tick: the snapshot."""
    snapshot = ex.status

    def run(n: int) -> None:
        for _ in range(n):
            snapshot()

    return run


def sample_runner(ex: Executor) -> Runner:
    """The shared sample alone, as tick() takes it for these plugins."""
    processes = any(p.sees_processes and p.enabled for p in ex.plugins.values())
    sample = ex.sampler.sample

    def run(n: int) -> None:
        for _ in range(n):
            sample(processes=processes)

    return run


def _fuel_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    return wasmtime.Engine(config)


def _on_tick(
    engine: wasmtime.Engine, wasm: bytes, linker: wasmtime.Linker | None = None
) -> tuple[wasmtime.Store, wasmtime.Func]:
    """A plain store and instance of `wasm`, and its on_tick export."""
    store = wasmtime.Store(engine)
    linker = linker or wasmtime.Linker(engine)
    fn = linker.instantiate(store, wasmtime.Module(engine, wasm)).exports(store)["on_tick"]
    assert isinstance(fn, wasmtime.Func)
    return store, fn


def _wasmtime_noop() -> Runner:
    store, on_tick = _on_tick(_fuel_engine(), fixtures.NOOP)
    budget = Limits().fuel_per_call

    def run(n: int) -> None:
        for _ in range(n):
            store.set_fuel(budget)
            on_tick(store, TICK_ARG)

    return run


def _extism_noop() -> Runner:
    plugin = extism.Plugin(fixtures.EXTISM_NOOP, wasi=False)
    call = plugin.call

    def run(n: int) -> None:
        for _ in range(n):
            call("noop", b"")

    return run


# -- 2. scalar host call -----------------------------------------------------


class _Reading:
    """What the peer's host function reads: a float on a Python object."""

    cpu_percent = 12.5


def host_call(lab: Lab, size: Size) -> list[Figure]:
    """get_cpu_usage from wasm through our host vs a bare Linker.define_func."""
    per_hook = size.host_calls_per_hook
    ours = {api: _host_call_boxes(lab, api, per_hook) for api in ("fast", "reference")}
    engine = _fuel_engine()
    linker = wasmtime.Linker(engine)
    reading = _Reading()
    f64 = wasmtime.FuncType([], [wasmtime.ValType.f64()])
    linker.define_func("ruvector", "get_cpu_usage", f64, lambda: reading.cpu_percent)
    t = interleaved(
        {
            **{api: hook_calls(calls, per_hook) for api, (calls, _) in ours.items()},
            **{f"{api}-loop": hook_calls(loop, per_hook) for api, (_, loop) in ours.items()},
            "peer": _plain_calls(engine, fixtures.HOSTCALL_LOOP, per_hook, linker),
            "peer-loop": _plain_calls(engine, fixtures.EMPTY_LOOP, per_hook),
        },
        size.host_call_hooks,
        size.repeats,
    )

    def per_call(name: str) -> list[float]:
        return [d / per_hook for d in minus(t[name], t[f"{name}-loop"])]

    fast, reference, peer = per_call("fast"), per_call("reference"), per_call("peer")
    loop_cost = [d / per_hook for d in t["peer-loop"]]
    g = "2. scalar host call (get_cpu_usage)"
    return [
        Figure(g, "ours: PluginHost via Sandbox linker", Stat.of(fast), "µs"),
        Figure(g, "the same through the reference binding", Stat.of(reference), "µs"),
        Figure(g, "wasmtime-py Linker.define_func", Stat.of(peer), "µs"),
        Figure(g, "loop alone, per iteration (subtracted)", Stat.of(loop_cost), "µs"),
        Figure(g, "ours / define_func", Stat.of(ratio(fast, peer)), "x", 0.15),
        Figure(g, "fast path / reference binding", Stat.of(ratio(fast, reference)), "x"),
    ]


def _host_call_boxes(lab: Lab, api: Api, per_hook: int) -> tuple[Sandbox, Sandbox]:
    """A plugin calling get_cpu_usage per_hook times a hook, and its empty loop."""
    ex = lab.executor(f"hostcall-{api}", api=api)
    calls = ex.load(
        spec("cpu", fixtures.HOSTCALL_LOOP, ["ReadSystemInfo"], fixtures.UNBOUNDED)
    ).sandbox
    loop = ex.load(spec("loop", fixtures.EMPTY_LOOP, limits=fixtures.UNBOUNDED)).sandbox
    result = _clean(calls.call("on_tick", per_hook))
    if result.host_calls != per_hook:
        raise RuntimeError(f"expected {per_hook} host calls, counted {result.host_calls}")
    return calls, loop


def _plain_calls(
    engine: wasmtime.Engine, wasm: bytes, arg: int, linker: wasmtime.Linker | None = None
) -> Runner:
    """on_tick(arg) of a plain instance, fuel refilled before each call."""
    store, on_tick = _on_tick(engine, wasm, linker)
    fuel = fixtures.UNBOUNDED.fuel_per_call

    def run(n: int) -> None:
        for _ in range(n):
            store.set_fuel(fuel)
            on_tick(store, arg)

    return run


# -- 3. a tick over many plugins ---------------------------------------------


def hundred_plugin_tick(lab: Lab, size: Size) -> list[Figure]:
    """Executor.tick() over `tick_plugins` no-op plugins, the sample alone, an
    empty executor's tick, and Extism's call for the per-plugin ratio."""
    ex = lab.executor("tick-many")
    count = size.tick_plugins
    refused = ex.load_all(spec(f"noop-{k:03}", fixtures.NOOP) for k in range(count))
    if refused:
        raise RuntimeError(f"fixture refused: {refused[0]}")
    empty = lab.executor("tick-none")
    ticks = size.hundred_plugin_ticks
    t = interleaved(
        {
            "tick": tick_runner(ex),
            "sample": sample_runner(ex),
            "empty": tick_runner(empty),
            "status": status_runner(ex),
            "snapshot": snapshot_runner(ex),
            "extism": _extism_noop(),
        },
        {"extism": ticks * 10}
        | dict.fromkeys(("tick", "sample", "empty", "status", "snapshot"), ticks),
        size.repeats,
    )
    beyond = minus(t["tick"], t["sample"])
    turn = [d / count for d in minus(t["tick"], t["empty"])]
    with_status = [b + s for b, s in zip(beyond, t["snapshot"], strict=True)]
    g = f"3. one tick over {count} no-op plugins"
    return [
        Figure(g, "Executor.tick(), total", Stat.of(t["tick"]), "ms"),
        Figure(g, "shared system sample alone", Stat.of(t["sample"]), "ms"),
        Figure(g, "beyond the sample", Stat.of(beyond), "ms", 1.0),
        Figure(
            g,
            "the status file after each tick: snapshot, on run()'s thread",
            Stat.of(t["snapshot"]),
            "ms",
        ),
        Figure(g, "the same: snapshot and write, on the status thread", Stat.of(t["status"]), "ms"),
        Figure(g, "beyond the sample, with the snapshot", Stat.of(with_status), "ms"),
        Figure(g, "an empty executor's tick (sample and fixed costs)", Stat.of(t["empty"]), "ms"),
        Figure(g, "a plugin's whole turn ((tick - empty tick) / plugins)", Stat.of(turn), "µs"),
        Figure(
            g, "a plugin's whole turn / Extism Plugin.call", Stat.of(ratio(turn, t["extism"])), "x"
        ),
    ]


# -- 4. fuel metering --------------------------------------------------------


def fuel_overhead(lab: Lab, size: Size) -> list[Figure]:
    """CPU-bound on_tick loops with fuel metering on vs epoch interruption alone."""
    loops = {"multiply chain": fixtures.SPIN_MULTIPLY, "cheap add/xor/shift": fixtures.SPIN_CHEAP}
    engines = {"fuel": EngineSettings(fuel=True), "epochs": EngineSettings(fuel=False)}
    n = size.spin_iterations
    runners: dict[str, Runner] = {}
    for mode, settings in engines.items():
        ex = lab.executor(f"spin-{mode}", settings)
        for k, (body, wasm) in enumerate(loops.items()):
            box = ex.load(spec(f"spin-{k}", wasm, limits=fixtures.UNBOUNDED)).sandbox
            fuel_used = _clean(box.call("on_tick", n // 10)).fuel_used
            if (fuel_used > 0) != settings.fuel:
                raise RuntimeError(f"{mode} engine used {fuel_used} fuel")
            runners[f"{mode} {body}"] = _checked_hook_calls(box, n)
    t = interleaved(runners, 1, size.repeats)
    figures = []
    for body in loops:
        fuel, epochs = t[f"fuel {body}"], t[f"epochs {body}"]
        g = f"4. fuel metering, {n / 1e6:g}M iterations, {body} loop"
        figures += [
            Figure(g, "with fuel (EngineSettings(fuel=True))", Stat.of(fuel), "ms"),
            Figure(g, "epochs only (EngineSettings(fuel=False))", Stat.of(epochs), "ms"),
            Figure(g, "fuel overhead", Stat.of([r - 1 for r in ratio(fuel, epochs)]), "%"),
        ]
    return figures


def _checked_hook_calls(box: Sandbox, arg: int) -> Runner:
    """Hook calls whose results are checked: a stopped loop would time nothing."""

    def run(n: int) -> None:
        for _ in range(n):
            _clean(box.call("on_tick", arg))

    return run


# -- 5. start-up -------------------------------------------------------------


def startup(lab: Lab, size: Size) -> list[Figure]:
    """load_all of distinct plugins into a running executor, cold vs warm module cache.

    The executor is brought up first and timed apart: its first sample waits
    out a CPU window (hostcalls.system), a fixed cost whatever the cache holds.
    """
    count = size.startup_plugins
    specs = [spec(f"p{k:02}", fixtures.numbered_noop(k)) for k in range(count)]
    up: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    for r in range(size.repeats):
        state_dir = lab.root / f"startup-{r}"
        for times, hits in ((cold, 0), (warm, count)):
            ready, loaded = _start(state_dir, specs, expect_hits=hits)
            up.append(ready)
            times.append(loaded)
    g = f"5. start-up of {count} plugins (load_all)"
    return [
        Figure(g, "cold (empty module cache)", Stat.of(cold), "ms"),
        Figure(g, "warm (cache from a previous executor)", Stat.of(warm), "ms"),
        Figure(g, "warm / cold", Stat.of(ratio(warm, cold)), "x", 0.2),
        Figure(g, "before it: executor up (construct, first sample)", Stat.of(up), "ms"),
    ]


def _start(state_dir: Path, specs: Sequence[PluginSpec], expect_hits: int) -> tuple[float, float]:
    """Seconds to bring an executor up, then to load `specs`; it is then shut down."""
    start = time.perf_counter()
    ex = Executor(ExecutorSettings(state_dir=str(state_dir), tick_interval_ms=TICK_ARG))
    ex.current_sample()
    ready = time.perf_counter()
    refused = ex.load_all(specs)
    loaded = time.perf_counter()
    hits = ex.cache.hits
    ex.shutdown()
    if refused or hits != expect_hits:
        raise RuntimeError(f"start-up fixture: {len(refused)} refused, {hits} cache hits")
    return ready - start, loaded - ready


def _clean(result: CallResult) -> CallResult:
    if result.violation is not None or result.host_error is not None:
        raise RuntimeError(f"bench fixture failed: {result.violation or result.host_error}")
    return result


GROUPS: tuple[Callable[[Lab, Size], list[Figure]], ...] = (
    dispatch,
    host_call,
    hundred_plugin_tick,
    fuel_overhead,
    startup,
)
