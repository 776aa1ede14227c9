"""Where a no-op Sandbox.call's time goes: `python -m bench.breakdown [--quick]`.

A diagnostic, not a figure: it reaches into Sandbox's private store and
ticker to take pieces away one at a time, which the real path never does.
Each variant runs on its own plugin of one executor, interleaved as in
bench.run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import fixtures
from bench.figures import TICK_ARG, Lab, hook_calls
from bench.fixtures import spec
from bench.timing import Runner, Stat, interleaved, minus
from executor.engine import deadline_ticks
from executor.sandbox import Sandbox


class _NoTicker:
    """Stands in for EpochTicker: the epoch never moves, no thread is woken."""

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        yield


def _bare_calls(box: Sandbox) -> Runner:
    """What Sandbox.call does in wasmtime-py, without its Python around it."""
    store, fn = box._store, box._exports["on_tick"]
    assert store is not None, "the sandbox is started"
    fuel, ticks = box.spec.limits.fuel_per_call, deadline_ticks(box.spec.limits.max_call_ms)

    def run(n: int) -> None:
        for _ in range(n):
            store.set_fuel(fuel)
            store.set_epoch_deadline(ticks)
            fn(store, TICK_ARG)
            store.get_fuel()

    return run


def _after_sample(box: Sandbox, sample: Runner) -> Runner:
    call = box.call

    def run(n: int) -> None:
        for _ in range(n):
            sample(1)
            call("on_tick", TICK_ARG)

    return run


def measure(calls: int, repeats: int) -> list[tuple[str, Stat]]:
    with tempfile.TemporaryDirectory(prefix="ruvector-bench-") as root:
        lab = Lab(Path(root))
        try:
            ex = lab.executor("breakdown")
            real, stubbed, bare = (
                ex.load(spec(name, fixtures.NOOP)).sandbox for name in ("real", "stub", "bare")
            )
            stubbed._ticker = _NoTicker()  # type: ignore[assignment]
            sampler = ex.sampler

            def sample(n: int) -> None:
                for _ in range(n):
                    sampler.sample(processes=False)

            t = interleaved(
                {
                    "real": hook_calls(real, TICK_ARG),
                    "stub": hook_calls(stubbed, TICK_ARG),
                    "bare": _bare_calls(bare),
                    "sample": sample,
                    "sample+real": _after_sample(real, sample),
                    "sample+stub": _after_sample(stubbed, sample),
                },
                {"sample": calls // 4, "sample+real": calls // 4, "sample+stub": calls // 4}
                | {k: calls for k in ("real", "stub", "bare")},
                repeats,
            )
        finally:
            lab.close()
    return [
        ("Sandbox.call('on_tick')", Stat.of(t["real"])),
        ("  wasmtime-py calls alone (set_fuel, deadline, call, get_fuel)", Stat.of(t["bare"])),
        ("  our Python around them (ticker stubbed - bare)", Stat.of(minus(t["stub"], t["bare"]))),
        ("  EpochTicker.running() (real - ticker stubbed)", Stat.of(minus(t["real"], t["stub"]))),
        ("after a sample, as in tick(): call (sample+call - sample)", _after(t, "real")),
        ("  the same with the ticker stubbed", _after(t, "stub")),
    ]


def _after(t: dict[str, list[float]], variant: str) -> Stat:
    return Stat.of(minus(t[f"sample+{variant}"], t["sample"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations and repeats")
    args = parser.parse_args(argv)
    rows = measure(2_000, 3) if args.quick else measure(20_000, 5)
    for label, stat in rows:
        print(
            f"{label:62} {stat.median * 1e6:6.1f} µs  ({stat.low * 1e6:.1f}-{stat.high * 1e6:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
