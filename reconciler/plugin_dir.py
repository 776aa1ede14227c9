"""A plugin directory (manifest.toml + wasm + optional config schema) turned
into the PluginSpec the executor loads.

The wasm file is read once, here, and those bytes are what the executor
hashes and compiles: nothing reads the file again, so it cannot change in
between. Its hash is not checked here; the executor checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from executor.spec import Limits, PluginSpec
from hostcalls.capabilities import Capability
from reconciler._validation import key_path, read_capped
from reconciler.config_schema import load_config_schema, validate_config
from reconciler.desired import DesiredPlugin
from reconciler.manifest import MANIFEST_NAME, Manifest, load_manifest
from ruvector.errors import ConfigError

MAX_WASM_BYTES = 16 * 1024 * 1024


def load_plugin_dir(
    directory: Path,
    *,
    approved: frozenset[Capability] = frozenset(),
    config: Mapping[str, object] | None = None,
    limits: Limits | None = None,
) -> PluginSpec:
    """Build a PluginSpec from a plugin directory (used by `ruvector dev run`).

    Raises ConfigError for a bad manifest, config schema or config (config
    errors name the plugin as their file), or a wasm file that is missing,
    outside the directory or over MAX_WASM_BYTES; PluginRefused when the
    manifest is for another platform or a newer ruvector.
    """
    manifest = load_manifest(directory / MANIFEST_NAME)
    return _spec(manifest, approved, config or {}, limits or Limits(), None, {})


def build_spec(plugin: DesiredPlugin) -> PluginSpec:
    """Build the PluginSpec for one plugin of ruvector.toml.

    Raises what load_plugin_dir raises, config errors naming ruvector.toml,
    and ConfigError when the directory holds another plugin or another
    version than the one wanted.
    """
    manifest = load_manifest(plugin.source.local / MANIFEST_NAME)
    _check_wanted(plugin, manifest)
    return _spec(
        manifest, plugin.approved, plugin.config, plugin.limits, str(plugin.origin), plugin.secrets
    )


def _check_wanted(plugin: DesiredPlugin, manifest: Manifest) -> None:
    at = ("plugins", "installed", plugin.name)
    file = str(plugin.origin)
    if manifest.name != plugin.name:
        raise ConfigError(
            file,
            key_path((*at, "source")),
            f"{plugin.source} holds plugin '{manifest.name}', not '{plugin.name}'",
        )
    if not plugin.allows(manifest.version):
        raise ConfigError(
            file,
            key_path((*at, "version")),
            f"version {plugin.version} is wanted but {manifest.path} is {manifest.version}",
        )


def _spec(
    manifest: Manifest,
    approved: frozenset[Capability],
    config: Mapping[str, object],
    limits: Limits,
    config_file: str | None,
    secrets: Mapping[str, str],
) -> PluginSpec:
    # Config first: it is cheap and the likelier mistake; the wasm may be 16 MiB.
    if manifest.config_schema is not None:
        schema = load_config_schema(_inside(manifest, manifest.config_schema, "config_schema"))
        validate_config(manifest.name, schema, config, file=config_file, secrets=secrets)
    wasm_path = _inside(manifest, manifest.wasm_file, "wasm_file")
    return PluginSpec(
        name=manifest.name,
        version=manifest.version,
        wasm=read_capped(wasm_path, MAX_WASM_BYTES, str(manifest.path), "wasm_file"),
        wasm_sha256=manifest.wasm_sha256,
        declared=manifest.capabilities,
        approved=approved,
        config=dict(config),
        limits=limits,
        source=str(manifest.directory),
    )


def _inside(manifest: Manifest, relative: str, key: str) -> Path:
    return path_inside(manifest.directory, relative, str(manifest.path), key)


def path_inside(directory: Path, relative: str, file: str, key: str) -> Path:
    """The real path of `relative` in `directory`.

    Raises ConfigError (at `file`/`key`) if a symlink leads it outside.
    """
    # load_manifest refused ".." and absolute paths; symlinks are only
    # visible on disk, so they are checked here, where the file is read.
    root = directory.resolve()
    target = (directory / relative).resolve()
    if not target.is_relative_to(root):
        raise ConfigError(file, key, f"'{relative}' leads outside the plugin directory")
    return target
