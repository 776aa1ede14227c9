"""A plugin's manifest.toml: what it is, what it needs, where its code is.

The manifest is written by the plugin's author, so it is untrusted input:
it is size-capped, checked against schemas/manifest.schema.json, and its
paths must stay inside the plugin directory. A valid manifest for another
platform or a newer ruvector is refused (PluginRefused), not an error in the
file.
"""

from __future__ import annotations

import enum
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import ruvector
from hostcalls.capabilities import Capability
from reconciler._validation import (
    Document,
    KeyPath,
    parse_capabilities,
    parse_document,
    read_capped,
)
from ruvector.errors import PluginRefused

MAX_MANIFEST_BYTES = 64 * 1024
MANIFEST_NAME = "manifest.toml"

_SEMVER = re.compile(
    # ASCII digits only (\d matches other scripts'); numeric pre-release
    # identifiers without leading zeros, as semver requires.
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?"
)


class Platform(enum.Enum):
    LINUX = "linux"
    MACOS = "macos"
    WINDOWS = "windows"


_SYS_PLATFORMS = {"linux": Platform.LINUX, "darwin": Platform.MACOS, "win32": Platform.WINDOWS}


def current_platform() -> Platform | None:
    """This host's platform, or None on one no plugin can target (e.g. FreeBSD)."""
    return _SYS_PLATFORMS.get(sys.platform)


@dataclass(frozen=True)
class Manifest:
    """A validated manifest.toml. Paths are relative to `directory`."""

    directory: Path  # what holds manifest.toml: the plugin directory or its bundle
    name: str
    version: str
    author: str
    description: str
    license: str
    capabilities: frozenset[Capability]
    min_ruvector_version: str
    platforms: frozenset[Platform]
    wasm_file: str
    wasm_sha256: str  # 64 lowercase hex digits, checked by the executor
    homepage: str | None = None
    config_schema: str | None = None
    signature: str | None = None  # carried; verified by the installer

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST_NAME


def load_manifest(path: Path) -> Manifest:
    """Load and check a plugin's manifest.toml.

    Raises ConfigError (file = `path`, key = the manifest key, e.g.
    `capabilities[2]`) for unreadable, malformed or invalid manifests, and
    PluginRefused for a valid one that needs a newer ruvector or another
    platform.
    """
    raw = read_capped(path, MAX_MANIFEST_BYTES, str(path), "")
    return parse_manifest(raw, str(path), path.parent)


def parse_manifest(raw: bytes, file: str, directory: Path, *, check_host: bool = True) -> Manifest:
    """Check the bytes of a manifest.toml, named `file` in errors.

    `directory` is what holds the manifest (a plugin directory, or a bundle)
    and becomes Manifest.directory. The caller bounds the size of `raw`
    (MAX_MANIFEST_BYTES). Raises ConfigError as load_manifest does, reading
    aside, and PluginRefused likewise unless `check_host` is False: packing
    a plugin for another platform must not need that platform.
    """
    doc = parse_document(raw, file, "manifest.schema.json")
    data = doc.data
    for key in ("wasm_file", "config_schema"):
        if key in data:
            _check_relative(doc, (key,), data[key])
    manifest = Manifest(
        directory=directory,
        name=data["name"],
        version=data["version"],
        author=data["author"],
        description=data["description"],
        license=data["license"],
        capabilities=parse_capabilities(data["capabilities"], ("capabilities",), doc.error),
        min_ruvector_version=data["min_ruvector_version"],
        platforms=frozenset(Platform(p) for p in data["platforms"]),
        wasm_file=data["wasm_file"],
        wasm_sha256=data["wasm_sha256"],
        homepage=data.get("homepage"),
        config_schema=data.get("config_schema"),
        signature=data.get("signature"),
    )
    if check_host:
        _check_compatible(manifest)
    return manifest


def _check_relative(doc: Document, at: KeyPath, text: str) -> None:
    # Windows parsing is the stricter one: it treats "/" and "\" both as
    # separators and sees drives, so "C:x", "\\x" and "a\..\.." are caught too.
    pure = PureWindowsPath(text)
    if pure.anchor or ".." in pure.parts:
        raise doc.error(at, f"expected a relative path inside the plugin directory, got '{text}'")


def _check_compatible(manifest: Manifest) -> None:
    if semver_key(manifest.min_ruvector_version) > semver_key(ruvector.__version__):
        raise PluginRefused(
            manifest.name,
            f"it needs ruvector >= {manifest.min_ruvector_version} and this is "
            f"{ruvector.__version__} ({manifest.path}: min_ruvector_version)",
        )
    here = current_platform()
    if here not in manifest.platforms:
        wanted = ", ".join(sorted(p.value for p in manifest.platforms))
        raise PluginRefused(
            manifest.name,
            f"it runs on {wanted}, not on {here.value if here else sys.platform} "
            f"({manifest.path}: platforms)",
        )


def semver_key(version: str) -> tuple[int, int, int, bool, tuple[tuple[int, int, str], ...]]:
    """A sort key giving semver precedence (build metadata is not accepted).

    Raises ValueError for text that is not x.y.z[-pre].
    """
    m = _SEMVER.fullmatch(version)
    if m is None:
        raise ValueError(f"'{version}' is not a version x.y.z[-pre]")
    pre = m.group(4)
    # A pre-release sorts before its release; within one, numeric
    # identifiers compare as numbers and sort before alphanumeric ones.
    pre_key = tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in (pre.split(".") if pre else ())
    )
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre is None, pre_key
