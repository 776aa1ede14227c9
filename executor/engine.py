"""The wasmtime engine shared by all plugins, and the epoch ticker.

One Engine per executor: compiled code is shared, each plugin still gets a
Store of its own. Fuel gives each hook call a deterministic budget; epochs
give it a wall-clock deadline. The ticker thread advances the epoch only while
a batch of calls is running, so an idle executor costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata

import wasmtime

EPOCH_PERIOD_MS = 5  # granularity of call deadlines


@dataclass(frozen=True)
class EngineSettings:
    """Engine-wide settings; part of the compiled-module cache key."""

    fuel: bool = True  # deterministic budget per call; False: epochs only
    max_wasm_stack_bytes: int = 512 * 1024

    def fingerprint(self) -> str:
        """A key for everything that makes compiled code engine-specific."""
        data = {**asdict(self), "wasmtime": wasmtime_version(), "epochs": True}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def wasmtime_version() -> str:
    return metadata.version("wasmtime")


def make_engine(settings: EngineSettings) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = settings.fuel
    config.epoch_interruption = True
    config.max_wasm_stack = settings.max_wasm_stack_bytes
    # Features a plugin of ABI v1 has no use for stay off: fewer surfaces.
    config.wasm_threads = False
    config.wasm_memory64 = False
    config.wasm_multi_memory = False
    return wasmtime.Engine(config)


DEADLINE_SLACK_TICKS = 1  # see EpochTicker.epoch


def deadline_ticks(max_call_ms: int) -> int:
    """Epoch ticks for a deadline: +1 because the current period is partial,
    +DEADLINE_SLACK_TICKS because it may be armed a period before the call."""
    return -(-max_call_ms // EPOCH_PERIOD_MS) + 1 + DEADLINE_SLACK_TICKS


class EpochTicker:
    """Advances the engine's epoch every EPOCH_PERIOD_MS while active.

    wasmtime checks the epoch at function entries and loop headers; a call
    whose deadline passed traps with TrapCode.INTERRUPT. Signals cannot drive
    it from Python (wasmtime-py #126); a thread can, since ctypes releases the
    GIL while wasm runs.
    """

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._active = 0
        # Epochs this ticker has counted; read (without the lock) by sandboxes
        # to skip re-arming a deadline while the epoch has not moved. Bumped
        # after the engine's epoch, so a reader may see the old count for a
        # moment after the engine moved: a deadline armed then is one period
        # short, which DEADLINE_SLACK_TICKS makes up.
        self.epoch = 0
        # A span is open. Read without the lock, by the thread that holds the
        # span (Executor.tick), which is the only thread that calls sandboxes.
        self.active = False
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ruvector-epoch", daemon=True)
        self._thread.start()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Keep the epoch moving for the duration of the block."""
        with self._cond:
            self._active += 1
            self.active = True
            # Wake the thread only when it is idle: a notify per call would
            # pull it onto the GIL while the call runs (half a call's cost).
            if self._active == 1:
                self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self.active = self._active > 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=1)

    def _run(self) -> None:
        period = EPOCH_PERIOD_MS / 1000
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._active > 0 or self._closed)
                if self._closed:
                    return
                # Wait one period unless closed meanwhile; then tick.
                if self._cond.wait_for(lambda: self._closed, timeout=period):
                    return
            self._engine.increment_epoch()
            self.epoch += 1
