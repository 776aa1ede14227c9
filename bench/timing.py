"""Timing on a noisy machine: peers interleaved, several repeats, medians.

Every runner of a comparison is timed in the same repeat, one after the
other, and the order flips from one repeat to the next, so drift in the
machine's load hits peers alike. A figure derived from two runners (a
difference, a ratio) is computed per repeat, then the median taken.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Runner = Callable[[int], None]  # does its operation n times


@dataclass(frozen=True)
class Stat:
    """Seconds per operation over the repeats."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stat:
        return cls(statistics.median(samples), min(samples), max(samples))


def interleaved(
    runners: Mapping[str, Runner], n: int | Mapping[str, int], repeats: int
) -> dict[str, list[float]]:
    """Seconds per operation of each runner, one value per repeat.

    `n` is the operations per repeat, for all runners or by name (slow
    operations need fewer). Each runner first runs a short warm-up (caches,
    lazy bindings, branch predictors), untimed.
    """
    counts = {name: n if isinstance(n, int) else n[name] for name in runners}
    for name, run in runners.items():
        run(max(1, counts[name] // 10))
    times: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners.items())
    for _ in range(repeats):
        for name, run in order:
            gc.collect()  # no collection of an earlier runner's garbage lands here
            start = time.perf_counter()
            run(counts[name])
            times[name].append((time.perf_counter() - start) / counts[name])
        order.reverse()
    return times


def minus(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-repeat differences a - b."""
    return [x - y for x, y in zip(a, b, strict=True)]


def ratio(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-repeat ratios a / b."""
    return [x / y for x, y in zip(a, b, strict=True)]
