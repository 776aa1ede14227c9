"""Compiled-module cache under state/, holding only what this host compiled.

Deserializing a module is running native code, so a cache entry is trusted
only if this host wrote it: each entry carries an HMAC under a per-host key
(state/cache/host.key, created on first use, mode 0600). An entry copied from
elsewhere, truncated or edited fails the check, is deleted and the module is
compiled afresh. The key of an entry is the wasm's SHA-256 and the engine
fingerprint (wasmtime version and engine settings), since compiled code is
only valid for the engine that made it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

import wasmtime

from ruvector.atomic import atomic_write

log = logging.getLogger(__name__)

_MAC_LEN = 32


class ModuleCache:
    def __init__(self, directory: Path, engine: wasmtime.Engine, fingerprint: str) -> None:
        self._dir = directory
        self._engine = engine
        self.engine = engine  # loader.Compiler
        self._fingerprint = fingerprint
        self._key = _host_key(directory / "host.key")
        self.hits = 0
        self.misses = 0

    def compile(self, wasm: bytes, sha256: str) -> wasmtime.Module:
        """Return the module for `wasm`, from the cache when a valid entry exists.

        `sha256` must be the caller-verified hash of `wasm`. Raises
        wasmtime.WasmtimeError if the bytes do not compile.
        """
        path = self._dir / f"{sha256}-{self._fingerprint}.cwasm"
        module = self._load(path, sha256)
        if module is not None:
            self.hits += 1
            return module
        self.misses += 1
        module = wasmtime.Module(self._engine, wasm)
        self._store(path, sha256, module)
        return module

    def _mac(self, sha256: str, blob: bytes) -> bytes:
        msg = self._fingerprint.encode() + b"\0" + sha256.encode() + b"\0" + blob
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def _load(self, path: Path, sha256: str) -> wasmtime.Module | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        mac, blob = data[:_MAC_LEN], data[_MAC_LEN:]
        if len(data) <= _MAC_LEN or not hmac.compare_digest(mac, self._mac(sha256, blob)):
            log.warning("discarding compiled-module cache entry %s: not written by this host", path)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return wasmtime.Module.deserialize(self._engine, blob)

    def _store(self, path: Path, sha256: str, module: wasmtime.Module) -> None:
        blob = bytes(module.serialize())
        try:
            atomic_write(path, self._mac(sha256, blob) + blob, mode=0o600)
        except OSError as exc:  # a read-only or full disk costs speed, not function
            log.warning("cannot write compiled-module cache %s: %s", path, exc)


def _host_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, key, mode=0o600)
    os.chmod(path, 0o600)
    return key
