"""Actions on other processes, behind a protection policy.

Every action asks ProtectionPolicy.examine first and acts on the very
psutil.Process object the policy examined. psutil re-checks that object's
(pid, creation time) identity before it signals or renices, so a pid the OS
hands to a new process between the check and the act is reported NOT_FOUND
instead of reaching a process nobody checked.

Results follow the ABI: a Status, or for calls that return a figure, the
figure (>= 0) or a negative Status. When the OS itself refuses (EPERM,
ERROR_ACCESS_DENIED) the result is Status.IO_ERROR: Status.DENIED belongs to
the capability layer, which says no before the OS is ever asked.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

import psutil

from hostcalls.abi import Status
from ruvector.errors import HostFault

# Processes whose death or starvation takes the session or the machine with
# it. Matched case-insensitively, with or without ".exe".
DEFAULT_PROTECTED_NAMES: tuple[str, ...] = (
    # Linux: init, the journal, device and login managers, the message bus,
    # remote access, display servers and compositors.
    "init",
    "systemd",
    "systemd-journald",
    "systemd-logind",
    "systemd-udevd",
    "dbus-daemon",
    "dbus-broker",
    "sshd",
    "Xorg",
    "Xwayland",
    "gnome-shell",
    "kwin_wayland",
    "kwin_x11",
    "gdm",
    "sddm",
    "lightdm",
    # macOS
    "launchd",
    "kernel_task",
    "WindowServer",
    "loginwindow",
    "opendirectoryd",
    # Windows: the kernel's pseudo-processes, session and service managers,
    # authentication, the compositor and the shell.
    "System",
    "Registry",
    "smss.exe",
    "csrss.exe",
    "wininit.exe",
    "winlogon.exe",
    "services.exe",
    "lsass.exe",
    "lsaiso.exe",
    "svchost.exe",
    "fontdrvhost.exe",
    "dwm.exe",
    "explorer.exe",
    # ourselves, in any copy
    "ruvector",
)

_KTHREADD = 2  # Linux: the parent of every kernel thread

# ABI priority levels 0 idle, 1 below_normal, 2 normal, 3 above_normal, 4 high.
_PRIORITIES: tuple[int, ...]
if sys.platform == "win32":
    _PRIORITIES = (
        psutil.IDLE_PRIORITY_CLASS,
        psutil.BELOW_NORMAL_PRIORITY_CLASS,
        psutil.NORMAL_PRIORITY_CLASS,
        psutil.ABOVE_NORMAL_PRIORITY_CLASS,
        psutil.HIGH_PRIORITY_CLASS,
    )
else:
    _PRIORITIES = (19, 10, 0, -5, -10)  # nice values


# Who a process runs as: (real uid, effective uid) on POSIX, a user name on Windows.
_Owner = tuple[int, int] | str


def _normalise(name: str) -> str:
    return name.lower().removesuffix(".exe")


class ProtectionPolicy:
    """Which processes plugins may act on.

    Protected: pid 0 and 1, this host process and all its ancestors, Linux
    kernel threads (pid 2 and its children), processes of other users
    (unless allow_other_users), and processes whose name is in
    protected_names. The host's ancestry is read once, at construction.
    """

    def __init__(
        self,
        protected_names: Iterable[str] = DEFAULT_PROTECTED_NAMES,
        allow_other_users: bool = False,
        host_pid: int | None = None,
    ) -> None:
        """Raises ValueError if host_pid names no process, HostFault if its
        ancestry or owner cannot be read."""
        self.host_pid = os.getpid() if host_pid is None else host_pid
        self.allow_other_users = allow_other_users
        self.protected_names = frozenset(_normalise(n) for n in protected_names)
        host = _host_process(self.host_pid)
        fixed = {0, 1, *_lineage(host)}
        if sys.platform.startswith("linux"):
            fixed.add(_KTHREADD)
        self._fixed = frozenset(fixed)
        self._owner = _owner_of_host(host)

    def check(self, pid: int) -> Status:
        """OK, NOT_FOUND, PROTECTED, or INVALID_ARGUMENT for a negative pid."""
        return self.examine(pid)[0]

    def examine(self, pid: int) -> tuple[Status, psutil.Process | None]:
        """check(), and on OK the psutil.Process it examined: act on that object."""
        if pid < 0:
            return Status.INVALID_ARGUMENT, None
        # pid 0 is the scheduler (Linux), kernel_task (macOS), the idle
        # process (Windows), and to kill(2) "my whole process group".
        # A pid of an ancestor that has since exited stays protected: if the
        # OS reuses it, we err on the side of leaving that process alone.
        if pid in self._fixed:
            return Status.PROTECTED, None
        if not _is_process(pid):
            return Status.NOT_FOUND, None
        try:
            proc = psutil.Process(pid)
            status = self._judge(proc)
        except psutil.NoSuchProcess:  # ZombieProcess too: it has exited
            return Status.NOT_FOUND, None
        except psutil.AccessDenied:
            # What the OS will not show us we do not touch: it would refuse
            # most actions on it anyway.
            return Status.PROTECTED, None
        return status, (proc if status is Status.OK else None)

    def _judge(self, proc: psutil.Process) -> Status:
        if sys.platform.startswith("linux") and proc.ppid() == _KTHREADD:
            return Status.PROTECTED
        if _normalise(proc.name()) in self.protected_names:
            return Status.PROTECTED
        if not self.allow_other_users and _owner(proc) != self._owner:
            return Status.PROTECTED
        return Status.OK


def _is_process(pid: int) -> bool:
    """False for a Linux thread id that is not its process's id.

    /proc/<tid> exists for every thread, and psutil treats it as a process,
    yet a signal to it goes to the whole thread group: a plugin could name a
    thread of a protected process (or of the host) and kill that process.
    """
    if not sys.platform.startswith("linux"):
        return True
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1]) == pid
    except (OSError, ValueError):
        return False
    return False


def _host_process(pid: int) -> psutil.Process:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        raise ValueError(f"host pid {pid} names no running process") from None


def _lineage(host: psutil.Process) -> set[int]:
    try:
        return {host.pid, *(p.pid for p in host.parents())}
    except psutil.Error as exc:
        raise HostFault(f"cannot read the ancestry of host pid {host.pid}: {exc}") from exc


def _owner_of_host(host: psutil.Process) -> _Owner:
    try:
        return _owner(host)
    except psutil.Error as exc:
        raise HostFault(f"cannot read the owner of host pid {host.pid}: {exc}") from exc


def _owner(proc: psutil.Process) -> _Owner:
    """Who a process runs as, comparable between processes of one machine.

    POSIX: (real uid, effective uid). Both must match the host's: a set-uid
    program started by the user runs with someone else's rights, and is not
    the user's to renice or kill.
    """
    if sys.platform == "win32":
        return proc.username()
    uids = proc.uids()
    return (uids.real, uids.effective)


def _act(action: Callable[[], object]) -> Status:
    """Run one psutil action and map its failure to the ABI."""
    try:
        action()
    except psutil.NoSuchProcess:  # gone, or its pid now belongs to another process
        return Status.NOT_FOUND
    except (psutil.AccessDenied, OSError):  # the OS refused
        return Status.IO_ERROR
    return Status.OK


def set_priority(policy: ProtectionPolicy, pid: int, level: int) -> Status:
    """Set a process's scheduling priority to ABI level 0..4 (idle..high).

    POSIX nice 19, 10, 0, -5, -10; on Windows the matching priority class.
    Returns INVALID_ARGUMENT for a level out of range, the policy's verdict
    if it is not OK, IO_ERROR if the OS refuses (raising priority needs
    root or CAP_SYS_NICE), NOT_FOUND if the process has gone.
    """
    if not 0 <= level < len(_PRIORITIES):
        return Status.INVALID_ARGUMENT
    status, proc = policy.examine(pid)
    if proc is None:
        return status
    value = _PRIORITIES[level]
    return _act(lambda: proc.nice(value))


def kill(policy: ProtectionPolicy, pid: int) -> Status:
    """Ask a process to end: SIGTERM on POSIX, TerminateProcess on Windows.

    Returns OK once the request is delivered, not when the process has
    exited. Otherwise the policy's verdict, IO_ERROR or NOT_FOUND as for
    set_priority.
    """
    status, proc = policy.examine(pid)
    if proc is None:
        return status
    return _act(proc.terminate)


def process_memory(policy: ProtectionPolicy | None, pid: int) -> int:
    """Resident set size of a process in bytes, or a negative Status.

    Reading is allowed for any existing process, so `policy` is not
    consulted: it is accepted so that every process call has the same
    shape. Returns INVALID_ARGUMENT for a negative pid, NOT_FOUND if there
    is no such process, IO_ERROR if the OS refuses.
    """
    if pid < 0:
        return Status.INVALID_ARGUMENT
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.NoSuchProcess:
        return Status.NOT_FOUND
    except (psutil.AccessDenied, OSError):
        return Status.IO_ERROR


def priority_of(pid: int) -> int | None:
    """The current nice value (Windows: priority class), None if unreadable."""
    try:
        return psutil.Process(pid).nice()
    except psutil.Error:
        return None


def trim_memory(policy: ProtectionPolicy, pid: int) -> int:
    """Empty a process's working set; return the bytes it freed (>= 0).

    Windows only (EmptyWorkingSet). Elsewhere returns UNSUPPORTED whatever
    the pid: Linux and macOS have no working-set trim. Linux's
    process_madvise(MADV_PAGEOUT) pushes chosen ranges to swap, which is a
    different operation with a different cost, and is not offered under
    this name. On Windows: the policy's verdict, NOT_FOUND, or IO_ERROR if
    the OS refuses.
    """
    if sys.platform == "win32":
        status, proc = policy.examine(pid)
        if proc is None:
            return status
        return _trim_windows(proc)
    return Status.UNSUPPORTED


if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    _PROCESS_SET_QUOTA = 0x0100
    _PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
    _ERROR_INVALID_PARAMETER = 87  # OpenProcess on a pid that does not exist

    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _psapi = ctypes.WinDLL("psapi", use_last_error=True)
    _kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    _kernel32.OpenProcess.restype = wintypes.HANDLE
    _kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    _kernel32.CloseHandle.restype = wintypes.BOOL
    _psapi.EmptyWorkingSet.argtypes = (wintypes.HANDLE,)
    _psapi.EmptyWorkingSet.restype = wintypes.BOOL

    def _trim_windows(proc: psutil.Process) -> int:
        try:
            before = proc.memory_info().rss
            _empty_working_set(proc)
            after = proc.memory_info().rss
        except psutil.NoSuchProcess:
            return Status.NOT_FOUND
        except psutil.AccessDenied:
            return Status.IO_ERROR
        except OSError as exc:
            if exc.winerror == _ERROR_INVALID_PARAMETER:
                return Status.NOT_FOUND
            return Status.IO_ERROR
        # The process may have grown meanwhile: freed memory is never negative.
        return max(0, before - after)

    def _empty_working_set(proc: psutil.Process) -> None:
        """Raises OSError from the Win32 call, NoSuchProcess if the pid was reused."""
        access = _PROCESS_SET_QUOTA | _PROCESS_QUERY_LIMITED_INFORMATION
        handle = _kernel32.OpenProcess(access, False, proc.pid)
        if not handle:
            raise ctypes.WinError(ctypes.get_last_error())
        try:
            # The handle pins whichever process had the pid when it was
            # opened; if psutil still sees the examined process under that
            # pid now, the handle is to it.
            if not proc.is_running():
                raise psutil.NoSuchProcess(proc.pid)
            if not _psapi.EmptyWorkingSet(handle):
                raise ctypes.WinError(ctypes.get_last_error())
        finally:
            _kernel32.CloseHandle(handle)
