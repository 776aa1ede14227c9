"""ruvector.toml: the user's desired state.

`load_desired` checks the file against schemas/ruvector.schema.json, fills
in defaults from the executor's own dataclasses (Limits, ExecutorSettings)
so there is one source for them, resolves relative paths from the file's
directory, and resolves `env:NAME` config values from the environment.

Resolved secrets live only in `DesiredPlugin.config`, which is left out of
the repr; `redacted_config()` is what may be shown.
"""

from __future__ import annotations

import datetime
import enum
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from executor.spec import ExecutorSettings, Limits
from hostcalls.capabilities import Capability
from reconciler._validation import (
    Document,
    KeyPath,
    key_path,
    load_document,
    map_leaves,
    parse_capabilities,
    read_capped,
)
from registry.schedule import DEFAULT_SCHEDULE, Schedule
from registry.versions import Constraint
from ruvector.errors import ConfigError

MAX_DESIRED_BYTES = 1 << 20
DEFAULT_PLUGIN_DIR = "~/.ruvector/plugins"
DEFAULT_REGISTRY_URL = "https://plugins.ruvector.dev/api/v1"
MAX_ROOT_BYTES = 512 * 1024  # tuf's own cap on a root.json

# Only this exact form is a reference: "env: x" or "see env:X" stay text.
ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")


class SourceKind(enum.Enum):
    DIR = "dir"  # a plugin directory on this machine (manifest.toml + wasm)
    FILE = "file"  # a plugin bundle (.rvp) on this machine
    REGISTRY = "registry"  # the registry's plugin of the same name (the default)


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    path: Path | None  # absolute; None for the registry
    name: str = ""  # the registry's plugin name

    def __str__(self) -> str:
        if self.kind is SourceKind.REGISTRY:
            return f"registry:{self.name}"
        return f"{self.kind.value}:{self.path}"

    @property
    def local(self) -> Path:
        """The path of a dir: or file: source (a bug to ask of a registry one)."""
        assert self.path is not None, f"{self} is not on this machine"
        return self.path


@dataclass(frozen=True)
class DesiredPlugin:
    """One [plugins.installed.NAME] table, checked and resolved."""

    name: str
    enabled: bool
    version: str | None  # the constraint as written; None: whatever the source holds
    source: Source
    approved: frozenset[Capability]
    limits: Limits
    origin: Path  # the ruvector.toml that asked for it, for messages
    # Holds secrets resolved from the environment: never in the repr.
    config: Mapping[str, object] = field(default_factory=dict, repr=False)
    secrets: Mapping[str, str] = field(default_factory=dict)  # config key path -> env var
    constraint: Constraint | None = None  # `version`, parsed
    publisher_key: str | None = None  # registry plugins: the key their bundles must carry

    def allows(self, version: str) -> bool:
        """Whether `version` meets the plugin's version constraint (any, without one)."""
        return self.constraint is None or self.constraint.allows(version)

    @property
    def exact(self) -> str | None:
        """The version `version` pins exactly, if it does."""
        return self.constraint.exact if self.constraint else None

    def stored_limits(self) -> dict[str, int]:
        return stored_limits(self.limits)

    def stored_config(self) -> dict[str, object]:
        """The config as written in ruvector.toml: secrets as their env:NAME text.

        What the observed state keeps and plans compare: no secret reaches
        the disk or a plan, and a changed secret is not a changed config.
        """

        def unresolve(at: KeyPath, value: object) -> object:
            name = self.secrets.get(key_path(at))
            return value if name is None else f"env:{name}"

        return _as_table(map_leaves(dict(self.config), unresolve))

    def redacted_config(self) -> dict[str, object]:
        """The config with each secret replaced by "<secret from env:NAME>"."""

        def redact(at: KeyPath, value: object) -> object:
            name = self.secrets.get(key_path(at))
            return value if name is None else f"<secret from env:{name}>"

        return _as_table(map_leaves(dict(self.config), redact))


@dataclass(frozen=True)
class DesiredState:
    """The whole of ruvector.toml."""

    path: Path
    enabled: bool  # the master switch: False runs no plugin
    settings: ExecutorSettings  # state_dir is absolute
    limits: Limits  # for plugins that do not override them
    plugins: tuple[DesiredPlugin, ...]  # sorted by name
    plugin_dir: Path  # absolute
    registry_url: str
    auto_update: bool
    trust: Trust = field(default_factory=lambda: Trust())
    text: str = field(default="", repr=False)  # the file as read, to place later errors on a line
    registry_root: RegistryRoot | None = None  # None: no registry pinned
    update_schedule: Schedule = field(default_factory=lambda: Schedule.parse(DEFAULT_SCHEDULE))

    def from_registry(self) -> tuple[DesiredPlugin, ...]:
        return tuple(p for p in self.plugins if p.source.kind is SourceKind.REGISTRY)


@dataclass(frozen=True)
class RegistryRoot:
    """The registry's root of trust as ruvector.toml pins it (checked by the client)."""

    data: bytes = field(repr=False)  # a TUF root.json
    origin: str  # the file it came from, or "ruvector.toml: plugins.registry_root"


@dataclass(frozen=True)
class Trust:
    """[plugins.trust]: the seed's PluginSecurity, as far as this version uses it."""

    require_signature: bool = False  # True: unsigned plugins are refused outright
    # Verified publishers (checked with the registry's signatures, a later issue).
    verified_publisher_keys: tuple[str, ...] = ()


def state_dir_of(path: Path) -> Path:
    """Only the state dir ruvector.toml names (default: state/ beside it).

    For commands that must work when the rest of the file does not validate
    (rollback after a bad edit). Raises ConfigError if even that is unreadable.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(str(path), "", f"cannot read the state dir from it: {exc}") from None
    plugins = data.get("plugins", {})
    value = plugins.get("state_dir", "state") if isinstance(plugins, dict) else "state"
    if not isinstance(value, str):
        raise ConfigError(str(path), "plugins.state_dir", "expected a path")
    return _absolute(path.absolute().parent, value)


def load_desired(path: Path) -> DesiredState:
    """Load ruvector.toml.

    Raises ConfigError (file = `path`, key = the dotted key, line when it
    can be found) for a missing, malformed or invalid file, an unknown key
    (with a "did you mean"), an unsupported or missing source, a refused or
    malformed capability, or an `env:NAME` value whose variable is unset.
    """
    doc = load_document(path, "ruvector.schema.json", max_bytes=MAX_DESIRED_BYTES)
    section: dict[str, Any] = doc.data.get("plugins", {})
    base = path.absolute().parent
    limits = _limits(section, Limits())
    installed: dict[str, Any] = section.get("installed", {})
    # Every entry or none: leaving a bad one out would plan its removal.
    plugins = [
        _plugin(doc, path, name, installed[name], base, limits) for name in sorted(installed)
    ]
    plugin_dir = _absolute(base, section.get("plugin_dir", DEFAULT_PLUGIN_DIR))
    # No plugin may touch the desired state or another plugin's files,
    # whatever its file grant: rewriting either would widen its own rights.
    local = [p.source.path for p in plugins if p.source.path is not None]
    root = _registry_root(doc, path, base, section.get("registry_root"))
    pinned = [Path(root.origin)] if root and root.origin != str(path) else []
    private = (path.absolute(), plugin_dir, *local, *pinned)
    settings = replace(_settings(doc, section, base), private_paths=tuple(map(str, private)))
    return DesiredState(
        path=path,
        enabled=section.get("enabled", True),
        settings=settings,
        limits=limits,
        plugins=tuple(plugins),
        plugin_dir=plugin_dir,
        registry_url=section.get("registry_url", DEFAULT_REGISTRY_URL),
        auto_update=section.get("auto_update", False),
        text=doc.text,
        registry_root=root,
        update_schedule=_schedule(doc, section.get("update_schedule", DEFAULT_SCHEDULE)),
        trust=Trust(
            require_signature=section.get("trust", {}).get("require_signature", False),
            verified_publisher_keys=tuple(
                section.get("trust", {}).get("verified_publisher_keys", ())
            ),
        ),
    )


def stored_limits(limits: Limits) -> dict[str, int]:
    """The limits ruvector.toml sets, in its own words, as generations keep them."""
    return {
        "fuel_per_tick": limits.fuel_per_call,
        "max_memory_mb": limits.max_memory_mb,
        "max_tick_ms": limits.max_call_ms,
    }


def limits_from_stored(stored: Mapping[str, int]) -> Limits:
    """Inverse of stored_limits; keys a record lacks keep their defaults."""
    return _limits(stored, Limits())


def _limits(table: Mapping[str, Any], defaults: Limits) -> Limits:
    # The file speaks of ticks (the seed's words); the executor bounds calls.
    return replace(
        defaults,
        max_call_ms=table.get("max_tick_ms", defaults.max_call_ms),
        max_memory_mb=table.get("max_memory_mb", defaults.max_memory_mb),
        fuel_per_call=table.get("fuel_per_tick", defaults.fuel_per_call),
    )


def _settings(doc: Document, section: Mapping[str, Any], base: Path) -> ExecutorSettings:
    d = ExecutorSettings()
    high = float(section.get("memory_high_percent", d.memory_high_percent))
    critical = float(section.get("memory_critical_percent", d.memory_critical_percent))
    if high >= critical:
        raise doc.error(
            ("plugins", "memory_high_percent"),
            f"expected a percentage below memory_critical_percent ({critical:g}), got {high:g}",
        )
    return ExecutorSettings(
        state_dir=str(_absolute(base, section.get("state_dir", d.state_dir))),
        tick_interval_ms=section.get("tick_interval_ms", d.tick_interval_ms),
        profile=section.get("profile", d.profile),
        protected_processes=tuple(section.get("protected_processes", ())),
        allow_other_users=section.get("allow_other_users", d.allow_other_users),
        memory_high_percent=high,
        memory_critical_percent=critical,
        metering=section.get("metering", d.metering),
    )


def _plugin(
    doc: Document, origin: Path, name: str, entry: Mapping[str, Any], base: Path, limits: Limits
) -> DesiredPlugin:
    at: KeyPath = ("plugins", "installed", name)
    config, secrets = _resolve_config(doc, (*at, "config"), entry.get("config", {}))
    return DesiredPlugin(
        name=name,
        enabled=entry.get("enabled", True),
        version=entry.get("version"),
        constraint=_constraint(doc, (*at, "version"), entry.get("version")),
        source=_source(doc, (*at, "source"), entry.get("source", "registry"), base, name),
        publisher_key=_publisher_key(doc, at, entry),
        approved=parse_capabilities(entry.get("approve", []), (*at, "approve"), doc.error),
        limits=_limits(entry, limits),
        origin=origin,
        config=config,
        secrets=secrets,
    )


def _constraint(doc: Document, at: KeyPath, text: str | None) -> Constraint | None:
    if text is None:
        return None
    try:
        return Constraint.parse(text)
    except ValueError as exc:
        raise doc.error(at, str(exc)) from None


def _publisher_key(doc: Document, at: KeyPath, entry: Mapping[str, Any]) -> str | None:
    key = entry.get("publisher_key")
    if key is not None and entry.get("source", "registry") != SourceKind.REGISTRY.value:
        raise doc.error(
            (*at, "publisher_key"),
            "applies to registry plugins only; a local plugin's signature is checked "
            "against plugins.trust.verified_publisher_keys",
        )
    return key if isinstance(key, str) else None


def _schedule(doc: Document, text: str) -> Schedule:
    try:
        return Schedule.parse(text)
    except ValueError as exc:
        raise doc.error(("plugins", "update_schedule"), str(exc)) from None


def _registry_root(doc: Document, path: Path, base: Path, text: str | None) -> RegistryRoot | None:
    """The pinned root: inline JSON (it starts with '{') or the path of a root.json."""
    at: KeyPath = ("plugins", "registry_root")
    if text is None:
        return None
    if "registry_url" not in doc.data.get("plugins", {}):
        raise doc.error(
            at,
            "a pinned root belongs to one registry: set plugins.registry_url to the URL "
            "that registry is served at",
        )
    if text.lstrip().startswith("{"):
        raw, where = text.encode(), "the inline root"
    else:
        file = _absolute(base, text)
        if file.is_dir():
            inside = file / "root.json"
            hint = f" (did you mean {inside}?)" if inside.is_file() else ""
            raise doc.error(at, f"{file} is a directory, not a root.json{hint}")
        raw, where = read_capped(file, MAX_ROOT_BYTES, str(path), key_path(at)), str(file)
    kind = _metadata_kind(raw)
    if kind != "root":
        raise doc.error(at, f"{where} is not a TUF root.json: {kind}")
    return RegistryRoot(raw, str(path) if where == "the inline root" else where)


def _metadata_kind(raw: bytes) -> str:
    """'root' for what looks like root metadata, else why it does not (the
    client verifies it in full; this catches a wrong file early, and cheaply)."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return f"not JSON ({exc})"
    signed = data.get("signed") if isinstance(data, dict) else None
    kind = signed.get("_type") if isinstance(signed, dict) else None
    if kind == "root":
        return "root"
    return f"it holds {kind} metadata" if isinstance(kind, str) else "not TUF metadata"


def _source(doc: Document, at: KeyPath, text: str, base: Path, name: str) -> Source:
    if text == SourceKind.REGISTRY.value:
        return Source(SourceKind.REGISTRY, None, name)
    scheme, sep, rest = text.partition(":")
    kinds = {k.value: k for k in SourceKind if k is not SourceKind.REGISTRY}
    if not sep or scheme not in kinds:
        raise doc.error(
            at,
            f"unsupported source '{text}': this version supports dir:PATH (a plugin "
            "directory), file:PATH (a .rvp bundle) and registry (the default)",
        )
    kind = kinds[scheme]
    if not rest:
        example = "dir:examples/hello" if kind is SourceKind.DIR else "file:hello-0.1.0.rvp"
        raise doc.error(at, f"{scheme}: needs a path, e.g. {example}")
    path = _absolute(base, rest)
    if kind is SourceKind.DIR and not path.is_dir():
        raise doc.error(at, f"{path} is not a directory")
    if kind is SourceKind.FILE and not path.is_file():
        raise doc.error(at, f"{path} is not a file")
    return Source(kind, path)


def _absolute(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    # abspath, not resolve(): normalise ".." but keep the user's symlinks.
    return Path(os.path.abspath(base / path))


def _resolve_config(
    doc: Document, at: KeyPath, config: dict[str, Any]
) -> tuple[dict[str, object], dict[str, str]]:
    """Resolve env:NAME values; returns the config and {key path: NAME}."""
    secrets: dict[str, str] = {}

    def resolve(rel: KeyPath, value: object) -> object:
        _check_plain(doc, (*at, *rel), value)
        m = ENV_REF.match(value) if isinstance(value, str) else None
        if m is None:
            return value
        name = m.group(1)
        if name not in os.environ:
            raise doc.error((*at, *rel), f"the environment variable {name} is not set")
        secrets[key_path(rel)] = name
        return os.environ[name]

    return _as_table(map_leaves(config, resolve)), secrets


def _check_plain(doc: Document, at: KeyPath, value: object) -> None:
    # Plugins receive their config as JSON: TOML dates and nan/inf have no
    # JSON form, and a schema could not check them.
    if isinstance(value, datetime.date | datetime.time):
        raise doc.error(at, "dates and times cannot be passed to plugins: quote them as strings")
    if isinstance(value, float) and not math.isfinite(value):
        raise doc.error(at, f"{value} cannot be passed to plugins: only finite numbers")


def _as_table(value: object) -> dict[str, object]:
    assert isinstance(value, dict)  # map_leaves keeps the shape of its input
    return value
