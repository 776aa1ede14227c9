"""Run `ruvector reconcile` and SIGKILL it at a chosen line: the crash tests' child.

    python tests/crash_driver.py CONFIG

reads kill points from stdin, one a line. For each N it forks a child that
runs `ruvector reconcile --config CONFIG` (the real CLI, through click's
CliRunner) under a line counter (sys.settrace) counting the line events in
the files that write the state: reconciler/store.py, reconciler/apply.py
and ruvector/atomic.py. At the Nth (N >= 1) the child sends itself SIGKILL
before that line runs, so no finally block, atexit hook or buffered write
gets a chance. N = 0 kills nothing. The driver answers each request with
one JSON line: the child's returncode (-9 for SIGKILL, as subprocess
reports it) and, from a child that finished, the command's exit code and
output and every counted line event in order, as [file, line].

Forking from one process that has imported everything once keeps a kill
point cheap and the count deterministic: every child starts from the same
memory image (run the driver with a fixed PYTHONHASHSEED). No hook in the
library decides where a kill falls.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Imported before any counting, so module bodies are never counted.
from click.testing import CliRunner

import reconciler.apply
import reconciler.store
import ruvector.atomic
from ruvector.cli.main import cli

# A code object's co_filename is its module's __file__, as imported.
WATCHED = frozenset(
    m.__file__ for m in (reconciler.store, reconciler.apply, ruvector.atomic) if m.__file__
)


class Counter:
    """Counts watched line events; kills the process at `kill_at` (0: never)."""

    def __init__(self, kill_at: int) -> None:
        self.kill_at = kill_at
        self.events: list[tuple[str, int]] = []

    def on_call(self, frame: FrameType, event: str, arg: Any) -> Any:
        # Only frames of watched files get the per-line tracer.
        return self.on_line if frame.f_code.co_filename in WATCHED else None

    def on_line(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.events.append((frame.f_code.co_filename, frame.f_lineno))
            if len(self.events) == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.on_line


def reconcile_counted(kill_at: int, config: str) -> dict[str, object]:
    """`ruvector reconcile` under the counter: its exit code, output and line events."""
    counter = Counter(kill_at)
    sys.settrace(counter.on_call)
    try:
        result = CliRunner().invoke(cli, ["reconcile", "--config", config])
    finally:
        sys.settrace(None)
    output = result.output
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        output += "".join(traceback.format_exception(*result.exc_info))
    return {"exit_code": result.exit_code, "output": output, "events": counter.events}


def run_child(kill_at: int, config: str) -> dict[str, object]:
    """Fork, reconcile in the child, and report how it ended."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_end)
            # stdout is the driver's reply channel: nothing else may reach it.
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            done = reconcile_counted(kill_at, config)
            with os.fdopen(write_end, "w") as out:
                json.dump(done, out)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        sent = pipe.read()
    _, status = os.waitpid(pid, 0)
    return {"returncode": os.waitstatus_to_exitcode(status), **(json.loads(sent) if sent else {})}


def main(argv: list[str]) -> int:
    (config,) = argv
    for line in sys.stdin:
        print(json.dumps(run_child(int(line), config)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
