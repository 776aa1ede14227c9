"""ABI v1: the contract between the host and a plugin, as data.

docs/abi.md is the prose form of this module; keep them in step. Everything a
loader or a binding needs to know about a host function (its wasm signature
and the capability that unlocks it) is in HOST_FUNCTIONS, so linking,
import checking and the docs table come from one place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hostcalls.capabilities import CapabilityKind

ABI_VERSION = 1
IMPORT_MODULE = "ruvector"

# Packed results: the host writes into a buffer from the plugin's allocator
# and returns ptr << 32 | len. Memory is capped below 2 GiB so a packed value
# is always positive and negative values are free to carry a Status.
NONE = 0
MAX_MEMORY_BYTES = 2**31 - 65536


class Status(enum.IntEnum):
    """Status codes returned by actions (i32) and by packed calls (i64 < 0)."""

    OK = 0
    DENIED = -1  # the capability does not cover this target (path, host)
    NOT_FOUND = -2  # no such process, file, key
    INVALID_ARGUMENT = -3  # malformed UTF-8 or JSON, value out of range
    UNSUPPORTED = -4  # this platform has no such thing
    RATE_LIMITED = -5  # too many calls of this kind in this hook call
    PROTECTED = -6  # the target process is protected
    TOO_LARGE = -7  # the result would exceed its cap
    IO_ERROR = -8  # the OS refused or failed (permission, disk, network)
    TIMEOUT = -9  # the operation ran out of the call's time
    NO_MEMORY = -10  # rv_alloc returned 0 or a buffer outside memory
    HOST_ERROR = -11  # a fault inside the host; reported, not the plugin's doing


def pack(ptr: int, length: int) -> int:
    """Pack a guest buffer into the i64 result form."""
    return (ptr << 32) | length


def unpack(value: int) -> tuple[int, int]:
    """Inverse of pack, for tests and tools."""
    return (value >> 32) & 0xFFFFFFFF, value & 0xFFFFFFFF


I32, I64, F64 = "i32", "i64", "f64"


@dataclass(frozen=True)
class HostFunction:
    """One import a plugin may name under module `ruvector`."""

    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    capability: CapabilityKind | None  # None: always linked
    doc: str


def _hf(name: str, params: str, results: str, cap: CapabilityKind | None, doc: str) -> HostFunction:
    return HostFunction(name, tuple(params.split()), tuple(results.split()), cap, doc)


_C = CapabilityKind
HOST_FUNCTIONS: dict[str, HostFunction] = {
    f.name: f
    for f in (
        _hf("log", "i32 i32 i32", "i32", None, "log(level, msg_ptr, msg_len) -> status"),
        _hf("get_config", "i32 i32", "i64", None, "get_config(key_ptr, key_len) -> packed str"),
        _hf(
            "set_config",
            "i32 i32 i32 i32",
            "i32",
            None,
            "set_config(key_ptr, key_len, val_ptr, val_len) -> status",
        ),
        _hf(
            "report_metric",
            "i32 i32 f64",
            "i32",
            None,
            "report_metric(name_ptr, name_len, value) -> status",
        ),
        _hf(
            "get_learned_pattern",
            "i32 i32",
            "i64",
            None,
            "get_learned_pattern(name_ptr, name_len) -> packed JSON",
        ),
        _hf("get_memory_status", "", "i64", _C.READ_SYSTEM_INFO, "-> packed JSON"),
        _hf("get_cpu_usage", "", "f64", _C.READ_SYSTEM_INFO, "-> percent, 0..100"),
        _hf("get_temperature", "", "i64", _C.READ_SYSTEM_INFO, "-> packed JSON"),
        _hf("get_gpu_status", "", "i64", _C.READ_SYSTEM_INFO, "-> packed JSON"),
        _hf("get_battery_status", "", "i64", _C.READ_SYSTEM_INFO, "-> packed JSON"),
        _hf("get_process_list", "", "i64", _C.READ_PROCESS_LIST, "-> packed JSON"),
        _hf(
            "get_process_memory",
            "i32",
            "i64",
            _C.READ_PROCESS_LIST,
            "get_process_memory(pid) -> bytes or status",
        ),
        _hf(
            "set_process_priority",
            "i32 i32",
            "i32",
            _C.MODIFY_PROCESS_PRIORITY,
            "set_process_priority(pid, priority 0..4) -> status",
        ),
        _hf(
            "trim_process_memory",
            "i32",
            "i64",
            _C.TRIM_PROCESS_MEMORY,
            "trim_process_memory(pid) -> bytes trimmed or status",
        ),
        _hf("kill_process", "i32", "i32", _C.KILL_PROCESS, "kill_process(pid) -> status"),
        _hf(
            "show_notification",
            "i32 i32 i32 i32",
            "i32",
            _C.SHOW_NOTIFICATIONS,
            "show_notification(title_ptr, title_len, msg_ptr, msg_len) -> status",
        ),
        _hf(
            "http_request",
            "i32 i32",
            "i64",
            _C.NETWORK_ACCESS,
            "http_request(req_ptr, req_len) -> packed JSON or status",
        ),
        _hf(
            "read_file",
            "i32 i32",
            "i64",
            _C.FILESYSTEM_READ,
            "read_file(path_ptr, path_len) -> packed bytes or status",
        ),
        _hf(
            "write_file",
            "i32 i32 i32 i32",
            "i32",
            _C.FILESYSTEM_WRITE,
            "write_file(path_ptr, path_len, data_ptr, data_len) -> status",
        ),
        _hf(
            "registry_read",
            "i32 i32",
            "i64",
            _C.REGISTRY_READ,
            "registry_read(key_ptr, key_len) -> packed JSON or status",
        ),
        _hf(
            "registry_write",
            "i32 i32 i32 i32",
            "i32",
            _C.REGISTRY_WRITE,
            "registry_write(key_ptr, key_len, val_ptr, val_len) -> status",
        ),
    )
}


@dataclass(frozen=True)
class Export:
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]


def _ex(name: str, params: str, results: str = "") -> Export:
    return Export(name, tuple(params.split()), tuple(results.split()))


REQUIRED_EXPORTS: dict[str, Export] = {
    e.name: e for e in (_ex("rv_alloc", "i32", "i32"), _ex("rv_abi_version", "", "i32"))
}

# Every lifecycle hook is optional; a plugin exports the ones it handles.
LIFECYCLE_EXPORTS: dict[str, Export] = {
    e.name: e
    for e in (
        _ex("on_init", ""),
        _ex("on_tick", "i32"),
        _ex("on_memory_pressure", "i32"),
        _ex("on_process_launch", "i32 i32 i32"),
        _ex("on_process_exit", "i32 i32 i32"),
        _ex("on_profile_switch", "i32 i32"),
        _ex("on_cleanup", ""),
    )
}

# log levels, as plugins pass them
LOG_LEVELS = {0: "trace", 1: "debug", 2: "info", 3: "warn", 4: "error"}
