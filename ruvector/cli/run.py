"""`ruvector run`: load the plugins of ruvector.toml and tick them."""

from __future__ import annotations

from pathlib import Path

import click

from executor.executor import Executor
from executor.spec import PluginSpec
from reconciler.desired import DesiredState, load_desired
from reconciler.plugin_dir import build_spec
from ruvector.cli.common import config_option, run_executor
from ruvector.cli.output import ConsoleObserver
from ruvector.errors import InputError


@click.command()
@config_option
@click.option("--ticks", type=click.IntRange(min=1), help="Stop after this many ticks.")
def run(config_path: Path, ticks: int | None) -> None:
    """Run the enabled plugins of ruvector.toml on a fixed tick.

    Stops on SIGINT or SIGTERM after the current tick, calling each plugin's
    on_cleanup. A plugin that cannot be loaded is reported and skipped; the
    others run.
    """
    desired = load_desired(config_path)
    if not desired.enabled:
        click.echo(f"{config_path}: plugins.enabled is false; nothing to run")
        return
    observer = ConsoleObserver()
    specs = _specs(desired, observer)
    executor = Executor(desired.settings, observer)
    executor.load_all(specs)
    interval = desired.settings.tick_interval_ms
    click.echo(f"running {len(executor.plugins)} plugin(s), a tick every {interval} ms")
    run_executor(executor, ticks)


def _specs(desired: DesiredState, observer: ConsoleObserver) -> list[PluginSpec]:
    specs = []
    for plugin in desired.plugins:
        if not plugin.enabled:
            continue
        try:
            specs.append(build_spec(plugin))
        except InputError as exc:
            observer.refused(plugin.name, str(exc))
    return specs
