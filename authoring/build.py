"""`ruvector plugin build DIR`: source -> wasm, its hash pinned, checked as the host will.

    build_plugin(directory) -> Built

1. find the plugin's language by its files (authoring/lang_*.py);
2. build it with that language's toolchain (release mode);
3. write the wasm where manifest.toml's `wasm_file` says and pin its
   sha256 in `wasm_sha256` (the rest of the manifest, comments included,
   is kept as written);
4. check the result as `registry add` and the executor do: the manifest
   and config schema validate, and the wasm's imports are ABI v1 host
   functions whose capabilities the manifest declares.

A failed check leaves the new wasm and hash in place (they are what the
source builds to) and says what to fix.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from authoring.toolchain import Toolchain
from reconciler.bundle import Bundle, bundle_from_dir
from reconciler.manifest import MANIFEST_NAME
from ruvector.atomic import atomic_write
from ruvector.errors import ConfigError, HostFault, InputError

LANGUAGES = ("rust", "assemblyscript", "c")  # what `--lang` takes, in detection order


@dataclass(frozen=True)
class Built:
    bundle: Bundle  # the plugin as built and checked
    language: str
    wasm_path: Path
    size: int
    sha256: str


def toolchain(language: str) -> Toolchain:
    """The toolchain for `language`. Raises InputError for an unknown one."""
    if language not in LANGUAGES:
        raise InputError(f"unknown language '{language}': expected one of {', '.join(LANGUAGES)}")
    module = importlib.import_module(f"authoring.lang_{language}")
    chain: Toolchain = module.TOOLCHAIN
    return chain


def detect(directory: Path) -> Toolchain:
    """The toolchain whose files `directory` holds. Raises InputError if none."""
    for language in LANGUAGES:
        chain = toolchain(language)
        if chain.detect(directory):
            return chain
    raise InputError(
        f"{directory}: no plugin source found (Cargo.toml for Rust, package.json with "
        "assemblyscript for AssemblyScript, or a .c file for C); "
        "`ruvector plugin new NAME --lang LANG` makes one"
    )


def build_plugin(directory: Path) -> Built:
    """Build the plugin in `directory`, pin its hash, and check it (see the module doc)."""
    chain = detect(directory)
    wasm = chain.build(directory)
    manifest_path = directory / MANIFEST_NAME
    wasm_path = directory / _wasm_file(manifest_path)
    sha = hashlib.sha256(wasm).hexdigest()
    _write(wasm_path, wasm)
    _pin(manifest_path, sha)
    bundle = bundle_from_dir(directory, check_host=False)
    # The executor's own load-time checks, so a plugin that builds here loads there.
    from registry.repository import check_loadable

    check_loadable(bundle)
    return Built(bundle, chain.name, wasm_path, len(wasm), sha)


def _wasm_file(manifest_path: Path) -> str:
    doc = _manifest(manifest_path)
    name = doc.get("wasm_file")
    if not isinstance(name, str) or not name:
        raise ConfigError(str(manifest_path), "wasm_file", "missing: name the wasm file to write")
    return name


def _pin(manifest_path: Path, sha: str) -> None:
    doc = _manifest(manifest_path)
    doc["wasm_sha256"] = sha
    _write(manifest_path, tomlkit.dumps(doc).encode())


def _manifest(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read it: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise HostFault(f"cannot write {path}: {exc.strerror or exc}") from exc
