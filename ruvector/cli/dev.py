"""`ruvector dev run`: try one plugin directory without a registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from executor.executor import Executor
from executor.health import enable_plugin
from executor.spec import ExecutorSettings, Limits
from hostcalls import capabilities
from reconciler.plugin_dir import load_plugin_dir
from ruvector.cli.common import approve_option, run_executor
from ruvector.cli.output import ConsoleObserver
from ruvector.errors import ConfigError


@click.group()
def dev() -> None:
    """Tools for plugin authors."""


@dev.command("run")
@click.argument("plugin_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--ticks", type=click.IntRange(min=1), default=3, show_default=True)
@approve_option("approve")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Config value (JSON or text). Repeatable.",
)
@click.option("--interval-ms", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option(
    "--max-tick-ms", type=click.IntRange(min=1), default=Limits().max_call_ms, show_default=True
)
# Not the state dir of ruvector.toml: a dev run must not share (or clear) the
# config, metrics and strikes of the plugins installed there.
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="state/dev",
    show_default=True,
)
def dev_run(
    plugin_dir: Path,
    ticks: int,
    approve: tuple[str, ...],
    settings: tuple[str, ...],
    interval_ms: int,
    max_tick_ms: int,
    state_dir: Path,
) -> None:
    """Load PLUGIN_DIR (manifest.toml + wasm) and tick it, printing what it does."""
    approved = _approvals(approve)
    config = _config(settings)
    spec = load_plugin_dir(
        plugin_dir, approved=approved, config=config, limits=Limits(max_call_ms=max_tick_ms)
    )
    grant = capabilities.grant(spec.declared, spec.approved)
    click.echo(f"{spec.name} {spec.version}: granted {_caps(grant.granted)}")
    if grant.pending:
        click.echo(f"  not approved (its host functions are not linked): {_caps(grant.pending)}")
    unused = frozenset(a for a in approved if not any(_bears_on(a, d) for d in spec.declared))
    if unused:
        click.echo(f"  approved but not declared by the manifest (no effect): {_caps(unused)}")
    # An author re-running a build that earned three strikes wants to see it run.
    if enable_plugin(state_dir, spec.name):
        click.echo(f"  cleared the disabled state of '{spec.name}' from an earlier run")
    host = ExecutorSettings(
        state_dir=str(state_dir), tick_interval_ms=interval_ms, private_paths=_private(plugin_dir)
    )
    executor = Executor(host, ConsoleObserver())
    run_executor(executor, lambda: executor.load(spec), ticks)


def _private(plugin_dir: Path) -> tuple[str, ...]:
    """What a plugin under trial must not touch, even with a broad file grant.

    The plugin's own directory (its manifest and wasm), and the desired
    state and state dir a `ruvector run` from here would use.
    """
    config = Path(os.environ.get("RUVECTOR_CONFIG", "ruvector.toml"))
    return tuple(
        str(p.absolute()) for p in (plugin_dir, config, config.absolute().parent / "state")
    )


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a config value")  # as ruvector.toml refuses it


def _caps(caps: frozenset[capabilities.Capability]) -> str:
    return ", ".join(str(c) for c in sorted(caps)) or "nothing"


def _approvals(texts: tuple[str, ...]) -> frozenset[capabilities.Capability]:
    try:
        return capabilities.parse_all(texts)
    except capabilities.CapabilityError as exc:
        raise ConfigError("--approve", "", str(exc)) from None


def _config(pairs: tuple[str, ...]) -> dict[str, object]:
    config: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("--set", pair, "expected KEY=VALUE")
        try:
            config[key] = json.loads(value, parse_constant=_no_constant)
        except ValueError:
            config[key] = value  # plain text, NaN and Infinity included
    return config


def _bears_on(approval: capabilities.Capability, declared: capabilities.Capability) -> bool:
    """Whether `approval` grants some of `declared`: all of it, a narrower path
    within it, or some of its hosts (hosts are approved one at a time)."""
    if approval.covers(declared) or declared.covers(approval):
        return True
    return approval.kind is declared.kind and bool(set(approval.hosts) & set(declared.hosts))
