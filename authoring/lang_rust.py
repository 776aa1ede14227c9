"""Rust plugins: Cargo with Debian's toolchain, and the SDK crate in sdk/rust.

    detect    a Cargo.toml
    build     cargo build --offline --release --target wasm32-unknown-unknown,
              on a staged copy (below); the wasm is the cdylib Cargo.toml names
    skeleton  Cargo.toml (a path dependency on this checkout's SDK, by absolute
              path), src/lib.rs, .cargo/config.toml and .gitignore

The toolchain is Debian 12's (packages rustc, cargo, libstd-rust-dev-wasm32
and lld-14, the wasm linker that libstd-rust-dev-wasm32 only recommends):
/usr/bin/cargo with RUSTC=/usr/bin/rustc, named by path because a rustup
rustc earlier on PATH may lack the wasm32 target, and because the hashes the
examples pin are those of that compiler (rustc 1.63).

Why a staged copy: cargo gives a path dependency that lies outside the
plugin's directory (the SDK, at ../../sdk/rust/... or an absolute path) its
absolute path, both in panic messages and in the crate hash that orders the
wasm's functions. The same source built from two checkouts would differ, and
a pinned wasm_sha256 would hold on one machine only. So the build copies the
plugin to a temporary directory, copies each path dependency inside that copy
(`.path-deps/NAME`), points the copied Cargo.toml files at them, and builds
there: the wasm then depends on the sources and the compiler only, not on
where they are. Cargo's output stays in the plugin's own target/ and the
Cargo.lock cargo writes is copied back. A plain `cargo build` in the plugin
directory works too, but gives other bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import tomlkit

from authoring.toolchain import BuildFailed, ToolchainMissing, run_tool
from ruvector.atomic import atomic_write
from ruvector.errors import HostFault

CARGO = Path("/usr/bin/cargo")
RUSTC = Path("/usr/bin/rustc")
LINKER = Path("/usr/bin/rust-lld")  # rustc's link to lld-14; dangling without it
TARGET = "wasm32-unknown-unknown"
DEBIAN_PACKAGES = "rustc cargo libstd-rust-dev-wasm32 lld-14"
SDK_DIR = Path(__file__).resolve().parent.parent / "sdk" / "rust" / "ruvector-plugin-sdk"

_STAGED_DEPS = ".path-deps"  # inside the staged plugin: its path dependencies
_DEPENDENCY_TABLES = ("dependencies", "build-dependencies", "dev-dependencies")
_NOT_COPIED = shutil.ignore_patterns("target", ".git")
# The caller's environment must not change the bytes: these would (flags,
# wrappers, profiles, a target dir elsewhere). CARGO_HOME stays: it holds
# the user's offline crate cache.
_BUILD_ENV = ("RUSTFLAGS", "RUSTDOCFLAGS", "RUSTC", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER")


class RustToolchain:
    name = "rust"

    def detect(self, directory: Path) -> bool:
        return (directory / "Cargo.toml").is_file()

    def build(self, directory: Path) -> bytes:
        """Build the cdylib of `directory`'s Cargo.toml for wasm32 (release).

        Raises ToolchainMissing (naming the Debian packages) when cargo,
        rustc, the wasm linker or the wasm32 standard library is missing;
        BuildFailed for a Cargo.toml without a cdylib, a path dependency that
        cannot be read, or a compile error (with cargo's output); HostFault
        when Cargo.lock cannot be written back.
        """
        _check_installed()
        directory = directory.resolve()
        lib = _cdylib_name(directory / "Cargo.toml")
        target_dir = directory / "target"
        with tempfile.TemporaryDirectory(prefix="ruvector-rust-") as tmp:
            staged = _stage(directory, Path(tmp))
            run_tool(
                [str(CARGO), "build", "--offline", "--release", "--target", TARGET],
                cwd=staged,
                what=f"the Rust plugin in {directory}",
                env=_build_env(target_dir),
            )
            _copy_back_lock(staged, directory)
        wasm = target_dir / TARGET / "release" / f"{lib}.wasm"
        try:
            return wasm.read_bytes()
        except OSError as exc:
            raise BuildFailed(f"cargo built no {wasm}: {exc.strerror or exc}") from None

    def skeleton(self, name: str) -> Mapping[str, str]:
        """A plugin that logs its greeting at start-up and memory and CPU use each tick.

        Its Cargo.toml names this checkout's SDK by absolute path. Raises
        ToolchainMissing when this ruvector has no SDK beside it (an
        installed package rather than a source checkout).
        """
        if not (SDK_DIR / "Cargo.toml").is_file():
            raise ToolchainMissing(
                f"the Rust plugin SDK is not at {SDK_DIR}: `plugin new --lang rust` "
                "needs a source checkout of ruvector"
            )
        return {
            "Cargo.toml": _skeleton_cargo_toml(name, SDK_DIR.as_posix()),
            "src/lib.rs": _SKELETON_LIB.replace("NAME", name),
            ".cargo/config.toml": CARGO_CONFIG,
            ".gitignore": "/target/\n",
        }


TOOLCHAIN = RustToolchain()


def _check_installed() -> None:
    # is_file() follows links: a rust-lld whose lld-14 is missing counts as missing.
    missing = [str(p) for p in (CARGO, RUSTC, LINKER) if not p.is_file()]
    if missing:
        raise ToolchainMissing(
            f"{' and '.join(missing)} not found: Rust plugins are built with Debian's "
            f"toolchain: apt-get install {DEBIAN_PACKAGES}"
        )
    printed = run_tool(
        [str(RUSTC), "--print", "target-libdir", "--target", TARGET],
        cwd=Path(tempfile.gettempdir()),
        what="Rust plugins",
    ).splitlines()
    libdir = printed[-1] if printed else ""
    if not libdir or not any(Path(libdir).glob("libstd-*.rlib")):
        raise ToolchainMissing(
            f"{RUSTC} has no standard library for {TARGET} (looked in {libdir}): "
            f"apt-get install {DEBIAN_PACKAGES}"
        )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BuildFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildFailed(f"{path}: not valid TOML: {exc}") from None


def _cdylib_name(cargo_toml: Path) -> str:
    """The file name cargo gives the wasm, without `.wasm`."""
    doc = _read_toml(cargo_toml)
    lib = doc.get("lib", {})
    package = doc.get("package", {})
    if not isinstance(lib, dict) or "cdylib" not in lib.get("crate-type", []):
        raise BuildFailed(
            f'{cargo_toml}: [lib] needs crate-type = ["cdylib"] for cargo to build a wasm module'
        )
    name = lib.get("name") or (package.get("name") if isinstance(package, dict) else None)
    if not isinstance(name, str) or not name:
        raise BuildFailed(f"{cargo_toml}: no [package] name")
    return name.replace("-", "_")


def _build_env(target_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _BUILD_ENV and not (k.startswith("CARGO_") and k != "CARGO_HOME")
    }
    env.update(RUSTC=str(RUSTC), CARGO_TARGET_DIR=str(target_dir))
    return env


def _stage(directory: Path, into: Path) -> Path:
    """Copy the plugin and its path dependencies under `into`; the copy's root.

    Raises BuildFailed when the plugin or a path dependency cannot be read.
    """
    root = into / "plugin"
    try:
        shutil.copytree(directory, root, ignore=_NOT_COPIED, symlinks=True)
        _relink(root, directory, root / _STAGED_DEPS, {})
    except (OSError, shutil.Error, tomlkit.exceptions.TOMLKitError) as exc:
        raise BuildFailed(f"cannot copy {directory} and its path dependencies: {exc}") from None
    return root


def _relink(package: Path, origin: Path, deps: Path, staged: dict[Path, Path]) -> None:
    """Point the path dependencies of `package` (a copy of `origin`) at copies in `deps`."""
    manifest = package / "Cargo.toml"
    doc = tomlkit.parse(manifest.read_text(encoding="utf-8"))
    for table in _dependency_tables(doc):
        for spec in table.values():
            if not isinstance(spec, MutableMapping) or not isinstance(spec.get("path"), str):
                continue
            source = (origin / spec["path"]).resolve()
            copy = staged.get(source)
            if copy is None:
                copy = _copy_dependency(source, deps, staged)
                _relink(copy, source, deps, staged)
            spec["path"] = Path(os.path.relpath(copy, package)).as_posix()
    if package.parent != deps and "workspace" not in doc:
        # The copy is a workspace of its own, wherever the temporary directory is.
        doc["workspace"] = tomlkit.table()
    manifest.write_text(tomlkit.dumps(doc), encoding="utf-8")


def _dependency_tables(doc: Any) -> list[MutableMapping[str, Any]]:
    places = [doc, *doc.get("target", {}).values()]
    return [
        place[name]
        for place in places
        if isinstance(place, MutableMapping)
        for name in _DEPENDENCY_TABLES
        if isinstance(place.get(name), MutableMapping)
    ]


def _copy_dependency(source: Path, deps: Path, staged: dict[Path, Path]) -> Path:
    # Named after its directory: the name is part of the wasm (panic messages),
    # so it must not depend on where the source lives.
    copy, n = deps / source.name, 1
    while copy.exists():
        n += 1
        copy = deps / f"{source.name}-{n}"
    if not (source / "Cargo.toml").is_file():
        raise BuildFailed(f"path dependency {source} has no Cargo.toml")
    shutil.copytree(source, copy, ignore=_NOT_COPIED, symlinks=True)
    staged[source] = copy
    return copy


def _copy_back_lock(staged: Path, directory: Path) -> None:
    lock = staged / "Cargo.lock"
    if not lock.is_file():
        return
    data = lock.read_bytes()
    mine = directory / "Cargo.lock"
    try:
        if not mine.is_file() or mine.read_bytes() != data:
            atomic_write(mine, data)
    except OSError as exc:
        raise HostFault(f"cannot write {mine}: {exc.strerror or exc}") from exc


CARGO_CONFIG = """\
# `cargo build --release` builds for the plugin host by default.
[build]
target = "wasm32-unknown-unknown"

# Linear memory may grow to 64 MiB (ABI v1's default cap, docs/abi.md 2.3):
# growing past it then fails (rv_alloc returns 0) instead of overrunning the
# cap, which the host would count as a violation.
[target.wasm32-unknown-unknown]
rustflags = ["-C", "link-arg=--max-memory=67108864"]
"""

_PROFILE = """\
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"  # a panic traps: a violation (see the SDK's README)
strip = true
"""


def _skeleton_cargo_toml(name: str, sdk: str) -> str:
    # tomlkit quotes the path as TOML needs (a Windows path has backslashes).
    sdk_path = tomlkit.string(sdk).as_string()
    return f"""\
[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
# The SDK of the ruvector checkout that made this plugin (`ruvector plugin
# new`). If that checkout moves, change this path.
ruvector-plugin-sdk = {{ path = {sdk_path} }}

{_PROFILE}
# A workspace of its own, even inside another project's directory.
[workspace]
"""


_SKELETON_LIB = """\
//! NAME: logs a greeting at start-up, and the machine's memory and CPU use
//! every tick (capability ReadSystemInfo).
//!
//! Build: `ruvector plugin build .`; try: `ruvector dev run .`.
//! The SDK's README (sdk/rust/ruvector-plugin-sdk) shows every host function.

use ruvector_plugin_sdk::{self as rv, ruvector_plugin, Global};

#[derive(Default)]
struct State {
    ticks: u64,
}

static STATE: Global<State> = Global::new();

fn init() {
    let greeting = match rv::get_config("greeting") {
        Ok(Some(text)) => text,
        _ => "hello".to_string(),
    };
    rv::info(&greeting);
}

fn tick(_interval_ms: u32) {
    let n = STATE.with(|s| {
        s.ticks += 1;
        s.ticks
    });
    let memory = match rv::get_memory_status() {
        Ok(m) => format!("{:.1}% used", m.percent),
        Err(e) => format!("unknown ({})", e),
    };
    let cpu = match rv::get_cpu_usage() {
        Ok(percent) => format!("{:.0}%", percent),
        Err(e) => format!("unknown ({})", e),
    };
    rv::info(&format!("tick {}: memory {}, cpu {}", n.unwrap_or(0), memory, cpu));
}

ruvector_plugin! {
    on_init: init,
    on_tick: tick,
}
"""
