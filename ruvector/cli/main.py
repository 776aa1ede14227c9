"""`ruvector`: the console script. Each subcommand lives in its own module."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from ruvector import __version__
from ruvector.cli.dev import dev
from ruvector.cli.edit import add_command, approve_command, remove_command, set_command
from ruvector.cli.plugin import plugin
from ruvector.cli.reconcile import plan_command, reconcile_command, rollback_command
from ruvector.cli.run import run
from ruvector.cli.status import status_command
from ruvector.errors import HostFault, InputError


class _Group(click.Group):
    """Expected failures end in one line and exit 1; bugs keep their traceback."""

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


cli.add_command(run)
cli.add_command(dev)
cli.add_command(plugin)
cli.add_command(plan_command)
cli.add_command(reconcile_command)
cli.add_command(rollback_command)
for command in (add_command, remove_command, set_command, approve_command):
    cli.add_command(command)
cli.add_command(status_command)

main: Callable[..., Any] = cli
