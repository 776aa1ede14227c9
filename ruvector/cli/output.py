"""How the executor's events look on a terminal."""

from __future__ import annotations

import click

from executor.executor import Executor
from executor.observer import Observer
from executor.sandbox import Violation
from ruvector.cli.text import printable

_LEVEL_COLOURS = {
    "warn": "yellow",
    "error": "red",
    "trace": "bright_black",
    "debug": "bright_black",
}


class ConsoleObserver(Observer):
    """Prints plugin logs, notifications, violations and tick summaries."""

    def __init__(self, verbose_ticks: bool = True) -> None:
        self.verbose_ticks = verbose_ticks

    def log(self, plugin: str, level: str, message: str) -> None:
        tag = click.style(f"{level:5}", fg=_LEVEL_COLOURS.get(level))
        click.echo(f"  [{plugin}] {tag} {printable(message)}")

    def notify(self, plugin: str, title: str, message: str) -> None:
        bell = click.style("notify", fg="cyan", bold=True)
        click.echo(f"  [{plugin}] {bell} {printable(title)}: {printable(message)}")

    def violation(self, plugin: str, violation: Violation, count: int, strikes: int) -> None:
        tag = click.style(f"violation {count}/{strikes}", fg="red", bold=True)
        click.echo(f"  [{plugin}] {tag} {printable(str(violation))}")

    def disabled(self, plugin: str, reason: str) -> None:
        tag = click.style("disabled", fg="red", bold=True)
        click.echo(f"  [{plugin}] {tag}: {printable(reason)}")

    def refused(self, plugin: str, reason: str) -> None:
        tag = click.style("refused", fg="red", bold=True)
        click.echo(f"  [{plugin}] {tag}: {printable(reason)}", err=True)

    def tick_done(self, tick: int, elapsed_s: float) -> None:
        if self.verbose_ticks:
            click.echo(
                click.style(f"tick {tick} done in {elapsed_s * 1000:.1f} ms", fg="bright_black")
            )


_COLUMNS = "{:20} {:8} {:>6} {:>8} {:>8} {:>12} {:>10} {:>10}"


def metrics_table(executor: Executor) -> str:
    """The executor's per-plugin metrics as a fixed-width table."""
    rows = [
        _COLUMNS.format(
            "plugin", "state", "ticks", "mean ms", "max ms", "fuel", "host calls", "violations"
        )
    ]
    for p in executor.plugins.values():
        m = p.metrics
        rows.append(
            _COLUMNS.format(
                p.name,
                "enabled" if p.enabled else "disabled",
                m.ticks,
                f"{m.mean_tick_s * 1000:.2f}",
                f"{m.max_tick_s * 1000:.2f}",
                m.fuel_used,
                m.host_calls,
                m.violations,
            )
        )
    return "\n".join(rows)


def plugin_metrics(executor: Executor) -> str:
    """What each plugin reported with report_metric (last value)."""
    lines = []
    for p in executor.plugins.values():
        for name, stats in sorted(p.state.metrics_snapshot().items()):
            last, count, mean = stats["last"], stats["count"], stats["mean"]
            lines.append(f"  {p.name}.{name} = {last:g} (n={count}, mean {mean:g})")
    return "\n".join(lines)
