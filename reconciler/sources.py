"""Where plugins come from: each desired plugin's source, read into a Bundle.

The planner is pure; this is the I/O it needs beforehand. `dir:` and
`file:` sources are local; the registry (registry.source) is one more kind
with the same result: a verified Bundle and its description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.bundle import Bundle, load_source
from reconciler.desired import DesiredState, SourceKind
from reconciler.plan import Available, Installed, UpgradeScope
from reconciler.signature import local_trust
from reconciler.trust import TrustLevel
from ruvector.errors import ConfigError, InputError

if TYPE_CHECKING:
    from registry.history import Fetched
    from registry.source import ClientFactory


def describe(bundle: Bundle, source: str, trust: TrustLevel) -> Available:
    """What the planner needs to know of a bundle whose signature was checked."""
    m = bundle.manifest
    return Available(
        name=m.name,
        version=m.version,
        digest=bundle.digest,
        wasm_sha256=m.wasm_sha256,
        source=source,
        declared=m.capabilities,
        config_schema=bundle.config_schema(),
        trust=trust,
    )


@dataclass(frozen=True)
class Offers:
    """Every enabled or disabled desired plugin's bundle, read from its source."""

    bundles: Mapping[str, Bundle]
    available: Mapping[str, Available]
    problems: tuple[ConfigError, ...]
    notes: tuple[str, ...] = ()
    # Registry bundles as verified now: recorded in the registry history once installed.
    fetched: Mapping[str, Fetched] = field(default_factory=dict)


def read_sources(
    desired: DesiredState,
    installed: Mapping[str, Installed] | None = None,
    kept: Mapping[str, Available] | None = None,
    *,
    upgrade: UpgradeScope = False,
    connect: ClientFactory | None = None,
) -> Offers:
    """Read each plugin's source; a source that cannot be read is a problem
    naming ruvector.toml and the plugin's source key, not an exception.

    `installed` and `kept` (the current generation's plugins and its intact
    artifacts, described) let a registry plugin that stays as it is need no
    network; `connect` opens the registry (default: registry_client).
    """
    bundles: dict[str, Bundle] = {}
    available: dict[str, Available] = {}
    problems: list[ConfigError] = []
    for plugin in desired.plugins:
        if plugin.source.kind is SourceKind.REGISTRY:
            continue
        try:
            bundle = load_source(plugin.source.local)
            trust = local_trust(bundle, desired.trust.verified_publisher_keys)
        except InputError as exc:
            key = f"plugins.installed.{plugin.name}.source"
            problems.append(ConfigError(str(plugin.origin), key, f"{plugin.source}: {exc}"))
            continue
        bundles[plugin.name] = bundle
        available[plugin.name] = describe(bundle, str(plugin.source), trust)
    if not desired.from_registry():
        return Offers(bundles, available, tuple(problems))
    # Imported only when needed: tuf and httpx cost a plan without a registry plugin.
    from registry.history import History
    from registry.source import registry_client, resolve

    state_dir = Path(desired.settings.state_dir)
    resolved = resolve(
        desired,
        installed or {},
        kept or {},
        History.load(state_dir),
        connect or (lambda: registry_client(desired)),
        upgrade=upgrade,
    )
    bundles.update(resolved.bundles)
    available.update(resolved.available)
    return Offers(
        bundles,
        available,
        (*problems, *resolved.problems),
        tuple(resolved.notes),
        resolved.fetched,
    )
