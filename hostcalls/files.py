"""read_file and write_file: a plugin's file access, scoped to granted roots.

A plugin names a path; the host resolves it with every symlink followed and
allows it only if the result lies within a granted root (itself resolved), so
a link inside the root cannot lead outside it. A relative path is taken
against the plugin's single root of that kind; with several it is ambiguous.

Only regular files are read or written: a FIFO would block the host and a
device such as /dev/zero would never end. Reads are capped before they start
(fstat) and while they run (at most max_bytes + 1 bytes are read), since a
file can grow between the two.

Residual race, accepted: the checks resolve the path and then open it by
name, so another local process that swaps a directory on the path for a
symlink in between could redirect the open. The final component is opened
with O_NOFOLLOW; the plugin itself has no way to create symlinks.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from hostcalls.abi import Status
from hostcalls.capabilities import Capability, CapabilityKind, path_within
from ruvector.atomic import atomic_write

# Flags absent on some platforms read as 0. O_NONBLOCK makes opening a FIFO
# that raced in after the type check return at once instead of waiting for a
# writer; O_NOCTTY keeps a terminal from becoming the host's controlling tty.
_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

# A new file gets atomic_write's default mode; a replaced one keeps its own,
# so rewriting a private file does not make it world-readable.
_NEW_FILE_MODE = 0o644


def read_file(
    grants: Sequence[Capability], path: str, max_bytes: int, private: Sequence[str] = ()
) -> bytes | Status:
    """Read a whole regular file the FileSystemRead grants cover.

    Returns the bytes, or INVALID_ARGUMENT (NUL in the path, an ambiguous
    relative path, a directory or other non-regular file), DENIED (outside
    every root, or inside a `private` path), NOT_FOUND, TOO_LARGE (over
    max_bytes) or IO_ERROR. Raises ValueError only if max_bytes is negative.
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    target = _resolve_read(grants, path, private)
    if isinstance(target, Status):
        return target
    try:
        # lstat first so a device or FIFO is refused without being opened:
        # opening some devices has effects of its own.
        if not stat.S_ISREG(os.lstat(target).st_mode):
            return Status.INVALID_ARGUMENT
        fd = os.open(target, _READ_FLAGS)
    except OSError as exc:
        return _status_of(exc)
    try:
        return _read_capped(fd, max_bytes)
    except OSError as exc:
        return _status_of(exc)
    finally:
        os.close(fd)


def write_file(
    grants: Sequence[Capability],
    path: str,
    data: bytes,
    max_bytes: int,
    private: Sequence[str] = (),
) -> Status:
    """Replace (or create) a regular file the FileSystemWrite grants cover.

    The parent directory must exist and resolve within a root; the final
    component must not be a symlink (DENIED) or a directory or other
    non-regular file (INVALID_ARGUMENT). The write is atomic: readers see the
    old content or the new, never a mix. Returns OK, INVALID_ARGUMENT,
    DENIED, NOT_FOUND (no parent directory), TOO_LARGE (data over max_bytes)
    or IO_ERROR. Raises nothing.
    """
    target = _resolve_write(grants, path, private)
    if isinstance(target, Status):
        return target
    if len(data) > max_bytes:
        return Status.TOO_LARGE
    mode = _existing_mode(target)
    if isinstance(mode, Status):
        return mode
    try:
        atomic_write(Path(target), data, mode=_NEW_FILE_MODE if mode is None else mode)
    except OSError as exc:
        return _status_of(exc)
    return Status.OK


def _roots(grants: Sequence[Capability], kind: CapabilityKind) -> list[str]:
    return [os.path.realpath(c.path) for c in grants if c.kind is kind and c.path is not None]


def _absolute(path: str, roots: Sequence[str]) -> str | Status:
    """The path made absolute, or INVALID_ARGUMENT if that is not possible."""
    if "\x00" in path:
        return Status.INVALID_ARGUMENT
    if os.path.isabs(path):
        return path
    if len(roots) != 1:
        return Status.INVALID_ARGUMENT
    return os.path.join(roots[0], path)


def _resolve_read(grants: Sequence[Capability], path: str, private: Sequence[str]) -> str | Status:
    roots = _roots(grants, CapabilityKind.FILESYSTEM_READ)
    absolute = _absolute(path, roots)
    if isinstance(absolute, Status):
        return absolute
    resolved = os.path.realpath(absolute)
    if not any(path_within(resolved, root) for root in roots) or _private(resolved, private):
        return Status.DENIED
    return resolved


def _resolve_write(grants: Sequence[Capability], path: str, private: Sequence[str]) -> str | Status:
    """Resolve the parent only: the final component is checked, not followed.

    The path is not normalised first: "a/../b" must be resolved after "a"
    (which may be a symlink) is, as realpath does.
    """
    roots = _roots(grants, CapabilityKind.FILESYSTEM_WRITE)
    absolute = _absolute(path, roots)
    if isinstance(absolute, Status):
        return absolute
    parent, name = os.path.split(absolute)
    if name in ("", ".", ".."):
        return Status.INVALID_ARGUMENT
    target = os.path.join(os.path.realpath(parent), name)
    if not any(path_within(target, root) for root in roots) or _private(target, private):
        return Status.DENIED
    if not os.path.isdir(os.path.dirname(target)):
        return Status.NOT_FOUND
    return target


def _private(resolved: str, private: Sequence[str]) -> bool:
    """Whether `resolved` is one of the host's own files (never a plugin's).

    A broad grant (a home directory) would otherwise let a plugin rewrite
    ruvector.toml to approve itself more, clear its strikes, or plant a
    compiled module in the cache, which the host would run as native code.
    """
    return any(path_within(resolved, os.path.realpath(p)) for p in private)


def _existing_mode(target: str) -> int | Status | None:
    """The permission bits of the file being replaced, None if there is none."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _status_of(exc)
    if stat.S_ISLNK(st.st_mode):
        return Status.DENIED
    if not stat.S_ISREG(st.st_mode):
        return Status.INVALID_ARGUMENT
    return stat.S_IMODE(st.st_mode)


def _read_capped(fd: int, max_bytes: int) -> bytes | Status:
    """Read fd to its end, or TOO_LARGE as soon as it passes max_bytes."""
    st = os.fstat(fd)
    # Checked again on the fd: the file may have been replaced since lstat.
    if not stat.S_ISREG(st.st_mode):
        return Status.INVALID_ARGUMENT
    if st.st_size > max_bytes:
        return Status.TOO_LARGE
    chunks: list[bytes] = []
    remaining = max_bytes + 1  # one byte more tells us the file grew past the cap
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    if remaining <= 0:
        return Status.TOO_LARGE
    return b"".join(chunks)


def _status_of(exc: OSError) -> Status:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return Status.NOT_FOUND
    if isinstance(exc, IsADirectoryError):
        return Status.INVALID_ARGUMENT
    # ELOOP from O_NOFOLLOW: the final component is a symlink realpath could
    # not resolve (a loop) or one that appeared after the check.
    if exc.errno == errno.ELOOP:
        return Status.DENIED
    return Status.IO_ERROR
