"""How a sandbox reaches wasmtime: the reference binding and what both share.

A Binding is one store's calls, fuel, deadline, memory and host functions.
There are two, with the same behaviour:

- ReferenceBinding, here: wasmtime-py's high-level API (Func.__call__,
  Linker.define_func, Caller). Simple and checked by wasmtime-py at every
  call; it is the reference the fast path must agree with.
- FastBinding, in executor.fastpath: the C API's unchecked entry points,
  about ten times faster per call and per host call.

Whatever differs between them stays below this interface; everything the
runtime decides (limits, violations, faults and their messages) is above it,
in the Sandbox and in CheckedMemory, so both bindings enforce the same rules
with the same words.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import wasmtime

from executor.spec import Api as Api
from hostcalls.abi import IMPORT_MODULE, HostFunction, Status, pack
from hostcalls.guest import FaultKind, GuestAborted, GuestFault

U32 = 0xFFFFFFFF
_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64, "f64": wasmtime.ValType.f64}

# A host function as the sandbox gives it: (memory, *wasm arguments) -> result.
Handler = Callable[..., int | float]


@dataclass(frozen=True)
class Meter:
    """What every call into one store gets: fixed for the store's life."""

    fuel: int | None  # the fuel budget of a call; None: the engine meters none
    ticks: int  # the deadline, in epoch ticks from when it is armed


def func_type(fn: HostFunction) -> wasmtime.FuncType:
    return wasmtime.FuncType(
        [_VALTYPES[p]() for p in fn.params], [_VALTYPES[r]() for r in fn.results]
    )


class CheckedMemory(abc.ABC):
    """GuestMemory (hostcalls.guest) on four primitives a binding supplies.

    The checks and their messages live here once: a pointer outside memory,
    an argument over its cap, an allocator that returns memory it does not
    own, or a host call from inside rv_alloc.
    """

    def __init__(self) -> None:
        self.in_alloc = False  # the host is inside the plugin's rv_alloc

    def enter(self, function: str) -> None:
        """Called as a host function starts."""
        if self.in_alloc:
            # rv_alloc calling back into the host would nest host calls
            # inside host calls, each deeper on the native stack.
            raise GuestFault(FaultKind.ABUSE, function, "host call from inside rv_alloc")

    def read(self, function: str, ptr: int, length: int, cap: int) -> bytes:
        ptr, length = ptr & U32, length & U32
        if length > cap:
            raise GuestFault(FaultKind.TOO_LARGE, function, f"{length} bytes; the cap is {cap}")
        size = self._size()
        if ptr + length > size:
            raise GuestFault(
                FaultKind.BAD_POINTER,
                function,
                f"[{ptr:#x}, {ptr + length:#x}) is outside linear memory of {size} bytes",
            )
        return self._read(ptr, length)

    def write_result(self, function: str, data: bytes) -> int:
        self.in_alloc = True
        try:
            ptr = self._alloc(max(len(data), 1)) & U32
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise GuestAborted(exc) from None
        finally:
            self.in_alloc = False
        if ptr == 0:
            return int(Status.NO_MEMORY)
        if ptr + len(data) > self._size():
            raise GuestFault(
                FaultKind.BAD_ALLOCATOR, function, f"rv_alloc returned {ptr:#x}, outside memory"
            )
        self._write(ptr, data)
        return pack(ptr, len(data))

    @abc.abstractmethod
    def _size(self) -> int: ...

    @abc.abstractmethod
    def _read(self, ptr: int, length: int) -> bytes: ...

    @abc.abstractmethod
    def _write(self, ptr: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def _alloc(self, size: int) -> int:
        """rv_alloc(size); raises wasmtime.Trap or WasmtimeError if it traps."""


class Binding(Protocol):
    """One store and its instance, as the sandbox drives them.

    Calls raise what the reference raises: wasmtime.Trap for a trap,
    wasmtime.WasmtimeError for an error, and a host function's own exception
    (GuestFault, GuestAborted, a host bug) when it aborted the call.
    """

    meter: Meter

    def define(self, linker: wasmtime.Linker, fn: HostFunction, handler: Handler) -> None:
        """Link host function `fn` (ABI v1) to `handler`."""

    def instantiate(self, linker: wasmtime.Linker, module: wasmtime.Module) -> None:
        """Instantiate, running any start function, and bind the exports."""

    def arm(self, deadline: bool) -> None:
        """Before a call: refill the fuel (if metered); with `deadline`, set
        the deadline afresh, else keep the one set before."""

    def disarm(self) -> tuple[int, int]:
        """After a call: (fuel left, 0 if not metered; bytes of linear memory)."""

    def call(self, export: str, *args: int) -> int | None:
        """Call an export the loader checked; its i32 result, if any."""

    def run(self, deadline: bool, export: str, args: tuple[int, ...]) -> tuple[int, int]:
        """arm, call and disarm in one: the hot path, for a hook call."""

    def memory_size(self) -> int:
        """Bytes of linear memory; 0 before instantiation."""

    def write(self, ptr: int, data: bytes) -> None:
        """Copy into linear memory; the caller checked the bounds."""

    def close(self) -> None:
        """Close the store; the binding is not used again."""


class _CallerMemory(CheckedMemory):
    """CheckedMemory over the wasmtime.Caller of the current host call."""

    def __init__(self, binding: ReferenceBinding) -> None:
        super().__init__()
        self._binding = binding
        self.caller: wasmtime.Caller | None = None

    def _export(self, name: str) -> Any:
        found = self._binding.exports.get(name)
        if found is None:  # during instantiation (a start function's host call)
            assert self.caller is not None
            found = self.caller.get(name)
        return found

    def _size(self) -> int:
        return int(self._export("memory").data_len(self.caller))

    def _read(self, ptr: int, length: int) -> bytes:
        return bytes(self._export("memory").read(self.caller, ptr, ptr + length))

    def _write(self, ptr: int, data: bytes) -> None:
        self._export("memory").write(self.caller, data, ptr)

    def _alloc(self, size: int) -> int:
        return int(self._export("rv_alloc")(self.caller, size))


class ReferenceBinding:
    """wasmtime-py's high-level API: the reference the fast path agrees with."""

    def __init__(self, store: wasmtime.Store, meter: Meter) -> None:
        self.store = store
        self.meter = meter
        self.exports: dict[str, Any] = {}
        self.memory = _CallerMemory(self)

    def define(self, linker: wasmtime.Linker, fn: HostFunction, handler: Handler) -> None:
        mem, name = self.memory, fn.name

        def host_call(caller: wasmtime.Caller, *args: Any) -> int | float:
            mem.enter(name)
            mem.caller = caller
            return handler(mem, *args)

        linker.define_func(IMPORT_MODULE, name, func_type(fn), host_call, access_caller=True)

    def instantiate(self, linker: wasmtime.Linker, module: wasmtime.Module) -> None:
        instance = linker.instantiate(self.store, module)
        self.exports = dict(instance.exports(self.store))

    def arm(self, deadline: bool) -> None:
        if self.meter.fuel is not None:
            self.store.set_fuel(self.meter.fuel)
        if deadline:
            self.store.set_epoch_deadline(self.meter.ticks)

    def disarm(self) -> tuple[int, int]:
        metered = self.meter.fuel is not None
        return (self.store.get_fuel() if metered else 0), self.memory_size()

    def call(self, export: str, *args: int) -> int | None:
        result = self.exports[export](self.store, *args)
        return None if result is None else int(result)

    def run(self, deadline: bool, export: str, args: tuple[int, ...]) -> tuple[int, int]:
        self.arm(deadline)
        self.call(export, *args)
        return self.disarm()

    def memory_size(self) -> int:
        mem = self.exports.get("memory")
        return 0 if mem is None else int(mem.data_len(self.store))

    def write(self, ptr: int, data: bytes) -> None:
        self.exports["memory"].write(self.store, data, ptr)

    def close(self) -> None:
        self.exports = {}
        self.memory.caller = None
        self.store.close()
