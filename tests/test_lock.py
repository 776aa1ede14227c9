"""ReconcileLock: one reconcile at a time, and a killed holder frees it at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.lock import LOCK_NAME, LockHeld, ReconcileLock
from ruvector.errors import HostFault, InputError

ROOT = Path(__file__).resolve().parent.parent

# Takes the lock, says so on stdout, and sleeps until killed.
HOLDER = """
import sys, time
from pathlib import Path
from reconciler.lock import ReconcileLock
ReconcileLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """A child Python process holding the lock on tmp_path/state."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"locked\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_second_process_is_refused_with_the_holders_pid(tmp_path, holder):
    with pytest.raises(LockHeld) as refused:
        ReconcileLock(tmp_path / "state").acquire()
    assert refused.value.holder is not None
    assert refused.value.holder.pid == holder.pid
    assert f"another reconcile is running (pid {holder.pid}, since " in str(refused.value)
    assert isinstance(refused.value, InputError)


def test_killed_holder_frees_the_lock_at_once(tmp_path, holder):
    with pytest.raises(LockHeld):
        ReconcileLock(tmp_path / "state").acquire()
    holder.kill()  # SIGKILL on POSIX: no handler, no cleanup in the child
    holder.wait(timeout=10)
    if os.name == "posix":
        assert holder.returncode == -signal.SIGKILL
    # The lock file is still there, but the kernel dropped the lock with the
    # process: no wait, no retry, nothing for the user to delete.
    assert (tmp_path / "state" / LOCK_NAME).exists()
    started = time.monotonic()
    with ReconcileLock(tmp_path / "state") as lock:
        assert lock.held
    assert time.monotonic() - started < 0.5


def test_reentry_in_one_process_is_refused(tmp_path):
    state = tmp_path / "state"
    with ReconcileLock(state) as lock:
        with pytest.raises(LockHeld) as other:
            ReconcileLock(state).acquire()
        assert other.value.holder is not None
        assert other.value.holder.pid == os.getpid()
        with pytest.raises(LockHeld), lock:  # the same object, entered again
            pass
        assert lock.held  # the refused re-entry did not release it
    assert not lock.held


def test_released_lock_can_be_taken_again(tmp_path):
    state = tmp_path / "state"
    with ReconcileLock(state):
        pass
    with ReconcileLock(state):
        pass


def test_note_names_pid_time_and_command(tmp_path):
    before = time.time()
    with ReconcileLock(tmp_path / "state"):
        note = json.loads((tmp_path / "state" / LOCK_NAME).read_bytes().splitlines()[0])
    assert note["pid"] == os.getpid()
    assert before <= note["since"] <= time.time()
    assert isinstance(note["command"], str) and note["command"]


def test_a_longer_stale_note_is_overwritten_whole(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / LOCK_NAME).write_text(json.dumps({"pid": 1, "since": 0, "command": "x" * 500}) + "\n")
    with ReconcileLock(state):
        data = (state / LOCK_NAME).read_bytes()
    assert data.count(b"\n") == 1
    assert json.loads(data)["pid"] == os.getpid()


def test_unwritable_state_dir_is_a_host_fault(tmp_path):
    (tmp_path / "state").write_text("a file, not a directory")
    with pytest.raises(HostFault, match="cannot open"):
        ReconcileLock(tmp_path / "state").acquire()


def test_unreadable_note_still_refuses(tmp_path):
    state = tmp_path / "state"
    with ReconcileLock(state):
        (state / LOCK_NAME).write_bytes(b"garbage")
        with pytest.raises(LockHeld, match="holder unknown") as refused:
            ReconcileLock(state).acquire()
    assert refused.value.holder is None
