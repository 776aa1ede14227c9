"""`ruvector search TERM` and `ruvector info NAME`: the registry's catalogue.

Both read ruvector.toml's registry (registry_url, registry_root) through
TUF, so what they show is what a reconcile would act on. The index's
`verified` flag is the registry's word; `info` shows the trust level this
machine gives the newest version, from its signature.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.desired import DesiredState, load_desired
from registry.client import RegistryClient
from registry.index import Entry, Index
from ruvector.cli.common import config_option, connect_with_progress
from ruvector.errors import ConfigError, InputError


def _client(desired: DesiredState) -> RegistryClient:
    if desired.registry_root is None:
        raise ConfigError(
            str(desired.path),
            "plugins.registry_root",
            "not set: pin the registry's root.json to search it (see docs/registry.md)",
        )
    return connect_with_progress(desired)()


@click.command("search")
@click.argument("term")
@config_option
def search_command(term: str, config_path: Path) -> None:
    """Find plugins whose name, description, author or categories contain TERM."""
    desired = load_desired(config_path)
    with _client(desired) as client:
        found = client.index().search(term)
    if not found:
        click.echo(f"no plugin in {desired.registry_url} matches '{term}'")
        return
    click.echo(f"{'plugin':24} {'latest':10} {'publisher':16} {'rating':6}  description")
    for e in found:
        click.echo(
            f"{e.name:24} {e.version:10} {e.publisher:16} {_rating(e):6}  "
            f"{_short(e.description, 60)}"
        )


@click.command("info")
@click.argument("name")
@config_option
def info_command(name: str, config_path: Path) -> None:
    """Show NAME's versions, capabilities, trust, size and rating."""
    desired = load_desired(config_path)
    with _client(desired) as client:
        index = client.index()
        latest = index.latest(name)
        if latest is None:
            close = [e.name for e in index.search(name)][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise InputError(f"the registry {desired.registry_url} has no plugin '{name}'{hint}")
        trust = _trust(client, desired, index, latest)
    _show(index, latest, trust)


def _trust(client: RegistryClient, desired: DesiredState, index: Index, entry: Entry) -> str:
    """The trust this machine gives `entry`: its bundle fetched and its signature checked."""
    from registry.source import verify_download

    try:
        request = client.bundle_requests([entry])[0]
        raw = client.fetch([request])[0]
        _, level = verify_download(
            desired,
            entry,
            raw,
            f"{client.url}/targets/{entry.bundle}",
            index.publishers[entry.publisher],
        )
    except InputError as exc:
        return f"refused: {exc}"
    return level.value


def _show(index: Index, e: Entry, trust: str) -> None:
    rows = [
        ("name", e.name),
        ("latest", e.version),
        ("publisher", f"{e.publisher} (key {index.publishers[e.publisher]})"),
        ("author", e.author),
        ("description", e.description),
        ("trust", f"{trust} (from its signature, checked here)"),
        ("registry says", "verified" if e.verified else "not verified"),
        ("capabilities", ", ".join(e.capabilities) or "none"),
        ("size", f"{e.size_bytes} bytes"),
        ("rating", _rating(e)),
        ("downloads", str(e.downloads)),
        ("categories", ", ".join(e.categories) or "-"),
        ("platforms", ", ".join(e.platforms) or "-"),
        ("versions", ", ".join(v.version for v in reversed(index.versions(e.name)))),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':15}{value}")


def _rating(e: Entry) -> str:
    return "-" if e.rating is None else f"{e.rating:.1f}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
