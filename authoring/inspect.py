"""`ruvector plugin inspect FILE`: what a plugin is, needs and says of itself.

FILE is a plugin directory, a .rvp bundle, or a bare .wasm. The wasm is
compiled (not run) to list its imports and exports; its ABI version is the
value its `rv_abi_version` returns, called in a throwaway store whose host
functions all trap, with a small fuel budget. Nothing of the host is
reachable from there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from executor.engine import EngineSettings, make_engine
from hostcalls.abi import HOST_FUNCTIONS
from reconciler.bundle import Bundle, bundle_from_dir, open_bundle
from reconciler.signature import SignatureRefused, signer_of
from ruvector.errors import InputError

_FUEL = 1_000_000  # plenty for `return 1`, little for anything else
_MAX_MEMORY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Inspected:
    bundle: Bundle | None  # None for a bare .wasm
    wasm_size: int
    wasm_sha256: str
    imports: tuple[tuple[str, str], ...]  # (module, name)
    exports: tuple[str, ...]
    needed: tuple[str, ...]  # capabilities the imports need
    abi_version: str  # the value, or why it is unknown
    signature: str  # who signed, or "unsigned", or why it is broken


def inspect_plugin(path: Path) -> Inspected:
    """Inspect a plugin directory, a .rvp or a .wasm. Raises InputError if unreadable."""
    bundle: Bundle | None = None
    if path.is_dir():
        bundle = bundle_from_dir(path, check_host=False)
        wasm = bundle.wasm()
    elif path.suffix == ".wasm":
        try:
            wasm = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    else:
        bundle = open_bundle(path, check_host=False)
        wasm = bundle.wasm()
    engine = make_engine(EngineSettings())
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise InputError(f"{path}: not a valid wasm module: {exc}") from None
    imports = tuple((i.module, i.name or "") for i in module.imports)
    needed = sorted(
        {
            HOST_FUNCTIONS[n].capability.value  # type: ignore[union-attr]
            for m, n in imports
            if m == "ruvector" and n in HOST_FUNCTIONS and HOST_FUNCTIONS[n].capability
        }
    )
    return Inspected(
        bundle=bundle,
        wasm_size=len(wasm),
        wasm_sha256=hashlib.sha256(wasm).hexdigest(),
        imports=imports,
        exports=tuple(e.name for e in module.exports),
        needed=tuple(needed),
        abi_version=_abi_version(engine, module),
        signature=_signature(bundle),
    )


def _abi_version(engine: wasmtime.Engine, module: wasmtime.Module) -> str:
    if "rv_abi_version" not in {e.name for e in module.exports}:
        return "none: it does not export rv_abi_version (the host refuses it)"
    store = wasmtime.Store(engine)
    store.set_fuel(_FUEL)
    store.set_epoch_deadline(1_000_000)
    store.set_limits(memory_size=_MAX_MEMORY)
    linker = wasmtime.Linker(engine)
    for imp in module.imports:
        ty = imp.type
        if isinstance(ty, wasmtime.FuncType):
            linker.define_func(imp.module, imp.name or "", ty, _trap)
    try:
        instance = linker.instantiate(store, module)
        fn = instance.exports(store)["rv_abi_version"]
        assert isinstance(fn, wasmtime.Func)
        return str(fn(store))
    except (wasmtime.WasmtimeError, wasmtime.Trap, AssertionError) as exc:
        return f"unknown: calling it failed ({str(exc).splitlines()[0]})"


def _trap(*args: object) -> None:
    raise wasmtime.Trap("inspect: host functions are not available")


def _signature(bundle: Bundle | None) -> str:
    if bundle is None:
        return "none (a bare wasm carries no signature)"
    try:
        signer = signer_of(bundle)
    except SignatureRefused as exc:
        return f"broken: {exc.reason}"
    return f"signed by {signer}" if signer else "unsigned"
