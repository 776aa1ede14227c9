"""What the executor is handed: values, not files.

The reconciler (or `ruvector dev run`) reads manifest.toml and ruvector.toml
and builds these; the executor never reads either file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hostcalls.abi import MAX_MEMORY_BYTES
from hostcalls.capabilities import Capability

# How the executor reaches wasmtime (executor.binding, executor.fastpath).
Api = Literal["fast", "reference"]

MAX_MEMORY_MB = MAX_MEMORY_BYTES // (1024 * 1024)


@dataclass(frozen=True)
class Limits:
    """Per-plugin resource limits. Units in the names or comments."""

    fuel_per_call: int = 10_000_000  # wasm fuel units per hook call
    max_call_ms: int = 100  # wall-clock deadline per hook call
    max_memory_mb: int = 64  # linear memory cap
    max_table_elements: int = 10_000
    max_host_calls_per_call: int = 10_000  # beyond this: host-call abuse
    max_log_lines_per_tick: int = 100  # beyond this: throttled (RATE_LIMITED)
    max_notifications_per_tick: int = 5  # beyond this: throttled
    max_events_per_tick: int = 256  # launch and exit hooks together, per plugin per tick
    max_http_response_bytes: int = 1 << 20
    max_file_bytes: int = 1 << 20  # read_file result and write_file data
    strikes: int = 3  # violations before the plugin is disabled

    def __post_init__(self) -> None:
        # Packed results (ptr << 32 | len) stay positive only below 2 GiB.
        if not 1 <= self.max_memory_mb <= MAX_MEMORY_MB:
            raise ValueError(f"max_memory_mb must be 1..{MAX_MEMORY_MB}, not {self.max_memory_mb}")
        for name in ("fuel_per_call", "max_call_ms", "max_host_calls_per_call", "strikes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True)
class PluginSpec:
    """One plugin, verified by whoever built this, ready to load.

    `wasm` is the exact bytes to compile; the executor checks them against
    `wasm_sha256` itself before compiling, whatever the caller did.
    """

    name: str
    version: str
    wasm: bytes
    wasm_sha256: str
    declared: frozenset[Capability]
    approved: frozenset[Capability] = frozenset()
    config: Mapping[str, object] = field(default_factory=dict, repr=False)  # may hold secrets
    limits: Limits = field(default_factory=Limits)
    source: str = ""  # where it came from, for messages


@dataclass(frozen=True)
class ExecutorSettings:
    """Host-wide settings of one executor."""

    state_dir: str = "state"
    tick_interval_ms: int = 5000
    profile: str = "default"
    protected_processes: tuple[str, ...] = ()  # protected in addition to the built-in list
    allow_other_users: bool = False  # act on processes of other users
    memory_high_percent: float = 85.0  # used memory at which pressure is "high"
    memory_critical_percent: float = 95.0
    max_wasm_stack_bytes: int = 512 * 1024  # engine-wide
    # Files no plugin may read or write whatever its grant: the reconciler
    # adds ruvector.toml; the executor adds state_dir itself.
    private_paths: tuple[str, ...] = ()
    # "fuel": each call gets a deterministic instruction budget and a deadline;
    # "epochs": the deadline alone, for users who prefer speed to determinism
    # (a CPU-bound loop runs up to ~3x faster; fuel_per_tick is then unused).
    metering: str = "fuel"
    # "fast": wasmtime's C API without per-call conversion (executor.fastpath);
    # "reference": wasmtime-py's high-level API, the behaviour the fast path
    # must match. Not a user setting: tests run both, and the executor falls
    # back to the reference by itself when the installed wasmtime does not fit.
    call_api: Api = "fast"
    # How often, at most, state/executor.json (what `ruvector status` shows of
    # a running executor) is rewritten; at the default 5 s tick, every tick.
    status_interval_s: float = 1.0
