"""state/executor.json, written off the tick thread.

`ruvector status` reads what a running executor last published there. At
the default 5 s tick it is rewritten after every tick, and a slow disk (an SD
card, a network home) must not delay the next tick: the executor hands a
snapshot to this writer's thread and goes on. Only the newest snapshot is
written; one that a newer one replaced before its turn is dropped.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from ruvector.atomic import atomic_write

log = logging.getLogger(__name__)


class StatusWriter:
    """One thread writing the newest snapshot it was given to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._pending: dict[str, object] | None = None
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ruvector-status", daemon=True)
        self._thread.start()

    def submit(self, snapshot: dict[str, object]) -> None:
        """Queue `snapshot` for writing; replaces one not yet written."""
        with self._cond:
            self._pending = snapshot
            self._cond.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted is written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending, then end the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                snapshot, self._pending = self._pending, None
                if snapshot is None:  # closed with nothing left to write
                    return
                self._busy = True
            try:
                self._write(snapshot)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, snapshot: dict[str, object]) -> None:
        try:
            # For display only: compact JSON (indent runs the pure-Python
            # encoder, 4x slower) and no fsync (a write lost to a power cut
            # only shows the executor as not running, which it then is not).
            data = json.dumps(snapshot, separators=(",", ":")).encode()
            atomic_write(self.path, data, durable=False)
        except OSError as exc:  # a full disk must not stop anything
            log.warning("cannot write %s: %s", self.path, exc)
        except Exception:  # a bug here must not end the thread silently
            log.exception("cannot write %s", self.path)
