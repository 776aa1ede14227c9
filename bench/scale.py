"""Group 9: how the executor scales with the number of plugins, and its memory.

- tick time beyond the shared sample over 1, 10, 100 and 500 no-op plugins
  (group 3's fixture and method), per plugin, and two linearity ratios;
- plugins doing light work (each reads the process list once per tick and
  counts its entries) at two counts, on the machine's own processes; how
  many plugins a 5 s tick carries is group 11's (bench.capacity), with a
  real plugin at 520 processes;
- resident memory with 100 idle plugins and its growth over many ticks, in
  a process of its own (bench.memory_probe), so nothing earlier groups
  allocated or freed counts;
- load + unload of many distinct plugins in a row, here, counting what is
  left alive.

Memory figures are single readings, not repeats.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import psutil
import wasmtime

from bench import fixtures
from bench.figures import TICK_ARG, Figure, Lab, Size, sample_runner, tick_runner
from bench.fixtures import spec
from bench.timing import Stat, interleaved, minus, ratio
from executor.executor import Executor
from executor.fastpath import FastBinding, _Callback
from executor.sandbox import Sandbox
from executor.spec import PluginSpec

TICK_INTERVAL_S = TICK_ARG / 1000  # the default tick: 5 s

# on_tick reads the process list and counts its entries ('{' bytes, one per
# process object). The allocator is reset first: last tick's list is garbage,
# and a bump heap would otherwise grow by a list every tick. No entries, or a
# failed call, is a trap, so a broken fixture cannot time fast.
PROCESS_SCAN = fixtures.module(
    """
  (global $entries (mut i32) (i32.const 0))
  (func (export "on_tick") (param i32)
    (local $packed i64) (local $p i32) (local $end i32) (local $n i32)
    (global.set $heap (i32.const 8192))
    (local.set $packed (call $get_process_list))
    (if (i64.le_s (local.get $packed) (i64.const 0)) (then unreachable))
    (local.set $p (i32.wrap_i64 (i64.shr_u (local.get $packed) (i64.const 32))))
    (local.set $end (i32.add (local.get $p) (i32.wrap_i64 (local.get $packed))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $n (i32.add (local.get $n)
          (i32.eq (i32.load8_u (local.get $p)) (i32.const 123))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (if (i32.eqz (local.get $n)) (then unreachable))
    (global.set $entries (local.get $n)))
""",
    imports=["get_process_list"],
)


def _loaded(lab: Lab, name: str, count: int, wasm: bytes, approved: Sequence[str] = ()) -> Executor:
    """An executor with `count` plugins of `wasm`; raises if any is refused."""
    ex = lab.executor(name)
    refused = ex.load_all(spec(f"p{k:04}", wasm, approved) for k in range(count))
    if refused:
        raise RuntimeError(f"fixture refused: {refused[0]}")
    return ex


# -- 9. scale ----------------------------------------------------------------


def scale(lab: Lab, size: Size) -> list[Figure]:
    """Group 9: tick time over many plugins, light work, memory."""
    return [*no_op_scale(lab, size), *process_scan_scale(lab, size), *memory(lab, size)]


def no_op_scale(lab: Lab, size: Size) -> list[Figure]:
    """Executor.tick() beyond the sample over each count of no-op plugins."""
    counts = size.scale_plugins
    executors = {n: _loaded(lab, f"scale-{n}", n, fixtures.NOOP) for n in counts}
    runners = {str(n): tick_runner(ex) for n, ex in executors.items()}
    # No plugin sees processes, so every executor's tick takes the same sample.
    runners["sample"] = sample_runner(executors[counts[0]])
    t = interleaved(runners, size.scale_ticks, size.repeats)
    beyond = {n: minus(t[str(n)], t["sample"]) for n in counts}
    g = "9. scale: one tick over N no-op plugins"
    rows = [Figure(g, "shared system sample alone", Stat.of(t["sample"]), "ms")]
    for n in counts:
        rows += [
            Figure(g, f"beyond the sample, {n} plugins", Stat.of(beyond[n]), "ms"),
            Figure(g, f"beyond the sample, {n} plugins, per plugin", _per(beyond[n], n), "µs"),
        ]
    return rows + _linearity(g, beyond, counts[1:])


def _per(seconds: Sequence[float], count: int) -> Stat:
    return Stat.of([s / count for s in seconds])


def _linearity(g: str, beyond: dict[int, list[float]], sizes: Sequence[int]) -> list[Figure]:
    """Both ratios are 1 if tick time grows linearly with the number of plugins."""
    small, mid, large = sizes
    per_small = [s / small for s in beyond[small]]
    per_large = [s / large for s in beyond[large]]
    # The cost of one more plugin, from each size to the next: fixed costs cancel.
    low = [(b - a) / (mid - small) for a, b in zip(beyond[small], beyond[mid], strict=True)]
    high = [(b - a) / (large - mid) for a, b in zip(beyond[mid], beyond[large], strict=True)]
    return [
        Figure(g, f"per plugin, {large} / {small}", Stat.of(ratio(per_large, per_small)), "x"),
        Figure(
            g, f"one more plugin, {mid}-{large} / {small}-{mid}", Stat.of(ratio(high, low)), "x"
        ),
    ]


def process_scan_scale(lab: Lab, size: Size) -> list[Figure]:
    """Plugins that read the process list and count its entries each tick."""
    small, large = size.work_plugins
    executors = {
        n: _loaded(lab, f"scan-{n}", n, PROCESS_SCAN, ["ReadProcessList"]) for n in (small, large)
    }
    for ex in executors.values():
        _check_scan(ex)
    runners = {str(n): tick_runner(ex) for n, ex in executors.items()}
    # These plugins see processes: the sample includes the process table.
    runners["sample"] = sample_runner(executors[small])
    t = interleaved(runners, size.work_ticks, size.repeats)
    per = {n: [b / n for b in minus(t[str(n)], t["sample"])] for n in (small, large)}
    marginal = [
        (b - a) / (large - small) for a, b in zip(t[str(small)], t[str(large)], strict=True)
    ]
    processes = executors[small].current_sample(processes=True).processes or ()
    g = "9. scale: plugins each reading the process list once per tick"
    return [
        Figure(
            g, "processes on the machine (a call's cost grows with it)", _n(len(processes)), "n"
        ),
        Figure(g, "shared system sample, with processes", Stat.of(t["sample"]), "ms"),
        Figure(g, f"Executor.tick(), {large} plugins", Stat.of(t[str(large)]), "ms"),
        Figure(g, f"per plugin beyond the sample, {small} plugins", Stat.of(per[small]), "µs"),
        Figure(g, f"per plugin beyond the sample, {large} plugins", Stat.of(per[large]), "µs"),
        Figure(g, f"one more plugin, {small}-{large}", Stat.of(marginal), "µs"),
    ]


def _check_scan(ex: Executor) -> None:
    """One untimed tick: each plugin must make exactly its one host call, cleanly."""
    ex.tick()
    for plugin in ex.plugins.values():
        result = plugin.sandbox.call("on_tick", TICK_ARG)
        if result.violation is not None or result.host_calls != 1:
            raise RuntimeError(f"scan fixture: {result.violation}, {result.host_calls} host calls")


def _n(values: float | Sequence[float]) -> Stat:
    return Stat.of([values] if isinstance(values, int | float) else values)


# -- memory ------------------------------------------------------------------


def _rss() -> float:
    """Resident bytes of this process, after a full collection."""
    gc.collect()
    return float(psutil.Process().memory_info().rss)


def memory(lab: Lab, size: Size) -> list[Figure]:
    """RSS with idle plugins loaded and its growth over ticks (in a process of
    its own: bench.memory_probe), then load/unload churn here."""
    count, first, ticks = size.memory_plugins, size.memory_first_ticks, size.memory_ticks
    lab.retire()  # earlier groups' executors would hold memory and mappings
    root = Path(__file__).parents[1]
    probe = subprocess.run(
        [sys.executable, "-m", "bench.memory_probe", str(count), str(first), str(ticks)],
        capture_output=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    r = json.loads(probe.stdout)
    g = f"9. memory (RSS of a process of its own): {count} idle no-op plugins"
    return [
        Figure(
            g,
            "RSS with the executor up, no plugin (one loaded and unloaded)",
            _n(r["started"]),
            "MB",
        ),
        Figure(g, f"RSS with {count} plugins loaded", _n(r["loaded"]), "MB", 150.0),
        Figure(g, f"increase for {count} plugins", _n(r["loaded"] - r["started"]), "MB"),
        Figure(g, "increase per plugin", _n((r["loaded"] - r["started"]) / count), "kB"),
        Figure(
            g,
            f"RSS after {ticks} more ticks / after the first {first}",
            _n(r["after"] / r["first"]),
            "x",
            1.05,
        ),
        Figure(g, f"RSS growth over those {ticks} ticks", _n(r["after"] - r["first"]), "kB"),
        Figure(g, f"those {ticks} ticks, each", _n(r["tick_s"]), "ms"),
        *_churn(lab, size),
    ]


def _churn(lab: Lab, size: Size) -> list[Figure]:
    """Load and unload `churn_plugins` distinct plugins one after another, in one
    executor, and count what they leave behind: each is compiled afresh and
    imports a host function, so modules and the fast path's callbacks count."""
    count = size.churn_plugins
    ex = lab.executor("churn")
    _load_unload(ex, 0, 1)  # warm-up
    kinds = (wasmtime.Store, wasmtime.Module, Sandbox, FastBinding, _Callback)
    before, rss = _census(kinds), _rss()
    ex.load(_churn_spec("seen"))
    seen = _census(kinds)
    if any(seen[k] <= before[k] for k in kinds):
        raise RuntimeError(f"a loaded plugin's objects are not all visible to gc: {seen}")
    ex.unload("seen")
    _load_unload(ex, 1, count)
    after, rss_after = _census(kinds), _rss()
    g = f"9. memory: {count} distinct plugins loaded and unloaded in a row"
    rows = [
        Figure(g, "RSS after / before", _n(rss_after / rss), "x"),
        Figure(g, "RSS increase", _n(rss_after - rss), "MB"),
    ]
    for kind in kinds:
        label = f"live {kind.__module__}.{kind.__qualname__} objects, after - before"
        rows.append(Figure(g, label, _n(after[kind] - before[kind]), "n"))
    return rows


def _churn_spec(name: str, k: int = 0) -> PluginSpec:
    return spec(name, fixtures.numbered_hostcall(k), ["ReadSystemInfo"])


def _census(kinds: Sequence[type]) -> dict[type, int]:
    """Objects of each kind the collector still tracks in this process."""
    gc.collect()
    counts = dict.fromkeys(kinds, 0)
    for o in gc.get_objects():
        if type(o) in counts:
            counts[type(o)] += 1
    return counts


def _load_unload(ex: Executor, first: int, count: int) -> None:
    for k in range(first, first + count):
        name = f"churn-{k:05}"
        ex.load(_churn_spec(name, k))
        ex.unload(name)
