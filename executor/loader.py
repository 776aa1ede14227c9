"""Checks a plugin's wasm before any of its code runs.

Order matters and is the module's contract:
1. the bytes are binary wasm (wasmtime would parse anything else as WAT);
2. their SHA-256 is the one the manifest pinned, computed on these very bytes,
   which are the ones compiled: the path is never read again;
3. they compile;
4. every import is a known `ruvector` function with its exact signature,
   whose capability is granted;
5. the exports ABI v1 requires are there with their signatures, and the
   memory's initial size fits the cap.
Only then may the module be instantiated (executor.sandbox).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import wasmtime

from executor.spec import PluginSpec
from executor.wasm_sections import SectionError, count_sections
from hostcalls.abi import (
    HOST_FUNCTIONS,
    IMPORT_MODULE,
    LIFECYCLE_EXPORTS,
    REQUIRED_EXPORTS,
    Export,
)
from hostcalls.capabilities import Grant
from ruvector.errors import PluginRefused

WASM_MAGIC = b"\0asm\x01\0\0\0"
MAX_WASM_BYTES = 16 * 1024 * 1024
PAGE = 65536

# What a module may declare, checked before compiling (see wasm_sections).
# Generous for real plugins: a Rust plugin with its std has a few thousand
# functions; compile time and memory grow with the function count.
MODULE_LIMITS = {
    "functions": 50_000,
    "imports": 256,
    "exports": 1_024,
    "globals": 10_000,
    "data": 100_000,
    "tables": 4,
    "memories": 1,
}


@dataclass(frozen=True)
class CheckedModule:
    """A module that passed every check, with what it imports and exports."""

    module: wasmtime.Module
    imports: tuple[str, ...]  # host function names
    hooks: frozenset[str]  # lifecycle exports present


class Compiler(Protocol):
    """What compiles a checked wasm: the executor's ModuleCache, or DirectCompiler."""

    engine: wasmtime.Engine

    def compile(self, wasm: bytes, sha256: str) -> wasmtime.Module: ...


class DirectCompiler:
    """Compiles without a cache: for checking a plugin that is not to be run here."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self.engine = engine

    def compile(self, wasm: bytes, sha256: str) -> wasmtime.Module:
        return wasmtime.Module(self.engine, wasm)


def check_module(spec: PluginSpec, grant: Grant, cache: Compiler) -> CheckedModule:
    """Run checks 1-5 on `spec.wasm`. Raises PluginRefused naming what failed."""
    _check_bytes(spec)
    sha = hashlib.sha256(spec.wasm).hexdigest()
    if sha != spec.wasm_sha256.lower():
        raise PluginRefused(
            spec.name,
            f"wasm SHA-256 mismatch: the manifest's wasm_sha256 is {spec.wasm_sha256}, "
            f"the wasm file's is {sha}",
        )
    _check_counts(spec)
    try:
        module = cache.compile(spec.wasm, sha)
    except wasmtime.WasmtimeError as exc:
        raise PluginRefused(spec.name, _compile_failure(cache, spec.wasm, exc)) from None
    imports = _check_imports(spec.name, module, grant)
    hooks = _check_exports(spec, module)
    return CheckedModule(module, imports, hooks)


def _check_bytes(spec: PluginSpec) -> None:
    data = spec.wasm
    if len(data) > MAX_WASM_BYTES:
        raise PluginRefused(spec.name, f"wasm is {len(data)} bytes; the limit is {MAX_WASM_BYTES}")
    if data[:4] != WASM_MAGIC[:4]:
        what = "WAT text" if b"(module" in data[:4096] else "not a wasm binary"
        raise PluginRefused(spec.name, f"{what}: only binary WebAssembly modules are accepted")
    if data[:8] != WASM_MAGIC:
        raise PluginRefused(
            spec.name, "not a core wasm module of version 1 (components are not supported)"
        )


def _check_counts(spec: PluginSpec) -> None:
    try:
        counts = count_sections(spec.wasm)
    except SectionError as exc:
        raise PluginRefused(spec.name, f"malformed wasm: {exc}") from None
    for what, cap in MODULE_LIMITS.items():
        if counts.get(what) > cap:
            raise PluginRefused(
                spec.name, f"the module declares {counts.get(what)} {what}; the limit is {cap}"
            )


def _compile_failure(cache: Compiler, wasm: bytes, exc: Exception) -> str:
    """Malformed wasm, or valid wasm the host had no room to compile.

    wasmtime reports both as one error type; validating (which maps no
    code) tells them apart, so a host out of memory or of memory mappings
    (4 to 6 per loaded plugin; vm.max_map_count on Linux) is not blamed on
    the plugin.
    """
    try:
        wasmtime.Module.validate(cache.engine, wasm)
    except wasmtime.WasmtimeError:
        return f"malformed wasm: {_cause(exc)}"
    return (
        f"valid wasm, but the host could not compile it: {_cause(exc)} "
        "(out of memory, or of memory mappings: see vm.max_map_count on Linux)"
    )


def _cause(exc: Exception) -> str:
    """wasmtime's message with its "Caused by" lines, on one line."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln and ln != "Caused by:"]
    lines = [ln.split(": ", 1)[1] if ln[:1].isdigit() and ": " in ln else ln for ln in lines]
    return ": ".join(lines) if lines else type(exc).__name__


def _sig(t: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in t.params), tuple(str(r) for r in t.results)


def _fmt(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def _check_imports(plugin: str, module: wasmtime.Module, grant: Grant) -> tuple[str, ...]:
    granted = grant.kinds()
    names: list[str] = []
    for imp in module.imports:
        where = f"import {imp.module}.{imp.name}"
        if imp.module != IMPORT_MODULE:
            raise PluginRefused(plugin, f"{where}: only module '{IMPORT_MODULE}' can be imported")
        fn = HOST_FUNCTIONS.get(imp.name or "")
        if fn is None:
            raise PluginRefused(plugin, f"{where}: no such host function in ABI v1")
        if not isinstance(imp.type, wasmtime.FuncType):
            raise PluginRefused(plugin, f"{where}: must be imported as a function")
        if _sig(imp.type) != (fn.params, fn.results):
            raise PluginRefused(
                plugin,
                f"{where} has signature {_fmt(*_sig(imp.type))}; "
                f"ABI v1 defines {_fmt(fn.params, fn.results)}",
            )
        if fn.capability is not None and fn.capability not in granted:
            raise PluginRefused(plugin, _missing_capability(where, fn.capability.value, grant))
        if fn.name not in names:  # a module may import a function twice
            names.append(fn.name)
    return tuple(names)


def _missing_capability(where: str, cap: str, grant: Grant) -> str:
    pending = [str(c) for c in grant.pending if c.kind.value == cap]
    if pending:
        return f"{where} needs capability {cap}, declared but not approved: approve {pending[0]}"
    return f"{where} needs capability {cap}, which the manifest does not declare"


def _check_exports(spec: PluginSpec, module: wasmtime.Module) -> frozenset[str]:
    exports = {e.name: e.type for e in module.exports}
    _check_memory(spec, exports.get("memory"))
    for want in REQUIRED_EXPORTS.values():
        if want.name not in exports:
            raise PluginRefused(
                spec.name,
                f"missing required export '{want.name}' {_fmt(want.params, want.results)}",
            )
        _check_export_sig(spec.name, want, exports[want.name])
    hooks = set()
    for want in LIFECYCLE_EXPORTS.values():
        if want.name in exports:
            _check_export_sig(spec.name, want, exports[want.name])
            hooks.add(want.name)
    return frozenset(hooks)


def _check_export_sig(plugin: str, want: Export, got: object) -> None:
    if not isinstance(got, wasmtime.FuncType):
        raise PluginRefused(plugin, f"export '{want.name}' must be a function")
    if _sig(got) != (want.params, want.results):
        raise PluginRefused(
            plugin,
            f"export '{want.name}' has signature {_fmt(*_sig(got))}; "
            f"ABI v1 requires {_fmt(want.params, want.results)}",
        )


def _check_memory(spec: PluginSpec, mem: object) -> None:
    if mem is None:
        raise PluginRefused(spec.name, "missing required export 'memory'")
    if not isinstance(mem, wasmtime.MemoryType):
        raise PluginRefused(spec.name, "export 'memory' must be a linear memory")
    if mem.is_64 or mem.is_shared:
        raise PluginRefused(spec.name, "export 'memory' must be a 32-bit unshared memory")
    cap = spec.limits.max_memory_mb * 1024 * 1024
    initial = mem.limits.min * PAGE
    if initial > cap:
        mib = initial // (1024 * 1024)
        raise PluginRefused(
            spec.name, f"initial memory is {mib} MiB; the cap is {spec.limits.max_memory_mb} MiB"
        )
