"""A plugin registry on disk: TUF repository (registry.tuf_repo) plus its catalogue.

    DIR/root.json          a copy of root v1: what users pin as registry_root
    DIR/registry.lock      held by the one process writing the registry
    DIR/keys/...           as registry.tuf_repo lays them out
    DIR/repository/        what is served; index.json is a top-level target, and
                           each publisher's role lists, per plugin version,
        <publisher>/<name>/<version>/<name>-<version>.rvp    the bundle as given
        <publisher>/<name>/<version>/manifest.toml           its members, so a
        <publisher>/<name>/<version>/<wasm_file>             client can look first

add_bundle checks a bundle as a client would before anything is written: it
must open (on any platform: a registry serves them all), carry a valid
signature, and that signature's key must be the one the index holds for the
publisher it goes under. Its wasm must also pass the executor's load-time
checks (check_loadable): a plugin importing a host function whose capability its
manifest does not declare would otherwise be published, installed, and
refused only when loaded. Then it stages the files and the new index and
publishes once, so every role is re-signed together and a client sees the
old registry or the new one, never a mix. A refused add leaves DIR as it was:
every check runs before the first write.

init_registry, add_bundle and refresh write, so each holds an OS advisory
lock on DIR/registry.lock (reconciler.lock) while it runs: a second writer
is refused at once with LockHeld, naming the holder's pid, and the kernel
frees the lock of a writer that dies. Reading (list_entries) takes no lock:
TufRepository.open follows timestamp.json, which a writer replaces last.

Rules the registry keeps, beyond the index's own (registry.index):

- a publisher is a name bound to one signing key, registered by the first
  add that names it; a key belongs to one publisher;
- a plugin name belongs to the first publisher that published it;
- a published version is immutable: re-adding the same bytes changes
  nothing, other bytes are refused.

Errors: BundleRefused (an InputError) for a bundle this registry will not
take; LockHeld (an InputError) while another process writes the registry;
PluginRefused for a wasm the executor would refuse to load (check_loadable);
what the layers below raise otherwise (ConfigError for an unreadable or
malformed bundle, SignatureRefused for a broken signature, and
registry.tuf_repo's RegistryFileError, RootKeyNeeded, PublisherError and
RegistryIOError).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tuf.api.exceptions import LengthOrHashMismatchError

from executor.spec import MAX_MEMORY_MB, Limits, PluginSpec
from hostcalls.capabilities import grant
from reconciler._validation import read_capped
from reconciler.bundle import MAX_BUNDLE_BYTES, Bundle, bundle_from_bytes
from reconciler.lock import ReconcileLock
from reconciler.manifest import MANIFEST_NAME
from reconciler.signature import SignatureRefused, registry_trust, signer_of
from reconciler.trust import beyond, explain
from registry.index import INDEX_PATH, Entry, Index, make_index, parse_index
from registry.tuf_repo import (
    TOP_LEVEL_ROLES,
    RegistryFileError,
    RegistryIOError,
    TufRepository,
    # The name and path rules add_publisher and add_target enforce, checked
    # here before the first write so a refused add leaves DIR untouched.
    check_publisher_name,
    check_target_path,
    renewal_due,
    require_empty,
)
from ruvector.atomic import atomic_write
from ruvector.errors import InputError

__all__ = [
    "LOCK_FILE",
    "ROOT_COPY",
    "AddResult",
    "BundleRefused",
    "Refreshed",
    "add_bundle",
    "check_loadable",
    "checked_signer",
    "init_registry",
    "list_entries",
    "refresh",
    "served_dir",
    "writer_lock",
]

ROOT_COPY = "root.json"  # in DIR, beside keys/ and repository/
LOCK_FILE = "registry.lock"  # in DIR, beside keys/ and repository/: never served


class BundleRefused(InputError):
    """A bundle this registry will not publish; `reason` says why and what to do."""

    def __init__(self, bundle: Path, reason: str) -> None:
        self.bundle = bundle
        self.reason = reason
        super().__init__(f"{bundle}: refused: {reason}")


@dataclass(frozen=True)
class AddResult:
    """What add_bundle did."""

    entry: Entry  # the index entry (the existing one when unchanged)
    publisher: str
    publisher_key: str  # the bundle's signer, as the index holds it for `publisher`
    registered_new_publisher: bool
    unchanged: bool  # the same bytes were already published: nothing was written
    warnings: tuple[str, ...]  # for the user: the add went through regardless


@dataclass(frozen=True)
class Refreshed:
    """What refresh did."""

    renewed: bool  # roles were due, so everything due was re-signed (not just timestamp)
    timestamp_version: int


# ---------------------------------------------------------------------- create and read


def init_registry(dir: Path) -> Path:
    """Create a registry in `dir` (absent or empty) with an empty index.json.

    The index is published at once so a client can refresh straight away.
    Returns DIR/root.json, the copy of the root metadata users pin.
    Raises RegistryFileError if `dir` is in the way (saying so when it
    already holds a registry, or is one's served directory), LockHeld while
    another process writes there, RegistryIOError on write.
    """
    _refuse_served_dir(dir)
    if (dir / ROOT_COPY).is_file() and (dir / "repository").is_dir():
        raise RegistryFileError(
            dir, f"already holds a registry: publish with `ruvector registry add {dir} BUNDLE`"
        )
    # Checked before locking too, so a refused init leaves no lock file
    # behind; a lock file left by an earlier, failed init does not count.
    require_empty(dir, ignore={LOCK_FILE})
    with writer_lock(dir):
        repo = TufRepository.init(dir, ignore={LOCK_FILE})
        repo.add_target(INDEX_PATH, make_index({}, ()).to_json(), publisher=None)
        repo.publish()
        path = dir / ROOT_COPY
        _write(path, repo.root_json())
    return path


def list_entries(dir: Path) -> Index:
    """The registry's current (published) index.

    Raises RegistryFileError for a missing or damaged registry or index,
    RegistryIOError if a read fails.
    """
    _require_registry(dir)
    return _read_index(TufRepository.open(dir))


def served_dir(dir: Path) -> Path:
    """The directory a web server serves for the registry in `dir`.

    Raises RegistryFileError if `dir` holds no registry.
    """
    _refuse_served_dir(dir)
    served = dir / "repository"
    if not (served / "metadata" / "timestamp.json").is_file():
        raise RegistryFileError(dir, "no registry here (make one with `ruvector registry init`)")
    return served


def refresh(dir: Path, now: datetime | None = None, *, root_key: Path | None = None) -> Refreshed:
    """Keep the served metadata from expiring: what a cron job runs (daily, say).

    Usually only a new timestamp is written. When any other role has less
    than half its validity left, everything due is re-signed instead
    (TufRepository.publish): a new timestamp alone would not stop the
    snapshot or a targets role from expiring, and clients refuse either.
    The root key is read (from `root_key`, default DIR/keys/root.key) only
    when root itself is due.
    Raises LockHeld while another process writes the registry, RootKeyNeeded
    if root is due and its key absent, and as TufRepository.open and
    publish do.
    """
    at = _utc(now)
    _require_registry(dir)
    with writer_lock(dir):
        repo = TufRepository.open(dir, root_key=root_key)
        renew = _renewal_due(repo, at)
        if renew:
            repo.publish(at)
        else:
            repo.refresh_timestamp(at)
        version: int = repo.role_metadata("timestamp").signed.version
    return Refreshed(renew, version)


def writer_lock(dir: Path) -> ReconcileLock:
    """The lock (not yet taken) that every write to the registry in `dir` holds.

    Acquiring it raises LockHeld if another process holds it.
    """
    return ReconcileLock(dir, LOCK_FILE, activity=f"registry write holding {dir / LOCK_FILE}")


# ---------------------------------------------------------------------- add


def add_bundle(
    dir: Path,
    bundle_path: Path,
    *,
    publisher: str | None = None,
    verified: bool = False,
    now: datetime | None = None,
    root_key: Path | None = None,
) -> AddResult:
    """Publish the signed bundle at `bundle_path` in the registry in `dir`.

    `publisher` registers the bundle's signing key under that name when the
    key is new; it may be left out once the key is registered. `verified`
    is the registry's word in the index (shown by clients, never believed).
    `root_key` is where to read the root key if root is due for renewal
    (default DIR/keys/root.key); it is not read otherwise.
    Raises PluginRefused for a wasm the executor would
    refuse to load; PublisherError for a `publisher` that is not a valid new name,
    BundleRefused when the bundle is unsigned, its key is unknown
    (and no `publisher` given) or registered under another name, the
    publisher name is another key's, the plugin name another publisher's,
    or the version published with other bytes; RootKeyNeeded if root is
    due and its key absent; LockHeld while another process writes the
    registry; see the module docstring for the rest.
    """
    at = _utc(now)
    _require_registry(dir)
    with writer_lock(dir):
        repo = TufRepository.open(dir, root_key=root_key)
        return _add(repo, bundle_path, publisher, verified, at)


def _add(
    repo: TufRepository,
    bundle_path: Path,
    publisher: str | None,
    verified: bool,
    at: datetime,
) -> AddResult:
    """add_bundle, under the lock."""
    index = _read_index(repo)
    raw, bundle, signer = _read_signed(bundle_path)
    check_loadable(bundle)
    owner, is_new = _publisher_of(index, signer, publisher, bundle_path)
    _check_name_owner(index, bundle, owner, bundle_path)
    warnings = _trust_warnings(bundle, owner, signer)
    m = bundle.manifest
    existing = index.entry(m.name, m.version)
    if existing is not None:
        _check_same_bytes(repo, existing, raw, bundle_path)
        return AddResult(existing, owner, signer, False, True, warnings)
    entry = _entry(bundle, raw, owner, verified, at)
    _check_paths(entry, bundle_path)
    publishers = {**index.publishers, owner: signer}
    new_index = _next_index(publishers, (*index.entries, entry), bundle_path)
    repo.require_root_key(at)
    # Every check passed: from here on files are written.
    if is_new:
        repo.add_publisher(owner)
    repo.add_target(entry.bundle, raw, publisher=owner)
    repo.add_target(entry.manifest_url, bundle.files[MANIFEST_NAME], publisher=owner)
    repo.add_target(entry.wasm_url, bundle.wasm(), publisher=owner)
    repo.add_target(INDEX_PATH, new_index, publisher=None)
    repo.publish(at)
    return AddResult(entry, owner, signer, is_new, False, warnings)


def _read_signed(path: Path) -> tuple[bytes, Bundle, str]:
    """The bundle's bytes, the bundle, and its signer's key.

    The bytes are read once and checked as they are: the bytes published
    are the bytes checked, even if the file changes meanwhile.
    """
    raw = read_capped(path, MAX_BUNDLE_BYTES, str(path), "")
    # No host check: a registry serves every platform and ruvector version.
    bundle = bundle_from_bytes(raw, path, check_host=False)
    signer = checked_signer(bundle, path)
    if signer is None:
        raise BundleRefused(
            path, "registries accept signed bundles only: sign it with `ruvector plugin sign`"
        )
    return raw, bundle, signer


def checked_signer(bundle: Bundle, target: Path) -> str | None:
    """The bundle's signer (None if unsigned), as reconciler.signature.signer_of says.

    `target` is what the user signed (a plugin directory or a .rvp): a
    broken signature's message says to sign it again. Raises
    SignatureRefused for a signature that is malformed or does not verify.
    """
    try:
        return signer_of(bundle)
    except SignatureRefused as exc:
        raise SignatureRefused(
            exc.plugin,
            exc.where,
            f"{exc.reason}; re-run `ruvector plugin sign {target}` to sign what is there now",
        ) from None


def check_loadable(bundle: Bundle) -> None:
    """Check the bundle's wasm as the executor does before instantiating it.

    Runs executor.loader.check_module, so the rules and messages are the
    loader's: the wasm compiles, each import is an ABI v1 host function with
    its exact signature whose capability the manifest declares, and the
    required exports are there. Nothing is instantiated. Every declared
    capability counts as approved (approving is the installing user's
    part), and memory is held to the largest cap a machine may set.
    Raises PluginRefused with the loader's message.
    """
    # Imported here: wasmtime is slow to import, and most registry commands
    # never compile anything.
    from executor.engine import EngineSettings, make_engine
    from executor.loader import DirectCompiler, check_module

    m = bundle.manifest
    spec = PluginSpec(
        name=m.name,
        version=m.version,
        wasm=bundle.wasm(),
        wasm_sha256=m.wasm_sha256,
        declared=m.capabilities,
        approved=m.capabilities,
        limits=Limits(max_memory_mb=MAX_MEMORY_MB),
        source=bundle.origin,
    )
    # Compiled without this host's module cache: the plugin is not to run here.
    compiler = DirectCompiler(make_engine(EngineSettings()))
    check_module(spec, grant(m.capabilities, m.capabilities), compiler)


def _publisher_of(index: Index, signer: str, wanted: str | None, path: Path) -> tuple[str, bool]:
    """The publisher the bundle goes under, and whether it is to be registered."""
    registered = sorted(name for name, key in index.publishers.items() if key == signer)
    if registered:
        if wanted is not None and wanted not in registered:
            raise BundleRefused(
                path,
                f"its signing key {signer} is registered as publisher '{registered[0]}', "
                f"not '{wanted}' (a key belongs to one publisher)",
            )
        return wanted or registered[0], False
    if wanted is None:
        raise BundleRefused(
            path,
            f"its signing key {signer} is not registered to any publisher: "
            "pass --publisher NAME to register the key",
        )
    check_publisher_name(wanted)
    holder = index.publishers.get(wanted)
    if holder is not None:
        raise BundleRefused(
            path,
            f"publisher '{wanted}' is registered with key {holder}, "
            f"and this bundle is signed by {signer}",
        )
    return wanted, True


def _check_name_owner(index: Index, bundle: Bundle, publisher: str, path: Path) -> None:
    published = index.versions(bundle.manifest.name)
    if published and published[0].publisher != publisher:
        raise BundleRefused(
            path,
            f"plugin '{bundle.manifest.name}' belongs to publisher '{published[0].publisher}', "
            f"who published it first; publisher '{publisher}' cannot publish that name",
        )


def _trust_warnings(bundle: Bundle, publisher: str, key: str) -> tuple[str, ...]:
    """Capabilities clients will refuse at the trust level they will see.

    registry_trust is what a client runs on this bundle: it raises
    SignatureRefused if the signer is not `key`. Clients with no verified
    keys see Signed; RegistryWrite needs a verified publisher there.
    """
    level = registry_trust(bundle, [], publisher, key)
    refused = beyond(level, bundle.manifest.capabilities)
    if not refused:
        return ()
    m = bundle.manifest
    return (
        f"{m.name} {m.version} declares {', '.join(refused)}: {explain(level)}. "
        f"Clients install it only where ruvector.toml lists {key} in "
        "[plugins.trust] verified_publisher_keys.",
    )


def _check_same_bytes(repo: TufRepository, existing: Entry, raw: bytes, path: Path) -> None:
    listed = repo.list_targets(existing.publisher).get(existing.bundle)
    if listed is None:
        raise RegistryFileError(
            repo.metadata_dir, f"index.json lists {existing.bundle}, which no role lists"
        )
    same = listed.length == len(raw) and listed.hashes.get("sha256") == _sha256(raw)
    if not same:
        raise BundleRefused(
            path,
            f"{existing.name} {existing.version} is already published with other content, "
            "and a published version is immutable: bump the version",
        )


def _entry(bundle: Bundle, raw: bytes, publisher: str, verified: bool, at: datetime) -> Entry:
    m = bundle.manifest
    base = f"{publisher}/{m.name}/{m.version}"
    return Entry(
        name=m.name,
        version=m.version,
        publisher=publisher,
        author=m.author,
        description=m.description,
        downloads=0,
        rating=None,
        verified=verified,
        # The manifest schema has no categories field yet.
        categories=(),
        capabilities=tuple(sorted(str(c) for c in m.capabilities)),
        size_bytes=len(raw),
        bundle=f"{base}/{m.name}-{m.version}.rvp",
        wasm_url=f"{base}/{m.wasm_file}",
        manifest_url=f"{base}/{MANIFEST_NAME}",
        sha256=m.wasm_sha256,
        published_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        min_ruvector_version=m.min_ruvector_version,
        platforms=tuple(sorted(p.value for p in m.platforms)),
    )


def _check_paths(entry: Entry, path: Path) -> None:
    targets = (entry.bundle, entry.manifest_url, entry.wasm_url)
    if len(set(targets)) < len(targets):
        # A wasm named like the bundle would replace the bundle's listing.
        raise BundleRefused(path, f"its wasm_file may not be named {entry.wasm_url!r}")
    for target in targets:
        try:
            check_target_path(target)
        except ValueError as exc:
            raise BundleRefused(path, str(exc)) from None


def _next_index(publishers: dict[str, str], entries: tuple[Entry, ...], path: Path) -> bytes:
    """index.json with `entries`, as a client will parse it.

    Parsed back before publishing: a value the manifest allows but the
    index schema does not (a very long version, say) would otherwise make
    every client refuse the whole index.
    """
    data = make_index(publishers, entries).to_json()
    parse_index(data, f"{path}: its index.json entry")
    return data


# ---------------------------------------------------------------------- helpers


def _read_index(repo: TufRepository) -> Index:
    """The published index.json, checked against the hash its metadata lists."""
    info = repo.list_targets(None).get(INDEX_PATH)
    if info is None:
        raise RegistryFileError(
            repo.metadata_dir,
            f"top-level targets list no {INDEX_PATH}: not a plugin registry "
            "(make one with `ruvector registry init`)",
        )
    path = repo.targets_dir / info.get_prefixed_paths()[0]
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RegistryFileError(path, "missing") from None
    except OSError as exc:
        raise RegistryIOError(path, exc.strerror or str(exc)) from exc
    try:
        info.verify_length_and_hashes(raw)
    except LengthOrHashMismatchError:
        raise RegistryFileError(path, "does not match the hash its metadata lists") from None
    return parse_index(raw, str(path))


def _renewal_due(repo: TufRepository, at: datetime) -> bool:
    """Whether a role but timestamp is due for renewal, as publish() judges it."""
    roles = [r for r in TOP_LEVEL_ROLES if r != "timestamp"] + repo.publishers()
    return any(
        renewal_due(repo.role_metadata(role).signed.expires, repo.expiry.period(role), at)
        for role in roles
    )


def _require_registry(dir: Path) -> None:
    """Refuse a `dir` that holds no registry before the lock file is made in it."""
    _refuse_served_dir(dir)
    if not dir.is_dir():
        raise RegistryFileError(dir, "no registry here (not a directory)")
    if not (dir / "repository").is_dir():
        raise RegistryFileError(dir, "no registry here (make one with `ruvector registry init`)")


def _refuse_served_dir(dir: Path) -> None:
    """Refuse DIR/repository given for DIR: a mistake its metadata makes easy to spot."""
    if (dir / "metadata" / "timestamp.json").is_file():
        # The parent of "." or ".." is not a lexical one: resolve those.
        parent = dir.parent if dir.name not in ("", "..") else dir.resolve().parent
        raise RegistryFileError(
            dir, f"this is a registry's served repository/ directory: pass its parent, {parent}"
        )


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise RegistryIOError(path, exc.strerror or str(exc)) from exc
