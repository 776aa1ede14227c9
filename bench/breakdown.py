"""Where a no-op Sandbox.call's time goes: `python -m bench.breakdown [--quick]`.

A diagnostic, not a figure: it calls a sandbox's binding directly, which the
real path never does, to split a call into the binding's work (fuel refill,
the call, fuel and memory read: wasmtime and ctypes) and the sandbox's
Python around it, for each binding, and shows what a lone call outside a
tick pays to wake the epoch ticker. Interleaved as in bench.run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import fixtures
from bench.figures import TICK_ARG, Lab, hook_calls, spanned_calls
from bench.fixtures import spec
from bench.timing import Runner, Stat, interleaved, minus
from executor.executor import Executor
from executor.sandbox import Sandbox


def _binding_runs(ex: Executor, box: Sandbox) -> Runner:
    """The binding's share of a call: arm, call, disarm, in one."""
    binding = box._binding
    assert binding is not None, "the sandbox is started"
    ticker = ex.ticker

    def run(n: int) -> None:
        with ticker.running():
            for _ in range(n):  # the deadline armed each call, as in a tick
                binding.run(True, "on_tick", (TICK_ARG,))

    return run


def measure(calls: int, repeats: int) -> list[tuple[str, Stat]]:
    with tempfile.TemporaryDirectory(prefix="ruvector-bench-") as root:
        lab = Lab(Path(root))
        try:
            runners: dict[str, Runner] = {}
            for api in ("fast", "reference"):
                ex = lab.executor(f"breakdown-{api}", api=api)
                plugin, bare = (ex.load(spec(n, fixtures.NOOP)) for n in ("call", "bare"))
                runners[api] = spanned_calls(ex, plugin)
                runners[f"{api} binding"] = _binding_runs(ex, bare.sandbox)
            lone = lab.executor("breakdown-lone").load(spec("lone", fixtures.NOOP)).sandbox
            runners["lone"] = hook_calls(lone, TICK_ARG)
            t = interleaved(runners, calls, repeats)
        finally:
            lab.close()
    rows = []
    for api in ("fast", "reference"):
        binding = t[f"{api} binding"]
        rows += [
            (f"Sandbox.call('on_tick') + accounting in a tick, {api}", Stat.of(t[api])),
            ("  the binding: refuel, deadline, call, fuel and memory read", Stat.of(binding)),
            ("  the sandbox's and executor's Python around it", Stat.of(minus(t[api], binding))),
        ]
    rows.append(("a lone call outside a tick (fast)", Stat.of(t["lone"])))
    rows.append(("  of it, waking the epoch ticker", Stat.of(minus(t["lone"], t["fast"]))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations and repeats")
    args = parser.parse_args(argv)
    rows = measure(2_000, 3) if args.quick else measure(20_000, 5)
    for label, stat in rows:
        print(
            f"{label:56} {stat.median * 1e6:6.2f} µs  ({stat.low * 1e6:.2f}-{stat.high * 1e6:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
