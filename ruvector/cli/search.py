"""`ruvector search TERM` and `ruvector info NAME`: the registry's catalogue.

Both read ruvector.toml's registry (registry_url, registry_root) through
TUF, so what they show is what a reconcile would act on. The index's
`verified` flag is the registry's word; `info` shows the trust level this
machine gives the newest version, from its signature.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from reconciler.desired import DesiredState, load_desired
from registry.client import RegistryClient
from registry.index import Entry, Index
from ruvector.cli.common import config_option, connect_with_progress
from ruvector.cli.text import printable
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
            f"{_short(printable(e.description), 60)}"
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
            hint = _did_you_mean(index, name)
            raise InputError(f"the registry {desired.registry_url} has no plugin '{name}'{hint}")
        trust, refusal, caps = _trust(client, desired, index, latest)
    _show(index, latest, trust, refusal, caps)


def _did_you_mean(index: Index, name: str) -> str:
    """A hint naming up to 3 plugins spelled like `name` or holding it; "" if none."""
    close = index.similar(name, 3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _trust(
    client: RegistryClient, desired: DesiredState, index: Index, entry: Entry
) -> tuple[str, str, list[str] | None]:
    """The trust this machine gives `entry`: its bundle fetched and its signature checked.

    (the level, "", the capabilities its signed manifest declares), or
    ("refused", why, None).
    """
    from registry.source import verify_download

    try:
        request = client.bundle_requests([entry])[0]
        raw = client.fetch([request])[0]
        bundle, level = verify_download(
            desired,
            entry,
            raw,
            f"{client.url}/targets/{entry.bundle}",
            index.publishers[entry.publisher],
        )
    except InputError as exc:
        return "refused", str(exc), None
    return level.value, "", sorted(str(c) for c in bundle.manifest.capabilities)


def _show(index: Index, e: Entry, trust: str, refusal: str, caps: list[str] | None) -> None:
    # The signed manifest's word where the bundle verified; else the index's, said so.
    declared = ", ".join(caps) if caps is not None else ", ".join(e.capabilities)
    declared = declared or "none"
    if caps is None:
        declared += " (the index's word: the bundle was refused)"
    rows = [
        ("name", e.name),
        ("latest", e.version),
        ("publisher", f"{e.publisher} (key {index.publishers[e.publisher]})"),
        ("author", e.author),
        ("description", e.description),
        ("trust", _trust_row(trust, refusal)),
        ("registry says", "verified" if e.verified else "not verified"),
        ("capabilities", declared),
        ("size", f"{e.size_bytes} bytes"),
        ("rating", _rating(e)),
        ("downloads", str(e.downloads)),
        ("categories", ", ".join(e.categories) or "-"),
        ("platforms", ", ".join(e.platforms) or "-"),
        ("versions", ", ".join(v.version for v in reversed(index.versions(e.name)))),
    ]
    for label, value in rows:
        # Registry text goes to a terminal: no escapes from a publisher.
        first, *more = (printable(line) for line in value.split("\n"))
        click.echo(f"{label + ':':15}{first}")
        for line in more:
            click.echo(f"{'':15}{line}")


def _trust_row(trust: str, refusal: str) -> str:
    """The trust row's value; a refusal's reason goes on lines of its own, below "refused"."""
    if not refusal:
        return f"{trust} (from its signature, checked here)"
    # Paths, URLs and keys stay whole, however long.
    lines = textwrap.wrap(refusal, 80, break_long_words=False, break_on_hyphens=False)
    return "\n".join([trust, *lines])


def _rating(e: Entry) -> str:
    return "-" if e.rating is None else f"{e.rating:.1f}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
