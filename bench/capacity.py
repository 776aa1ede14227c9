"""Group 11 (issue 6): how many plugins doing real work one machine carries at a 5 s tick.

The plugin is the example chrome-tab-limiter, built from its C source with
the SDK: every tick it reads the process list, walks every entry with the
SDK's JSON reader, matches each name against its configured one and reports
a metric. That is what a process-watching plugin does, not a stand-in. The
machine's processes are topped up to `processlist_processes` (520 in FULL),
since a tick's cost grows with the list.

Three bounds, each from a probe executor of `capacity_probe` plugins:

- CPU: (5 s - the shared sample) / one plugin's share of a tick. The
  executor ticks on one thread, so this is one core's worth.
- memory mappings (Linux): wasmtime maps code and a memory reservation per
  instance, about 6 mappings a plugin (measured); the process may hold
  vm.max_map_count of them. (limit - mappings now) / mappings per plugin.
- RAM: available memory / resident bytes per plugin after a tick.

The smallest bound is the capacity. The group then loads that many, less
10% (and at most `capacity_max`), into one executor and times
`capacity_ticks` real ticks after an untimed one. From the direct run come
the same per-plugin figures again (tick time, memory), to compare with the
probe's, and the CPU bound they imply. The memory-mapping bound is a setting
of the machine (vm.max_map_count), not of ruvector: raising it moves the
capacity up to the next bound.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.figures import Figure, Lab, Size
from bench.fixtures import spec
from bench.processlist import _at_least
from bench.scale import TICK_INTERVAL_S, _loaded, _n, _rss
from bench.timing import Stat
from executor.executor import Executor

EXAMPLE = Path(__file__).parents[1] / "examples" / "chrome-tab-limiter"
CAPABILITIES = ("ReadProcessList", "ShowNotifications")
MARGIN = 0.9  # the direct run loads this share of the smallest bound


def capacity(lab: Lab, size: Size) -> list[Figure]:
    wasm = _build_example()
    lab.retire()  # earlier groups' plugins would hold mappings and memory
    with _at_least(size.processlist_processes):
        probe = _probe(lab, wasm, size)
        count = min(int(min(probe.bounds.values()) * MARGIN), size.capacity_max)
        direct = _direct(lab, wasm, count, size.capacity_ticks, probe.fuel)
    g = "11. capacity: chrome-tab-limiter (C SDK) plugins at a 5 s tick"
    g2 = f"11. capacity, measured directly: {count} chrome-tab-limiter plugins in one executor"
    bounds = [Figure(g, f"derived: {what} bound", _n(n), "n") for what, n in probe.bounds.items()]
    per_plugin = [(t - direct.sample) / count for t in direct.ticks]
    cpu_bound = [(TICK_INTERVAL_S - direct.sample) / p for p in per_plugin]
    return [
        Figure(g, "processes on the machine", _n(probe.processes), "n"),
        Figure(g, "fuel per on_tick (parsing the whole list)", _n(probe.fuel), "n"),
        Figure(g, f"a plugin's share of a tick, {probe.plugins} plugins", probe.per_plugin, "µs"),
        Figure(g, "shared system sample, with processes", probe.sample, "ms"),
        Figure(g, "memory mappings per plugin", _n(probe.maps_per_plugin), "n"),
        Figure(g, "resident memory per plugin, after a tick", _n(probe.rss_per_plugin), "kB"),
        *bounds,
        Figure(g2, "plugins refused at load (should be 0)", _n(direct.refused), "n"),
        Figure(g2, "load_all, all of them", _n(direct.load_s), "ms"),
        Figure(g2, "Executor.tick()", Stat.of(direct.ticks), "ms", TICK_INTERVAL_S * 1000),
        Figure(
            g2, "tick / the 5 s interval", Stat.of([t / TICK_INTERVAL_S for t in direct.ticks]), "x"
        ),
        Figure(
            g2, "a plugin's share of a tick ((tick - sample) / plugins)", Stat.of(per_plugin), "µs"
        ),
        Figure(g2, "derived from it: CPU (one core) bound", Stat.of(cpu_bound), "n"),
        Figure(
            g2, "resident memory per plugin, loaded and ticked", _n(direct.rss_per_plugin), "kB"
        ),
        Figure(g2, "RSS of the bench process", _n(direct.rss), "MB"),
    ]


def _build_example() -> bytes:
    """chrome-tab-limiter built from source, as `ruvector plugin build` does."""
    from authoring.build import build_plugin  # needs the C toolchain (ziglang)

    with tempfile.TemporaryDirectory(prefix="ruvector-bench-") as root:
        directory = Path(root) / EXAMPLE.name
        shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns("*.wasm"))
        return build_plugin(directory).wasm_path.read_bytes()


@dataclass
class _Probe:
    plugins: int = 0
    processes: int = 0
    fuel: float = 0.0  # per on_tick
    per_plugin: Stat = field(default_factory=lambda: Stat.of([0.0]))
    sample: Stat = field(default_factory=lambda: Stat.of([0.0]))
    maps_per_plugin: float = 0.0
    rss_per_plugin: float = 0.0
    bounds: dict[str, float] = field(default_factory=dict)


def _probe(lab: Lab, wasm: bytes, size: Size) -> _Probe:
    p = _Probe()
    p.plugins = count = size.capacity_probe
    maps, rss = _maps(), _rss()
    ex = _loaded(lab, "capacity-probe", count, wasm, CAPABILITIES)
    ex.tick()  # the first tick touches each plugin's heap
    p.maps_per_plugin = (_maps() - maps) / count
    p.rss_per_plugin = (_rss() - rss) / count
    ticks, samples = [], []
    for _ in range(size.repeats):
        ticks.append(_timed(ex.tick))
        samples.append(_timed(lambda: ex.sampler.sample(processes=True)))
    p.per_plugin = Stat.of([(t - s) / count for t, s in zip(ticks, samples, strict=True)])
    p.sample = Stat.of(samples)
    p.processes = len(ex.current_sample(processes=True).processes or ())
    metrics = [plugin.metrics for plugin in ex.plugins.values()]
    p.fuel = sum(m.fuel_used for m in metrics) / sum(m.ticks for m in metrics)
    _check(ex, p.fuel)
    ex.shutdown()
    p.bounds["CPU (one core)"] = (TICK_INTERVAL_S - p.sample.median) / p.per_plugin.median
    limit = _map_limit()
    if limit is not None:
        p.bounds["memory-mapping"] = (limit - _maps()) / p.maps_per_plugin
    p.bounds["RAM"] = psutil.virtual_memory().available / p.rss_per_plugin
    return p


@dataclass
class _Direct:
    refused: int = 0
    load_s: float = 0.0
    ticks: list[float] = field(default_factory=list)
    rss: float = 0.0
    rss_per_plugin: float = 0.0
    sample: float = 0.0


def _direct(lab: Lab, wasm: bytes, count: int, ticks: int, fuel: float) -> _Direct:
    d = _Direct()
    ex = lab.executor("capacity-direct")
    before = _rss()
    start = time.perf_counter()
    refused = ex.load_all(spec(f"p{k:06}", wasm, CAPABILITIES) for k in range(count))
    d.load_s = time.perf_counter() - start
    d.refused = len(refused)
    if refused:
        print(f"capacity: {refused[0]}", file=sys.stderr)
    ex.tick()  # untimed: the first tick touches each plugin's heap
    d.ticks = [_timed(ex.tick) for _ in range(ticks)]
    d.rss = _rss()
    d.rss_per_plugin = (d.rss - before) / max(count, 1)
    d.sample = _timed(lambda: ex.sampler.sample(processes=True))
    _check(ex, fuel)
    ex.shutdown()
    return d


def _check(ex: Executor, fuel: float) -> None:
    """Every plugin did its whole work every tick: otherwise the figure times failures.

    A tick's whole work is two host calls at least (the process list and the
    metric), and fuel near the probe's mean: a plugin whose list read failed
    makes one call and burns almost none.
    """
    for plugin in ex.plugins.values():
        m = plugin.metrics
        clean = not (m.violations or m.host_errors) and plugin.enabled
        if not clean or m.host_calls < 2 * m.ticks or m.fuel_used < 0.5 * fuel * m.ticks:
            raise RuntimeError(f"capacity plugin {plugin.name} did not do its work: {m}")


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _maps() -> int:
    """Memory mappings of this process (Linux); 0 where there is no /proc."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _map_limit() -> int | None:
    try:
        return int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        return None
