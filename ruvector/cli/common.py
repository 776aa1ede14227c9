"""Options and helpers shared by subcommands."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.desired import DesiredState

if TYPE_CHECKING:
    # Imported where used: `ruvector plan` and the editing commands share this
    # module and need neither wasmtime nor httpx.
    from executor.executor import Executor
    from registry.client import RegistryClient
    from registry.source import ClientFactory


def connect_with_progress(desired: DesiredState) -> ClientFactory:
    """Open ruvector.toml's registry with a progress bar on a terminal."""

    def connect() -> RegistryClient:
        from registry.fetch import TerminalProgress
        from registry.source import registry_client

        return registry_client(desired, TerminalProgress())

    return connect


def approve_option(dest: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--approve CAP, repeatable, into parameter `dest`."""
    return click.option(
        "--approve",
        dest,
        multiple=True,
        metavar="CAP",
        help="Approve a capability, e.g. KillProcess or 'FileSystemRead(/tmp)'. Repeatable.",
    )


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default="ruvector.toml",
    envvar="RUVECTOR_CONFIG",
    show_default=True,
    help="The desired state to read (or set RUVECTOR_CONFIG).",
)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, for a graceful stop after the tick."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        click.echo(f"\n{signal.Signals(signum).name}: stopping after this tick", err=True)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def on_sighup() -> Iterator[threading.Event]:
    """An event set by SIGHUP (where the platform has it): "re-read the config"."""
    hup = threading.Event()
    sig = getattr(signal, "SIGHUP", None)
    if sig is None:
        yield hup
        return
    previous = signal.signal(sig, lambda signum, frame: hup.set())
    try:
        yield hup
    finally:
        signal.signal(sig, previous)


def run_executor(
    executor: Executor,
    load: Callable[[], object],
    ticks: int | None,
    before_tick: Callable[[], None] | None = None,
) -> None:
    """Load, tick until done or signalled, then shut down cleanly and print metrics.

    Signals are caught from before loading: a SIGINT while plugins load still
    ends with on_cleanup for the ones already loaded.
    """
    try:
        with stop_on_signals() as stop:
            load()
            executor.run(ticks=ticks, stop=stop, before_tick=before_tick)
    finally:
        # Read before shutdown, which unloads every plugin.
        from ruvector.cli.output import metrics_table, plugin_metrics

        table, reported = metrics_table(executor), plugin_metrics(executor)
        executor.shutdown()
        click.echo()
        click.echo(table)
        if reported:
            click.echo("\nmetrics reported by plugins:")
            click.echo(reported)
