"""`ruvector plugin ...`: manage installed plugins."""

from __future__ import annotations

import re
from pathlib import Path

import click

from executor.health import enable_plugin, plugin_dir
from reconciler.bundle import bundle_from_dir, write_bundle
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


@plugin.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle to write (default: NAME-VERSION.rvp in the current directory).",
)
def pack(directory: Path, out: Path | None) -> None:
    """Pack the plugin in DIRECTORY into one .rvp bundle."""
    # Authors pack for platforms other than their own: no host check here.
    bundle = bundle_from_dir(directory, check_host=False)
    out = out or Path(f"{bundle.manifest.name}-{bundle.manifest.version}.rvp")
    write_bundle(bundle, out)
    click.echo(f"{out}: {out.stat().st_size} bytes, digest sha256:{bundle.digest}")
