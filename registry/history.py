"""What this machine has installed from the registry: state/registry/history.json.

TUF guards the index, not a publisher's own choices: a publisher (or a
stolen publisher key) can sign an older version again and list it as the
newest. So the machine keeps, per plugin, the highest version it ever
installed from the registry (the high-water mark; nothing below it is taken
unless ruvector.toml pins that version exactly), the versions the user
rolled back from (auto-update does not offer them again), and each
installed bundle's sha256, length and signer, which let an offline
reconcile use the download cache with the same guarantees.

The file is written only under the reconcile lock, atomically. A damaged
file is an error, not a fresh start: starting afresh would silently drop
the downgrade protection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reconciler.manifest import semver_key
from ruvector.atomic import atomic_write
from ruvector.errors import HostFault

FORMAT = 1
MAX_HISTORY_BYTES = 16 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


class HistoryDamaged(HostFault):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"{path}: {reason}. It holds the versions this machine installed from the "
            "registry (its downgrade protection); fix or delete it to start afresh"
        )


@dataclass(frozen=True)
class Fetched:
    """One version installed from the registry, as verified when it was."""

    version: str
    bundle_sha256: str
    length: int
    publisher: str
    publisher_key: str
    trust: str  # a TrustLevel's value


@dataclass
class PluginHistory:
    high_water: str | None = None
    rolled_back: set[str] = field(default_factory=set)
    versions: dict[str, Fetched] = field(default_factory=dict)


class History:
    """The registry history of one state directory."""

    def __init__(self, path: Path, plugins: dict[str, PluginHistory] | None = None) -> None:
        self.path = path
        self.plugins = plugins or {}

    @classmethod
    def load(cls, state_dir: Path) -> History:
        path = history_path(state_dir)
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_HISTORY_BYTES + 1)
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise HostFault(f"cannot read {path}: {exc.strerror or exc}") from exc
        if len(raw) > MAX_HISTORY_BYTES:
            raise HistoryDamaged(path, "too large")
        try:
            return cls(path, _from_json(json.loads(raw)))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise HistoryDamaged(path, f"damaged ({type(exc).__name__}: {exc})") from None

    def of(self, name: str) -> PluginHistory:
        return self.plugins.get(name, PluginHistory())

    def record(self, name: str, fetched: Fetched) -> None:
        """`fetched` was installed: remember it and raise the high-water mark."""
        h = self.plugins.setdefault(name, PluginHistory())
        h.versions[fetched.version] = fetched
        if h.high_water is None or semver_key(fetched.version) > semver_key(h.high_water):
            h.high_water = fetched.version

    def rolled_back(self, name: str, version: str) -> None:
        """The user left `version` of `name` by a rollback: do not offer it again."""
        self.plugins.setdefault(name, PluginHistory()).rolled_back.add(version)

    def save(self) -> None:
        data = json.dumps(_to_json(self.plugins), indent=1, sort_keys=True) + "\n"
        try:
            atomic_write(self.path, data.encode())
        except OSError as exc:
            raise HostFault(f"cannot write {self.path}: {exc.strerror or exc}") from exc


def history_path(state_dir: Path) -> Path:
    return state_dir / "registry" / "history.json"


def _to_json(plugins: Mapping[str, PluginHistory]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "plugins": {
            name: {
                "high_water": h.high_water,
                "rolled_back": sorted(h.rolled_back, key=semver_key),
                "versions": {v: asdict(f) for v, f in h.versions.items()},
            }
            for name, h in sorted(plugins.items())
        },
    }


def _from_json(data: Any) -> dict[str, PluginHistory]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a history of format {FORMAT}")
    out = {}
    for name, h in data["plugins"].items():
        high = h["high_water"]
        if high is not None:
            semver_key(high)
        versions = {}
        for version, f in h["versions"].items():
            semver_key(version)
            fetched = Fetched(**f)
            # The digest names a file in the download cache: checked like the cache's own.
            digest = fetched.bundle_sha256
            if (
                fetched.version != version
                or not isinstance(fetched.length, int)
                or fetched.length < 0
                or not isinstance(digest, str)
                or not _SHA256.fullmatch(digest)
            ):
                raise ValueError(f"{name} {version}: inconsistent record")
            versions[version] = fetched
        rolled = set(h["rolled_back"])
        for v in rolled:
            semver_key(v)
        out[str(name)] = PluginHistory(high, rolled, versions)
    return out
