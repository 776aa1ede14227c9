"""One plugin instance in its own wasmtime Store, and every call into it.

The sandbox owns the store, the instance and the binding of host functions;
each call runs under a fresh fuel budget and an epoch deadline (armed
again when the epoch has moved since the last call), and comes
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
from typing import NamedTuple

import wasmtime

from executor import fastpath
from executor.binding import U32, Api, Binding, Meter, ReferenceBinding
from executor.engine import EpochTicker, deadline_ticks
from executor.fastpath import FastBinding
from executor.loader import PAGE, CheckedModule
from executor.spec import PluginSpec
from hostcalls.abi import ABI_VERSION, HOST_FUNCTIONS
from hostcalls.guest import FaultKind, GuestAborted, GuestFault
from hostcalls.host import PluginHost
from ruvector.errors import PluginRefused

log = logging.getLogger(__name__)

# Looked up once: the call path reads the clocks three times a call.
_monotonic, _perf_counter = time.monotonic, time.perf_counter


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


class CallResult(NamedTuple):
    """What one call did. A NamedTuple: built on every call, and a frozen
    dataclass costs four times as much to build."""

    hook: str
    elapsed_s: float
    fuel_used: int
    host_calls: int
    violation: Violation | None = None
    host_error: str | None = None  # a host bug aborted the call: not the plugin's strike


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
        api: Api = "fast",
    ) -> None:
        self.spec = spec
        self.checked = checked
        self.host = host
        self.api = api
        self._engine = engine
        self._ticker = ticker
        self._fuel = fuel
        self._ticks = deadline_ticks(spec.limits.max_call_ms)
        self._call_s = spec.limits.max_call_ms / 1000
        self._budget = spec.limits.fuel_per_call
        self._memory_cap = spec.limits.max_memory_mb * 1024 * 1024
        self._binding: Binding | None = None
        self._armed_epoch: int | None = None
        self.poisoned = True  # no instance yet

    # -- instance lifetime ---------------------------------------------------

    def start(self) -> CallResult:
        """Instantiate (running any start function) and check the ABI version.

        Returns the result of the instantiation call (which may carry a
        Violation). Raises PluginRefused if the instance cannot be made
        within the limits or declares another ABI version.
        """
        self.close()
        store = wasmtime.Store(self._engine)
        # One page of slack: a memory found above the cap after a call is a
        # violation we can see, where a failed memory.grow would be silent.
        store.set_limits(
            memory_size=self._memory_cap + PAGE,
            table_elements=self.spec.limits.max_table_elements,
            instances=1,
            tables=4,
            memories=1,
        )
        meter = Meter(self._budget if self._fuel else None, self._ticks)
        binding = self._binding = make_binding(self.api, store, meter)
        self._armed_epoch = None  # a new store's deadline is "now"
        try:
            linker = self._linker(binding)
        except wasmtime.WasmtimeError as exc:
            raise PluginRefused(self.spec.name, f"cannot link: {_first_line(exc)}") from None
        result = self._run("instantiate", self._instantiate, binding, linker)
        if result.violation is None:
            result = self._check_abi(binding)
        self.poisoned = result.violation is not None
        return result

    def _instantiate(self, binding: Binding, linker: wasmtime.Linker) -> None:
        try:
            binding.instantiate(linker, self.checked.module)
        except wasmtime.Trap:
            raise
        except wasmtime.WasmtimeError as exc:
            raise PluginRefused(self.spec.name, f"cannot instantiate: {_first_line(exc)}") from None

    def _check_abi(self, binding: Binding) -> CallResult:
        box: list[int | None] = []
        result = self._run("rv_abi_version", lambda: box.append(binding.call("rv_abi_version")))
        if result.violation is None and box[0] != ABI_VERSION:
            raise PluginRefused(
                self.spec.name, f"declares ABI version {box[0]}; this host supports {ABI_VERSION}"
            )
        return result

    def close(self) -> None:
        if self._binding is not None:
            self._binding.close()
            self._binding = None
        self.poisoned = True

    # -- calls ---------------------------------------------------------------

    def has(self, hook: str) -> bool:
        return hook in self.checked.hooks

    def call(self, hook: str, *args: int) -> CallResult:
        """Call a lifecycle export with integer arguments."""
        # _run's check inlined: the hot path, and going through _run (a frame
        # and the arguments packed again) costs a tenth of a dispatch.
        if self._ticker.active:
            return self._metered(hook, None, args)
        return self._run(hook, None, *args)

    def call_with_text(self, hook: str, text: str, *args: int) -> CallResult:
        """Call a hook whose first two arguments are a string the host allocates."""
        return self._run(hook, self._text_call, hook, text.encode(), *args)

    def _text_call(self, hook: str, data: bytes, *args: int) -> None:
        binding = self._binding
        assert binding is not None
        ptr = (binding.call("rv_alloc", max(len(data), 1)) or 0) & U32
        if ptr == 0 or ptr + len(data) > binding.memory_size():
            raise GuestFault(
                FaultKind.BAD_ALLOCATOR, hook, f"rv_alloc returned {ptr:#x} for the argument"
            )
        binding.write(ptr, data)
        binding.call(hook, ptr, len(data), *args)

    def memory_bytes(self) -> int:
        return 0 if self._binding is None else self._binding.memory_size()

    def _run(self, hook: str, fn: Callable[..., object] | None, *args: object) -> CallResult:
        if self._ticker.active:  # inside Executor.tick's span: the epoch moves already
            return self._metered(hook, fn, args)
        with self._ticker.running():
            return self._metered(hook, fn, args)

    def _metered(
        self, hook: str, fn: Callable[..., object] | None, args: tuple[object, ...]
    ) -> CallResult:
        """One call under fresh fuel and its deadline, counted and checked after.

        `fn` None calls export `hook` with `args`. The executor's hot path
        (every plugin, every tick), so it is kept flat.
        """
        binding = self._binding
        assert binding is not None, "the sandbox is started"
        # The deadline is an epoch number: while the epoch has not moved since
        # the last call armed it, arming it again would set the same number.
        epoch, deadline = self._ticker.epoch, False
        if epoch != self._armed_epoch:
            self._armed_epoch, deadline = epoch, True
        self.host.begin_call(_monotonic() + self._call_s)
        violation, host_error = None, None
        start = _perf_counter()
        try:
            if fn is None:
                fuel_left, memory = binding.run(deadline, hook, args)  # type: ignore[arg-type]
            else:
                binding.arm(deadline)
                fn(*args)
                fuel_left, memory = binding.disarm()
        except Exception as exc:
            violation, host_error = self._failure(hook, exc)
            fuel_left, memory = binding.disarm()
        elapsed = _perf_counter() - start
        if memory > self._memory_cap:
            violation = Violation(
                ViolationKind.MEMORY,
                hook,
                f"linear memory grew past the cap of {self.spec.limits.max_memory_mb} MiB",
            )
        if violation is not None or host_error is not None:
            self.poisoned = True  # the call stopped part-way: rebuild the instance
        fuel_used = self._budget - fuel_left if self._fuel else 0
        return CallResult(
            hook, elapsed, fuel_used, self.host.counters.host_calls, violation, host_error
        )

    def _failure(self, hook: str, exc: Exception) -> tuple[Violation | None, str | None]:
        """What a call that raised `exc` did: a violation, or a host error."""
        if isinstance(exc, GuestFault):
            return Violation(ViolationKind.HOSTCALL, hook, str(exc)), None
        if isinstance(exc, GuestAborted):
            return _classify(hook, exc.cause), None
        if isinstance(exc, (wasmtime.Trap, wasmtime.WasmtimeError)):
            return _classify(hook, exc), None
        if isinstance(exc, PluginRefused):
            raise exc
        # A host bug surfaced through the call.
        log.error("host error in %s of plugin %s", hook, self.spec.name, exc_info=exc)
        return None, f"{type(exc).__name__}: {exc}"

    # -- binding -------------------------------------------------------------

    def _linker(self, binding: Binding) -> wasmtime.Linker:
        """A linker with exactly the host functions this module imports.

        The loader already refused any import whose capability is not granted,
        so nothing beyond the grant can be linked.
        """
        linker = wasmtime.Linker(self._engine)
        for name in self.checked.imports:
            binding.define(linker, HOST_FUNCTIONS[name], getattr(self.host, name))
        return linker


def make_binding(api: Api, store: wasmtime.Store, meter: Meter) -> Binding:
    if api == "fast":
        return FastBinding(store, meter)
    return ReferenceBinding(store, meter)


def resolve_api(api: Api) -> tuple[Api, str | None]:
    """The binding to use, and why it is not the one asked for (or None).

    The fast path, unless the installed wasmtime does not fit it.
    """
    why = fastpath.unsupported() if api == "fast" else None
    if why is not None:
        log.warning("using wasmtime-py's high-level API, which is slower: %s", why)
        return "reference", why
    return api, None


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
