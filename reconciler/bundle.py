"""A plugin bundle (.rvp): one zip file holding everything a plugin ships.

Its members are flat names at the top of the zip:

    manifest.toml        required
    <wasm_file>          required; the manifest names it
    <config_schema>      when the manifest names one
    manifest.toml.sig    optional detached signature (carried; verified on install)
    README.md            optional

A bundle comes from a user or a registry, so open_bundle treats it as
hostile. It reads the zip in memory and never extracts anything to disk; it
refuses links, directories, encrypted members, names that are not on the
list above (so no absolute paths, `..`, backslashes or drive letters), and
duplicates, which zipfile itself allows. The sizes in the zip's headers are
checked first but never trusted: every member is read with a bounded read,
so a zip bomb stops at its member's cap.

The digest is the sha256 of the canonical content, not of the zip: one line
`<name>\\0<sha256 of the member>\\n` per member in sorted name order. The same
plugin packed twice, or loaded from its directory, has the same digest.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import stat
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler._validation import key_path, read_capped, size_text
from reconciler.config_schema import MAX_SCHEMA_BYTES, parse_config_schema
from reconciler.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest, parse_manifest
from reconciler.plugin_dir import MAX_WASM_BYTES, path_inside
from reconciler.store import digest_of
from ruvector.atomic import atomic_write
from ruvector.errors import ConfigError, HostFault

MAX_BUNDLE_BYTES = 32 * 1024 * 1024  # of the .rvp file
MAX_MEMBERS = 16
MAX_TOTAL_BYTES = 48 * 1024 * 1024  # uncompressed, all members together
MAX_MEMBER_BYTES = 256 * 1024  # README.md and manifest.toml.sig
SIGNATURE_NAME = "manifest.toml.sig"
README_NAME = "README.md"

# What the manifest may name as a member: one plain file name, portable to
# every platform's file system.
_FLAT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
_UNIX = 3  # ZipInfo.create_system: external_attr holds a unix mode
_MS_DOS_DIRECTORY = 0x10  # in the low byte of external_attr
_ENCRYPTED = 0x1  # in ZipInfo.flag_bits
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# What a malformed zip makes zipfile raise; translated here and nowhere else.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError)


@dataclass(frozen=True)
class _Member:
    cap: int  # bytes, uncompressed
    key: str  # the manifest key naming it, or "" for a fixed name


@dataclass(frozen=True)
class Bundle:
    """A plugin's files, checked: made by bundle_from_dir or open_bundle."""

    manifest: Manifest
    files: Mapping[str, bytes]  # member name -> content
    origin: str  # the directory or .rvp file it came from, for messages

    @functools.cached_property
    def digest(self) -> str:
        """sha256 hex of the canonical content (see the module docstring)."""
        return digest_of(self.files)  # the store addresses artifacts by the same digest

    def wasm(self) -> bytes:
        return self.files[self.manifest.wasm_file]

    def config_schema(self) -> dict[str, Any] | None:
        """The plugin's config schema, or None if the manifest names none.

        Raises ConfigError as parse_config_schema does.
        """
        name = self.manifest.config_schema
        if name is None:
            return None
        # Checked against the metaschema once per bundle, not once per use.
        cached: dict[str, Any] | None = self.__dict__.get("_schema")
        if cached is None:
            cached = parse_config_schema(self.files[name], self._where(name))
            object.__setattr__(self, "_schema", cached)
        return cached

    def readme(self) -> str | None:
        """README.md, or None if the plugin has none.

        Raises ConfigError when it is not UTF-8 text.
        """
        raw = self.files.get(README_NAME)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise ConfigError(self._where(README_NAME), "", "not valid UTF-8 text", line) from None

    def _where(self, name: str) -> str:
        return str(self.manifest.directory / name)


def load_source(path: Path) -> Bundle:
    """A plugin from a directory (bundle_from_dir) or a .rvp file (open_bundle)."""
    return bundle_from_dir(path) if path.is_dir() else open_bundle(path)


def bundle_from_dir(directory: Path, *, check_host: bool = True) -> Bundle:
    """Read a plugin directory into a Bundle, checking it as open_bundle would.

    Reads manifest.toml, the wasm, the config schema if the manifest names
    one, and README.md and manifest.toml.sig if present. With `check_host`
    False, a plugin for another platform or a newer ruvector is accepted
    (for packing it). Raises ConfigError for a bad manifest or config
    schema, a file missing, over its cap or led outside `directory` by a
    symlink, a manifest name a bundle cannot hold, or a wasm whose sha256
    is not the manifest's wasm_sha256; PluginRefused (with `check_host`)
    as load_manifest does.
    """
    manifest_file = str(directory / MANIFEST_NAME)
    path = path_inside(directory, MANIFEST_NAME, manifest_file, "")
    raw = read_capped(path, MAX_MANIFEST_BYTES, manifest_file, "")
    manifest = parse_manifest(raw, manifest_file, directory, check_host=check_host)
    files = {MANIFEST_NAME: raw}
    for name, member in _members(manifest).items():
        if name == MANIFEST_NAME:
            continue
        path = directory / name
        if not member.key and not path.exists() and not path.is_symlink():
            continue  # an optional file, absent
        # A fixed name's problems are its own file's; a manifest-named one's are the manifest's.
        file = manifest_file if member.key else str(path)
        files[name] = read_capped(
            path_inside(directory, name, file, member.key), member.cap, file, member.key
        )
    return _checked(manifest, files, str(directory))


def write_bundle(bundle: Bundle, out: Path) -> None:
    """Write `bundle` to `out` as a .rvp zip, atomically and deterministically.

    Members are sorted, with a fixed time, mode and compression, so packing
    the same plugin twice gives the same bytes. Raises HostFault when `out`
    cannot be written.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(bundle.files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.create_system = _UNIX  # the default depends on the OS packing
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, bundle.files[name], compresslevel=9)
    try:
        atomic_write(out, buffer.getvalue())
    except OSError as exc:
        raise HostFault(f"cannot write {out}: {exc.strerror or exc}") from exc


def open_bundle(path: Path, *, check_host: bool = True) -> Bundle:
    """Read and check a .rvp file, in memory: nothing is extracted to disk.

    Raises ConfigError (file = `path`, key = the member's name) for a file
    that is over MAX_BUNDLE_BYTES or not a zip; more than MAX_MEMBERS
    members or over MAX_TOTAL_BYTES in all; a member that is absolute, has
    `..`, a backslash, a drive letter or NUL in its name, is a directory, a
    link or another non-regular file, is encrypted or compressed other than
    by deflate, appears twice, is not one the manifest allows, or is over
    its cap (as declared or as it decompresses) or corrupt; a missing
    manifest, wasm or config schema. Then what bundle_from_dir raises about
    the content (file = `path`/manifest.toml and so on). With `check_host`
    False, a bundle for another platform or a newer ruvector is accepted
    (a registry serves every platform).
    """
    raw = read_capped(path, MAX_BUNDLE_BYTES, str(path), "")
    return bundle_from_bytes(raw, path, check_host=check_host)


def bundle_from_bytes(raw: bytes, path: Path, *, check_host: bool = True) -> Bundle:
    """open_bundle of bytes already read (e.g. downloaded), named `path` in errors."""
    file = str(path)
    if len(raw) > MAX_BUNDLE_BYTES:
        raise ConfigError(file, "", f"larger than the {size_text(MAX_BUNDLE_BYTES)} cap")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except _ZIP_ERRORS as exc:
        raise ConfigError(file, "", f"not a plugin bundle (a zip file): {exc}") from None
    with zf:
        infos = _directory(zf.infolist(), file)
        if MANIFEST_NAME not in infos:
            raise ConfigError(file, key_path((MANIFEST_NAME,)), "missing from the bundle")
        raw_manifest = _read(zf, infos[MANIFEST_NAME], MAX_MANIFEST_BYTES, file)
        manifest = parse_manifest(
            raw_manifest, str(path / MANIFEST_NAME), path, check_host=check_host
        )
        members = _members(manifest)
        for name in infos:
            if name not in members:
                allowed = ", ".join(sorted(members))
                raise ConfigError(
                    file, key_path((name,)), f"not a member a bundle may hold ({allowed})"
                )
        files = {name: _read(zf, info, members[name].cap, file) for name, info in infos.items()}
    return _checked(manifest, files, file)


def _directory(infos: list[zipfile.ZipInfo], file: str) -> dict[str, zipfile.ZipInfo]:
    """The zip's members by name, each checked alone, before any is read."""
    if len(infos) > MAX_MEMBERS:
        raise ConfigError(file, "", f"{len(infos)} members; a bundle holds at most {MAX_MEMBERS}")
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        raise ConfigError(
            file,
            "",
            f"members declare {total} bytes in all, over the {MAX_TOTAL_BYTES >> 20} MiB limit",
        )
    found: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        # orig_filename: zipfile cuts `filename` at a NUL, hiding it.
        name = info.orig_filename
        problem = _name_problem(name) or _kind_problem(info)
        if problem is None and name in found:
            problem = "appears twice in the bundle"
        if problem is not None:
            raise ConfigError(file, key_path((name,)), problem)
        found[name] = info
    return found


def _name_problem(name: str) -> str | None:
    if "\0" in name:
        return "a member name may not hold a NUL byte"
    if "\\" in name:
        return "a member name may not hold a backslash"
    if name.startswith("/"):
        return "a member name may not be an absolute path"
    if _DRIVE.match(name):
        return "a member name may not start with a drive letter"
    if ".." in name.split("/"):
        return "a member name may not hold '..' (it would lead outside)"
    return None


def _kind_problem(info: zipfile.ZipInfo) -> str | None:
    # The mode is checked whatever create_system says: some extractors
    # honour a unix mode from any system, so a link mode is refused always.
    kind = stat.S_IFMT(info.external_attr >> 16)
    if info.is_dir() or kind == stat.S_IFDIR or info.external_attr & _MS_DOS_DIRECTORY:
        return "directories are not allowed in a bundle"
    if kind == stat.S_IFLNK:
        return "symbolic links are not allowed in a bundle"
    if kind not in (0, stat.S_IFREG):
        return "only regular files are allowed in a bundle"
    if info.flag_bits & _ENCRYPTED:
        return "encrypted members are not allowed"
    if info.compress_type not in _METHODS:
        return f"compression method {info.compress_type} is not allowed (only stored or deflate)"
    return None


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, file: str) -> bytes:
    """A member's bytes; never more than `cap` are decompressed."""
    key = key_path((info.orig_filename,))
    if info.file_size > cap:
        raise ConfigError(
            file, key, f"declares {info.file_size} bytes, over its {size_text(cap)} cap"
        )
    try:
        with zf.open(info) as member:
            # zipfile stops at the declared size and checks the CRC; cap + 1
            # bounds the read even if that ever changes.
            data = member.read(cap + 1)
    except _ZIP_ERRORS as exc:
        raise ConfigError(file, key, f"corrupt member: {exc}") from None
    if len(data) > cap:
        raise ConfigError(file, key, f"expands past its {size_text(cap)} cap")
    return data


def _members(manifest: Manifest) -> dict[str, _Member]:
    """Each name a bundle of `manifest` may hold, with its cap.

    Raises ConfigError (the manifest's wasm_file or config_schema) for a
    name that is not flat or is taken by another member.
    """
    members = {
        MANIFEST_NAME: _Member(MAX_MANIFEST_BYTES, ""),
        SIGNATURE_NAME: _Member(MAX_MEMBER_BYTES, ""),
        README_NAME: _Member(MAX_MEMBER_BYTES, ""),
    }
    named = [("wasm_file", manifest.wasm_file, MAX_WASM_BYTES)]
    if manifest.config_schema is not None:
        named.append(("config_schema", manifest.config_schema, MAX_SCHEMA_BYTES))
    for key, name, cap in named:
        if not _FLAT_NAME.match(name):
            raise ConfigError(
                str(manifest.path),
                key,
                f"a bundle holds only plain file names (letters, digits, '.', '_', '-') "
                f"beside manifest.toml, not '{name}'",
            )
        if name in members:
            raise ConfigError(str(manifest.path), key, f"'{name}' names another member")
        members[name] = _Member(cap, key)
    return members


def _checked(manifest: Manifest, files: dict[str, bytes], origin: str) -> Bundle:
    """A Bundle, once its content agrees with its manifest."""
    for key, name in (("wasm_file", manifest.wasm_file), ("config_schema", manifest.config_schema)):
        if name is not None and name not in files:
            raise ConfigError(origin, key_path((name,)), f"missing; the manifest's {key} names it")
    actual = hashlib.sha256(files[manifest.wasm_file]).hexdigest()
    if actual != manifest.wasm_sha256:
        raise ConfigError(
            str(manifest.path),
            "wasm_sha256",
            f"{manifest.wasm_file} has sha256 {actual}, the manifest says {manifest.wasm_sha256}",
        )
    bundle = Bundle(manifest, MappingProxyType(dict(sorted(files.items()))), origin)
    # Parsed now, so a bundle that opens has a usable schema and README.
    bundle.config_schema()
    bundle.readme()
    return bundle
