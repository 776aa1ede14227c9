"""hostcalls.processes against real processes.

Every target is a real process: `sleep` children started here (some under a
protected name, some as another user) and killed in teardown, plus pid 1,
this test process and its ancestors, which must come out untouched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from hostcalls.abi import Status
from hostcalls.processes import (
    DEFAULT_PROTECTED_NAMES,
    ProtectionPolicy,
    kill,
    priority_of,
    process_memory,
    set_priority,
    trim_memory,
)
from tests.conftest import Children

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux behaviour")
root_only = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to run as another user"
)
NOBODY = 65534


@pytest.fixture
def policy() -> ProtectionPolicy:
    return ProtectionPolicy()


def _gone_pid(children: Children) -> int:
    """The pid of a child that has exited and been reaped."""
    proc = children.start("true")
    proc.wait(timeout=10)
    return proc.pid


def _assert_terminated(proc: subprocess.Popen[bytes]) -> None:
    assert proc.wait(timeout=10) == -signal.SIGTERM


# -- set_priority -------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="nice values")
@pytest.mark.parametrize(("level", "nice"), [(0, 19), (1, 10), (2, 0), (3, -5), (4, -10)])
def test_set_priority_changes_the_nice_value(children, policy, level, nice):
    if nice < 0 and os.geteuid() != 0:
        pytest.skip("a negative nice value needs root")
    child = children.sleeper()
    assert set_priority(policy, child.pid, level) is Status.OK
    assert psutil.Process(child.pid).nice() == nice
    assert priority_of(child.pid) == nice


@pytest.mark.parametrize("level", [-1, 5, 100])
def test_priority_level_out_of_range_is_invalid(children, policy, level):
    child = children.sleeper()
    before = priority_of(child.pid)
    assert set_priority(policy, child.pid, level) is Status.INVALID_ARGUMENT
    assert priority_of(child.pid) == before


@linux_only
@root_only
def test_an_os_refusal_is_io_error(children):
    """A host that may not raise priority gets IO_ERROR, not a crash."""
    target = children.sleeper(user=NOBODY)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, then try both directions
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            own = ProtectionPolicy()
            results = (set_priority(own, target.pid, 4), set_priority(own, target.pid, 0))
            os.write(write_end, f"{int(results[0])} {int(results[1])}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        reply = pipe.read()
    os.waitpid(pid, 0)
    assert reply == f"{int(Status.IO_ERROR)} {int(Status.OK)}"
    assert priority_of(target.pid) == 19  # raising nice is allowed to its owner


# -- kill ---------------------------------------------------------------------


def test_kill_terminates_the_process(children, policy):
    child = children.sleeper()
    assert kill(policy, child.pid) is Status.OK
    _assert_terminated(child)


# -- what is protected ------------------------------------------------------------


def _named_pid(which: str) -> int:
    return {"init": 1, "kthreadd": 2, "self": os.getpid(), "parent": os.getppid()}[which]


@pytest.mark.parametrize("which", ["init", "kthreadd", "self", "parent"])
def test_system_and_host_processes_are_protected_and_untouched(policy, which):
    pid = _named_pid(which)
    # Asserted before any action is tried, so a broken policy fails here
    # instead of signalling init or this test run.
    assert policy.check(pid) is Status.PROTECTED
    before = priority_of(pid)
    assert set_priority(policy, pid, 0) is Status.PROTECTED
    assert kill(policy, pid) is Status.PROTECTED
    assert priority_of(pid) == before
    if which != "kthreadd" or psutil.pid_exists(2):
        assert psutil.pid_exists(pid)


def test_pid_zero_is_protected(policy):
    assert policy.check(0) is Status.PROTECTED
    assert kill(policy, 0) is Status.PROTECTED


def test_every_ancestor_of_the_host_is_protected(policy):
    ancestors = psutil.Process().parents()
    assert ancestors
    assert {p.pid: policy.check(p.pid) for p in ancestors} == {
        p.pid: Status.PROTECTED for p in ancestors
    }


def test_host_pid_can_be_named(children):
    child = children.sleeper()
    named = ProtectionPolicy(host_pid=child.pid)
    assert named.check(child.pid) is Status.PROTECTED
    assert named.check(os.getpid()) is Status.PROTECTED  # its parent


def test_host_pid_must_exist(children):
    with pytest.raises(ValueError, match="no running process"):
        ProtectionPolicy(host_pid=_gone_pid(children))


@linux_only
def test_kernel_threads_are_protected(policy):
    threads = [p.pid for p in psutil.process_iter(["ppid"]) if p.info["ppid"] == 2]
    if not threads:
        pytest.skip("no kernel threads visible (a pid namespace)")
    assert {policy.check(pid) for pid in threads} == {Status.PROTECTED}


@pytest.fixture
def protectme(children: Children, tmp_path: Path) -> subprocess.Popen[bytes]:
    """`sleep 60` running under the name 'protectme'."""
    link = tmp_path / "protectme"
    sleep = shutil.which("sleep")
    assert sleep is not None
    link.symlink_to(sleep)
    child = children.start(str(link), "60")
    assert psutil.Process(child.pid).name() == "protectme"
    return child


@pytest.mark.parametrize("names", [("protectme",), ("PROTECTME.exe",), ("ProtectMe",)])
def test_a_protected_name_is_protected_and_untouched(protectme, names):
    policy = ProtectionPolicy(protected_names=names)
    assert policy.check(protectme.pid) is Status.PROTECTED
    assert set_priority(policy, protectme.pid, 0) is Status.PROTECTED
    assert kill(policy, protectme.pid) is Status.PROTECTED
    assert priority_of(protectme.pid) == 0
    assert protectme.poll() is None


def test_an_unlisted_name_is_not_protected(protectme):
    policy = ProtectionPolicy(protected_names=("sleep",))
    assert policy.check(protectme.pid) is Status.OK
    assert kill(policy, protectme.pid) is Status.OK
    _assert_terminated(protectme)


def test_default_names_cover_each_platform_and_ourselves():
    for name in ("systemd", "sshd", "launchd", "WindowServer", "csrss.exe", "lsass.exe"):
        assert name in DEFAULT_PROTECTED_NAMES
    assert "ruvector" in DEFAULT_PROTECTED_NAMES


@root_only
def test_another_users_process_is_protected_and_untouched(children, policy):
    other = children.sleeper(user=NOBODY)
    assert psutil.Process(other.pid).uids().real == NOBODY
    assert policy.check(other.pid) is Status.PROTECTED
    assert set_priority(policy, other.pid, 0) is Status.PROTECTED
    assert kill(policy, other.pid) is Status.PROTECTED
    assert priority_of(other.pid) == 0
    assert other.poll() is None


@root_only
def test_allow_other_users_lets_actions_through(children):
    other = children.sleeper(user=NOBODY)
    policy = ProtectionPolicy(allow_other_users=True)
    assert policy.check(other.pid) is Status.OK
    assert set_priority(policy, other.pid, 0) is Status.OK
    assert priority_of(other.pid) == 19
    assert kill(policy, other.pid) is Status.OK
    _assert_terminated(other)


# -- targets that are not there ---------------------------------------------------


@pytest.mark.parametrize("missing", ["reaped", "beyond pid_max"])
def test_a_missing_process_is_not_found(children, policy, missing):
    pid = _gone_pid(children) if missing == "reaped" else 2**31 - 1
    assert policy.check(pid) is Status.NOT_FOUND
    assert set_priority(policy, pid, 2) is Status.NOT_FOUND
    assert kill(policy, pid) is Status.NOT_FOUND
    assert process_memory(None, pid) == Status.NOT_FOUND
    assert priority_of(pid) is None


def test_a_negative_pid_is_invalid(policy):
    assert policy.check(-5) is Status.INVALID_ARGUMENT
    assert set_priority(policy, -5, 2) is Status.INVALID_ARGUMENT
    assert kill(policy, -1) is Status.INVALID_ARGUMENT
    assert process_memory(policy, -1) == Status.INVALID_ARGUMENT


# -- memory ---------------------------------------------------------------------


def test_process_memory_is_the_resident_set(children):
    child = children.sleeper()
    rss = process_memory(None, child.pid)
    assert rss > 0
    assert abs(rss - psutil.Process(child.pid).memory_info().rss) < 1 << 20


def test_process_memory_reads_protected_processes_too(policy):
    assert policy.check(os.getpid()) is Status.PROTECTED
    assert process_memory(policy, os.getpid()) > 0


@pytest.mark.skipif(sys.platform == "win32", reason="Windows trims working sets")
def test_trim_is_unsupported_off_windows(children, policy):
    child = children.sleeper()
    before = process_memory(None, child.pid)
    assert trim_memory(policy, child.pid) == Status.UNSUPPORTED
    assert child.poll() is None
    assert process_memory(None, child.pid) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux thread ids")
def test_a_thread_id_is_not_a_process(policy: ProtectionPolicy) -> None:
    """A signal to a thread id reaches its whole process: never act on one."""
    import threading

    ready, done = threading.Event(), threading.Event()
    tid: list[int] = []

    def worker() -> None:
        tid.append(threading.get_native_id())
        ready.set()
        done.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(5)
    try:
        assert tid[0] != os.getpid()
        assert policy.check(tid[0]) is Status.NOT_FOUND
        assert kill(policy, tid[0]) is Status.NOT_FOUND
    finally:
        done.set()
        thread.join()
