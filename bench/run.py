"""Run every benchmark figure and print the table: `python -m bench.run [--quick] [--markdown]`.

Everything runs in a temporary state dir, removed at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench import capacity, processlist, reconcile, registry, report, scale
from bench import figures as executor_figures
from bench.figures import FULL, QUICK, Figure, Lab, Size

GROUPS = (
    *executor_figures.GROUPS,
    reconcile.plan_no_change,
    reconcile.reconcile_new,
    registry.registry_reconcile,
    scale.scale,
    processlist.process_list,
    capacity.capacity,
)


def measure(size: Size) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="ruvector-bench-") as root:
        lab = Lab(Path(root))
        try:
            for group in GROUPS:
                start = time.perf_counter()
                print(f"measuring {group.__name__}...", file=sys.stderr, flush=True)
                figures += group(lab, size)
                print(f"  {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
            lab.check()
        finally:
            lab.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations and repeats")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    figures = measure(size)
    print(report.machine_text(report.machine(), args.markdown))
    print(f"\n{size.repeats} repeats per figure; median and range of the per-op times.\n")
    print(report.markdown(figures) if args.markdown else report.text(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
