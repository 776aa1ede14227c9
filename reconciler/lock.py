"""One reconcile at a time, and never a stale lock for the user to delete.

The lock is an OS advisory lock on state/reconcile.lock: flock on POSIX,
msvcrt.locking on Windows. The kernel releases it when the holder's process
ends, however it ends, so a run killed by SIGKILL or a power cut leaves an
unlocked file that the next run simply takes: there is nothing to detect or
clear, and no pid to guess about (a recycled pid cannot fool it).

The file also holds a one-line note (pid, start time, command) so a refused
run can say who holds the lock. The note only explains a refusal; it never
decides who holds the lock.

Within one process the lock is not re-entrant: a second acquire, on the same
object or another, raises LockHeld like a second process would.

Other writers lock their own directory the same way: ReconcileLock takes
the lock file's name and what its holder is doing (registry.repository
locks DIR/registry.lock so two registry writes never interleave).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ruvector.errors import HostFault, InputError

log = logging.getLogger(__name__)

LOCK_NAME = "reconcile.lock"
_NOTE_WAIT = 0.5  # seconds a refused run waits for a new holder to write its note
_NOTE_MAX = 4096  # bytes of note read


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as its note says."""

    pid: int
    since: float  # unix time the lock was taken
    command: str

    @classmethod
    def this_process(cls) -> Holder:
        return cls(os.getpid(), time.time(), shlex.join(sys.argv))

    def to_line(self) -> bytes:
        note = {"pid": self.pid, "since": self.since, "command": self.command}
        return json.dumps(note).encode() + b"\n"

    @classmethod
    def from_line(cls, data: bytes) -> Holder | None:
        """The note's first line, or None if it is not (yet) a whole note."""
        line, newline, _ = data.partition(b"\n")
        if not newline:
            return None
        try:
            note = json.loads(line)
            pid, since, command = note["pid"], note["since"], note["command"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(pid, int) or not isinstance(since, int | float):
            return None
        return cls(pid, float(since), str(command))


class LockHeld(InputError):
    """Another reconcile holds the lock; `holder` is None if its note is unreadable.

    `activity` names what the holder is doing, for the message.
    """

    def __init__(self, path: Path, holder: Holder | None, activity: str = "reconcile") -> None:
        self.path = path
        self.holder = holder
        self.activity = activity
        if holder is None:
            who = f"holder unknown; see {path}"
        else:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.since))
            who = f"pid {holder.pid}, since {since}"
        super().__init__(f"another {activity} is running ({who})")


class ReconcileLock:
    """Context manager holding state/reconcile.lock for one reconcile.

    `name` and `activity` serve other writers: the lock is then `name` in
    `state_dir`, and LockHeld says "another <activity> is running".
    """

    def __init__(
        self, state_dir: Path, name: str = LOCK_NAME, *, activity: str = "reconcile"
    ) -> None:
        self.path = state_dir / name
        self.activity = activity
        self._fd: int | None = None

    def __enter__(self) -> ReconcileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting.

        Raises LockHeld if any holder has it, this process included;
        HostFault if the state directory or lock file cannot be opened or
        locked.
        """
        if self._fd is not None:
            raise LockHeld(self.path, _read_note(self._fd), self.activity)
        fd = self._open()
        try:
            if not _try_lock(fd):
                raise LockHeld(self.path, _wait_for_note(fd), self.activity)
        except OSError as exc:
            os.close(fd)
            raise HostFault(f"cannot lock {self.path}: {exc.strerror or exc}") from exc
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write_note(fd)

    def release(self) -> None:
        """Let the lock go; does nothing if it is not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # The note stays: a run refused a moment ago may still be reading it.
        # Closing releases the lock even if unlocking failed.
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def _open(self) -> int:
        # Never O_TRUNC: opening must not erase the holder's note. And the
        # file is never deleted or replaced: a run that had opened the old
        # inode would lock it while another locks the new one.
        # Python opens it close-on-exec, so a program the reconcile starts does
        # not inherit the lock (a bare fork() without exec would).
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise HostFault(f"cannot open {self.path}: {exc.strerror or exc}") from exc

    def _write_note(self, fd: int) -> None:
        # Written in place, not by rename (see _open). The new line is written
        # over the old before truncating, so a reader sees a whole first line.
        line = Holder.this_process().to_line()
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, line)
            os.ftruncate(fd, len(line))
        except OSError as exc:
            # The lock is what matters; a full disk only costs the message.
            log.warning("cannot write the holder's note to %s: %s", self.path, exc)


def _read_note(fd: int) -> Holder | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return Holder.from_line(os.read(fd, _NOTE_MAX))
    except OSError:
        return None


def _wait_for_note(fd: int) -> Holder | None:
    # A holder that has just taken the lock may not have written its note.
    deadline = time.monotonic() + _NOTE_WAIT
    while (holder := _read_note(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return holder


if sys.platform == "win32":
    import msvcrt

    # Windows locks are mandatory: a locked byte cannot be read by others.
    # Lock one byte far past the note so a refused run can still read it.
    _WIN_LOCK_OFFSET = 1 << 30

    def _try_lock(fd: int) -> bool:
        """Lock without waiting; False if another holder has it. Raises OSError."""
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLOCK):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):  # closing the file unlocks it anyway
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        """Lock without waiting; False if another holder has it. Raises OSError.

        flock, not fcntl/lockf: flock locks belong to the open file, so a
        second open in the same process conflicts too (no silent
        re-entrance), and they are not dropped when any other descriptor
        of the file is closed.
        """
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        with contextlib.suppress(OSError):  # closing the file unlocks it anyway
            fcntl.flock(fd, fcntl.LOCK_UN)
