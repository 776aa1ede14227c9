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
# Sets up one operation, untimed, and returns it: for operations that each
# need a fresh start (an empty state dir).
Prepare = Callable[[], Callable[[], None]]


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
    counts = _counts(runners, n)
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


def interleaved_fresh(
    prepares: Mapping[str, Prepare], n: int | Mapping[str, int], repeats: int
) -> dict[str, list[float]]:
    """As `interleaved`, for operations that each need their own set-up.

    Each operation is prepared untimed, then timed alone; a repeat's value
    is the mean of its `n` operations. One untimed operation of each first,
    as the warm-up.
    """
    counts = _counts(prepares, n)
    for prepare in prepares.values():
        prepare()()
    times: dict[str, list[float]] = {name: [] for name in prepares}
    order = list(prepares.items())
    for _ in range(repeats):
        for name, prepare in order:
            total = 0.0
            for _ in range(counts[name]):
                operation = prepare()
                gc.collect()
                start = time.perf_counter()
                operation()
                total += time.perf_counter() - start
            times[name].append(total / counts[name])
        order.reverse()
    return times


def _counts(named: Mapping[str, object], n: int | Mapping[str, int]) -> dict[str, int]:
    return {name: n if isinstance(n, int) else n[name] for name in named}


def minus(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-repeat differences a - b."""
    return [x - y for x, y in zip(a, b, strict=True)]


def ratio(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-repeat ratios a / b."""
    return [x / y for x, y in zip(a, b, strict=True)]
