"""The TUF repository behind the plugin registry: signed metadata and files only.

A registry is a directory of static files that any HTTP server or CDN can serve:

    DIR/keys/{root,targets,snapshot,timestamp}.key     PEM private keys, 0600
                                                       (root.key may be kept offline)
    DIR/keys/publishers/<publisher>.key                one delegated-role key each
    DIR/repository/                                    what gets served
        metadata/<v>.root.json, root.json              root.json: latest, for humans
        metadata/timestamp.json                        the only file changed in place
        metadata/<v>.snapshot.json, <v>.targets.json, <v>.<publisher>.json
        targets/<dir>/<sha256>.<basename>              hash-prefixed target files

Trust: root names one key (threshold 1) for each top-level role. Top-level
targets lists registry-wide files (such as index.json) and delegates
"<publisher>/..." to one role per publisher. Those delegations are terminating,
so a publisher's key can vouch only for paths in its own namespace, and a
search for such a path never falls through to another role.

Ordering rules, which keep every reader on a complete tree:

- consistent_snapshot is on, so every file but timestamp.json is written once,
  under a name holding its version or hash, and never changed afterwards
  (CDN caches stay valid while a new version is published).
- publish() writes root, then the delegated roles, then targets, then
  snapshot, and timestamp.json last, each one atomically: until timestamp.json
  is replaced, clients see only the previous, complete state.
- open() follows the chain timestamp -> snapshot -> targets roles, so the files
  of an interrupted publish are never loaded; the next publish reuses their
  version numbers and overwrites them, which is safe because no timestamp ever
  pointed at them.

The root key signs new root versions only, so it is read only when one is
due (publish() renews root when less than half its validity is left, about
twice a year by default) or asked for (sign_with("root")): between renewals
it can be kept offline. open() takes another path to read it from.

Changes (add_publisher, add_target, remove_target) are staged in the object and
reach the served metadata only at publish(). Target files are written at once:
a hash-prefixed file that no metadata lists is never fetched by a client.

Errors: RegistryFileError (an InputError) for a missing, damaged or misplaced
registry file; RootKeyNeeded (an InputError) when root is due for renewal and
its key is not where it is looked for; RegistryIOError (a HostFault) when the
OS fails a read or write; PublisherError and TargetNotFound (InputErrors) for
names the user got wrong.
ValueError means the caller built a bad target path, a bug in the layer above.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.exceptions import KeyMismatchError

# tuf.api.metadata and securesystemslib.signer re-export their classes without
# __all__, which mypy's strict no-implicit-reexport reports; the types still
# resolve. These are the documented import paths, so ignore rather than import
# from the private modules (a pyproject override for both packages would do too).
from securesystemslib.signer import (
    CryptoSigner,
    Key,
    Signer,
    SSlibKey,
)
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from ruvector.atomic import atomic_write
from ruvector.errors import HostFault, InputError

__all__ = [
    "NAMESPACE_DEPTH",
    "TOP_LEVEL_ROLES",
    "Expiry",
    "PublisherError",
    "RegistryFileError",
    "RegistryIOError",
    "RootKeyNeeded",
    "TargetNotFound",
    "TufRepository",
    "check_publisher_name",
    "check_target_path",
    "renewal_due",
    "require_empty",
]

TOP_LEVEL_ROLES = ("root", "targets", "snapshot", "timestamp")

# A delegated path pattern matches one fixed number of segments (python-tuf
# compares "a/*" segment by segment, so it does not match "a/b/c"): each
# publisher gets one pattern per depth, and deeper paths are refused.
NAMESPACE_DEPTH = 4  # path segments below "<publisher>/"

_PUBLISHER_NAME = re.compile(r"[a-z0-9-]{1,64}")
_RESERVED_NAMES = frozenset({*TOP_LEVEL_ROLES, "index"})
# Target paths become URL paths unquoted (the client appends them to the base
# URL as they are) and file names on disk: URL-safe characters only, and no
# segment may start with "." so "..", "." and hidden files cannot occur.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_~+-][A-Za-z0-9._~+-]{0,127}")
_SERIALIZER = JSONSerializer(compact=False)
_KEY_MODE = 0o600

_S = TypeVar("_S", Root, Timestamp, Snapshot, Targets)  # as Metadata's own T


@dataclass(frozen=True)
class Expiry:
    """How long each role's metadata stays valid after it is signed."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=30)
    timestamp: timedelta = timedelta(days=7)
    publisher: timedelta = timedelta(days=90)  # each delegated publisher role

    def period(self, role: str) -> timedelta:
        """The validity period of `role` (any name not top-level is a publisher)."""
        top: dict[str, timedelta] = {
            "root": self.root,
            "targets": self.targets,
            "snapshot": self.snapshot,
            "timestamp": self.timestamp,
        }
        return top.get(role, self.publisher)


class RegistryFileError(InputError):
    """A registry file or directory is missing, damaged or in the way."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class RegistryIOError(HostFault):
    """The OS failed to read or write a registry file."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class PublisherError(InputError):
    """A publisher name is invalid, taken or unknown."""

    def __init__(self, publisher: str, reason: str) -> None:
        self.publisher = publisher
        self.reason = reason
        super().__init__(f"publisher {publisher!r}: {reason}")


class RootKeyNeeded(InputError):
    """Root metadata is due for renewal and its key file `path` is absent."""

    def __init__(self, path: Path, expires: datetime) -> None:
        self.path = path
        self.expires = expires
        super().__init__(
            f"root metadata is due for renewal (it expires {expires:%Y-%m-%d}), which needs "
            f"the root key, and {path} is missing: put keys/root.key back for this one run, "
            "or pass its path with --root-key PATH"
        )


class TargetNotFound(InputError):
    """A target path is not listed in the role it was looked up in."""

    def __init__(self, path: str, role: str) -> None:
        self.path = path
        self.role = role
        super().__init__(f"target {path!r} is not listed in role {role!r}")


class TufRepository:
    """A registry directory: its keys, its latest metadata and staged changes.

    Build one with `init` or `open`. Not safe for concurrent use: one process
    (and one object) edits a registry at a time; registry.repository holds a
    lock on DIR for that.
    """

    def __init__(
        self,
        directory: Path,
        signers: dict[str, CryptoSigner],
        root: Metadata[Root],
        snapshot: Metadata[Snapshot],
        timestamp: Metadata[Timestamp],
        targets: dict[str, Metadata[Targets]],
        expiry: Expiry,
        root_key: Path,
    ) -> None:
        """Use `init` or `open`; this only assembles already loaded parts."""
        self._dir = directory
        self._signers = signers  # "root" only once it has been read (see _root_signer)
        self._root_key = root_key
        self._root = root
        self._snapshot = snapshot
        self._timestamp = timestamp
        self._targets = targets  # "targets" and every publisher role
        self._expiry = expiry
        # Versions the current snapshot lists (or the next one will): the
        # last *published* version of each targets role, never a staged one.
        self._published = {
            name.removesuffix(".json"): meta.version for name, meta in snapshot.signed.meta.items()
        }
        self._dirty: set[str] = set()  # targets roles with staged changes

    # ------------------------------------------------------------------ create

    @classmethod
    def init(
        cls, dir: Path, *, expiry: Expiry = Expiry(), ignore: Collection[str] = ()
    ) -> TufRepository:
        """Create a registry in `dir` (which must be absent or empty).

        Writes new keys and version 1 of the four top-level roles. Names in
        `ignore` do not make `dir` non-empty (a lock file the caller holds).
        Raises RegistryFileError if `dir` is a file or not empty,
        RegistryIOError if a write fails.
        """
        require_empty(dir, ignore=ignore)
        now = _utc(None)
        signers = {role: CryptoSigner.generate_ed25519() for role in TOP_LEVEL_ROLES}
        root = Metadata(Root(expires=now + expiry.root, consistent_snapshot=True))
        for role, signer in signers.items():
            root.signed.add_key(signer.public_key, role)
        repo = cls(
            dir,
            signers,
            root,
            Metadata(Snapshot(expires=now + expiry.snapshot)),
            Metadata(Timestamp(expires=now + expiry.timestamp)),
            {"targets": Metadata(Targets(expires=now + expiry.targets))},
            expiry,
            dir / "keys" / "root.key",
        )
        for role, signer in signers.items():
            _write(dir / "keys" / f"{role}.key", signer.private_bytes, _KEY_MODE)
        # Defaults already chain these: snapshot v1 lists targets v1, timestamp
        # v1 points at snapshot v1. Timestamp goes last, as in publish().
        for role in ("root", "targets", "snapshot", "timestamp"):
            md = repo._top_level(role)
            md.sign(signers[role])
            repo._write_metadata(role, md)
        return repo

    @classmethod
    def open(
        cls, dir: Path, *, expiry: Expiry = Expiry(), root_key: Path | None = None
    ) -> TufRepository:
        """Load the online keys and the latest published metadata of the registry in `dir`.

        `expiry` sets the periods for what this object signs from now on.
        The root key is not read here but when root must be re-signed, from
        `root_key` (default: DIR/keys/root.key), so it may be kept offline.
        Every loaded role is checked against its delegator's keys, and every
        key file read against the public key the metadata names.
        Raises RegistryFileError for a missing or damaged file (naming it),
        RegistryIOError if the OS cannot read one.
        """
        if not dir.is_dir():
            raise RegistryFileError(dir, "no registry here (not a directory)")
        meta_dir = dir / "repository" / "metadata"
        root = _latest_root(meta_dir)
        timestamp = _load(meta_dir / "timestamp.json", Timestamp, None)
        snapshot_version = timestamp.signed.snapshot_meta.version
        snapshot = _load(meta_dir / f"{snapshot_version}.snapshot.json", Snapshot, snapshot_version)
        targets = {
            name.removesuffix(".json"): _load(
                meta_dir / f"{meta.version}.{name}", Targets, meta.version
            )
            for name, meta in snapshot.signed.meta.items()
        }
        if "targets" not in targets:
            raise RegistryFileError(
                meta_dir / f"{snapshot_version}.snapshot.json", "lists no targets.json"
            )
        _verify_chain(meta_dir, root, snapshot, timestamp, targets)
        signers = _load_online_signers(dir / "keys", root, targets["targets"])
        root_key = dir / "keys" / "root.key" if root_key is None else root_key
        return cls(dir, signers, root, snapshot, timestamp, targets, expiry, root_key)

    # ------------------------------------------------------------------ read

    @property
    def expiry(self) -> Expiry:
        """The validity periods this object signs with."""
        return self._expiry

    @property
    def repository_dir(self) -> Path:
        """The directory to serve: metadata/ and targets/ under one base URL."""
        return self._dir / "repository"

    @property
    def metadata_dir(self) -> Path:
        """Where the metadata files are written (for tests and tooling)."""
        return self.repository_dir / "metadata"

    @property
    def targets_dir(self) -> Path:
        """Where the hash-prefixed target files are written (for tests and tooling)."""
        return self.repository_dir / "targets"

    def root_json(self) -> bytes:
        """The current root metadata, as served: what a client pins to bootstrap."""
        return self._root.to_bytes(_SERIALIZER)

    def publishers(self) -> list[str]:
        """The delegated publisher roles, sorted, including staged ones."""
        return sorted(self._delegated_roles())

    def list_targets(self, publisher: str | None) -> dict[str, TargetFile]:
        """A copy of the targets `publisher` lists (None: top-level), staged changes included.

        Raises PublisherError for an unknown publisher.
        """
        role = "targets" if publisher is None else self._publisher_role(publisher)
        return copy.deepcopy(self._targets[role].signed.targets)

    # ------------------------------------------------------------------ stage

    def add_publisher(self, name: str) -> None:
        """Stage a delegated role `name` for paths "<name>/...", with a new key.

        The key file is written at once (a key whose role was never
        published is ignored by open() and replaced by a later add).
        Raises PublisherError for an invalid, reserved or taken name.
        """
        check_publisher_name(name)
        if name in self._delegated_roles():
            raise PublisherError(name, "already exists")
        if any(path.startswith(f"{name}/") for path in self._targets["targets"].signed.targets):
            raise PublisherError(name, "top-level targets already list paths in this namespace")
        signer = CryptoSigner.generate_ed25519()
        _write(self._publisher_key_path(name), signer.private_bytes, _KEY_MODE)
        top = self._targets["targets"].signed
        if top.delegations is None:
            top.delegations = Delegations(keys={}, roles={})
        self._delegated_roles()[name] = DelegatedRole(
            name=name,
            keyids=[],
            threshold=1,
            terminating=True,
            paths=_namespace_patterns(name),
        )
        top.add_key(signer.public_key, name)
        # Expiry is set when the role is first signed, in publish().
        self._targets[name] = Metadata(Targets())
        self._signers[name] = signer
        self._dirty |= {"targets", name}

    def add_target(
        self,
        path: str,
        data: bytes,
        *,
        publisher: str | None,
        custom: dict[str, Any] | None = None,
    ) -> TargetFile:
        """Write `data` as target `path` and stage its listing; return the listing.

        publisher=None lists it in top-level targets; otherwise `path` must
        start with "<publisher>/". Listing the same path again with other
        bytes (or other `custom`) replaces the entry; the old hash-prefixed
        file stays, as clients on the previous snapshot may still fetch it.
        `custom` must be JSON-serializable; it is copied.
        Raises ValueError for a malformed path or one outside the namespace,
        PublisherError for an unknown publisher, RegistryIOError on write.
        """
        role = self._role_for(path, publisher)
        info = TargetFile.from_data(path, data, ["sha256"])
        if custom is not None:
            info.unrecognized_fields["custom"] = _json_copy(custom)
        self._write_target_file(info, data)
        listing = self._targets[role].signed.targets
        if listing.get(path) != info:
            listing[path] = info
            self._dirty.add(role)
        return copy.deepcopy(info)

    def remove_target(self, path: str, publisher: str | None) -> None:
        """Stage removing `path` from `publisher`'s role (None: top-level targets).

        The file stays under targets/ for clients on older snapshots.
        Raises TargetNotFound if it is not listed, ValueError and
        PublisherError as add_target does.
        """
        role = self._role_for(path, publisher)
        listing = self._targets[role].signed.targets
        if path not in listing:
            raise TargetNotFound(path, role)
        del listing[path]
        self._dirty.add(role)

    # ------------------------------------------------------------------ publish

    def publish(self, now: datetime | None = None) -> None:
        """Sign and write every changed role, then a new snapshot and timestamp.

        A role is re-signed (with a new version) when it has staged changes or
        when less than half of its validity period is left, root included,
        so a registry that publishes regularly never lets a role expire.
        Expiry dates are computed from `now` (aware datetime, default: the
        current time), which lets tests make already-expired metadata.
        Raises RootKeyNeeded (before any write) if root is due and its key
        absent, RegistryFileError if that key file is damaged or another key,
        RegistryIOError if a write fails (the served tree then still shows
        the previous state: timestamp.json is written last).
        """
        at = _utc(now)
        if self._is_due(self._root, "root", at):
            self.require_root_key(at)
            self._renew_root(at)
        # Delegated roles before "targets": a client that sees the new
        # delegation must find the role it points at.
        roles = sorted(self._targets, key=lambda role: (role == "targets", role))
        for role in roles:
            if role in self._dirty or self._is_due(self._targets[role], role, at):
                self._sign_targets_role(role, at)
        self._sign_snapshot(at)
        self._sign_timestamp(at)

    def require_root_key(self, now: datetime | None = None) -> None:
        """Read the root key now if publish(now) will re-sign root.

        Lets a caller that writes files before publishing (add_target
        writes target files at once) fail before its first write.
        Raises RootKeyNeeded if root is due and the key file is absent,
        RegistryFileError if it is damaged or not root's key,
        RegistryIOError if the OS cannot read it.
        """
        at = _utc(now)
        if not self._is_due(self._root, "root", at) or "root" in self._signers:
            return
        if not self._root_key.exists():
            raise RootKeyNeeded(self._root_key, self._root.signed.expires)
        self._root_signer()

    def resign_snapshot(self, now: datetime | None = None) -> None:
        """Write a new snapshot version (same listed versions) and a new timestamp.

        Staged changes are not published. Raises RegistryIOError.
        """
        at = _utc(now)
        self._sign_snapshot(at)
        self._sign_timestamp(at)

    def refresh_timestamp(self, now: datetime | None = None) -> None:
        """Write a new timestamp version for the current snapshot (the cron job).

        Run it well within the timestamp period; it does not renew the
        snapshot, so resign_snapshot() (or publish()) must run within the
        snapshot period too. Raises RegistryIOError.
        """
        self._sign_timestamp(_utc(now))

    # ------------------------------------------------------------------ tests and tooling

    def sign_with(self, role: str) -> Signer:
        """The signer of `role` (top-level or publisher), for tests and tooling.

        Attack tests use it to sign hand-crafted metadata. Raises
        PublisherError for an unknown role; for "root", RegistryFileError or
        RegistryIOError if its key file cannot be read.
        """
        if role == "root":
            return self._root_signer()
        try:
            return self._signers[role]
        except KeyError:
            raise PublisherError(role, "no such role") from None

    def role_metadata(self, role: str) -> Metadata[Any]:
        """A copy of `role`'s current metadata, staged changes included (tests, tooling).

        Raises PublisherError for an unknown role.
        """
        if role in TOP_LEVEL_ROLES:
            md: Metadata[Any] = self._top_level(role)
        elif role in self._targets:
            md = self._targets[role]
        else:
            raise PublisherError(role, "no such role")
        return Metadata.from_bytes(md.to_bytes(_SERIALIZER))

    def write_role(self, metadata: Metadata[Any], role: str) -> None:
        """Write `metadata` as is as the current version of `role` (tests, tooling).

        For hand-crafted (even wrongly signed) metadata in attack tests: the
        file `<version>.<role>.json` (timestamp.json for timestamp) is
        written and the object takes it as the role's latest version, so a
        following resign_snapshot() lists it. Nothing is checked but the
        payload type. Raises ValueError if the type does not fit `role`,
        RegistryIOError if the write fails.
        """
        expected = role if role in TOP_LEVEL_ROLES else "targets"
        if metadata.signed.type != expected:
            raise ValueError(f"role {role!r} needs {expected} metadata, not {metadata.signed.type}")
        # A copy, so the caller may keep editing its object for the next attack.
        metadata = Metadata.from_bytes(metadata.to_bytes(_SERIALIZER))
        self._write_metadata(role, metadata)
        if role == "root":
            self._root = metadata
        elif role == "snapshot":
            self._snapshot = metadata
        elif role == "timestamp":
            self._timestamp = metadata
        else:
            self._targets[role] = metadata
            self._published[role] = metadata.signed.version
            self._dirty.discard(role)

    # ------------------------------------------------------------------ internals

    def _top_level(self, role: str) -> Metadata[Any]:
        by_role: dict[str, Metadata[Any]] = {
            "root": self._root,
            "targets": self._targets["targets"],
            "snapshot": self._snapshot,
            "timestamp": self._timestamp,
        }
        return by_role[role]

    def _delegated_roles(self) -> dict[str, DelegatedRole]:
        return _delegated_roles(self._targets["targets"].signed)

    def _publisher_role(self, publisher: str) -> str:
        if publisher not in self._delegated_roles():
            raise PublisherError(publisher, "no such publisher")
        return publisher

    def _publisher_key_path(self, name: str) -> Path:
        return self._dir / "keys" / "publishers" / f"{name}.key"

    def _role_for(self, path: str, publisher: str | None) -> str:
        """The targets role that lists `path`; raises ValueError for a bad path."""
        segments = check_target_path(path)
        if publisher is None:
            if len(segments) > 1 and segments[0] in self._delegated_roles():
                raise ValueError(f"target {path!r} is in publisher {segments[0]!r}'s namespace")
            return "targets"
        role = self._publisher_role(publisher)
        if segments[0] != publisher or len(segments) < 2:
            raise ValueError(f"target {path!r} is outside publisher {publisher!r}'s namespace")
        if len(segments) - 1 > NAMESPACE_DEPTH:
            raise ValueError(f"target {path!r} is deeper than {NAMESPACE_DEPTH} segments")
        return role

    def _is_due(self, md: Metadata[Any], role: str, at: datetime) -> bool:
        return renewal_due(md.signed.expires, self._expiry.period(role), at)

    def _root_signer(self) -> CryptoSigner:
        """The root key's signer, read from its file the first time it is needed."""
        signer = self._signers.get("root")
        if signer is None:
            root = self._root.signed
            signer = _load_signer(self._root_key, root.get_key(root.roles["root"].keyids[0]))
            self._signers["root"] = signer
        return signer

    def _renew_root(self, at: datetime) -> None:
        # Same keys, so the new root needs only the current root key; clients
        # holding an older root walk to it through <v>.root.json.
        signer = self._root_signer()  # before any change: a missing key changes nothing
        self._root.signed.version += 1
        self._root.signed.expires = at + self._expiry.root
        self._root.sign(signer)
        self._write_metadata("root", self._root)

    def _sign_targets_role(self, role: str, at: datetime) -> None:
        md = self._targets[role]
        md.signed.version = self._published.get(role, 0) + 1
        md.signed.expires = at + self._expiry.period(role)
        md.sign(self._signers[role])
        self._write_metadata(role, md)
        self._published[role] = md.signed.version
        self._dirty.discard(role)

    def _sign_snapshot(self, at: datetime) -> None:
        snapshot = self._snapshot.signed
        snapshot.meta = {
            f"{role}.json": MetaFile(version=version)
            for role, version in sorted(self._published.items())
        }
        snapshot.version += 1
        snapshot.expires = at + self._expiry.snapshot
        self._snapshot.sign(self._signers["snapshot"])
        self._write_metadata("snapshot", self._snapshot)

    def _sign_timestamp(self, at: datetime) -> None:
        timestamp = self._timestamp.signed
        timestamp.snapshot_meta = MetaFile(version=self._snapshot.signed.version)
        timestamp.version += 1
        timestamp.expires = at + self._expiry.timestamp
        self._timestamp.sign(self._signers["timestamp"])
        self._write_metadata("timestamp", self._timestamp)

    def _write_metadata(self, role: str, md: Metadata[Any]) -> None:
        data = md.to_bytes(_SERIALIZER)
        if role == "timestamp":
            _write(self.metadata_dir / "timestamp.json", data)
            return
        _write(self.metadata_dir / f"{md.signed.version}.{role}.json", data)
        if role == "root":
            _write(self.metadata_dir / "root.json", data)

    def _write_target_file(self, info: TargetFile, data: bytes) -> None:
        # The client fetches "<dir>/<first hash>.<basename>" (get_prefixed_paths).
        path = self.targets_dir / info.get_prefixed_paths()[0]
        if not path.exists():  # content-addressed: an existing file is this file
            _write(path, data)


# ---------------------------------------------------------------------- helpers


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)  # tuf refuses expiry dates in any zone but UTC


def renewal_due(expires: datetime, period: timedelta, at: datetime) -> bool:
    """Whether metadata valid for `period` and expiring at `expires` is due at `at`.

    Due means less than half of its validity is left: publish() re-signs
    such a role, so a registry refreshed regularly never lets one expire.
    """
    return expires - at < period / 2


def require_empty(dir: Path, *, ignore: Collection[str] = ()) -> None:
    """Check that a registry may be created in `dir`: absent, or empty but for `ignore`.

    Raises RegistryFileError if `dir` is a file or holds anything else.
    """
    if dir.exists() and not dir.is_dir():
        raise RegistryFileError(dir, "exists and is not a directory")
    if dir.is_dir() and any(p.name not in ignore for p in dir.iterdir()):
        raise RegistryFileError(dir, "exists and is not empty; refusing to create a registry")


def check_publisher_name(name: str) -> None:
    """The rule add_publisher applies to a new publisher's name.

    Raises PublisherError for a name that is malformed or reserved.
    """
    if not _PUBLISHER_NAME.fullmatch(name):
        raise PublisherError(name, "must be 1-64 characters of a-z, 0-9 and '-'")
    if name in _RESERVED_NAMES:
        raise PublisherError(name, "is a reserved name")


def check_target_path(path: str) -> list[str]:
    """The syntax rule add_target applies to a target path; returns its segments.

    Namespace rules (which role may list it) are checked by add_target only.
    Raises ValueError for a segment clients could not fetch or store safely.
    """
    segments = path.split("/")
    if not all(_PATH_SEGMENT.fullmatch(segment) for segment in segments):
        raise ValueError(
            f"target path {path!r}: segments must be 1-128 characters of "
            "A-Z a-z 0-9 . _ ~ + - and not start with '.'"
        )
    return segments


def _namespace_patterns(name: str) -> list[str]:
    return ["/".join([name, *["*"] * depth]) for depth in range(1, NAMESPACE_DEPTH + 1)]


def _json_copy(value: dict[str, Any]) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"custom is not JSON-serializable: {exc}") from exc


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    try:
        if mode == _KEY_MODE:
            # Key directories are private too: a listing tells who publishes.
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, data, mode)
    except OSError as exc:
        raise RegistryIOError(path, exc.strerror or str(exc)) from exc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RegistryFileError(path, "missing") from None
    except OSError as exc:
        raise RegistryIOError(path, exc.strerror or str(exc)) from exc


def _load(path: Path, kind: type[_S], version: int | None) -> Metadata[_S]:
    """Parse `path` as `kind` metadata, of `version` when one is expected."""
    try:
        md: Metadata[Any] = Metadata.from_bytes(_read(path))
    except DeserializationError as exc:
        raise RegistryFileError(path, f"damaged metadata: {exc}") from exc
    if not isinstance(md.signed, kind):
        raise RegistryFileError(path, f"holds {md.signed.type} metadata, not {kind.type}")
    if version is not None and md.signed.version != version:
        raise RegistryFileError(path, f"holds version {md.signed.version}, not {version}")
    return md


def _delegated_roles(targets: Targets) -> dict[str, DelegatedRole]:
    """The roles `targets` delegates to (the live dict, not a copy)."""
    if targets.delegations is None:
        return {}
    if targets.delegations.roles is None:
        # Succinct hash bins: this module never writes them.
        raise ValueError("targets uses succinct delegations, which this registry does not")
    return targets.delegations.roles


def _latest_root(meta_dir: Path) -> Metadata[Root]:
    versions = [
        int(p.name.split(".", 1)[0])
        for p in meta_dir.glob("*.root.json")
        if p.name.split(".", 1)[0].isdigit()
    ]
    if not versions:
        raise RegistryFileError(meta_dir / "1.root.json", "missing")
    latest = max(versions)
    return _load(meta_dir / f"{latest}.root.json", Root, latest)


def _verify_chain(
    meta_dir: Path,
    root: Metadata[Root],
    snapshot: Metadata[Snapshot],
    timestamp: Metadata[Timestamp],
    targets: dict[str, Metadata[Targets]],
) -> None:
    """Check each role's signatures against its delegator, as a client would."""
    top: list[tuple[str, Metadata[Any], str]] = [
        ("root", root, f"{root.signed.version}.root.json"),
        ("timestamp", timestamp, "timestamp.json"),
        ("snapshot", snapshot, f"{snapshot.signed.version}.snapshot.json"),
        ("targets", targets["targets"], f"{targets['targets'].signed.version}.targets.json"),
    ]
    for role, md, name in top:
        _verify(root.signed, role, md, meta_dir / name)
    top_path = meta_dir / f"{targets['targets'].signed.version}.targets.json"
    try:
        delegated = _delegated_roles(targets["targets"].signed)
    except ValueError as exc:
        raise RegistryFileError(top_path, str(exc)) from exc
    # Roles the snapshot lists but targets does not delegate are unreachable
    # for clients; they are loaded (tests write such roles) but not verified.
    for name in delegated:
        if name not in targets:
            snapshot_path = meta_dir / f"{snapshot.signed.version}.snapshot.json"
            raise RegistryFileError(snapshot_path, f"does not list delegated role {name!r}")
        md = targets[name]
        _verify(targets["targets"].signed, name, md, meta_dir / f"{md.signed.version}.{name}.json")


def _verify(delegator: Root | Targets, role: str, md: Metadata[Any], path: Path) -> None:
    try:
        delegator.verify_delegate(role, md.signed_bytes, md.signatures)
    except UnsignedMetadataError as exc:
        raise RegistryFileError(path, f"signatures do not verify: {exc}") from exc


def _load_online_signers(
    keys_dir: Path, root: Metadata[Root], targets: Metadata[Targets]
) -> dict[str, CryptoSigner]:
    """Load every role's key file but root's, checked against the key its delegator names."""
    signers: dict[str, CryptoSigner] = {}
    for role in TOP_LEVEL_ROLES:
        if role == "root":
            continue  # read only when needed: it may be offline
        key = root.signed.get_key(root.signed.roles[role].keyids[0])
        signers[role] = _load_signer(keys_dir / f"{role}.key", key)
    for name, delegated in _delegated_roles(targets.signed).items():
        key = targets.signed.get_key(delegated.keyids[0])
        signers[name] = _load_signer(keys_dir / "publishers" / f"{name}.key", key)
    return signers


def _load_signer(path: Path, public_key: Key) -> CryptoSigner:
    if not isinstance(public_key, SSlibKey):
        raise RegistryFileError(
            path, f"metadata names a {type(public_key).__name__}, not a local key"
        )
    try:
        private_key = load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise RegistryFileError(path, f"not an unencrypted PEM private key: {exc}") from exc
    try:
        return CryptoSigner(private_key, public_key)
    except (KeyMismatchError, ValueError) as exc:
        raise RegistryFileError(path, "does not match the public key the metadata names") from exc
