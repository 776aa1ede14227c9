"""Group 9's executor memory, in a process of its own: `python -m bench.memory_probe N FIRST TICKS`.

Measured in the bench's own process, RSS would carry what earlier groups
allocated, and loading would reuse memory they freed, which understates what
plugins cost. Here a fresh interpreter imports the executor, starts it,
loads and unloads one plugin (the first compile sets up wasmtime's compiler,
once per process), loads N idle no-op plugins, ticks FIRST times, then
TICKS times more as run() does (each tick and its status file), and prints
RSS (after gc.collect()) at each point as JSON on stdout.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time

import psutil

from bench import fixtures
from bench.figures import TICK_ARG
from bench.fixtures import spec
from executor.executor import Executor
from executor.spec import ExecutorSettings


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def main(argv: list[str]) -> int:
    count, first, ticks = (int(a) for a in argv)
    with tempfile.TemporaryDirectory(prefix="ruvector-bench-") as root:
        settings = ExecutorSettings(state_dir=root, tick_interval_ms=TICK_ARG)
        ex = Executor(settings)
        try:
            ex.current_sample()
            # One plugin loaded and unloaded first: the first compile sets up
            # wasmtime's compiler, once per process, which is not the plugins'.
            ex.load(spec("warm-up", fixtures.NOOP))
            ex.unload("warm-up")
            out: dict[str, float] = {"started": _rss()}
            refused = ex.load_all(spec(f"p{k:04}", fixtures.NOOP) for k in range(count))
            if refused:
                raise RuntimeError(f"fixture refused: {refused[0]}")
            out["loaded"] = _rss()
            for _ in range(first):
                ex.tick()
            out["first"] = _rss()
            start = time.perf_counter()
            for _ in range(ticks):
                ex.ticker.epoch += 1  # as at the real spacing (bench.figures: epoch_moved)
                ex.tick()
                ex.publish_status(force=True)  # as run() does after each tick
                ex.status_writer.flush()
            out["tick_s"] = (time.perf_counter() - start) / max(ticks, 1)
            out["after"] = _rss()
            if any(p.metrics.violations or not p.enabled for p in ex.plugins.values()):
                raise RuntimeError("a memory fixture broke a limit")
        finally:
            ex.shutdown()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
