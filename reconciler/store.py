"""The observed state under state_dir: what is installed, pinned and applied.

    state/
    ├── store/<digest>/        artifacts: a plugin's files, content-addressed, immutable
    ├── generations/<n>.json   each applied set of plugins (Nix-style generations)
    ├── generations/current    the number of the generation in force
    ├── ruvector.lock          pins: each plugin's exact version and hashes
    └── reconcile.lock         one reconcile at a time (reconciler.lock)

An apply stages artifacts (put_artifact), records a generation
(write_generation) and then switches `current` to it. That switch, one
atomic rename, is the only step that changes what is installed: a crash
before it leaves the previous generation in force, a crash after it the new
one. Pins are rewritten after the switch; they follow from the current
generation (pins_of), so a run that finds them stale can rewrite them.

Every file is written atomically (temp file, fsync, rename) and every
artifact directory is written under a temp name and renamed into place, so a
reader sees the old state or the new, never half of one. Writers must hold
the ReconcileLock: the store takes any temp entry it finds for the leftover
of a killed writer and deletes it.

Errors: a state file that is damaged, of an unknown format or cannot be read
or written raises StateError (a HostFault) naming the file. Arguments that
break the store's invariants (an unsafe member name, a digest that does not
match the files) raise ValueError: they are bugs in the caller, not input.

Secrets never reach this module: a plugin's config is recorded as written in
ruvector.toml, with `env:NAME` references unresolved.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from reconciler.trust import TrustLevel
from ruvector.atomic import atomic_write, fsync_dir
from ruvector.errors import HostFault

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # of generation files and the pins file
PINS_NAME = "ruvector.lock"
CURRENT_NAME = "current"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GENERATION_FILE = re.compile(r"^([1-9][0-9]*)\.json$")
_TMP = ".tmp-"  # an artifact being written
_OLD = ".old-"  # an artifact set aside, being deleted

T = TypeVar("T")


class StateError(HostFault):
    """A file under state/ is damaged, of an unknown format, or unreadable/unwritable."""

    def __init__(self, file: Path | str, message: str) -> None:
        self.file = str(file)
        self.message = message
        super().__init__(f"{file}: {message}")


class DriftKind(enum.Enum):
    MISSING = "missing"
    CHANGED = "changed"  # other bytes, or no longer a regular file
    EXTRA = "extra"


@dataclass(frozen=True)
class Drift:
    """One file of an installed artifact that differs from its generation's record."""

    plugin: str
    file: str  # member name, relative to the artifact
    kind: DriftKind

    def __str__(self) -> str:
        return f"{self.plugin}: {self.kind.value} file {self.file}"


# -- digests ------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hashes_of(files: Mapping[str, bytes]) -> dict[str, str]:
    """Each member's sha256. Raises ValueError for an unsafe member name."""
    check_member_names(files)
    return {name: sha256_hex(data) for name, data in files.items()}


def digest_of(files: Mapping[str, bytes]) -> str:
    """An artifact's digest: sha256 over its sorted member names and their sha256s.

    Raises ValueError for an unsafe member name.
    """
    return digest_of_hashes(hashes_of(files))


def digest_of_hashes(hashes: Mapping[str, str]) -> str:
    """digest_of, from the members' sha256s (as recorded in a generation).

    The same scheme as reconciler.bundle's Bundle.digest, so a bundle's
    digest names its store directory. Changing it renames every artifact.
    """
    h = hashlib.sha256()
    for name in sorted(hashes):
        # NUL and newline cannot occur in a checked name, so this is unambiguous.
        h.update(f"{name}\0{hashes[name]}\n".encode())
    return h.hexdigest()


def config_hash(config: Mapping[str, object]) -> str:
    """sha256 of the config's canonical JSON. Raises ValueError for NaN or infinity."""
    return sha256_hex(_canonical(config))


def check_member_names(names: Iterable[str]) -> None:
    """Raise ValueError unless every name is a relative POSIX path inside the artifact.

    Bundle extraction refuses such names from users; here they are a bug.
    """
    seen = set(names)
    for name in seen:
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts) or re.search(r"[\\:\x00-\x1f]", name):
            raise ValueError(f"unsafe artifact member name {name!r}")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in seen:
                raise ValueError(f"artifact member {name!r} is inside another member")


def _check_sha256(value: str, what: str) -> None:
    if not _SHA256.match(value):
        raise ValueError(f"{what} is not a sha256 in hex: {value!r}")


# -- records ------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledPlugin:
    """One plugin of a generation. Construction raises ValueError on broken invariants."""

    name: str
    version: str
    digest: str  # of its artifact, state/store/<digest>/
    wasm_sha256: str
    source: str  # e.g. "dir:/abs/path" or "file:/abs/x.rvp"
    approved: tuple[str, ...]  # capability texts; kept sorted
    # As written in ruvector.toml (JSON values): `env:NAME` references are
    # not resolved, so no secret is ever written to disk.
    config: Mapping[str, object]
    config_hash: str  # config_hash(config)
    enabled: bool
    trust: TrustLevel
    files: Mapping[str, str]  # member name -> sha256, for drift checks
    declared: tuple[str, ...] = ()  # the manifest's capability texts; kept sorted
    limits: Mapping[str, int] = field(default_factory=dict)  # as ruvector.toml set them

    def __post_init__(self) -> None:
        object.__setattr__(self, "approved", tuple(sorted(self.approved)))
        object.__setattr__(self, "declared", tuple(sorted(self.declared)))
        check_member_names(self.files)
        for name, sha in self.files.items():
            _check_sha256(sha, f"the sha256 of {name}")
        if self.digest != digest_of_hashes(self.files):
            raise ValueError(f"{self.name}: digest does not match its files")
        if self.wasm_sha256 not in self.files.values():
            raise ValueError(f"{self.name}: wasm_sha256 is not the hash of any of its files")
        if self.config_hash != config_hash(self.config):
            raise ValueError(f"{self.name}: config_hash does not match its config")


@dataclass(frozen=True)
class Generation:
    """One applied set of plugins. Construction raises ValueError on broken invariants."""

    number: int  # 1, 2, ...
    created_at: float  # unix time
    plugins: tuple[InstalledPlugin, ...]  # kept sorted by name
    summary: str  # what changed, e.g. from the plan
    parent: int | None  # the generation it was applied over

    def __post_init__(self) -> None:
        object.__setattr__(self, "plugins", tuple(sorted(self.plugins, key=lambda p: p.name)))
        if self.number < 1:
            raise ValueError(f"generation number {self.number} is below 1")
        if self.parent is not None and not 1 <= self.parent < self.number:
            raise ValueError(f"generation {self.number} cannot have parent {self.parent}")
        names = [p.name for p in self.plugins]
        if len(set(names)) != len(names):
            raise ValueError(f"generation {self.number} names a plugin twice")

    def plugin(self, name: str) -> InstalledPlugin | None:
        return next((p for p in self.plugins if p.name == name), None)


@dataclass(frozen=True)
class Pin:
    """A plugin's entry in the lock file: only an explicit upgrade moves it."""

    name: str
    version: str
    wasm_sha256: str
    digest: str
    source: str

    def __post_init__(self) -> None:
        _check_sha256(self.wasm_sha256, f"{self.name}: wasm_sha256")
        _check_sha256(self.digest, f"{self.name}: digest")


def pins_of(generation: Generation) -> dict[str, Pin]:
    """The pins that record `generation`, for write_pins once it is current."""
    return {
        p.name: Pin(p.name, p.version, p.wasm_sha256, p.digest, p.source)
        for p in generation.plugins
    }


@dataclass(frozen=True)
class Pruned:
    """What prune deleted."""

    generations: tuple[int, ...]
    artifacts: tuple[str, ...]  # digests


# -- the store ----------------------------------------------------------------


class StateStore:
    """The observed state in one state directory.

    Reads need no lock; every method that writes expects the caller to hold
    the ReconcileLock for this state directory.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.store_dir = state_dir / "store"
        self.generations_dir = state_dir / "generations"
        self.pins_path = state_dir / PINS_NAME
        self._swept = False  # leftovers are cleaned once per store object

    # artifacts

    def artifact_dir(self, digest: str) -> Path:
        """Where an artifact lives. Raises ValueError if `digest` is not a sha256."""
        _check_sha256(digest, "digest")
        return self.store_dir / digest

    def put_artifact(self, files: Mapping[str, bytes], digest: str) -> Path:
        """Publish `files` as state/store/<digest>/ and return that directory.

        A no-op if the artifact is already there intact; an artifact found
        damaged is replaced (see replace_artifact). Raises ValueError if
        `digest` is not digest_of(files) or a member name is unsafe;
        StateError if the store cannot be read or written.
        """
        final = self.artifact_dir(digest)
        hashes = _checked_hashes(files, digest)
        if os.path.lexists(final):
            if not self._compare(final, hashes):
                return final
            return self.replace_artifact(files, digest)
        with _io(final, "write the artifact"):
            self._sweep()
            staged = self._stage(files, digest)
            _rename_or_discard(staged, final)
            fsync_dir(self.store_dir)
        return final

    def replace_artifact(self, files: Mapping[str, bytes], digest: str) -> Path:
        """Publish `files` over whatever is at state/store/<digest>/ (a repair).

        File by file, each atomically, then extra files removed: at every
        moment each member is its old bytes or its new ones, and the
        directory never disappears from under a reader (a running plugin's
        next restart). A missing directory is published whole, as by
        put_artifact. Raises what put_artifact raises.
        """
        final = self.artifact_dir(digest)
        _checked_hashes(files, digest)
        if final.is_symlink() or not final.is_dir():
            return self._publish_fresh(files, digest)
        with _io(final, "repair the artifact"):
            self._sweep()
            for name, data in sorted(files.items()):
                target = final / name
                if not target.is_file() or target.read_bytes() != data:
                    atomic_write(target, data)
            for path in sorted(final.rglob("*"), reverse=True):
                name = path.relative_to(final).as_posix()
                if name not in files and not any(f.startswith(name + "/") for f in files):
                    _remove(path)
        return final

    def _publish_fresh(self, files: Mapping[str, bytes], digest: str) -> Path:
        """Publish over a store entry that is not a real directory (a file, a
        symlink, nothing): set it aside unread, never followed, then rename
        a staged copy in. Writing through a symlink would write outside state/."""
        final = self.artifact_dir(digest)
        with _io(final, "replace the artifact"):
            self._sweep()
            staged = self._stage(files, digest)
            old = self._set_aside(final)
            _rename_or_discard(staged, final)
            fsync_dir(self.store_dir)
        if old is not None:
            _remove(old)
        return final

    def verify_artifact(self, digest: str, expected: Mapping[str, str]) -> list[str]:
        """Problems of an artifact on disk against member name -> sha256, e.g.
        "changed file plugin.wasm"; [] if intact.

        Raises ValueError for a malformed digest; StateError if it cannot be read.
        """
        problems = self._compare(self.artifact_dir(digest), expected)
        return [f"{kind.value} file {name}" for name, kind in problems]

    def check_drift(self, generation: Generation) -> list[Drift]:
        """Every installed file of `generation` that is missing, changed or extra.

        Raises StateError if an artifact cannot be read.
        """
        return [
            Drift(p.name, name, kind)
            for p in generation.plugins
            for name, kind in self._compare(self.artifact_dir(p.digest), p.files)
        ]

    def _compare(self, root: Path, expected: Mapping[str, str]) -> list[tuple[str, DriftKind]]:
        with _io(root, "read the artifact"):
            return _compare_tree(root, expected)

    def _stage(self, files: Mapping[str, bytes], digest: str) -> Path:
        """A new temp directory under store/ holding `files`, all fsynced. Raises OSError."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=self.store_dir, prefix=f"{_TMP}{digest[:16]}-"))
        try:
            os.chmod(staged, 0o755)  # mkdtemp's 0o700 would hide it from other readers
            _write_tree(staged, files)
        except BaseException:
            _remove(staged)
            raise
        return staged

    def _set_aside(self, path: Path) -> Path | None:
        """Rename `path` to a temp name in store/; None if it is absent. Raises OSError."""
        if not os.path.lexists(path):
            return None
        aside = Path(tempfile.mkdtemp(dir=self.store_dir, prefix=f"{_OLD}{path.name[:16]}-"))
        target = aside / "artifact"  # renaming into an empty dir works on every OS
        os.rename(path, target)
        return aside

    def sweep(self) -> None:
        """Delete what killed writers left behind, once per StateStore.

        Needs the ReconcileLock: a temp file may be another run's work.
        """
        self._sweep()

    def _sweep(self) -> None:
        """Delete what killed writers left behind. Needs the ReconcileLock."""
        if self._swept:
            return
        with _io(self.state_dir, "clean up"):
            for entry in _entries(self.store_dir):
                if entry.name.startswith((_TMP, _OLD)):
                    _remove(Path(entry.path))
                elif entry.is_dir(follow_symlinks=False):  # a killed repair's temp files
                    for path in Path(entry.path).rglob(".*.tmp"):
                        _remove(path)
            generations, pins = (self.generations_dir, "."), (self.state_dir, f".{PINS_NAME}.")
            for directory, prefix in (generations, pins):
                for entry in _entries(directory):
                    # atomic_write's temp files: ".NAME.random.tmp"
                    if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                        _remove(Path(entry.path))
        self._swept = True

    # generations

    def current(self) -> Generation | None:
        """The generation in force; None before the first apply.

        Raises StateError if `current` or the generation it names is
        damaged or missing.
        """
        number = self.current_number()
        return None if number is None else self.generation(number)

    def generation(self, number: int) -> Generation:
        """Generation `number`. Raises StateError if it is missing or damaged."""
        path = self._generation_path(number)
        generation = _load(path, _generation_from_json)
        if generation.number != number:
            raise StateError(path, f"holds generation {generation.number}, not {number}")
        return generation

    def history(self) -> list[Generation]:
        """Every recorded generation, oldest first. Raises StateError if one is damaged."""
        return [self.generation(n) for n in self._numbers()]

    def next_number(self) -> int:
        """The number for a new generation. Raises StateError if the directory is unreadable."""
        return max(self._numbers(), default=0) + 1

    def previous(self) -> Generation | None:
        """The current generation's parent (the rollback target); None if there is none.

        Raises StateError if either is damaged or the parent is missing.
        """
        current = self.current()
        if current is None or current.parent is None:
            return None
        return self.generation(current.parent)

    def write_generation(self, generation: Generation) -> None:
        """Record a generation; it is not in force until switch().

        Raises StateError if its number is taken (generations are never
        rewritten) or the file cannot be written.
        """
        path = self._generation_path(generation.number)
        if os.path.lexists(path):
            raise StateError(path, f"generation {generation.number} already exists")
        self._sweep()
        _write_json(path, _generation_to_json(generation))

    def switch(self, number: int) -> None:
        """Make generation `number` current, in one atomic rename.

        Checks only that the generation's record is readable; that its
        artifacts are intact is the caller's check (check_drift). Raises
        StateError if it is missing or damaged or `current` cannot be written.
        """
        self.generation(number)
        path = self.generations_dir / CURRENT_NAME
        with _io(path, "write"):
            atomic_write(path, f"{number}\n".encode())

    def prune(self, keep: int) -> Pruned:
        """Delete all but the `keep` newest generations, then every artifact no
        remaining generation references.

        The current generation and its parent are always kept, so a rollback
        stays possible. Nothing is deleted unless every kept generation can be
        read (each one's artifacts must stay). Generation files go first: a
        crash then leaves unreferenced artifacts, which the next prune
        deletes, never a generation without its artifacts. Raises ValueError
        if keep < 0; StateError if a kept generation is damaged or a file
        cannot be deleted.
        """
        if keep < 0:
            raise ValueError(f"keep must be 0 or more, got {keep}")
        numbers = self._numbers()
        kept = set(numbers[max(0, len(numbers) - keep) :]) | self._protected()
        referenced = {p.digest for n in sorted(kept) for p in self.generation(n).plugins}
        self._sweep()
        gone = tuple(n for n in numbers if n not in kept)
        with _io(self.generations_dir, "delete old generations"):
            for n in gone:
                self._generation_path(n).unlink()
            if gone:
                fsync_dir(self.generations_dir)
        return Pruned(gone, self._drop_artifacts(referenced))

    def _drop_artifacts(self, referenced: set[str]) -> tuple[str, ...]:
        dropped = []
        with _io(self.store_dir, "list the artifacts"):
            entries = _entries(self.store_dir)
        for entry in entries:
            if _SHA256.match(entry.name) and entry.name not in referenced:
                with _io(Path(entry.path), "delete the artifact"):
                    aside = self._set_aside(Path(entry.path))
                if aside is not None:
                    _remove(aside)
                dropped.append(entry.name)
        return tuple(sorted(dropped))

    def _protected(self) -> set[int]:
        current = self.current()
        if current is None:
            return set()
        return {current.number} | ({current.parent} if current.parent is not None else set())

    def current_number(self) -> int | None:
        """The number of the generation in force, reading only `current` (cheap).

        Raises StateError if `current` is damaged.
        """
        return self._current_number()

    def forget_damaged_current(self) -> str | None:
        """If the generation in force cannot be read, stop pointing at it.

        `current` is renamed to `current.damaged` (kept for inspection), so the
        next apply installs afresh from ruvector.toml instead of failing for
        ever. Returns what was wrong, or None if the current generation reads
        fine. Needs the ReconcileLock. Raises StateError if the rename fails.
        """
        try:
            self.current()
        except StateError as exc:
            path = self.generations_dir / CURRENT_NAME
            with _io(path, "set the damaged current aside"):
                os.replace(path, path.with_name(CURRENT_NAME + ".damaged"))
            return str(exc)
        return None

    def newest_number(self) -> int | None:
        """The newest recorded generation, in force or not (None: none yet)."""
        return max(self._numbers(), default=None)

    def _current_number(self) -> int | None:
        path = self.generations_dir / CURRENT_NAME
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(path, f"cannot read: {exc.strerror or exc}") from exc
        if not re.fullmatch(rb"[1-9][0-9]{0,17}\n?", text):
            raise StateError(path, f"expected a generation number, got {text[:40]!r}")
        return int(text)

    def _numbers(self) -> list[int]:
        found = []
        with _io(self.generations_dir, "list the generations"):
            entries = _entries(self.generations_dir)
        for entry in entries:
            m = _GENERATION_FILE.match(entry.name)
            if m:
                found.append(int(m.group(1)))
        return sorted(found)

    def _generation_path(self, number: int) -> Path:
        return self.generations_dir / f"{number}.json"

    # pins

    def read_pins(self) -> dict[str, Pin]:
        """The lock file's pins; {} before the first apply. Raises StateError if damaged."""
        if not os.path.lexists(self.pins_path):
            return {}
        return _load(self.pins_path, _pins_from_json)

    def write_pins(self, pins: Mapping[str, Pin]) -> None:
        """Rewrite the lock file atomically. Raises StateError if it cannot be written."""
        self._sweep()
        _write_json(self.pins_path, _pins_to_json(pins))


# -- directory I/O --------------------------------------------------------------


@contextlib.contextmanager
def _io(path: Path, doing: str) -> Iterator[None]:
    """The one place an OSError from state I/O becomes a StateError naming the file."""
    try:
        yield
    except OSError as exc:
        raise StateError(path, f"cannot {doing}: {exc.strerror or exc}") from exc


def _checked_hashes(files: Mapping[str, bytes], digest: str) -> dict[str, str]:
    hashes = hashes_of(files)
    if digest_of_hashes(hashes) != digest:
        raise ValueError(f"digest {digest} is not the digest of the files given")
    return hashes


def _write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    """Write `files` under the existing empty `root`, fsyncing each file and
    directory so the rename that publishes `root` publishes whole files.
    Raises OSError."""
    dirs = {root}
    for name, data in files.items():
        path = root / name
        for parent in PurePosixPath(name).parents:
            dirs.add(root / parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    for directory in dirs:
        fsync_dir(directory)


def _rename_or_discard(staged: Path, final: Path) -> None:
    try:
        os.rename(staged, final)
    except BaseException:
        _remove(staged)
        raise


def _compare_tree(root: Path, expected: Mapping[str, str]) -> list[tuple[str, DriftKind]]:
    """(member, kind) for each difference between `root` and `expected`. Raises OSError."""
    if root.is_symlink() or not root.is_dir():
        return [(name, DriftKind.MISSING) for name in sorted(expected)]
    dirs = {str(p) for name in expected for p in PurePosixPath(name).parents} - {"."}
    problems: list[tuple[str, DriftKind]] = []
    seen: set[str] = set()
    pending = [""]
    while pending:
        rel = pending.pop()
        for entry in _entries(root / rel):
            name = f"{rel}/{entry.name}" if rel else entry.name
            if name in dirs and entry.is_dir(follow_symlinks=False):
                pending.append(name)
            elif name in expected:
                seen.add(name)
                if not _has_hash(entry, expected[name]):
                    problems.append((name, DriftKind.CHANGED))
            elif not _is_temp(entry.name):  # a killed repair's temp file: swept later
                problems.append((name, DriftKind.EXTRA))
    problems += [(name, DriftKind.MISSING) for name in expected if name not in seen]
    return sorted(problems, key=lambda p: (p[0], p[1].value))


def _is_temp(name: str) -> bool:
    """atomic_write's temp files: ".NAME.random.tmp" (no member name starts with ".")."""
    return name.startswith(".") and name.endswith(".tmp")


def _has_hash(entry: os.DirEntry[str], sha256: str) -> bool:
    # A symlink is a change even to identical bytes: its target can change later.
    if not entry.is_file(follow_symlinks=False):
        return False
    with open(entry.path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest() == sha256


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    """The directory's entries; [] if it does not exist. Raises OSError otherwise."""
    try:
        with os.scandir(directory) as it:
            return list(it)
    except FileNotFoundError:
        return []


def _remove(path: Path) -> None:
    """Delete a file or tree, best effort: what is left is swept by a later run."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        log.warning("cannot delete %s: %s", path, exc)


# -- JSON -----------------------------------------------------------------------


class _Damaged(Exception):
    """A field of a state file is wrong; _load turns it into a StateError."""


def _canonical(value: object) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _write_json(path: Path, data: dict[str, object]) -> None:
    text = json.dumps({"format_version": FORMAT_VERSION, **data}, indent=2, allow_nan=False)
    with _io(path, "write"):
        atomic_write(path, text.encode() + b"\n")


def _load(path: Path, parse: Callable[[dict[str, Any]], T]) -> T:
    """Read a state file of our format and parse it; the one place its errors
    become StateError naming the file."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise StateError(path, "missing") from None
    except OSError as exc:
        raise StateError(path, f"cannot read: {exc.strerror or exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise StateError(path, f"not valid JSON: {exc}") from None
    try:
        if not isinstance(data, dict):
            raise _Damaged("expected a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise _Damaged(
                f"unknown format_version {version!r} (this ruvector reads {FORMAT_VERSION})"
            )
        return parse(data)
    except (_Damaged, ValueError) as exc:  # ValueError: a record's invariants
        raise StateError(path, str(exc)) from None


_KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object"}


def _get(obj: Mapping[str, Any], key: str, kind: type[T], at: str = "") -> T:
    value = obj.get(key)
    # bool is an int in Python, never in our files
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _Damaged(f"{at}{key}: expected {_KIND_NAMES.get(kind, kind.__name__)}")
    return value


def _get_list(obj: Mapping[str, Any], key: str, at: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise _Damaged(f"{at}{key}: expected a list")
    return value


def _get_strings(obj: Mapping[str, Any], key: str, at: str) -> dict[str, str]:
    table = _get(obj, key, dict, at)
    if not all(isinstance(v, str) for v in table.values()):
        raise _Damaged(f"{at}{key}: expected an object of strings")
    return table


def _generation_to_json(g: Generation) -> dict[str, object]:
    return {
        "number": g.number,
        "created_at": g.created_at,
        "parent": g.parent,
        "summary": g.summary,
        "plugins": [_plugin_to_json(p) for p in g.plugins],
    }


def _generation_from_json(data: Mapping[str, Any]) -> Generation:
    parent = data.get("parent")
    if parent is not None and (not isinstance(parent, int) or isinstance(parent, bool)):
        raise _Damaged("parent: expected an integer or null")
    created_at = data.get("created_at")
    if not isinstance(created_at, int | float) or isinstance(created_at, bool):
        raise _Damaged("created_at: expected a number")
    plugins = _get_list(data, "plugins", "")
    return Generation(
        number=_get(data, "number", int),
        created_at=float(created_at),
        plugins=tuple(_plugin_from_json(p, f"plugins[{i}].") for i, p in enumerate(plugins)),
        summary=_get(data, "summary", str),
        parent=parent,
    )


def _plugin_to_json(p: InstalledPlugin) -> dict[str, object]:
    return {
        "name": p.name,
        "version": p.version,
        "digest": p.digest,
        "wasm_sha256": p.wasm_sha256,
        "source": p.source,
        "approved": list(p.approved),
        "declared": list(p.declared),
        "limits": dict(sorted(p.limits.items())),
        "config": p.config,
        "config_hash": p.config_hash,
        "enabled": p.enabled,
        "trust": p.trust.value,
        "files": dict(sorted(p.files.items())),
    }


def _plugin_from_json(data: object, at: str) -> InstalledPlugin:
    if not isinstance(data, dict):
        raise _Damaged(f"{at[:-1]}: expected an object")
    approved = _get_list(data, "approved", at)
    declared = _get_list(data, "declared", at)
    if not all(isinstance(c, str) for c in (*approved, *declared)):
        raise _Damaged(f"{at}approved, declared: expected lists of strings")
    try:
        trust = TrustLevel(data.get("trust"))
    except ValueError:
        raise _Damaged(f"{at}trust: unknown trust level {data.get('trust')!r}") from None
    return InstalledPlugin(
        name=_get(data, "name", str, at),
        version=_get(data, "version", str, at),
        digest=_get(data, "digest", str, at),
        wasm_sha256=_get(data, "wasm_sha256", str, at),
        source=_get(data, "source", str, at),
        approved=tuple(approved),
        declared=tuple(declared),
        limits=_limits_from(data, at),
        config=_get(data, "config", dict, at),
        config_hash=_get(data, "config_hash", str, at),
        enabled=_get(data, "enabled", bool, at),
        trust=trust,
        files=_get_strings(data, "files", at),
    )


def _limits_from(data: dict[str, Any], at: str) -> dict[str, int]:
    """A record's limits; {} for records written before limits were kept."""
    limits = data.get("limits", {})
    if not isinstance(limits, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in limits.items()
    ):
        raise _Damaged(f"{at}limits: expected an object of integers")
    return dict(limits)


def _pins_to_json(pins: Mapping[str, Pin]) -> dict[str, object]:
    return {
        "plugins": {
            name: {
                "version": pin.version,
                "wasm_sha256": pin.wasm_sha256,
                "digest": pin.digest,
                "source": pin.source,
            }
            for name, pin in sorted(pins.items())
        }
    }


def _pins_from_json(data: Mapping[str, Any]) -> dict[str, Pin]:
    pins = {}
    for name, entry in _get(data, "plugins", dict).items():
        at = f"plugins.{name}."
        if not isinstance(entry, dict):
            raise _Damaged(f"{at[:-1]}: expected an object")
        pins[name] = Pin(
            name=name,
            version=_get(entry, "version", str, at),
            wasm_sha256=_get(entry, "wasm_sha256", str, at),
            digest=_get(entry, "digest", str, at),
            source=_get(entry, "source", str, at),
        )
    return pins
