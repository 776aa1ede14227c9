"""`ruvector status`: desired and installed versions, trust, state, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from reconciler.desired import load_desired
from reconciler.status import collect
from ruvector.cli.common import config_option

_ROW = "{:20} {:10} {:10} {:9} {:9} {:>6} {:>8} {:>10}"


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def status_command(config_path: Path, as_json: bool) -> None:
    """Show each plugin: desired and installed version, trust, state, metrics."""
    report = collect(load_desired(config_path))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    generation = report["generation"]
    click.echo(f"generation in force: {generation if generation is not None else 'none'}")
    executor = report["executor"]
    if executor:
        pid, ticks, profile = executor["pid"], executor["ticks"], executor["profile"]
        click.echo(f"executor: running (pid {pid}, {ticks} ticks, profile {profile})")
        if executor.get("call_api_note"):
            click.echo(f"  on wasmtime-py's slower high-level API: {executor['call_api_note']}")
    else:
        click.echo("executor: not running")
    click.echo(
        _ROW.format(
            "plugin", "desired", "installed", "trust", "state", "ticks", "mean ms", "violations"
        )
    )
    for p in report["plugins"]:
        click.echo(_row(p))
        if p["disabled_for_violations"]:
            click.echo(f"    disabled: {p['disabled_reason']}")
        if p["refused"]:
            click.echo(f"    refused at load: {p['refused']}")
    _auto_update(report["auto_update"])


def _auto_update(auto: dict[str, Any]) -> None:
    if not auto["enabled"]:
        click.echo("auto-update: off")
        return
    last = auto["last"]
    click.echo(f"auto-update: {auto['schedule']}")
    if last:
        click.echo(f"  last check {last.get('checked_at')}: {last.get('summary')}")
        for held in last.get("held", []):
            click.echo(f"  held: {held}")
    click.echo(f"  next check: {auto['next_at']}")


def _row(p: dict[str, object]) -> str:
    run = p["running"] if isinstance(p["running"], dict) else {}
    state = "disabled" if p["disabled_for_violations"] or not p["enabled"] else "enabled"
    state = "refused" if p["refused"] else state
    return _ROW.format(
        str(p["name"]),
        str(p["desired_version"] or "-"),
        str(p["installed_version"] or "-"),
        str(p["trust"] or "-"),
        state,
        str(run.get("ticks", "-")),
        str(run.get("mean_tick_ms", "-")),
        str(p["violations"]),
    )
