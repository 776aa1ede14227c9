"""`ruvector registry ...`: make, fill and serve a plugin registry (registry.repository)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from registry.repository import (
    ROOT_COPY,
    add_bundle,
    init_registry,
    list_entries,
    refresh,
    served_dir,
)
from registry.serve import WILDCARD_HOSTS, serve_forever

DEFAULT_PORT = 8765

_dir_argument = click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
# Not checked for existence: the key is read only when root is due for renewal.
_root_key_option = click.option(
    "--root-key",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the root key from PATH (default DIRECTORY/keys/root.key); "
    "needed only when root metadata is due for renewal.",
)


@click.group()
def registry() -> None:
    """Make, fill and serve a plugin registry (a directory of static files)."""


@registry.command()
@_dir_argument
def init(directory: Path) -> None:
    """Create a registry: keys, signed metadata and an empty index.

    DIRECTORY must be absent or empty. Its root.json is what clients pin.
    """
    root = init_registry(directory)
    keys = directory / "keys"
    click.echo(f"{directory}: registry created, with an empty index")
    click.echo(f"  keys: {keys} (publishers' keys go in {keys / 'publishers'})")
    click.echo(
        f"  {keys / 'root.key'} signs new root versions only: for a real registry, keep it "
        "offline. add and refresh need it only when root is due for renewal (every 6 months "
        "or so) and say so: then put it back for that run, or pass --root-key PATH"
    )
    click.echo(f"  serve it: ruvector registry serve {directory}")
    _echo_config_lines(f"http://127.0.0.1:{DEFAULT_PORT}", root)


@registry.command()
@_dir_argument
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--publisher",
    metavar="NAME",
    help="Register the bundle's signing key as publisher NAME (needed once per key).",
)
@click.option("--verified", is_flag=True, help="Mark the entry verified in the index.")
@_root_key_option
def add(
    directory: Path, bundle: Path, publisher: str | None, verified: bool, root_key: Path | None
) -> None:
    """Publish a signed bundle, checked as a client would check it.

    Its signature is checked, and its wasm as the executor checks it before
    loading (each host function it imports needs its capability declared).
    The bundle goes under the publisher its signing key is registered to;
    --publisher registers a new key. A published version never changes.
    """
    result = add_bundle(
        directory,
        bundle,
        publisher=publisher,
        verified=verified,
        root_key=root_key,
    )
    for warning in result.warnings:
        click.echo(click.style("warning: ", fg="yellow", bold=True) + warning, err=True)
    e = result.entry
    if result.unchanged:
        click.echo(f"{e.name} {e.version}: already published with these bytes; nothing changed")
        return
    if result.registered_new_publisher:
        click.echo(f"registered publisher '{result.publisher}' with key {result.publisher_key}")
    click.echo(f"{e.name} {e.version}: published by '{result.publisher}' as {e.bundle}")


@registry.command(name="list")
@_dir_argument
def list_command(directory: Path) -> None:
    """Show the registry's publishers and plugin versions."""
    index = list_entries(directory)
    if not index.publishers:
        click.echo("no publishers, no plugins")
        return
    click.echo("publishers:")
    for name, key in sorted(index.publishers.items()):
        click.echo(f"  {name}  {key}")
    click.echo("plugins:" if index.entries else "plugins: none")
    for e in index.entries:
        mark = "  verified" if e.verified else ""
        click.echo(
            f"  {e.name} {e.version}  by {e.publisher}  {e.size_bytes} bytes  "
            f"{e.published_at}{mark}"
        )


@registry.command(name="refresh")
@_dir_argument
@_root_key_option
def refresh_command(directory: Path, root_key: Path | None) -> None:
    """Re-sign what is due, so metadata never expires.

    Run it daily (cron, a timer): clients refuse a registry whose signed
    metadata has expired.
    """
    done = refresh(directory, root_key=root_key)
    what = "roles due for renewal re-signed, " if done.renewed else ""
    click.echo(f"{directory}: {what}timestamp version {done.timestamp_version}")


@registry.command()
@_dir_argument
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="0: any free port.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on (IPv4, IPv6 such as ::1, or a name).",
)
def serve(directory: Path, port: int, host: str) -> None:
    """Serve a registry over HTTP until Ctrl-C.

    For local use: any static web server or CDN serves DIRECTORY/repository
    just as well.
    """
    served = served_dir(directory)
    root = directory / ROOT_COPY

    def ready(url: str) -> None:
        click.echo(f"serving {served} at {url} (Ctrl-C stops)")
        _echo_config_lines(url, root)
        if host in WILDCARD_HOSTS:
            shown = host or '""'
            click.echo(
                f"  note: {shown} means every address of this machine, and is no address a "
                f"client can connect to: in registry_url, clients must use this machine's "
                f"address or name instead of {shown}"
            )

    try:
        serve_forever(served, host, port, ready=ready)
    except KeyboardInterrupt:
        # Ctrl-C is how this command is meant to end: not an error.
        click.echo("stopped")


def _echo_config_lines(url: str, root: Path) -> None:
    click.echo("  in ruvector.toml, under [plugins]:")
    click.echo(f"    registry_url = {_toml_string(url)}")
    click.echo(f"    registry_root = {_toml_string(str(root.absolute()))}")


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string, escapes (Windows paths) included.
    return json.dumps(text)
