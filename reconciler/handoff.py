"""The hand-off: the generation in force, as values the executor loads.

The executor never reads ruvector.toml or the store; this turns each
enabled plugin of a generation into a PluginSpec: its wasm read from the
store (the executor checks the hash again on the bytes it compiles), its
approved capabilities and config as the generation recorded them, env:
references resolved now, and limits from ruvector.toml.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from executor.spec import Limits, PluginSpec
from hostcalls.capabilities import parse_all
from reconciler.desired import ENV_REF, DesiredState, limits_from_stored
from reconciler.manifest import MANIFEST_NAME, parse_manifest
from reconciler.signature import installed_trust
from reconciler.store import InstalledPlugin, StateStore
from reconciler.trust import beyond, explain
from ruvector.errors import ConfigError, InputError, PluginRefused


@dataclass(frozen=True)
class HandOff:
    specs: tuple[PluginSpec, ...]
    problems: tuple[tuple[str, str], ...]  # (plugin, why it cannot be handed over)


def hand_off(
    plugins: Iterable[InstalledPlugin], store: StateStore, desired: DesiredState | None
) -> HandOff:
    """PluginSpecs for the enabled ones of `plugins` (of a generation); problems per plugin."""
    limits = {p.name: p.limits for p in desired.plugins} if desired else {}
    default = desired.limits if desired else Limits()
    specs, problems = [], []
    for p in plugins:
        if not p.enabled:
            continue
        try:
            # The generation's limits, so a rollback restores them too.
            own = limits_from_stored(p.limits) if p.limits else limits.get(p.name, default)
            verified = desired.trust.verified_publisher_keys if desired else ()
            specs.append(spec_of(p, store, own, verified))
        except (InputError, OSError) as exc:
            problems.append((p.name, str(exc)))
    return HandOff(tuple(specs), tuple(problems))


def spec_of(
    p: InstalledPlugin, store: StateStore, limits: Limits, verified_keys: Collection[str] = ()
) -> PluginSpec:
    """One installed plugin as a PluginSpec. Raises InputError or OSError."""
    directory = store.artifact_dir(p.digest)
    manifest_path = directory / MANIFEST_NAME
    manifest = parse_manifest(manifest_path.read_bytes(), str(manifest_path), directory)
    # The planner applied this rule; checked again at the last step, so a
    # generation record edited by hand, or a verified key revoked since the
    # install, cannot lift a plugin's trust rule.
    trust = installed_trust(store, p, verified_keys)
    refused = beyond(trust, manifest.capabilities)
    if refused:
        raise PluginRefused(
            p.name, f"it is {trust} and declares {', '.join(refused)}: {explain(trust)}"
        )
    return PluginSpec(
        name=p.name,
        version=p.version,
        wasm=(directory / manifest.wasm_file).read_bytes(),
        wasm_sha256=p.wasm_sha256,
        declared=manifest.capabilities,
        approved=parse_all(p.approved),
        config=resolve_env(p.name, p.config),
        limits=limits,
        source=p.source,
    )


def resolve_env(plugin: str, config: Mapping[str, object]) -> dict[str, object]:
    """Replace each "env:NAME" value by the variable's value, at load time.

    Raises ConfigError naming the plugin and key if a variable is unset;
    the value itself is never part of a message.
    """

    def walk(value: object, at: str) -> object:
        if isinstance(value, dict):
            return {k: walk(v, f"{at}.{k}" if at else k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{at}[{i}]") for i, v in enumerate(value)]
        m = ENV_REF.match(value) if isinstance(value, str) else None
        if m is not None:
            name = m.group(1)
            if name not in os.environ:
                raise ConfigError(
                    plugin, f"config.{at}", f"the environment variable {name} is not set"
                )
            return os.environ[name]
        return value

    resolved = walk(dict(config), "")
    assert isinstance(resolved, dict)
    return resolved
