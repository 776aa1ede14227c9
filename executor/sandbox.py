"""One plugin instance in its own wasmtime Store, and every call into it.

The sandbox owns the store, the instance and the binding of host functions;
each call runs under a fresh fuel budget and an epoch deadline, and comes
back as a CallResult. A call that breaks a limit yields a Violation; the
instance is then poisoned and rebuilt by restart(), since a trapped instance
may hold half-updated state (its allocator included).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from executor.engine import EpochTicker, deadline_ticks
from executor.loader import PAGE, CheckedModule
from executor.spec import PluginSpec
from hostcalls.abi import ABI_VERSION, HOST_FUNCTIONS, IMPORT_MODULE, Status, pack
from hostcalls.guest import FaultKind, GuestAborted, GuestFault
from hostcalls.host import PluginHost
from ruvector.errors import PluginRefused

log = logging.getLogger(__name__)

_U32 = 0xFFFFFFFF
_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64, "f64": wasmtime.ValType.f64}


class ViolationKind(enum.Enum):
    FUEL = "fuel exhausted"
    DEADLINE = "deadline exceeded"
    TRAP = "trap"
    MEMORY = "memory over the cap"
    HOSTCALL = "bad host call"  # bad pointer or length, oversize argument, abuse


@dataclass(frozen=True)
class Violation:
    kind: ViolationKind
    hook: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value} in {self.hook}: {self.detail}"


@dataclass(frozen=True)
class CallResult:
    hook: str
    elapsed_s: float
    fuel_used: int
    host_calls: int
    violation: Violation | None = None
    host_error: str | None = None  # a host bug aborted the call: not the plugin's strike


class _Memory:
    """GuestMemory over the caller of one host call (see hostcalls.guest)."""

    __slots__ = ("_box", "_caller")

    def __init__(self, box: Sandbox, caller: wasmtime.Caller) -> None:
        self._box = box
        self._caller = caller

    def read(self, function: str, ptr: int, length: int, cap: int) -> bytes:
        ptr, length = ptr & _U32, length & _U32
        if length > cap:
            raise GuestFault(FaultKind.TOO_LARGE, function, f"{length} bytes; the cap is {cap}")
        mem = self._box.memory(self._caller)
        size = mem.data_len(self._caller)
        if ptr + length > size:
            raise GuestFault(
                FaultKind.BAD_POINTER,
                function,
                f"[{ptr:#x}, {ptr + length:#x}) is outside linear memory of {size} bytes",
            )
        return bytes(mem.read(self._caller, ptr, ptr + length))

    def write_result(self, function: str, data: bytes) -> int:
        alloc = self._box.allocator(self._caller)
        self._box.in_alloc = True
        try:
            ptr = alloc(self._caller, max(len(data), 1)) & _U32
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise GuestAborted(exc) from None
        finally:
            self._box.in_alloc = False
        if ptr == 0:
            return int(Status.NO_MEMORY)
        mem = self._box.memory(self._caller)
        if ptr + len(data) > mem.data_len(self._caller):
            raise GuestFault(
                FaultKind.BAD_ALLOCATOR, function, f"rv_alloc returned {ptr:#x}, outside memory"
            )
        mem.write(self._caller, data, ptr)
        return pack(ptr, len(data))


class Sandbox:
    """A plugin's store and instance. Used by one thread at a time."""

    def __init__(
        self,
        spec: PluginSpec,
        checked: CheckedModule,
        engine: wasmtime.Engine,
        host: PluginHost,
        ticker: EpochTicker,
        *,
        fuel: bool = True,
    ) -> None:
        self.spec = spec
        self.checked = checked
        self.host = host
        self._engine = engine
        self._ticker = ticker
        self._fuel = fuel
        self._store: wasmtime.Store | None = None
        self._exports: dict[str, Any] = {}
        self.poisoned = True  # no instance yet
        self.in_alloc = False  # the host is inside the plugin's rv_alloc

    # -- instance lifetime ---------------------------------------------------

    def start(self) -> CallResult:
        """Instantiate (running any start function) and check the ABI version.

        Returns the result of the instantiation call (which may carry a
        Violation). Raises PluginRefused if the instance cannot be made
        within the limits or declares another ABI version.
        """
        self.close()
        store = wasmtime.Store(self._engine)
        cap = self.spec.limits.max_memory_mb * 1024 * 1024
        # One page of slack: a memory found above the cap after a call is a
        # violation we can see, where a failed memory.grow would be silent.
        store.set_limits(
            memory_size=cap + PAGE,
            table_elements=self.spec.limits.max_table_elements,
            instances=1,
            tables=4,
            memories=1,
        )
        self._store = store
        try:
            linker = self._linker()
        except wasmtime.WasmtimeError as exc:
            raise PluginRefused(self.spec.name, f"cannot link: {_first_line(exc)}") from None
        result = self._run("instantiate", lambda: self._instantiate(linker))
        if result.violation is None:
            result = self._check_abi()
        self.poisoned = result.violation is not None
        return result

    def _instantiate(self, linker: wasmtime.Linker) -> None:
        assert self._store is not None
        try:
            instance = linker.instantiate(self._store, self.checked.module)
        except wasmtime.Trap:
            raise
        except wasmtime.WasmtimeError as exc:
            raise PluginRefused(self.spec.name, f"cannot instantiate: {_first_line(exc)}") from None
        self._exports = dict(instance.exports(self._store))

    def _check_abi(self) -> CallResult:
        box: list[int] = []
        result = self._run(
            "rv_abi_version", lambda: box.append(self._exports["rv_abi_version"](self._store))
        )
        if result.violation is None and box[0] != ABI_VERSION:
            raise PluginRefused(
                self.spec.name, f"declares ABI version {box[0]}; this host supports {ABI_VERSION}"
            )
        return result

    def close(self) -> None:
        self._exports = {}
        if self._store is not None:
            self._store.close()
            self._store = None
        self.poisoned = True

    # -- calls ---------------------------------------------------------------

    def has(self, hook: str) -> bool:
        return hook in self.checked.hooks

    def call(self, hook: str, *args: int) -> CallResult:
        """Call a lifecycle export with integer arguments."""
        fn = self._exports[hook]
        return self._run(hook, lambda: fn(self._store, *args))

    def call_with_text(self, hook: str, text: str, *args: int) -> CallResult:
        """Call a hook whose first two arguments are a string the host allocates."""
        fn = self._exports[hook]

        def go() -> None:
            data = text.encode()
            ptr = self._exports["rv_alloc"](self._store, max(len(data), 1)) & _U32
            mem = self._exports["memory"]
            if ptr == 0 or ptr + len(data) > mem.data_len(self._store):
                raise GuestFault(
                    FaultKind.BAD_ALLOCATOR, hook, f"rv_alloc returned {ptr:#x} for the argument"
                )
            mem.write(self._store, data, ptr)
            fn(self._store, ptr, len(data), *args)

        return self._run(hook, go)

    def memory_bytes(self) -> int:
        if self._store is None or "memory" not in self._exports:
            return 0
        return int(self._exports["memory"].data_len(self._store))

    def _run(self, hook: str, body: Callable[[], None]) -> CallResult:
        assert self._store is not None
        store, limits = self._store, self.spec.limits
        budget = limits.fuel_per_call
        if self._fuel:
            store.set_fuel(budget)
        violation, host_error = None, None
        with self._ticker.running():
            store.set_epoch_deadline(deadline_ticks(limits.max_call_ms))
            start = time.perf_counter()
            self.host.begin_call(time.monotonic() + limits.max_call_ms / 1000)
            try:
                body()
            except GuestFault as fault:
                violation = Violation(ViolationKind.HOSTCALL, hook, str(fault))
            except GuestAborted as aborted:
                violation = _classify(hook, aborted.cause)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                violation = _classify(hook, exc)
            except PluginRefused:
                raise
            except Exception as exc:  # a host bug surfaced through the call
                log.exception("host error in %s of plugin %s", hook, self.spec.name)
                host_error = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - start
        fuel_used = budget - store.get_fuel() if self._fuel else 0
        violation = self._memory_violation(hook) or violation
        if violation is not None or host_error is not None:
            self.poisoned = True  # the call stopped part-way: rebuild the instance
        c = self.host.counters
        return CallResult(hook, elapsed, fuel_used, c.host_calls, violation, host_error)

    def _memory_violation(self, hook: str) -> Violation | None:
        size, cap_mb = self.memory_bytes(), self.spec.limits.max_memory_mb
        if size > cap_mb * 1024 * 1024:
            return Violation(
                ViolationKind.MEMORY, hook, f"linear memory grew past the cap of {cap_mb} MiB"
            )
        return None

    # -- binding -------------------------------------------------------------

    def memory(self, caller: wasmtime.Caller) -> wasmtime.Memory:
        mem = self._exports.get("memory")
        if mem is None:  # during instantiation (a start function's host call)
            mem = caller.get("memory")
        assert isinstance(mem, wasmtime.Memory)
        return mem

    def allocator(self, caller: wasmtime.Caller) -> wasmtime.Func:
        fn = self._exports.get("rv_alloc")
        if fn is None:
            fn = caller.get("rv_alloc")
        assert isinstance(fn, wasmtime.Func)
        return fn

    def _linker(self) -> wasmtime.Linker:
        """A linker with exactly the host functions this module imports.

        The loader already refused any import whose capability is not granted,
        so nothing beyond the grant can be linked.
        """
        linker = wasmtime.Linker(self._engine)
        for name in self.checked.imports:
            fn = HOST_FUNCTIONS[name]
            ftype = wasmtime.FuncType(
                [_VALTYPES[p]() for p in fn.params], [_VALTYPES[r]() for r in fn.results]
            )
            linker.define_func(
                IMPORT_MODULE, name, ftype, self._bind(getattr(self.host, name)), access_caller=True
            )
        return linker

    def _bind(self, method: Callable[..., int | float]) -> Callable[..., int | float]:
        name = method.__name__

        def host_call(caller: wasmtime.Caller, *args: Any) -> int | float:
            if self.in_alloc:
                # rv_alloc calling back into the host would nest host calls
                # inside host calls, each deeper on the native stack.
                raise GuestFault(FaultKind.ABUSE, name, "host call from inside rv_alloc")
            return method(_Memory(self, caller), *args)

        return host_call


def _classify(hook: str, exc: BaseException) -> Violation:
    code = getattr(exc, "trap_code", None)
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return Violation(ViolationKind.FUEL, hook, "used its whole fuel budget")
    if code == wasmtime.TrapCode.INTERRUPT:
        return Violation(ViolationKind.DEADLINE, hook, "ran past its time limit")
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return Violation(ViolationKind.TRAP, hook, "wasm stack overflow")
    return Violation(ViolationKind.TRAP, hook, _trap_text(exc))


def _trap_text(exc: BaseException) -> str:
    """The cause of a trap and where it happened, from wasmtime's report.

    wasmtime's message starts with "error while executing at wasm backtrace:",
    which says nothing; the cause comes after "Caused by:".
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    cause = next(
        (ln.removeprefix("wasm trap: ") for ln in lines if ln.startswith("wasm trap:")), None
    )
    frame = next((ln.split(" - ", 1)[1] for ln in lines if " - " in ln and ln[:1].isdigit()), None)
    if cause is None:
        return lines[-1] if lines else type(exc).__name__
    return f"{cause} (in {frame})" if frame else cause


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
