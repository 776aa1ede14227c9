"""The executor's hot path: wasmtime's C API without per-call conversion.

wasmtime-py's high-level API asks the C API for a function's type on every
call and converts each argument and result through it, and wraps every host
call in Caller and Val objects: about 12 µs a call and 7 µs a host call on
our 2-core machines. The C API's unchecked entry points take raw values
(`wasmtime_func_call_unchecked`, `wasmtime_linker_define_func_unchecked`),
and with prototypes whose arguments are plain addresses ctypes passes Python
ints straight through: about 1 µs a metered call and well under 1 µs a host
call (BENCHMARKS.md, issue 6).

"Unchecked" means wasmtime trusts us about types: the wrong arity or type is
memory corruption, not an error. So this module calls only exports whose
type it checked against ABI v1 when it bound them (the loader checked them
on the module too), and defines host functions only with the type ABI v1
gives them; wasmtime checks a module's imports against that type when it
instantiates.

The layouts used here (wasmtime_val_raw_t, wasmtime_func_t, wasmtime_extern_t,
the callback's signature) belong to one wasmtime major version, which
pyproject pins; `unsupported()` says why the fast path cannot run on another,
and the sandbox then uses the reference binding (executor.binding), whose
behaviour tests/test_fastpath.py checks this one against.
"""

from __future__ import annotations

import ctypes
import typing
from collections.abc import Mapping
from ctypes import CFUNCTYPE, c_char_p, c_double, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from typing import Any

import wasmtime

try:  # wasmtime-py's private bindings: another version may lack them
    from wasmtime import _ffi as ffi
except ImportError:  # pragma: no cover - unsupported() reports it
    ffi = None  # type: ignore[assignment]

from executor.binding import CheckedMemory, Handler, Meter, func_type
from executor.engine import wasmtime_version
from hostcalls.abi import IMPORT_MODULE, LIFECYCLE_EXPORTS, REQUIRED_EXPORTS, Export, HostFunction

WASMTIME_MAJOR = 50  # keep in step with the wasmtime pin in pyproject.toml

_MAX_SLOTS = 4  # the most arguments any ABI v1 export or host function takes
_RAW_TYPES: dict[str, type[c_int32] | type[c_int64] | type[c_double]] = {
    "i32": c_int32,
    "i64": c_int64,
    "f64": c_double,
}
_EXPORT_TYPES: dict[str, Export] = {**REQUIRED_EXPORTS, **LIFECYCLE_EXPORTS}
# call() and run() read and write every argument and result as an i32.
assert all(t == "i32" for e in _EXPORT_TYPES.values() for t in (*e.params, *e.results))


def unsupported() -> str | None:
    """Why the fast path cannot run with the installed wasmtime, or None.

    The version first; then whether this wasmtime-py has every private part
    the fast path uses, since a patch release may move one: a missing one
    sends the executor to the reference binding, never to a crash.
    """
    version = wasmtime_version()
    if version.split(".")[0] != str(WASMTIME_MAJOR):
        return f"wasmtime {version} is installed; the fast path is built for {WASMTIME_MAJOR}.x"
    if _LOAD_ERROR is not None:
        return f"wasmtime {version}: {_LOAD_ERROR}"
    missing = [name for name, present in _private_parts() if not present]
    if missing:
        return f"wasmtime {version} lacks what the fast path uses: {', '.join(missing)}"
    if _RAW != 16:
        return f"wasmtime_val_raw_t is {_RAW} bytes; the fast path expects 16"
    return None


def _private_parts() -> list[tuple[str, bool]]:
    """wasmtime-py's private attributes the fast path reads, and whether each is there."""
    return [
        ("Store._context", hasattr(wasmtime.Store, "_context")),
        ("Linker.ptr", hasattr(wasmtime.Linker, "ptr")),
        ("FuncType.ptr", hasattr(wasmtime.FuncType, "ptr")),
        ("Func._func", "_func" in getattr(wasmtime.Func, "__annotations__", {})),
        ("Memory._memory", "_memory" in getattr(wasmtime.Memory, "__annotations__", {})),
        ("Trap._from_ptr", hasattr(wasmtime.Trap, "_from_ptr")),
        ("WasmtimeError._from_ptr", hasattr(wasmtime.WasmtimeError, "_from_ptr")),
        ("FuncType._from_ptr", hasattr(wasmtime.FuncType, "_from_ptr")),
    ]


# Our own prototypes over wasmtime's library: addresses as c_void_p, so no
# per-call conversion. Never change the argtypes of wasmtime-py's own
# function objects: they are shared with everything else in the process.
def _proto(name: str, restype: Any, *argtypes: Any, gil: bool = False) -> Any:
    """A prototype; `gil` keeps the GIL held through the call (PYFUNCTYPE).

    Calls that run wasm must release the GIL: the epoch ticker is a Python
    thread, and a plugin spinning in a loop is stopped only if it can run.
    Calls that only read or set a field of the store keep it, which saves
    the release and re-acquire (a tenth of their cost).
    """
    kind = ctypes.PYFUNCTYPE if gil else CFUNCTYPE
    return kind(restype, *argtypes)((name, ffi.dll))


# Bound when the module is imported. A library without one of these symbols
# (another wasmtime) leaves _LOAD_ERROR set, and unsupported() says so.
_LOAD_ERROR: str | None = None
try:
    _RAW = ctypes.sizeof(ffi.wasmtime_val_raw_t)  # one argument or result slot
    _call = _proto(  # runs wasm: releases the GIL
        "wasmtime_func_call_unchecked", c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p
    )
    _set_fuel = _proto("wasmtime_context_set_fuel", c_void_p, c_void_p, c_uint64, gil=True)
    _get_fuel = _proto("wasmtime_context_get_fuel", c_void_p, c_void_p, c_void_p, gil=True)
    _set_deadline = _proto(
        "wasmtime_context_set_epoch_deadline", None, c_void_p, c_uint64, gil=True
    )
    _data = _proto("wasmtime_memory_data", c_void_p, c_void_p, c_void_p, gil=True)
    _data_size = _proto("wasmtime_memory_data_size", c_size_t, c_void_p, c_void_p, gil=True)
    _caller_context = _proto("wasmtime_caller_context", c_void_p, c_void_p, gil=True)
    _caller_export = _proto(
        "wasmtime_caller_export_get",
        ctypes.c_bool,
        c_void_p,
        c_char_p,
        c_size_t,
        c_void_p,
        gil=True,
    )
    _trap_new = _proto("wasmtime_trap_new", c_void_p, c_char_p, c_size_t, gil=True)
    _Callback = CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_void_p, c_size_t)
    _define = _proto(
        "wasmtime_linker_define_func_unchecked",
        c_void_p,
        c_void_p,
        c_char_p,
        c_size_t,
        c_char_p,
        c_size_t,
        c_void_p,
        _Callback,
        c_void_p,
        c_void_p,
    )
    _EXTERN_FUNC = int(ffi.WASMTIME_EXTERN_FUNC.value)
    _EXTERN_MEMORY = int(ffi.WASMTIME_EXTERN_MEMORY.value)
except (AttributeError, OSError, TypeError) as exc:  # pragma: no cover - another wasmtime
    _LOAD_ERROR = f"its C library or bindings lack what the fast path calls ({exc})"

_ABORTED = b"host function aborted the call"


def _addr(obj: Any) -> int:
    return ctypes.cast(obj, c_void_p).value or 0


class _Slots:
    """A buffer of raw value slots and int32 views of its first ones."""

    def __init__(self) -> None:
        self.buf = (ctypes.c_uint8 * (_RAW * _MAX_SLOTS))()
        # Addresses are kept as ctypes objects: passed as they are, they save
        # ctypes a conversion per argument per call.
        self.addr = c_void_p(ctypes.addressof(self.buf))
        self.i32 = [c_int32.from_buffer(self.buf, _RAW * i) for i in range(_MAX_SLOTS)]
        self.first = self.i32[0]
        self.trap = c_void_p()
        self.trap_addr = c_void_p(ctypes.addressof(self.trap))


class _Func:
    """An export checked against ABI v1, ready for unchecked calls."""

    __slots__ = ("addr", "func", "nargs", "nslots", "result")

    def __init__(self, func: wasmtime.Func, want: Export) -> None:
        self.func = func  # keeps the wasmtime_func_t alive
        self.addr = c_void_p(ctypes.addressof(func._func))
        self.nargs = len(want.params)
        self.nslots = c_size_t(max(len(want.params), len(want.results), 1))
        self.result = bool(want.results)


class _RawMemory(CheckedMemory):
    """CheckedMemory over the caller of the current unchecked host call."""

    def __init__(self, binding: FastBinding) -> None:
        super().__init__()
        self._binding = binding
        self.caller = 0  # wasmtime_caller_t* of the current host call
        self._slots = _Slots()  # rv_alloc's, apart from the hook call's
        # One out-param per kind: the memory's must not be overwritten by
        # looking up rv_alloc while it is in use.
        self._externs = {
            _EXTERN_MEMORY: ffi.wasmtime_extern_t(),
            _EXTERN_FUNC: ffi.wasmtime_extern_t(),
        }

    def _context(self) -> int:
        return int(_caller_context(self.caller))

    def _memory(self) -> int:
        mem = self._binding.memory_addr
        if mem:
            return mem
        # During instantiation (a start function's host call): ask the caller.
        return ctypes.addressof(self._lookup(b"memory", _EXTERN_MEMORY).memory)

    def _lookup(self, name: bytes, kind: int) -> Any:
        ext = self._externs[kind]
        if not _caller_export(self.caller, name, len(name), ctypes.addressof(ext)):
            raise wasmtime.WasmtimeError(f"the instance has no export {name.decode()}")
        if typing.cast(int, ext.kind) != kind:
            raise wasmtime.WasmtimeError(f"export {name.decode()} has the wrong kind")
        return ext.of

    def _start_alloc(self) -> int:
        """rv_alloc during a start function, looked up through the caller.

        Its type is checked before the unchecked call, as _bind checks the
        exports it keeps: a wrong one would abort the process, not trap.
        """
        func = self._lookup(b"rv_alloc", _EXTERN_FUNC).func
        ctx = ctypes.cast(self._context(), ctypes.POINTER(ffi.wasmtime_context_t))
        ftype = wasmtime.FuncType._from_ptr(ffi.wasmtime_func_type(ctx, ctypes.byref(func)), None)
        want = REQUIRED_EXPORTS["rv_alloc"]
        if _signature(ftype) != (want.params, want.results):
            raise wasmtime.WasmtimeError("export rv_alloc does not have the type of ABI v1")
        return ctypes.addressof(func)

    def _size(self) -> int:
        return int(_data_size(self._context(), self._memory()))

    def _read(self, ptr: int, length: int) -> bytes:
        base = _data(self._context(), self._memory()) or 0
        return ctypes.string_at(base + ptr, length)

    def _write(self, ptr: int, data: bytes) -> None:
        base = _data(self._context(), self._memory()) or 0
        ctypes.memmove(base + ptr, data, len(data))

    def _alloc(self, size: int) -> int:
        alloc = self._binding.alloc_addr or self._start_alloc()
        slots = self._slots
        slots.i32[0].value = size
        err = _call(self._context(), alloc, slots.addr, 1, slots.trap_addr)
        if err or slots.trap.value:
            self._binding.raise_failure(err, slots)
        return slots.i32[0].value


class FastBinding:
    """The Binding of executor.binding through wasmtime's C API.

    Holds raw addresses into the store: valid until close(), which the
    sandbox calls before it closes the store.
    """

    def __init__(self, store: wasmtime.Store, meter: Meter) -> None:
        self.store = store
        self.meter = meter
        self._metered = meter.fuel is not None
        # As ctypes objects, passed as they are: see _Slots.
        self._budget = c_uint64(meter.fuel or 0)
        self._ticks = c_uint64(meter.ticks)
        self._ctx = c_void_p(_addr(store._context()))
        self._funcs: dict[str, _Func] = {}
        self._callbacks: list[Any] = []  # alive as long as the store may call them
        self._slots = _Slots()
        self._fuel = c_uint64()
        self._fuel_addr = c_void_p(ctypes.addressof(self._fuel))
        self.exports: dict[str, Any] = {}  # as the instance gave them
        self.memory = _RawMemory(self)
        self.memory_addr = 0
        self._memory = c_void_p(0)  # memory_addr, for calls
        self.alloc_addr = 0
        self.pending: BaseException | None = None  # a host function's exception

    # -- linking -------------------------------------------------------------

    def define(self, linker: wasmtime.Linker, fn: HostFunction, handler: Handler) -> None:
        (result,) = fn.results  # every ABI v1 host function returns one value
        callback = _Callback(self._host_call(fn, handler, _RAW_TYPES[result]))
        self._callbacks.append(callback)
        module, name = IMPORT_MODULE.encode(), fn.name.encode()
        ftype = func_type(fn)
        err = _define(
            _addr(linker.ptr()), module, len(module), name, len(name), _addr(ftype.ptr()),
            callback, None, None,
        )  # fmt: skip
        if err:
            _raise_error(err)

    def _host_call(
        self,
        fn: HostFunction,
        handler: Handler,
        out: type[c_int32] | type[c_int64] | type[c_double],
    ) -> Any:
        mem, name = self.memory, fn.name
        params = tuple((_RAW_TYPES[p], _RAW * i) for i, p in enumerate(fn.params))
        # ctypes would take an int or a bool for an f64; wasmtime-py refuses
        # them, and so does this, so a host bug shows alike in both.
        floats = out is c_double

        # Everything is caught: an exception must not unwind through wasm.
        # It is kept and raised again once the call is back in Python, as
        # wasmtime-py's own trampoline does.
        def host_call(env: int, caller: int, raw: int, n: int) -> int:
            try:
                mem.enter(name)
                mem.caller = caller
                if params:
                    value = handler(mem, *[t.from_address(raw + at).value for t, at in params])
                else:
                    value = handler(mem)
                if floats and not isinstance(value, float):
                    raise TypeError(f"{name} returned {type(value).__name__}, not float")
                out.from_address(raw).value = value
                return 0
            except BaseException as exc:  # handed back to the caller
                self.pending = exc
                return int(_trap_new(_ABORTED, len(_ABORTED)) or 0)

        return host_call

    def instantiate(self, linker: wasmtime.Linker, module: wasmtime.Module) -> None:
        try:
            instance = linker.instantiate(self.store, module)
        except (wasmtime.Trap, wasmtime.WasmtimeError):
            self._raise_pending()
            raise
        self._bind(dict(instance.exports(self.store)))

    def _bind(self, exports: Mapping[str, Any]) -> None:
        """Keep the exports we will call unchecked, once their types are checked."""
        self.exports = dict(exports)
        for name, want in _EXPORT_TYPES.items():
            fn = exports.get(name)
            if fn is None:
                continue
            if not isinstance(fn, wasmtime.Func) or _signature(fn.type(self.store)) != (
                want.params,
                want.results,
            ):
                raise wasmtime.WasmtimeError(f"export {name} does not have the type of ABI v1")
            self._funcs[name] = _Func(fn, want)
        mem = exports.get("memory")
        if not isinstance(mem, wasmtime.Memory):
            raise wasmtime.WasmtimeError("the instance exports no linear memory")
        self.memory_addr = ctypes.addressof(mem._memory)
        self._memory = c_void_p(self.memory_addr)
        alloc = self._funcs.get("rv_alloc")
        if alloc is None:
            raise wasmtime.WasmtimeError("the instance exports no rv_alloc")
        self.alloc_addr = ctypes.addressof(alloc.func._func)

    # -- calls ---------------------------------------------------------------

    def arm(self, deadline: bool) -> None:
        ctx = self._live()
        if self._metered and (err := _set_fuel(ctx, self._budget)):
            _raise_error(err)
        if deadline:
            _set_deadline(ctx, self._ticks)

    def disarm(self) -> tuple[int, int]:
        ctx, left = self._live(), 0
        if self._metered:
            if err := _get_fuel(ctx, self._fuel_addr):
                _raise_error(err)
            left = self._fuel.value
        return left, (_data_size(ctx, self._memory) if self.memory_addr else 0)

    def _live(self) -> c_void_p:
        """The store's context; ValueError once closed (a NULL would crash)."""
        if not self._ctx.value:
            raise ValueError("the store is closed")
        return self._ctx

    def call(self, export: str, *args: int) -> int | None:
        fn, slots = self._funcs[export], self._slots
        if len(args) != fn.nargs:  # an unchecked call must never get this wrong
            raise TypeError(f"{export} takes {fn.nargs} arguments, not {len(args)}")
        for view, value in zip(slots.i32, args, strict=False):
            view.value = value
        err = _call(self._live(), fn.addr, slots.addr, fn.nslots, slots.trap_addr)
        if err or slots.trap.value:
            self.raise_failure(err, slots)
        return slots.first.value if fn.result else None

    def run(self, deadline: bool, export: str, args: tuple[int, ...]) -> tuple[int, int]:
        # arm(), call() and disarm() in one frame: this is every plugin's
        # every tick, where each Python call and attribute read shows.
        fn, slots, ctx = self._funcs[export], self._slots, self._ctx
        n = len(args)
        if n != fn.nargs:
            raise TypeError(f"{export} takes {fn.nargs} arguments, not {n}")
        metered = self._metered
        if metered and (err := _set_fuel(ctx, self._budget)):
            _raise_error(err)
        if deadline:
            _set_deadline(ctx, self._ticks)
        if n == 1:
            slots.first.value = args[0]
        else:
            for view, value in zip(slots.i32, args, strict=False):
                view.value = value
        err = _call(ctx, fn.addr, slots.addr, fn.nslots, slots.trap_addr)
        if err or slots.trap.value:
            self.raise_failure(err, slots)
        if metered:
            if err := _get_fuel(ctx, self._fuel_addr):
                _raise_error(err)
            return self._fuel.value, _data_size(ctx, self._memory)
        return 0, _data_size(ctx, self._memory)

    def raise_failure(self, err: int | None, slots: _Slots) -> None:
        """Raise what a failed call raises in the reference binding."""
        trap, slots.trap.value = slots.trap.value, None
        failure: Exception
        if err:
            failure = _error(err)
        else:
            failure = wasmtime.Trap._from_ptr(
                ctypes.cast(trap or 0, ctypes.POINTER(ffi.wasm_trap_t))
            )
        self._raise_pending()
        raise failure

    def _raise_pending(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            raise pending

    def memory_size(self) -> int:
        return int(_data_size(self._ctx, self._memory)) if self.memory_addr else 0

    def write(self, ptr: int, data: bytes) -> None:
        ctx = self._live()
        if not self.memory_addr:
            raise ValueError("no instance: nothing to write to")
        base = _data(ctx, self._memory) or 0
        ctypes.memmove(base + ptr, data, len(data))

    def close(self) -> None:
        """Close the store; the callbacks go only once it can no longer call them."""
        self._funcs, self.exports = {}, {}
        self.memory_addr = self.alloc_addr = 0
        self._ctx = self._memory = c_void_p(0)
        self.store.close()
        self._callbacks = []
        self.pending = None


def _signature(ftype: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(map(str, ftype.params)), tuple(map(str, ftype.results))


def _error(err: int) -> wasmtime.WasmtimeError:
    """wasmtime's error, owned (and freed) by the Python object."""
    return wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)))


def _raise_error(err: int) -> typing.NoReturn:
    raise _error(err)
