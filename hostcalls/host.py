"""One plugin's host functions: argument checks, caps, throttles, dispatch.

PluginHost turns the raw integers a plugin passes into checked values, calls
the backend (system, processes, files, net, registry, plugin state) and turns
the result back into the ABI's forms. The binding to wasmtime lives in the
executor; here a call is a plain method taking a GuestMemory, so the same
code serves any binding and tests can drive it without wasm.

Error contract: a backend failure becomes a Status for the plugin. A broken
pointer, an oversized argument or host-call abuse raises GuestFault, which
aborts the plugin's call and counts as a violation. Any other exception is a
host bug: it is logged, the plugin gets Status.HOST_ERROR, and the host goes on.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hostcalls import files, net, processes, winregistry
from hostcalls.abi import F64, HOST_FUNCTIONS, LOG_LEVELS, NONE, Status
from hostcalls.capabilities import CapabilityKind, Grant
from hostcalls.guest import FaultKind, GuestAborted, GuestFault, GuestMemory, read_text
from hostcalls.plugin_state import PluginState
from hostcalls.system import SystemSample

log = logging.getLogger(__name__)

# Caps on what one argument may be, in bytes. Past them the call is a fault:
# no honest plugin sends a 4 MB log line, and reading it would cost the host.
MAX_LOG_BYTES = 8 * 1024
MAX_TITLE_BYTES = 256
MAX_MESSAGE_BYTES = 4 * 1024
MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 64 * 1024
MAX_METRIC_NAME_BYTES = 128
MAX_PATH_BYTES = 4096
MAX_HTTP_REQUEST_BYTES = 1024 * 1024
MAX_REGISTRY_KEY_BYTES = 1024


class HostSinks(Protocol):
    """Where a plugin's log lines and notifications go (the CLI, later the UI)."""

    def log(self, plugin: str, level: str, message: str) -> None: ...

    def notify(self, plugin: str, title: str, message: str) -> None: ...


@dataclass(frozen=True)
class HostLimits:
    max_host_calls_per_call: int = 10_000
    max_log_lines_per_tick: int = 100
    max_notifications_per_tick: int = 5
    max_http_response_bytes: int = 1 << 20
    max_file_bytes: int = 1 << 20
    max_write_bytes_per_tick: int = 4 << 20  # bounds the disk churn a plugin causes
    max_writes_per_tick: int = 64  # files written (created or replaced) per tick
    http_timeout_s: float = 5.0  # further bounded by the call's deadline


@dataclass
class CallCounters:
    """What one hook call did; reset by begin_call."""

    host_calls: int = 0
    by_function: dict[str, int] = field(default_factory=dict)


@dataclass
class TickCounters:
    """Throttles that span a whole tick; reset by begin_tick.

    Per tick, not per call: every process event is a call of its own, so a
    per-call allowance would multiply with the events.
    """

    log_lines: int = 0
    logs_dropped: int = 0
    notifications: int = 0
    notifications_dropped: int = 0
    bytes_written: int = 0
    writes: int = 0


F = TypeVar("F", bound=Callable[..., int | float])


def host_function(fn: F) -> F:
    """Count the call, enforce the per-call budget, contain host bugs."""
    name = fn.__name__
    # An f64 function must answer with a float: wasm cannot take an int there.
    host_error: int | float = int(Status.HOST_ERROR)
    if HOST_FUNCTIONS[name].results == (F64,):
        host_error = float(Status.HOST_ERROR)

    @functools.wraps(fn)
    def wrapper(self: PluginHost, mem: GuestMemory, *args: Any) -> int | float:
        c = self.counters
        c.host_calls += 1
        c.by_function[name] = c.by_function.get(name, 0) + 1
        if c.host_calls > self.limits.max_host_calls_per_call:
            raise GuestFault(
                FaultKind.ABUSE,
                name,
                f"more than {self.limits.max_host_calls_per_call} host calls in one hook call",
            )
        try:
            return fn(self, mem, *args)
        except (GuestFault, GuestAborted):
            raise
        except Exception:
            log.exception("host function %s failed for plugin %s", name, self.plugin)
            return host_error

    return wrapper  # type: ignore[return-value]


# The part of a call's remaining time an http_request may take.
HTTP_SHARE_OF_DEADLINE = 0.8


class PluginHost:
    """The host functions of one plugin instance."""

    def __init__(
        self,
        plugin: str,
        grant: Grant,
        *,
        state: PluginState,
        policy: processes.ProtectionPolicy,
        sample: Callable[[bool], SystemSample],
        sinks: HostSinks,
        limits: HostLimits | None = None,
        private_paths: tuple[str, ...] = (),
    ) -> None:
        self.plugin = plugin
        self.grant = grant
        self.state = state
        self.policy = policy
        self.limits = limits or HostLimits()
        self.private_paths = private_paths  # the host's own files: never a plugin's
        self._sample = sample
        self._sinks = sinks
        self.counters = CallCounters()
        self.tick = TickCounters()
        self.deadline = math.inf  # time.monotonic() value the current call must end by

    def begin_tick(self) -> None:
        """Start the plugin's turn in a tick: fresh throttles."""
        # On every plugin's every tick: new counters only when the old ones
        # counted something (most ticks count nothing); bytes_written moves
        # only with writes.
        t = self.tick
        if t.log_lines or t.logs_dropped or t.notifications or t.notifications_dropped or t.writes:
            self.tick = TickCounters()

    def begin_call(self, deadline: float) -> None:
        """Start a hook call: fresh counters (see begin_tick) and its deadline."""
        if self.counters.host_calls:
            self.counters = CallCounters()
        self.deadline = deadline

    def _result(self, mem: GuestMemory, fn: str, data: bytes | Status | None) -> int:
        if data is None:
            return NONE
        if isinstance(data, Status):
            return int(data)
        return mem.write_result(fn, data)

    # -- always linked ---------------------------------------------------

    @host_function
    def log(self, mem: GuestMemory, level: int, ptr: int, length: int) -> int:
        text = read_text(mem, "log", ptr, length, MAX_LOG_BYTES)
        if level not in LOG_LEVELS:
            return int(Status.INVALID_ARGUMENT)
        c = self.tick
        if c.log_lines >= self.limits.max_log_lines_per_tick:
            c.logs_dropped += 1
            return int(Status.RATE_LIMITED)
        c.log_lines += 1
        self._sinks.log(self.plugin, LOG_LEVELS[level], text)
        return int(Status.OK)

    @host_function
    def get_config(self, mem: GuestMemory, kptr: int, klen: int) -> int:
        key = read_text(mem, "get_config", kptr, klen, MAX_KEY_BYTES)
        value = self.state.get_config(key)
        return self._result(mem, "get_config", None if value is None else value.encode())

    @host_function
    def set_config(self, mem: GuestMemory, kptr: int, klen: int, vptr: int, vlen: int) -> int:
        key = read_text(mem, "set_config", kptr, klen, MAX_KEY_BYTES)
        value = read_text(mem, "set_config", vptr, vlen, MAX_VALUE_BYTES)
        if not key:
            return int(Status.INVALID_ARGUMENT)
        return int(self.state.set_config(key, value))

    @host_function
    def report_metric(self, mem: GuestMemory, nptr: int, nlen: int, value: float) -> int:
        name = read_text(mem, "report_metric", nptr, nlen, MAX_METRIC_NAME_BYTES)
        if not name:
            return int(Status.INVALID_ARGUMENT)
        return int(self.state.record_metric(name, value, time.time()))

    @host_function
    def get_learned_pattern(self, mem: GuestMemory, nptr: int, nlen: int) -> int:
        name = read_text(mem, "get_learned_pattern", nptr, nlen, MAX_METRIC_NAME_BYTES)
        pattern = self.state.learned_pattern(name)
        if pattern is None:
            return NONE
        # allow_nan=False: what a plugin gets is always valid JSON.
        data = json.dumps(pattern, separators=(",", ":"), allow_nan=False).encode()
        return self._result(mem, "get_learned_pattern", data)

    # -- ReadSystemInfo -----------------------------------------------------

    @host_function
    def get_memory_status(self, mem: GuestMemory) -> int:
        return self._result(mem, "get_memory_status", self._sample(False).memory_json())

    @host_function
    def get_cpu_usage(self, mem: GuestMemory) -> float:
        return self._sample(False).cpu_percent

    @host_function
    def get_temperature(self, mem: GuestMemory) -> int:
        try:
            data = self._sample(False).temperature_json()
        except OSError:  # the sensors exist but the OS failed to read them
            return int(Status.IO_ERROR)
        return self._result(mem, "get_temperature", data)

    @host_function
    def get_gpu_status(self, mem: GuestMemory) -> int:
        return self._result(mem, "get_gpu_status", self._sample(False).gpu_json())

    @host_function
    def get_battery_status(self, mem: GuestMemory) -> int:
        return self._result(mem, "get_battery_status", self._sample(False).battery_json())

    # -- ReadProcessList ------------------------------------------------------

    @host_function
    def get_process_list(self, mem: GuestMemory) -> int:
        return self._result(mem, "get_process_list", self._sample(True).process_list_json())

    @host_function
    def get_process_memory(self, mem: GuestMemory, pid: int) -> int:
        info = self._sample(True).process(pid)
        if info is not None and info.memory_bytes is not None:
            return info.memory_bytes
        return processes.process_memory(None, pid)

    # -- actions ------------------------------------------------------------

    @host_function
    def set_process_priority(self, mem: GuestMemory, pid: int, level: int) -> int:
        return int(processes.set_priority(self.policy, pid, level))

    @host_function
    def trim_process_memory(self, mem: GuestMemory, pid: int) -> int:
        return int(processes.trim_memory(self.policy, pid))

    @host_function
    def kill_process(self, mem: GuestMemory, pid: int) -> int:
        return int(processes.kill(self.policy, pid))

    @host_function
    def show_notification(
        self, mem: GuestMemory, tptr: int, tlen: int, mptr: int, mlen: int
    ) -> int:
        title = read_text(mem, "show_notification", tptr, tlen, MAX_TITLE_BYTES)
        message = read_text(mem, "show_notification", mptr, mlen, MAX_MESSAGE_BYTES)
        c = self.tick
        if c.notifications >= self.limits.max_notifications_per_tick:
            c.notifications_dropped += 1
            return int(Status.RATE_LIMITED)
        c.notifications += 1
        self._sinks.notify(self.plugin, title, message)
        return int(Status.OK)

    # -- scoped capabilities -------------------------------------------------

    @host_function
    def http_request(self, mem: GuestMemory, ptr: int, length: int) -> int:
        request = mem.read("http_request", ptr, length, MAX_HTTP_REQUEST_BYTES)
        # A fifth of what is left stays the plugin's, to handle a TIMEOUT
        # before its own deadline: a request may not spend the whole call.
        remaining = self.deadline - time.monotonic()
        timeout = min(self.limits.http_timeout_s, remaining * HTTP_SHARE_OF_DEADLINE)
        grants = self.grant.of_kind(CapabilityKind.NETWORK_ACCESS)
        response = net.http_request(grants, request, timeout, self.limits.max_http_response_bytes)
        return self._result(mem, "http_request", response)

    @host_function
    def read_file(self, mem: GuestMemory, ptr: int, length: int) -> int:
        path = read_text(mem, "read_file", ptr, length, MAX_PATH_BYTES)
        grants = self.grant.of_kind(CapabilityKind.FILESYSTEM_READ)
        data = files.read_file(grants, path, self.limits.max_file_bytes, self.private_paths)
        return self._result(mem, "read_file", data)

    @host_function
    def write_file(self, mem: GuestMemory, pptr: int, plen: int, dptr: int, dlen: int) -> int:
        path = read_text(mem, "write_file", pptr, plen, MAX_PATH_BYTES)
        data = mem.read("write_file", dptr, dlen, self.limits.max_file_bytes)
        t, lim = self.tick, self.limits
        if t.writes >= lim.max_writes_per_tick or (
            t.bytes_written + len(data) > lim.max_write_bytes_per_tick
        ):
            return int(Status.RATE_LIMITED)
        grants = self.grant.of_kind(CapabilityKind.FILESYSTEM_WRITE)
        limit = self.limits.max_file_bytes
        status = files.write_file(grants, path, data, limit, self.private_paths)
        if status is Status.OK:
            t.bytes_written += len(data)
            t.writes += 1
        return int(status)

    @host_function
    def registry_read(self, mem: GuestMemory, ptr: int, length: int) -> int:
        key = read_text(mem, "registry_read", ptr, length, MAX_REGISTRY_KEY_BYTES)
        return self._result(mem, "registry_read", winregistry.registry_read(key))

    @host_function
    def registry_write(self, mem: GuestMemory, kptr: int, klen: int, vptr: int, vlen: int) -> int:
        key = read_text(mem, "registry_write", kptr, klen, MAX_REGISTRY_KEY_BYTES)
        value = mem.read("registry_write", vptr, vlen, MAX_VALUE_BYTES)
        return int(winregistry.registry_write(key, value))
