"""The registry's catalogue, index.json: every plugin version and each publisher's key.

index.json is a TUF target of the top-level targets role, so the client
receives it only with a valid signature of the registry; it is still parsed
as hostile (schemas/registry-index.schema.json, then the rules below), since
a registry key can be stolen too. Each entry is the design's RegistryEntry
(name, version, author, description, downloads, rating, verified,
categories, size_bytes, wasm_url, manifest_url, sha256) plus what the
client needs: the publisher, the bundle's target path, the capabilities.

The URLs are TUF target paths, relative to the registry's targets/ base:
the client never fetches a URL the registry did not list and sign.
`verified` is the registry's word, shown in `ruvector info` and never
believed: trust comes from the bundle's signature (reconciler.trust).
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reconciler._validation import check_depth, first_problem, key_path, make_validator
from reconciler.manifest import semver_key
from ruvector.errors import ConfigError

FORMAT = 1
INDEX_PATH = "index.json"  # its target path
MAX_INDEX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One published plugin version."""

    name: str
    version: str
    publisher: str
    author: str
    description: str
    downloads: int
    rating: float | None
    verified: bool
    categories: tuple[str, ...]
    capabilities: tuple[str, ...]
    size_bytes: int  # of the bundle
    bundle: str  # target path of the .rvp
    wasm_url: str  # target path of the wasm
    manifest_url: str  # target path of manifest.toml
    sha256: str  # of the wasm, as the manifest pins it
    published_at: str = ""
    min_ruvector_version: str = ""
    platforms: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[int, int, int, bool, tuple[tuple[int, int, str], ...]]:
        return semver_key(self.version)


@dataclass(frozen=True)
class Index:
    publishers: Mapping[str, str]  # name -> Ed25519 public key, 64 hex digits
    entries: tuple[Entry, ...]  # sorted by name, then version
    _by_name: Mapping[str, tuple[Entry, ...]] = field(default_factory=dict, repr=False)

    def versions(self, name: str) -> tuple[Entry, ...]:
        """Every published version of `name`, oldest first."""
        return self._by_name.get(name, ())

    def entry(self, name: str, version: str) -> Entry | None:
        return next((e for e in self.versions(name) if e.version == version), None)

    def latest(self, name: str) -> Entry | None:
        """The newest release of `name` (a pre-release only if nothing else is)."""
        found = self.versions(name)
        releases = [e for e in found if "-" not in e.version]
        pick = releases or list(found)
        return pick[-1] if pick else None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def similar(self, name: str, n: int = 3) -> list[str]:
        """Up to `n` plugin names spelled like `name`, then names holding it."""
        close = difflib.get_close_matches(name, self.names(), n=n)
        close += [e.name for e in self.search(name) if e.name not in close]
        return close[:n]

    def search(self, term: str) -> list[Entry]:
        """The newest entry of each plugin whose name, description, author,
        publisher or categories contain `term` (case-insensitively)."""
        term = term.casefold()
        found = []
        for name in self.names():
            entry = self.latest(name)
            assert entry is not None
            haystack = " ".join(
                (entry.name, entry.description, entry.author, entry.publisher, *entry.categories)
            )
            if term in haystack.casefold():
                found.append(entry)
        return found

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT,
            "publishers": {p: {"key": k} for p, k in sorted(self.publishers.items())},
            "plugins": [_entry_json(e) for e in self.entries],
        }
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def make_index(publishers: Mapping[str, str], entries: Iterable[Entry]) -> Index:
    """An Index, its entries sorted and grouped. Raises ValueError on broken rules."""
    ordered = tuple(sorted(entries, key=lambda e: (e.name, e.key)))
    problem = _rule_problem(publishers, ordered)
    if problem is not None:
        raise ValueError(problem[1])
    return _indexed(publishers, ordered)


def _indexed(publishers: Mapping[str, str], ordered: tuple[Entry, ...]) -> Index:
    by_name: dict[str, list[Entry]] = {}
    for e in ordered:
        by_name.setdefault(e.name, []).append(e)
    return Index(dict(publishers), ordered, {k: tuple(v) for k, v in by_name.items()})


def parse_index(raw: bytes, origin: str) -> Index:
    """Check index.json's bytes; ConfigError(file=`origin`, key=where) otherwise."""
    if len(raw) > MAX_INDEX_BYTES:
        raise ConfigError(origin, "", f"larger than {MAX_INDEX_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(origin, "", f"not JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(origin, "", "nests too deeply") from None
    check_depth(data, origin)
    problem = first_problem(_validator(), data, describe=True)
    if problem is not None:
        raise ConfigError(origin, key_path(problem[0]), problem[1])
    publishers = {name: p["key"] for name, p in data["publishers"].items()}
    entries = [_entry(e) for e in data["plugins"]]
    ordered = tuple(sorted(entries, key=lambda e: (e.name, e.key)))
    # Rules the schema cannot state; located by the entry's position as served.
    problem = _rule_problem(publishers, tuple(entries))
    if problem is not None:
        raise ConfigError(origin, key_path(problem[0]), problem[1])
    return _indexed(publishers, ordered)


def _rule_problem(
    publishers: Mapping[str, str], entries: tuple[Entry, ...]
) -> tuple[tuple[str | int, ...], str] | None:
    owners: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(entries):
        at: tuple[str | int, ...] = ("plugins", i)
        try:
            semver_key(e.version)
        except ValueError as exc:
            return (*at, "version"), str(exc)
        if e.publisher not in publishers:
            return (*at, "publisher"), f"publisher '{e.publisher}' is not in publishers"
        owner = owners.setdefault(e.name, e.publisher)
        if owner != e.publisher:
            return (*at, "publisher"), (
                f"'{e.name}' belongs to publisher '{owner}', not '{e.publisher}'"
            )
        if (e.name, e.version) in seen:
            return (*at, "version"), f"{e.name} {e.version} is listed twice"
        seen.add((e.name, e.version))
        for key in ("bundle", "wasm_url", "manifest_url"):
            if not getattr(e, key).startswith(f"{e.publisher}/"):
                return (*at, key), f"not inside publisher '{e.publisher}'s namespace"
    return None


def _entry(data: Mapping[str, Any]) -> Entry:
    values = dict(data)
    for key in ("categories", "capabilities", "platforms"):
        values[key] = tuple(values.get(key, ()))
    return Entry(**values)


def _entry_json(entry: Entry) -> dict[str, Any]:
    data = asdict(entry)
    for key in ("categories", "capabilities", "platforms"):
        data[key] = list(data[key])
    return data


@functools.cache
def _validator() -> Any:
    schema = Path(__file__).resolve().parent.parent / "schemas" / "registry-index.schema.json"
    return make_validator(json.loads(schema.read_text(encoding="utf-8")))
