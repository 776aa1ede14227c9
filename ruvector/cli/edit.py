"""`ruvector add`, `remove`, `set`, `approve`: edit ruvector.toml, keeping its comments.

Each command builds one edit from reconciler.edit and hands it to
`edit_file`, which validates the result before writing anything; a refused
edit leaves the file as it was and exits 1 with the file and key.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.desired import load_desired
from reconciler.edit import Change, Edited, add_plugin, approve, edit_file, remove_plugin, set_value
from ruvector.cli.common import approve_option, config_option
from ruvector.errors import ConfigError


def _report(config_path: Path, edited: Edited) -> None:
    click.echo(f"{config_path}: {edited.description}")
    if edited.changed:
        click.echo("Run `ruvector plan` to preview it, `ruvector reconcile` to apply it.")
    else:
        click.echo("Nothing to change.")


def _edit(config_path: Path, change: Change) -> None:
    _report(config_path, edit_file(config_path, change))


@click.command("add")
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option(
    "--source",
    metavar="SRC",
    help="dir:PATH (a plugin directory) or file:PATH (a .rvp bundle), relative to "
    "ruvector.toml. Without it the plugin comes from the registry; VERSION may then be "
    "a constraint such as ^1.2.",
)
@approve_option("approvals")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A config value (TOML, else text; env:VAR stays a reference). Repeatable.",
)
@click.option("--disabled", is_flag=True, help="Add it with enabled = false.")
@config_option
def add_command(
    spec: str,
    source: str | None,
    approvals: tuple[str, ...],
    settings: tuple[str, ...],
    disabled: bool,
    config_path: Path,
) -> None:
    """Add plugin NAME (at VERSION if given) to ruvector.toml."""
    name, at, version = spec.partition("@")
    config = [_pair(setting) for setting in settings]
    _edit(
        config_path,
        lambda doc: add_plugin(
            doc,
            name,
            source=source,
            version=version if at else None,
            approve=approvals,
            config=config,
            enabled=not disabled,
        ),
    )
    if source is None and load_desired(config_path).registry_root is None:
        click.echo(
            click.style("warning: ", fg="yellow", bold=True)
            + "no registry is pinned (plugins.registry_url and plugins.registry_root): "
            f"`ruvector plan` fails for {name} until they are set (see docs/registry.md)",
            err=True,
        )


@click.command("remove")
@click.argument("name")
@config_option
def remove_command(name: str, config_path: Path) -> None:
    """Remove plugin NAME from ruvector.toml."""
    _edit(config_path, lambda doc: remove_plugin(doc, name))


# So that a negative VALUE (-5) is a value, not an unknown option.
@click.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key", metavar="NAME.KEY")
@click.argument("value")
@config_option
def set_command(key: str, value: str, config_path: Path) -> None:
    """Set a key of plugin NAME's table or, as NAME.config.KEY, of its config.

    For example `ruvector set hello.max_tick_ms 50` or `ruvector set
    hello.config.greeting hi`. VALUE is read as TOML when it is a TOML value (50, -5, true, [1, 2],
    '{ a = 1 }', '"quoted text"'), otherwise as text: env:VAR stays the
    reference, not the secret.
    """
    _edit(config_path, lambda doc: set_value(doc, key, value))


@click.command("approve")
@click.argument("name")
@click.argument("caps", nargs=-1, metavar="[CAP]...")
@click.option(
    "--revoke",
    multiple=True,
    metavar="CAP",
    help="Take an approved capability away. Repeatable.",
)
@config_option
def approve_command(
    name: str, caps: tuple[str, ...], revoke: tuple[str, ...], config_path: Path
) -> None:
    """Approve capabilities for plugin NAME, or take them away with --revoke.

    For example `ruvector approve hello KillProcess 'NetworkAccess(api.example.com)'`.
    """
    if not caps and not revoke:
        raise click.UsageError("name a capability to approve, or --revoke one")
    _edit(config_path, lambda doc: approve(doc, name, caps, revoke))


def _pair(setting: str) -> tuple[str, str]:
    key, sep, value = setting.partition("=")
    if not sep or not key:
        raise ConfigError("--set", setting, "expected KEY=VALUE")
    return key.strip(), value
