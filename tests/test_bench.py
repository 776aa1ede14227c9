"""The benchmark harness runs, tiny: it must not rot between measurements.

No timing is asserted here (figures belong in BENCHMARKS.md); the harness
checks its own fixtures (no violations, exact host-call counts, fuel used
only where metered, cache hits), and those checks must hold.
"""

from __future__ import annotations

import math

from bench import report
from bench.figures import Size
from bench.run import measure

TINY = Size(
    repeats=1,
    dispatch_calls=20,
    one_plugin_ticks=3,
    host_calls_per_hook=100,
    host_call_hooks=1,
    hundred_plugin_ticks=2,
    spin_iterations=10_000,
    tick_plugins=5,
    startup_plugins=3,
)


def test_every_figure_is_measured() -> None:
    figures = measure(TINY)
    groups = {f.group.split(".")[0] for f in figures}
    assert {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"} <= groups, groups
    for f in figures:
        assert math.isfinite(f.stat.median), f.label
    assert "Extism Plugin.call" in report.text(figures)
