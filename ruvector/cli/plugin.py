"""`ruvector plugin ...`: manage installed plugins."""

from __future__ import annotations

import re
from pathlib import Path

import click

from executor.health import enable_plugin, plugin_dir
from reconciler.desired import load_desired
from ruvector.cli.common import config_option
from ruvector.errors import ConfigError

# As the manifest schema names plugins; anything else could name a path.
_PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@click.group()
def plugin() -> None:
    """Manage plugins."""


@plugin.command()
@click.argument("name")
@config_option
def enable(name: str, config_path: Path) -> None:
    """Re-enable NAME after it was disabled for breaking its limits."""
    state_dir = Path(load_desired(config_path).settings.state_dir)
    if not _PLUGIN_NAME.match(name):
        raise ConfigError("NAME", "", f"'{name}' is not a plugin name")
    if not plugin_dir(state_dir, name).is_dir():
        raise ConfigError("NAME", "", f"no plugin '{name}' has run with state in {state_dir}")
    if enable_plugin(state_dir, name):
        click.echo(f"{name}: enabled; its record of violations is cleared")
    else:
        click.echo(f"{name}: not disabled in {state_dir}")
