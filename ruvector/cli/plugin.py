"""`ruvector plugin ...`: manage installed plugins."""

from __future__ import annotations

import re
from pathlib import Path

import click

from executor.health import enable_plugin, plugin_dir
from reconciler.bundle import (
    SIGNATURE_NAME,
    bundle_from_dir,
    open_bundle,
    write_bundle,
)
from reconciler.desired import load_desired
from reconciler.signature import (
    default_key_path,
    generate_key,
    read_key,
    sign_bundle,
    write_key,
)
from registry.repository import check_loadable, checked_signer
from ruvector.atomic import atomic_write
from ruvector.cli.common import config_option
from ruvector.cli.text import printable
from ruvector.errors import ConfigError, HostFault

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
    """Pack the plugin in DIRECTORY into one .rvp bundle.

    Its signature, if any, must match what is packed, and its wasm must pass
    the checks the executor makes before loading it.
    """
    # Authors pack for platforms other than their own: no host check here.
    bundle = bundle_from_dir(directory, check_host=False)
    signer = checked_signer(bundle, directory)
    check_loadable(bundle)
    out = out or Path(f"{bundle.manifest.name}-{bundle.manifest.version}.rvp")
    write_bundle(bundle, out)
    click.echo(f"{out}: {out.stat().st_size} bytes, digest sha256:{bundle.digest}")
    if signer is None:
        click.echo("  unsigned (registries accept signed bundles only: `ruvector plugin sign`)")
    else:
        click.echo(f"  signed by {signer}")


@plugin.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=default_key_path,
    show_default="~/.ruvector/keys/publisher.key",
    help="The secret key made by `ruvector keygen`.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="For a .rvp TARGET: write the signed bundle here instead of in place.",
)
def sign(target: Path, key_path: Path, out: Path | None) -> None:
    """Sign the plugin TARGET (a plugin directory or a .rvp bundle).

    The signature covers every file of the plugin: the manifest, which pins
    the wasm's sha256, the wasm, the config schema and the README. It is
    written as manifest.toml.sig in the directory, or into the bundle. The
    wasm must first pass the checks the executor makes before loading it.
    """
    key = read_key(key_path)
    # Signing for another platform must not need that platform.
    if target.is_dir():
        bundle = bundle_from_dir(target, check_host=False)
    else:
        bundle = open_bundle(target, check_host=False)
    check_loadable(bundle)
    signed = sign_bundle(bundle, key)
    if target.is_dir():
        written = target / SIGNATURE_NAME
        _write(written, signed.files[SIGNATURE_NAME])
    else:
        written = out or target
        write_bundle(signed, written)
    m = signed.manifest
    click.echo(f"{written}: {m.name} {m.version} signed by {key.public}")
    click.echo(
        "  It is Verified where ruvector.toml lists this key in verified_publisher_keys, "
        "and Signed when a registry holds it for its publisher."
    )


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise HostFault(f"cannot write {path}: {exc.strerror or exc}") from exc


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=default_key_path,
    show_default="~/.ruvector/keys/publisher.key",
    help="The secret key file; the public key goes beside it as OUT.pub.",
)
@click.option("--force", is_flag=True, help="Replace an existing key (the old one is lost).")
def keygen(out: Path, force: bool) -> None:
    """Make an Ed25519 key to sign plugins with."""
    key = generate_key()
    public = write_key(key, out, force=force)
    click.echo(f"secret key: {out} (keep it secret; mode 0600)")
    click.echo(f"public key: {public}")
    click.echo(f"  {key.public}")


@plugin.command("new")
@click.argument("name")
@click.option(
    "--lang",
    "language",
    type=click.Choice(["rust", "assemblyscript", "c"]),
    required=True,
    help="The plugin's language.",
)
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default="the current directory",
    help="Where to make the plugin's directory.",
)
def new_command(name: str, language: str, parent: Path) -> None:
    """Make a new plugin NAME that builds as is (manifest, config schema, source)."""
    from authoring.new import new_plugin

    directory = new_plugin(name, language, parent)
    click.echo(f"{directory}: a new {language} plugin")
    click.echo(f"  build it: ruvector plugin build {directory}")
    click.echo(f"  try it:   ruvector dev run {directory}")


@plugin.command("build")
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), default="."
)
def build_command(directory: Path) -> None:
    """Build DIRECTORY's wasm from source, pin its hash, and check it as the host will."""
    from authoring.build import build_plugin

    built = build_plugin(directory)
    m = built.bundle.manifest
    click.echo(f"{built.wasm_path}: {built.size} bytes, sha256 {built.sha256} ({built.language})")
    caps = ", ".join(sorted(str(c) for c in m.capabilities)) or "none"
    click.echo(
        f"  {m.name} {m.version}: manifest, config schema and imports checked; declares {caps}"
    )


@plugin.command("inspect")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def inspect_command(path: Path) -> None:
    """Show a plugin's manifest, ABI version, imports, exports, capabilities, size and signature.

    PATH is a plugin directory, a .rvp bundle or a .wasm file.
    """
    from authoring.inspect import inspect_plugin

    i = inspect_plugin(path)
    rows: list[tuple[str, str]] = []
    if i.bundle is not None:
        m = i.bundle.manifest
        rows += [
            ("name", f"{m.name} {m.version}"),
            ("author", m.author),
            ("description", m.description),
            ("declares", ", ".join(sorted(str(c) for c in m.capabilities)) or "nothing"),
            ("platforms", ", ".join(sorted(p.value for p in m.platforms))),
            ("bundle digest", f"sha256:{i.bundle.digest}"),
        ]
    rows += [
        ("ABI version", i.abi_version),
        ("wasm", f"{i.wasm_size} bytes, sha256 {i.wasm_sha256}"),
        ("imports", ", ".join(f"{mod}.{name}" for mod, name in i.imports) or "none"),
        ("exports", ", ".join(i.exports) or "none"),
        ("needs", ", ".join(i.needed) or "no capability"),
        ("trust", i.signature),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':15}{printable(value)}")


@plugin.command("doc")
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=".")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the page here instead of printing it.",
)
def doc_command(path: Path, out: Path | None) -> None:
    """Make PATH's documentation page (Markdown) from its manifest and config schema."""
    from authoring.doc import render

    bundle = (
        bundle_from_dir(path, check_host=False)
        if path.is_dir()
        else open_bundle(path, check_host=False)
    )
    page = render(bundle)
    if out is None:
        click.echo(page, nl=False)
        return
    _write(out, page.encode())
    click.echo(f"{out}: the documentation page of {bundle.manifest.name}")
