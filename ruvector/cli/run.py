"""`ruvector run`: load the plugins of ruvector.toml and tick them."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from executor.executor import Executor
from executor.spec import PluginSpec
from reconciler.desired import DesiredState, load_desired
from reconciler.plugin_dir import build_spec
from ruvector.cli.common import config_option, on_sighup, run_executor
from ruvector.cli.output import ConsoleObserver
from ruvector.errors import InputError


@click.command()
@config_option
@click.option("--ticks", type=click.IntRange(min=1), help="Stop after this many ticks.")
def run(config_path: Path, ticks: int | None) -> None:
    """Run the enabled plugins of ruvector.toml on a fixed tick.

    Stops on SIGINT or SIGTERM after the current tick, calling each plugin's
    on_cleanup. On SIGHUP it re-reads the file and switches to its `profile`
    (plugins hear of it through on_profile_switch). A plugin that cannot be
    loaded is reported and skipped; the others run.
    """
    desired = load_desired(config_path, skip_bad_plugins=True)
    if not desired.enabled:
        click.echo(f"{config_path}: plugins.enabled is false; nothing to run")
        return
    observer = ConsoleObserver()
    specs = _specs(desired, observer)
    executor = Executor(desired.settings, observer)

    def load() -> None:
        executor.load_all(specs)
        interval = desired.settings.tick_interval_ms
        click.echo(f"running {len(executor.plugins)} plugin(s), a tick every {interval} ms")

    with on_sighup() as hup:
        run_executor(executor, load, ticks, lambda: _reload(config_path, executor, hup))


def _reload(config_path: Path, executor: Executor, hup: threading.Event) -> None:
    """On SIGHUP, take the profile from the file; a bad file changes nothing."""
    if not hup.is_set():
        return
    hup.clear()
    try:
        profile = load_desired(config_path).settings.profile
    except InputError as exc:
        click.echo(f"SIGHUP: {exc}; keeping profile '{executor.profile}'", err=True)
        return
    if profile != executor.profile:
        click.echo(f"SIGHUP: switching profile '{executor.profile}' -> '{profile}'")
        executor.switch_profile(profile)


def _specs(desired: DesiredState, observer: ConsoleObserver) -> list[PluginSpec]:
    specs = []
    for name, problem in desired.problems:
        observer.refused(name, str(problem))
    for plugin in desired.plugins:
        if not plugin.enabled:
            continue
        try:
            specs.append(build_spec(plugin))
        except InputError as exc:
            observer.refused(plugin.name, str(exc))
    return specs
