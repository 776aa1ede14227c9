"""Where plugins come from: each desired plugin's source, read into a Bundle.

The planner is pure; this is the I/O it needs beforehand. `dir:` and
`file:` sources are local; the registry (next issue) plugs in here as one
more kind with the same result: a verified Bundle and its description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.bundle import Bundle, load_source
from reconciler.desired import DesiredState
from reconciler.plan import Available
from reconciler.signature import local_trust
from reconciler.trust import TrustLevel
from ruvector.errors import ConfigError, InputError


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


def read_sources(desired: DesiredState) -> Offers:
    """Read each plugin's source; a source that cannot be read is a problem
    naming ruvector.toml and the plugin's source key, not an exception."""
    bundles: dict[str, Bundle] = {}
    available: dict[str, Available] = {}
    problems: list[ConfigError] = []
    for plugin in desired.plugins:
        try:
            bundle = load_source(plugin.source.path)
            trust = local_trust(bundle, desired.trust.verified_publisher_keys)
        except InputError as exc:
            key = f"plugins.installed.{plugin.name}.source"
            problems.append(ConfigError(str(plugin.origin), key, f"{plugin.source}: {exc}"))
            continue
        bundles[plugin.name] = bundle
        available[plugin.name] = describe(bundle, str(plugin.source), trust)
    return Offers(bundles, available, tuple(problems))
