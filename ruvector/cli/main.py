"""`ruvector`: the console script. Each subcommand lives in its own module.

Subcommands are imported only when invoked: `ruvector plan` has no use for
wasmtime, httpx or psutil, and importing every command up front cost it a
third of its run time.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from ruvector import __version__
from ruvector.errors import HostFault, InputError

# command name -> (module, attribute, one-line help for `ruvector --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("ruvector.cli.run", "run", "Reconcile, then run the plugins on a fixed tick."),
    "plan": ("ruvector.cli.reconcile", "plan_command", "Show what a reconcile would do."),
    "reconcile": (
        "ruvector.cli.reconcile",
        "reconcile_command",
        "Make installed match ruvector.toml.",
    ),
    "rollback": (
        "ruvector.cli.reconcile",
        "rollback_command",
        "Return to the previous generation.",
    ),
    "status": ("ruvector.cli.status", "status_command", "Desired, installed and running plugins."),
    "add": ("ruvector.cli.edit", "add_command", "Add a plugin to ruvector.toml."),
    "remove": ("ruvector.cli.edit", "remove_command", "Remove a plugin from ruvector.toml."),
    "set": ("ruvector.cli.edit", "set_command", "Set a key of a plugin in ruvector.toml."),
    "approve": ("ruvector.cli.edit", "approve_command", "Approve (or revoke) capabilities."),
    "plugin": (
        "ruvector.cli.plugin",
        "plugin",
        "Plugins: new, build, inspect, doc, pack, sign, enable.",
    ),
    "keygen": ("ruvector.cli.plugin", "keygen", "Make a publisher's Ed25519 signing key."),
    "dev": ("ruvector.cli.dev", "dev", "Tools for plugin authors."),
    "search": ("ruvector.cli.search", "search_command", "Find plugins in the registry."),
    "info": ("ruvector.cli.search", "info_command", "Show a registry plugin's details."),
    "registry": ("ruvector.cli.registry", "registry", "Make, fill and serve a plugin registry."),
}


class _Group(click.Group):
    """Loads subcommands on demand; expected failures end in one line and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every command just for its summary.
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (InputError, HostFault) as exc:
            click.echo(click.style("error: ", fg="red", bold=True) + str(exc), err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ruvector")
@click.option("-v", "--verbose", is_flag=True, help="Show the host's own debug log.")
def cli(verbose: bool) -> None:
    """RuVector: run sandboxed WebAssembly optimizer plugins."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


main: Callable[..., Any] = cli
