"""`ruvector plan`, `ruvector reconcile`, `ruvector rollback`.

Thin: each builds the library's values, calls observe / make_plan / apply,
and prints. Exit codes follow Terraform: plan --detailed-exitcode gives 0 for
no changes, 2 for changes, 1 for an error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler import plan_json
from reconciler.apply import apply, check_base, gather, make_plan, rollback
from reconciler.desired import DesiredState, load_desired, state_dir_of
from reconciler.lock import ReconcileLock
from reconciler.manifest import semver_key
from reconciler.plan import Plan
from reconciler.sources import Offers
from reconciler.store import StateStore
from ruvector.cli.common import config_option, connect_with_progress
from ruvector.cli.render import render
from ruvector.errors import ConfigError


def _prepare(
    config_path: Path, upgrade: bool, allow_downgrade: bool
) -> tuple[DesiredState, StateStore, Offers, Plan]:
    desired = load_desired(config_path)
    store = StateStore(Path(desired.settings.state_dir))
    observed, offers = gather(
        desired, store, upgrade=upgrade, connect=connect_with_progress(desired)
    )
    made = make_plan(desired, observed, offers, upgrade=upgrade, allow_downgrade=allow_downgrade)
    return desired, store, offers, made


upgrade_option = click.option(
    "--upgrade",
    is_flag=True,
    help="Move pins to what the sources offer now: for registry plugins, the newest "
    "version their constraint allows.",
)
downgrade_option = click.option(
    "--allow-downgrade", is_flag=True, help="Allow an older version than the one installed."
)


@click.command("plan")
@config_option
@upgrade_option
@downgrade_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the plan as versioned JSON (schemas/plan.schema.json).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Save the plan for `ruvector reconcile FILE`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 for no changes, 2 for changes, 1 for an error.",
)
def plan_command(
    config_path: Path,
    upgrade: bool,
    allow_downgrade: bool,
    as_json: bool,
    out: Path | None,
    detailed_exitcode: bool,
) -> None:
    """Show what `ruvector reconcile` would do; change nothing."""
    _, _, _, made = _prepare(config_path, upgrade, allow_downgrade)
    if out is not None:
        try:
            out.write_text(plan_json.dumps(made))
        except OSError as exc:
            raise ConfigError(str(out), "", f"cannot save the plan: {exc.strerror}") from None
    if as_json:
        click.echo(plan_json.dumps(made), nl=False)
    else:
        click.echo(render(made, colour=sys.stdout.isatty()))
        if out is not None:
            click.echo(
                f"Saved the plan to {out}: apply exactly it with `ruvector reconcile {out}`."
            )
    if detailed_exitcode and made.has_changes:
        sys.exit(2)


@click.command("reconcile")
@click.argument(
    "plan_file", required=False, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@config_option
@upgrade_option
@downgrade_option
@click.option("--allow-empty", is_flag=True, help="Allow a reconcile that removes every plugin.")
def reconcile_command(
    plan_file: Path | None,
    config_path: Path,
    upgrade: bool,
    allow_downgrade: bool,
    allow_empty: bool,
) -> None:
    """Make the installed plugins match ruvector.toml (or apply PLAN_FILE exactly)."""
    desired = load_desired(config_path)
    with ReconcileLock(Path(desired.settings.state_dir)):
        damaged = StateStore(Path(desired.settings.state_dir)).forget_damaged_current()
        if damaged is not None:
            click.echo(
                f"the generation in force is damaged ({damaged}): installing afresh", err=True
            )
        _, store, offers, made = _prepare(config_path, upgrade, allow_downgrade)
        if plan_file is not None:
            made = _load_plan(plan_file)
            check_base(made, store.current())
        click.echo(render(made, colour=sys.stdout.isatty()))
        # Even with no changes: apply also tidies what a killed run left.
        applied = apply(made, offers, store, allow_empty=allow_empty)
        if not made.has_changes:
            return
        for step in applied.done:
            click.echo(f"  {step}")
        assert applied.generation is not None
        install, change, remove = made.counts()
        click.echo(
            f"Applied: generation {applied.generation.number} is in force "
            f"({install} installed, {change} changed, {remove} removed)."
        )


def _load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "", f"not a saved plan: {exc}") from None
    return plan_json.from_json(data, str(path))


@click.command("rollback")
@config_option
def rollback_command(config_path: Path) -> None:
    """Return to the previous generation.

    Needs only the state dir from ruvector.toml, so it works right after a
    bad edit, when it is most needed.
    """
    state_dir = state_dir_of(config_path)
    store = StateStore(state_dir)
    with ReconcileLock(state_dir):
        left = store.current()
        back = rollback(store)
    names = ", ".join(f"{p.name} {p.version}" for p in back.plugins) or "no plugins"
    click.echo(f"Rolled back to generation {back.number}: {names}")
    for p in left.plugins if left else ():
        older = back.plugin(p.name)
        moved_down = older is None or semver_key(older.version) < semver_key(p.version)
        if p.source.startswith("registry:") and moved_down:
            click.echo(
                f"{p.name} {p.version} will not be offered again by --upgrade or auto-update "
                f'(pin version = "{p.version}" to take it again)'
            )
    click.echo(
        "ruvector.toml is unchanged: the next `ruvector reconcile` (or an edit seen by a "
        "running `ruvector run`) plans forward from here again."
    )
