"""The machine a run was made on, and the figures as a text or markdown table."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from bench.figures import Figure

HEADER = ("Figure", "Median", "Range over repeats", "Target", "Met")


def machine() -> list[tuple[str, str]]:
    return [
        ("platform", platform.platform()),
        ("cpu", _cpu_model()),
        ("nproc", str(len(os.sched_getaffinity(0)))),
        ("python", sys.version.split()[0]),
        ("wasmtime", metadata.version("wasmtime")),
        ("extism", metadata.version("extism")),
        ("commit", _commit()),
    ]


def _commit() -> str:
    """The code measured; "-dirty" if the work tree differs from it."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
            # Read only: without this, git may rewrite the index's stat cache.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _num(value: float) -> str:
    """Three significant figures, without an exponent for the sizes seen here."""
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    digits = max(0, 2 - int(f"{abs(value):e}".split("e")[1]))
    return f"{value:.{digits}f}"


def _row(f: Figure) -> tuple[str, ...]:
    unit = {"x": "\N{MULTIPLICATION SIGN}", "%": "%"}.get(f.unit, f" {f.unit}")
    low, high = f.scaled(f.stat.low), f.scaled(f.stat.high)
    target = "" if f.target is None else f"≤ {_num(f.target)}{unit}"
    met = {None: "", True: "yes", False: "no"}[f.met]
    return (
        f.label,
        f"{_num(f.scaled(f.stat.median))}{unit}",
        f"{_num(low)}\N{EN DASH}{_num(high)}",
        target,
        met,
    )


def markdown(figures: Sequence[Figure]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    group = None
    for f in figures:
        if f.group != group:
            group = f.group
            lines.append(f"| **{group}** |" + " |" * (len(HEADER) - 1))
        lines.append("| " + " | ".join(_row(f)) + " |")
    return "\n".join(lines)


def text(figures: Sequence[Figure]) -> str:
    rows = [_row(f) for f in figures]
    widths = [max(len(r[i]) for r in [*rows, HEADER]) for i in range(len(HEADER))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines, group = [fmt(HEADER)], None
    for f, row in zip(figures, rows, strict=True):
        if f.group != group:
            group = f.group
            lines += ["", group]
        lines.append(fmt(row))
    return "\n".join(lines)


def machine_text(info: Sequence[tuple[str, str]], md: bool) -> str:
    if md:
        return "\n".join(f"- {k}: `{v}`" for k, v in info)
    return "\n".join(f"{k:>9}: {v}" for k, v in info)
