"""The registry as a plugin source: ruvector.toml's constraints resolved to verified bundles.

For each plugin that comes from the registry (no `source`, or "registry"):

- installed from the registry, intact, its version still allowed, and no
  --upgrade: it stays, described from the store. No network is needed, so
  a machine offline keeps working.
- otherwise the highest published version the constraint allows, never
  below this machine's high-water mark for the plugin (unless pinned
  exactly) and, on --upgrade, never one the user rolled back from; its
  bundle is fetched through TUF (or the download cache), checked against
  its index entry, and its signature gives its trust level: signed by the
  key the index holds for its publisher, or by a verified publisher key.
  An unsigned bundle is never accepted from a registry.
- an update that fails any check, or needs a trust level it lacks, leaves
  the installed version in place with a note (one bad release must not
  stop a reconcile); a first install that fails is a problem of the plan.
- with the registry unreachable, a plugin that must be fetched comes from
  the download cache when a version this machine verified before (history)
  is there and allowed; its signature is checked again against the key
  recorded then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import ruvector
from reconciler.bundle import Bundle, bundle_from_bytes
from reconciler.desired import DesiredPlugin, DesiredState
from reconciler.manifest import current_platform, semver_key
from reconciler.plan import Available, Installed, UpgradeScope, upgrades
from reconciler.signature import registry_trust
from reconciler.trust import TrustLevel, beyond, explain
from registry.client import PinnedRoot, RegistryClient, RegistryRefused, RegistryUnreachable
from registry.fetch import Progress, Request
from registry.history import Fetched, History
from registry.index import Entry, Index
from registry.versions import Constraint, best
from ruvector.errors import ConfigError, InputError

ClientFactory = Callable[[], RegistryClient]
_ANY = Constraint.parse("*")  # no `version`: any


@dataclass
class Resolved:
    bundles: dict[str, Bundle] = field(default_factory=dict)
    available: dict[str, Available] = field(default_factory=dict)
    problems: list[ConfigError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fetched: dict[str, Fetched] = field(default_factory=dict)  # to record once installed


@dataclass(frozen=True)
class _Want:
    plugin: DesiredPlugin
    have: Installed | None  # installed from the registry
    floor: str | None
    skip: frozenset[str]
    # The key its bundles must be signed by: ruvector.toml's publisher_key, or
    # the key of the last version this machine installed from the registry.
    known_key: str | None = None
    # Exactly this version: the installed one, whose files drifted, to repair.
    only: str | None = None
    # Each version's bundle sha256 as installed here before: versions are immutable.
    seen: Mapping[str, str] = field(default_factory=dict)


def resolve(
    desired: DesiredState,
    installed: Mapping[str, Installed],
    kept: Mapping[str, Available],
    history: History,
    connect: ClientFactory,
    *,
    upgrade: UpgradeScope = False,
) -> Resolved:
    """Offer a verified bundle (or the kept artifact) for every registry plugin."""
    out = Resolved()
    todo: list[_Want] = []
    for plugin in desired.from_registry():
        have = installed.get(plugin.name)
        if have is not None and have.source != str(plugin.source):
            have = None  # installed from elsewhere: the registry's view starts now
        asked = upgrades(upgrade, plugin.name)
        stays = have is not None and plugin.allows(have.version) and not asked
        if stays and plugin.name in kept:
            out.available[plugin.name] = kept[plugin.name]
            continue
        h = history.of(plugin.name)
        skip = frozenset(h.rolled_back) if asked else frozenset()
        last = h.versions.get(h.high_water) if h.high_water else None
        known = plugin.publisher_key or (last.publisher_key if last else None)
        # Never below what runs now either: the history can be lost or deleted.
        floor = _higher(h.high_water, have.version if have else None)
        only = have.version if stays and have is not None else None  # drifted: repair
        seen = {v: f.bundle_sha256 for v, f in h.versions.items()}
        todo.append(_Want(plugin, have, floor, skip, known, only, seen))
    if not todo:
        return out
    if desired.registry_root is None:
        for want in todo:
            out.problems.append(_error(want.plugin, "source", _NO_ROOT))
        return out
    client = connect()
    try:
        _from_registry(client, desired, todo, kept, history, out)
        # What the history may need offline, and what this session fetched.
        keep = {f.bundle_sha256 for h in history.plugins.values() for f in h.versions.values()}
        client.prune_cache(keep | {f.bundle_sha256 for f in out.fetched.values()})
    finally:
        client.close()
    return out


def registry_client(desired: DesiredState, progress: Progress | None = None) -> RegistryClient:
    """A client for ruvector.toml's registry (registry_root must be set)."""
    root = desired.registry_root
    assert root is not None, "resolve() checks registry_root first"
    return RegistryClient(
        desired.registry_url,
        PinnedRoot(root.data, root.origin),
        Path(desired.settings.state_dir),
        progress=progress,
    )


_NO_ROOT = (
    "it comes from the registry, but plugins.registry_root is not set: pin the "
    "registry's root.json (see docs/registry.md), or give a dir: or file: source"
)


def _from_registry(
    client: RegistryClient,
    desired: DesiredState,
    todo: list[_Want],
    kept: Mapping[str, Available],
    history: History,
    out: Resolved,
) -> None:
    try:
        index = client.index()
    except RegistryUnreachable as exc:
        for want in todo:
            _offline(client, desired, want, kept, history, str(exc), out)
        return
    except (RegistryRefused, ConfigError) as exc:
        _registry_refused(desired, todo, kept, exc, out)
        return
    picked: list[tuple[_Want, Entry]] = []
    for want in todo:
        entry = _pick(index, want, out, kept)
        if entry is not None:
            picked.append((want, entry))
    _download(client, desired, index, picked, kept, out)


def _pick(index: Index, want: _Want, out: Resolved, kept: Mapping[str, Available]) -> Entry | None:
    """The entry to install for `want`, or None (a problem, or the installed one stays)."""
    plugin, name = want.plugin, want.plugin.name
    published = index.versions(name)
    if not published:
        _refused(
            want, kept, f"the registry has no plugin '{name}'{_similar(index, name)}", out, key=""
        )
        return None
    runnable = [e for e in published if _runs_here(e)]
    floor = None if plugin.exact else want.floor
    skip = want.skip - {plugin.exact} if plugin.exact else want.skip
    versions = [e.version for e in runnable]
    if want.only is not None:  # a repair: the installed version, nothing else
        entry = index.entry(name, want.only)
        if entry is None or entry not in runnable:
            _refused(
                want,
                kept,
                f"cannot repair {name} {want.only}: the registry no longer "
                "offers it; move on with `ruvector reconcile --upgrade`",
                out,
            )
        return entry if entry in runnable else None
    choice = best(plugin.constraint or _ANY, versions, floor=floor, skip=skip)
    _say_skipped(plugin, versions, floor, choice, out)
    _say_outside(plugin, versions, choice, want.have, out)
    have = want.have
    if choice is None or (have is not None and choice == have.version and name in kept):
        if have is not None and name in kept and plugin.allows(have.version):
            out.available[name] = kept[name]  # nothing newer to take: it stays
            _below_floor(plugin, runnable, floor, have, out)
            return None
        why = _nothing_matches(plugin, published, runnable, floor, skip)
        _refused(want, kept, why, out, key="version" if plugin.version else "")
        return None
    entry = index.entry(name, choice)
    assert entry is not None
    return entry


def _check_unchanged(want: _Want, entry: Entry, sha256: str) -> None:
    """A version installed here before must be the same bundle now."""
    before = want.seen.get(entry.version)
    if before is not None and before != sha256:
        raise RegistryRefused(
            f"{entry.name} {entry.version} was installed here as a bundle with sha256 "
            f"{before}, and the registry now lists another ({sha256}): a published "
            "version never changes"
        )


def _higher(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if semver_key(a) >= semver_key(b) else b


def _say_outside(
    plugin: DesiredPlugin,
    versions: list[str],
    choice: str | None,
    have: Installed | None,
    out: Resolved,
) -> None:
    """Name a newer release the version constraint leaves out: --upgrade
    stays within it, and "no changes" alone would not say why."""
    if plugin.constraint is None:
        return
    newest = best(_ANY, [v for v in versions if "-" not in v])
    current = choice or (have.version if have else None)
    if newest is None or plugin.allows(newest):
        return
    if current is not None and semver_key(newest) <= semver_key(current):
        return
    out.notes.append(
        f'{plugin.name}: {newest} is published, outside version = "{plugin.version}" '
        f"(change plugins.installed.{plugin.name}.version in ruvector.toml to take it)"
    )


def _say_skipped(
    plugin: DesiredPlugin, versions: list[str], floor: str | None, choice: str | None, out: Resolved
) -> None:
    """Name a newer version left out because the user rolled back from it."""
    newest = best(plugin.constraint or _ANY, versions, floor=floor)
    if newest is not None and newest != choice:
        out.notes.append(
            f"{plugin.name}: {newest} is skipped: it was rolled back on this machine "
            f'(pin version = "{newest}" to take it again)'
        )


def _below_floor(
    plugin: DesiredPlugin, runnable: list[Entry], floor: str | None, have: Installed, out: Resolved
) -> None:
    """Say so when the registry's newest is below the high-water mark: the
    installed release was withdrawn, or an older one is offered as the newest."""
    newest = best(plugin.constraint or _ANY, [e.version for e in runnable])
    if floor is None or newest is None or semver_key(newest) >= semver_key(floor):
        return
    out.notes.append(
        f"{plugin.name}: no update taken: the newest version the registry offers is "
        f"{newest}, below {floor}, the highest installed here before; "
        f"{have.version} stays installed"
    )


def _download(
    client: RegistryClient,
    desired: DesiredState,
    index: Index,
    picked: list[tuple[_Want, Entry]],
    kept: Mapping[str, Available],
    out: Resolved,
) -> None:
    requests: list[tuple[_Want, Entry, Request]] = []
    for want, entry in picked:
        try:
            request = client.bundle_requests([entry])[0]
            _check_unchanged(want, entry, request.sha256)
            requests.append((want, entry, request))
        except RegistryRefused as exc:
            _refused(want, kept, str(exc), out)
        except RegistryUnreachable as exc:
            _refused(want, kept, str(exc), out)
    if not requests:
        return
    # One bad download must not sink the others.
    results = client.fetch_each([r for _, _, r in requests])
    for (want, entry, request), raw in zip(requests, results, strict=True):
        if not isinstance(raw, bytes):
            _refused(want, kept, str(raw), out)
            continue
        publisher_key = index.publishers[entry.publisher]
        where = f"{client.url}/targets/{entry.bundle}"
        try:
            bundle, trust = verify_download(desired, entry, raw, where, publisher_key)
            if trust is not TrustLevel.VERIFIED:  # a verified key vouches for itself
                _check_key_continuity(want, entry.version, entry.publisher, publisher_key)
        except InputError as exc:
            _refused(want, kept, str(exc), out)
            continue
        fetched = Fetched(
            entry.version,
            request.sha256,
            request.length,
            entry.publisher,
            publisher_key,
            trust.value,
        )
        _offer(want, bundle, trust, fetched, out)


def verify_download(
    desired: DesiredState, entry: Entry, raw: bytes, where: str, publisher_key: str
) -> tuple[Bundle, TrustLevel]:
    """Open a downloaded bundle and check it against its entry and its signature."""
    # Named by its target path: Path(where) would fold a URL's "//" in messages.
    bundle = bundle_from_bytes(raw, Path(entry.bundle))
    m = bundle.manifest
    if (m.name, m.version, m.wasm_sha256) != (entry.name, entry.version, entry.sha256):
        raise RegistryRefused(
            f"{where}: the bundle holds {m.name} {m.version} (wasm {m.wasm_sha256[:12]}), "
            f"but the index lists {entry.name} {entry.version} (wasm {entry.sha256[:12]})"
        )
    trust = registry_trust(
        bundle, desired.trust.verified_publisher_keys, entry.publisher, publisher_key
    )
    refused = beyond(trust, m.capabilities)
    if refused:
        raise RegistryRefused(
            f"{where}: {m.name} {m.version} is {trust} and declares {', '.join(refused)}: "
            f"{explain(trust)}"
        )
    return bundle, trust


def _check_key_continuity(want: _Want, version: str, publisher: str, signer: str) -> None:
    """Refuse a release signed by another key than the one this plugin came with.

    TUF trusts the registry's keys; if those are stolen, the index can name
    a new key for a publisher and serve bundles signed by it. A key that
    changes between releases is what that looks like, so it takes the user's
    word (publisher_key in ruvector.toml), not the registry's.
    """
    expected = want.known_key
    if expected is None or signer == expected:
        return
    name = want.plugin.name
    at = f"plugins.installed.{name}.publisher_key"
    if want.plugin.publisher_key is not None:
        raise RegistryRefused(
            f"{name} {version} is signed by {signer}, but ruvector.toml's {at} requires {expected}"
        )
    raise RegistryRefused(
        f"{name} {version} is signed by {signer}, but this machine installed {name} "
        f"from key {expected} (publisher '{publisher}'). A publisher's key changes "
        f"when it rotates keys, and also when the registry is compromised: if "
        f"'{publisher}' announced a new key, accept it with {at} = \"{signer}\""
    )


def _offer(want: _Want, bundle: Bundle, trust: TrustLevel, fetched: Fetched, out: Resolved) -> None:
    name = want.plugin.name
    m = bundle.manifest
    out.bundles[name] = bundle
    out.fetched[name] = fetched
    out.available[name] = Available(
        name=m.name,
        version=m.version,
        digest=bundle.digest,
        wasm_sha256=m.wasm_sha256,
        source=str(want.plugin.source),
        declared=m.capabilities,
        config_schema=bundle.config_schema(),
        trust=trust,
    )


def _offline(
    client: RegistryClient,
    desired: DesiredState,
    want: _Want,
    kept: Mapping[str, Available],
    history: History,
    reason: str,
    out: Resolved,
) -> None:
    """The registry is unreachable: a version verified before, from the download cache."""
    plugin, name = want.plugin, want.plugin.name
    if want.have is not None and name in kept and plugin.allows(want.have.version):
        _refused(want, kept, reason, out)  # an update check: the installed one stays
        return
    h = history.of(name)
    floor = None if plugin.exact else want.floor
    skip = want.skip - {plugin.exact} if plugin.exact else want.skip
    candidates = [
        f for f in h.versions.values() if client.cached(f.bundle_sha256, f.length) is not None
    ]
    versions = [f.version for f in candidates]
    if want.only is not None:
        versions = [v for v in versions if v == want.only]
    choice = best(plugin.constraint or _ANY, versions, floor=floor, skip=skip)
    if choice is None:
        _refused(want, kept, f"{reason}; no version it allows is in the download cache", out)
        return
    fetched = h.versions[choice]
    raw = client.cached(fetched.bundle_sha256, fetched.length)
    assert raw is not None
    where = f"{client.cache_dir}/{fetched.bundle_sha256}"
    try:
        bundle = bundle_from_bytes(raw, Path(where))
        trust = registry_trust(
            bundle, desired.trust.verified_publisher_keys, fetched.publisher, fetched.publisher_key
        )
        if trust is not TrustLevel.VERIFIED:  # a key pinned since then still holds
            _check_key_continuity(want, choice, fetched.publisher, fetched.publisher_key)
    except InputError as exc:
        _refused(want, kept, str(exc), out)
        return
    out.notes.append(
        f"{name}: {reason}; {choice} comes from the download cache "
        "(verified when it was first downloaded)"
    )
    _offer(want, bundle, trust, fetched, out)


def _refused(
    want: _Want, kept: Mapping[str, Available], reason: str, out: Resolved, key: str = "source"
) -> None:
    """A plugin the registry cannot give now: an update keeps the installed one.

    `key` is where in the plugin's table the problem lies ("" for the table).
    """
    if _keeps_installed(want, kept, reason, out):
        return
    out.problems.append(_error(want.plugin, key, reason))


def _keeps_installed(
    want: _Want, kept: Mapping[str, Available], reason: str, out: Resolved
) -> bool:
    plugin, name, have = want.plugin, want.plugin.name, want.have
    if have is None or name not in kept or not plugin.allows(have.version):
        return False
    out.available[name] = kept[name]
    out.notes.append(f"{name}: no update taken: {reason}; {have.version} stays installed")
    return True


def _registry_refused(
    desired: DesiredState,
    todo: list[_Want],
    kept: Mapping[str, Available],
    exc: RegistryRefused | ConfigError,
    out: Resolved,
) -> None:
    """The registry as a whole failed verification: one problem, not one per plugin."""
    stuck = [w.plugin.name for w in todo if not _keeps_installed(w, kept, str(exc), out)]
    if not stuck:
        return
    needed = f" (needed to install {', '.join(stuck)})"
    if isinstance(exc, ConfigError):  # the pinned root itself: its own file and key
        out.problems.append(ConfigError(exc.file, exc.key, exc.message + needed, exc.line))
        return
    out.problems.append(ConfigError(str(desired.path), "plugins.registry_url", str(exc) + needed))


def _runs_here(entry: Entry) -> bool:
    here = current_platform()
    if entry.platforms and (here is None or here.value not in entry.platforms):
        return False
    try:
        needed = semver_key(entry.min_ruvector_version) if entry.min_ruvector_version else None
    except ValueError:
        return False
    return needed is None or needed <= semver_key(ruvector.__version__)


def _nothing_matches(
    plugin: DesiredPlugin,
    published: tuple[Entry, ...],
    runnable: list[Entry],
    floor: str | None,
    skip: frozenset[str],
) -> str:
    versions = ", ".join(e.version for e in published)
    wanted = f"version {plugin.version}" if plugin.version else "any version"
    if not runnable:
        return f"no published version of {plugin.name} runs here (published: {versions})"
    why = []
    if floor is not None:
        why.append(f"none below {floor}, the highest installed here before")
    if skip:
        why.append(f"not {', '.join(sorted(skip, key=semver_key))}, rolled back here")
    extra = f" ({'; '.join(why)})" if why else ""
    return f"no published version of {plugin.name} matches {wanted}{extra}; published: {versions}"


def _similar(index: Index, name: str) -> str:
    close = index.similar(name, 1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _error(plugin: DesiredPlugin, key: str, message: str) -> ConfigError:
    at = f"plugins.installed.{plugin.name}" + (f".{key}" if key else "")
    return ConfigError(str(plugin.origin), at, message)
