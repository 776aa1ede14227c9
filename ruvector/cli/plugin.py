"""`ruvector plugin ...`: manage installed plugins."""

from __future__ import annotations

from pathlib import Path

import click

from executor.health import enable_plugin
from reconciler.desired import load_desired
from ruvector.cli.common import config_option


@click.group()
def plugin() -> None:
    """Manage plugins."""


@plugin.command()
@click.argument("name")
@config_option
def enable(name: str, config_path: Path) -> None:
    """Re-enable NAME after it was disabled for breaking its limits."""
    state_dir = Path(load_desired(config_path).settings.state_dir)
    if enable_plugin(state_dir, name):
        click.echo(f"{name}: enabled; its record of violations is cleared")
    else:
        click.echo(f"{name}: not disabled in {state_dir}")
