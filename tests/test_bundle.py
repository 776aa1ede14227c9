"""Plugin bundles (.rvp): packing, opening, and refusing hostile zips.

Hostile bundles are built here with zipfile, patching header bytes where
zipfile will not write what an attacker would (a NUL in a name, a lying
size, the encrypted flag).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import stat
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import tomlkit
from click.testing import CliRunner

from reconciler.bundle import (
    MAX_BUNDLE_BYTES,
    Bundle,
    bundle_from_dir,
    load_source,
    open_bundle,
    write_bundle,
)
from reconciler.manifest import Platform, current_platform
from ruvector.cli.main import cli
from ruvector.errors import ConfigError, PluginRefused

HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello"
MANIFEST = (HELLO / "manifest.toml").read_bytes()
WASM = (HELLO / "plugin.wasm").read_bytes()
SCHEMA = (HELLO / "config.schema.json").read_bytes()
GOOD = {"manifest.toml": MANIFEST, "plugin.wasm": WASM, "config.schema.json": SCHEMA}
MiB = 1024 * 1024


def hello_copy(tmp_path: Path, **changes: object) -> Path:
    """A copy of examples/hello whose manifest has `changes` applied."""
    directory = tmp_path / "hello"
    shutil.copytree(HELLO, directory)
    manifest = tomlkit.parse(MANIFEST.decode())
    manifest.update(changes)
    (directory / "manifest.toml").write_text(tomlkit.dumps(manifest))
    return directory


def tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.lstat().st_size) for p in root.rglob("*"))


# --- packing and opening ---------------------------------------------------


def test_round_trip_keeps_files_and_digest(tmp_path: Path) -> None:
    directory = hello_copy(tmp_path)
    (directory / "manifest.toml.sig").write_bytes(b"a detached signature")
    (directory / "notes.txt").write_text("not part of the plugin")
    packed = bundle_from_dir(directory)
    write_bundle(packed, tmp_path / "hello.rvp")
    opened = open_bundle(tmp_path / "hello.rvp")
    assert dict(opened.files) == dict(packed.files)
    assert set(opened.files) == {*GOOD, "README.md", "manifest.toml.sig"}
    assert opened.digest == packed.digest
    assert opened.origin == str(tmp_path / "hello.rvp")
    assert opened.manifest.directory == tmp_path / "hello.rvp"
    assert opened.wasm() == WASM
    assert opened.config_schema() == packed.config_schema() is not None
    assert opened.readme() == (HELLO / "README.md").read_text()


def test_packing_is_deterministic(tmp_path: Path) -> None:
    directory = hello_copy(tmp_path)
    write_bundle(bundle_from_dir(directory), tmp_path / "a.rvp")
    for path in directory.iterdir():
        os.utime(path, (0, 1_000_000_000))
    (directory / "README.md").chmod(0o600)
    write_bundle(bundle_from_dir(directory), tmp_path / "b.rvp")
    assert (tmp_path / "a.rvp").read_bytes() == (tmp_path / "b.rvp").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.rvp") as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == stat.S_IFREG | 0o644
        assert (info.extra, info.compress_type) == (b"", zipfile.ZIP_DEFLATED)


def test_the_bundled_example_packs_and_opens(tmp_path: Path) -> None:
    packed = load_source(HELLO)
    write_bundle(packed, tmp_path / "hello.rvp")
    opened = load_source(tmp_path / "hello.rvp")
    assert (opened.manifest.name, opened.manifest.version) == ("hello", "0.1.0")
    assert opened.digest == packed.digest
    assert set(opened.files) == {*GOOD, "README.md"}


def test_digest_is_over_the_content() -> None:
    bundle = load_source(HELLO)
    lines = "".join(
        f"{name}\0{hashlib.sha256(data).hexdigest()}\n"
        for name, data in sorted(bundle.files.items())
    )
    assert bundle.digest == hashlib.sha256(lines.encode()).hexdigest()
    changed = Bundle(bundle.manifest, {**bundle.files, "README.md": b"other"}, bundle.origin)
    assert changed.digest != bundle.digest


def test_a_plugin_without_schema_or_readme(tmp_path: Path) -> None:
    directory = hello_copy(tmp_path)
    manifest = tomlkit.parse((directory / "manifest.toml").read_text())
    del manifest["config_schema"]
    (directory / "manifest.toml").write_text(tomlkit.dumps(manifest))
    (directory / "README.md").unlink()
    bundle = bundle_from_dir(directory)
    assert set(bundle.files) == {"manifest.toml", "plugin.wasm"}
    assert (bundle.config_schema(), bundle.readme()) == (None, None)


# --- bad plugin directories --------------------------------------------------


def test_dir_hash_mismatch_names_both_hashes(tmp_path: Path) -> None:
    directory = hello_copy(tmp_path, wasm_sha256="ab" * 32)
    with pytest.raises(ConfigError) as info:
        bundle_from_dir(directory)
    err = info.value
    assert (err.file, err.key) == (str(directory / "manifest.toml"), "wasm_sha256")
    assert "ab" * 32 in err.message and hashlib.sha256(WASM).hexdigest() in err.message


def test_dir_symlink_leading_outside_is_refused(tmp_path: Path) -> None:
    directory = hello_copy(tmp_path)
    outside = tmp_path / "secret"
    outside.write_text("not the plugin's")
    (directory / "README.md").unlink()
    (directory / "README.md").symlink_to(outside)
    with pytest.raises(ConfigError, match="leads outside the plugin directory"):
        bundle_from_dir(directory)


def test_dir_symlink_inside_is_followed(tmp_path: Path) -> None:
    directory = hello_copy(tmp_path)
    (directory / "README.md").rename(directory / "README.txt")
    (directory / "README.md").symlink_to("README.txt")
    assert bundle_from_dir(directory).readme() == (HELLO / "README.md").read_text()


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"wasm_file": "build/plugin.wasm"}, "wasm_file", "plain file names"),
        ({"config_schema": "README.md"}, "config_schema", "names another member"),
        ({"wasm_file": "missing.wasm"}, "wasm_file", "cannot read"),
    ],
)
def test_dir_manifest_names_a_bundle_cannot_hold(
    tmp_path: Path, changes: dict[str, str], key: str, fragment: str
) -> None:
    directory = hello_copy(tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        bundle_from_dir(directory)
    assert (info.value.file, info.value.key) == (str(directory / "manifest.toml"), key)
    assert fragment in info.value.message


def test_dir_bad_readme_is_refused(tmp_path: Path) -> None:
    directory = hello_copy(tmp_path)
    (directory / "README.md").write_bytes(b"line one\n\xff\n")
    with pytest.raises(ConfigError) as info:
        bundle_from_dir(directory)
    assert (info.value.file, info.value.line) == (str(directory / "README.md"), 2)


def test_a_plugin_for_another_platform_packs_but_does_not_load(tmp_path: Path) -> None:
    other = next(p for p in Platform if p != current_platform())
    directory = hello_copy(tmp_path, platforms=[other.value])
    with pytest.raises(PluginRefused):
        bundle_from_dir(directory)
    assert bundle_from_dir(directory, check_host=False).manifest.platforms == {other}


# --- hostile bundles ---------------------------------------------------------

Members = list[tuple[str | zipfile.ZipInfo, bytes]]


def build_zip(members: Members) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buffer.getvalue()


def good_plus(*extra: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    return build_zip([*GOOD.items(), *extra])


def good_with(name: str, data: bytes) -> bytes:
    """The good bundle with member `name` replaced by `data`."""
    return build_zip([(n, data if n == name else d) for n, d in GOOD.items()])


def patch_header(
    raw: bytes, name: str, local: tuple[int, str], central: tuple[int, str], value: int
) -> bytes:
    """Overwrite one field of `name`'s local and central headers (offset, struct format)."""
    out = bytearray(raw)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        info = zf.getinfo(name)
        start = zf.start_dir
    offset, fmt = local
    struct.pack_into(fmt, out, info.header_offset + offset, value)
    pos = start
    while raw[pos : pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack_from("<HHH", raw, pos + 28)
        if raw[pos + 46 : pos + 46 + n] == name.encode():
            offset, fmt = central
            struct.pack_into(fmt, out, pos + offset, value)
        pos += 46 + n + m + k
    return bytes(out)


def declare_size(raw: bytes, name: str, size: int) -> bytes:
    return patch_header(raw, name, (22, "<I"), (24, "<I"), size)


def set_flags(raw: bytes, name: str, flags: int) -> bytes:
    return patch_header(raw, name, (6, "<H"), (8, "<H"), flags)


@functools.cache
def bomb(size: int = 100 * 1_000_000) -> bytes:
    """The good bundle with a wasm of `size` zeros (100 MB compress to about 100 KB)."""
    return good_with("plugin.wasm", bytes(size))


def symlink() -> bytes:
    info = zipfile.ZipInfo("README.md")
    info.external_attr = 0o120777 << 16
    return good_plus((info, b"/etc/passwd"))


def unix_special(mode: int) -> bytes:
    info = zipfile.ZipInfo("README.md")
    info.external_attr = mode << 16
    return good_plus((info, b""))


def bzip2_member() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in GOOD.items():
            zf.writestr(name, data, zipfile.ZIP_BZIP2 if name == "plugin.wasm" else None)
    return buffer.getvalue()


def corrupt(raw: bytes, name: str) -> bytes:
    """Flip a byte in the middle of `name`'s compressed data."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        info = zf.getinfo(name)
    n, m = struct.unpack_from("<HH", raw, info.header_offset + 26)
    middle = info.header_offset + 30 + n + m + info.compress_size // 2
    return raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1 :]


def with_nul() -> bytes:
    raw = good_plus(("README.mdXevil", b"hi"))
    return raw.replace(b"README.mdXevil", b"README.md\0evil")


HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # case: (the .rvp's bytes, the member named in the error or "", fragment)
    "traversal": (lambda: good_plus(("../x", b"x")), '"../x"', "'..'"),
    "nested traversal": (lambda: good_plus(("a/../../x", b"x")), '"a/../../x"', "'..'"),
    "absolute": (lambda: good_plus(("/etc/x", b"x")), '"/etc/x"', "absolute path"),
    "backslash": (lambda: good_plus(("..\\x", b"x")), '"..\\\\x"', "backslash"),
    "drive letter": (lambda: good_plus(("C:x", b"x")), '"C:x"', "drive letter"),
    "NUL": (with_nul, '"README.md\\u0000evil"', "NUL"),
    "symlink": (symlink, '"README.md"', "symbolic links"),
    "fifo": (lambda: unix_special(stat.S_IFIFO | 0o644), '"README.md"', "only regular files"),
    "directory": (lambda: good_plus(("docs/", b"")), '"docs/"', "directories"),
    "directory by mode": (
        lambda: unix_special(stat.S_IFDIR | 0o755),
        '"README.md"',
        "directories",
    ),
    "duplicate manifest": (
        lambda: good_plus(("manifest.toml", MANIFEST)),
        '"manifest.toml"',
        "appears twice",
    ),
    "oversize member": (
        lambda: good_plus(("README.md", b"x" * (256 * 1024 + 1))),
        '"README.md"',
        "over its 256 KiB cap",
    ),
    "oversize manifest": (
        lambda: build_zip([("manifest.toml", MANIFEST + b"#" * 65536), ("plugin.wasm", WASM)]),
        '"manifest.toml"',
        "over its 64 KiB cap",
    ),
    "zip bomb, honest size": (lambda: bomb(), "", "over the 48 MiB limit"),
    "zip bomb, honest size under the total": (
        lambda: bomb(20_000_000),
        '"plugin.wasm"',
        "declares 20000000 bytes, over its 16 MiB cap",
    ),
    "zip bomb, lying size": (
        lambda: declare_size(bomb(), "plugin.wasm", MiB),
        '"plugin.wasm"',
        "corrupt member",
    ),
    "zip bomb, lying size and CRC": (
        # The CRC of the first MiB: zipfile stops there, and the hash catches it.
        lambda: patch_header(
            declare_size(bomb(), "plugin.wasm", MiB),
            "plugin.wasm",
            (14, "<I"),
            (16, "<I"),
            zlib.crc32(bytes(MiB)),
        ),
        "wasm_sha256",
        "plugin.wasm has sha256 " + hashlib.sha256(bytes(MiB)).hexdigest(),
    ),
    "too many members": (
        lambda: good_plus(*((f"extra{i}", b"") for i in range(14))),
        "",
        "17 members; a bundle holds at most 16",
    ),
    "too much in all": (
        lambda: build_zip([(f"m{i}", bytes(13 * MiB)) for i in range(4)]),
        "",
        "over the 48 MiB limit",
    ),
    "not a zip": (lambda: b"#!/bin/sh\nrm -rf /\n", "", "not a plugin bundle (a zip file)"),
    "truncated zip": (lambda: good_plus()[:-30], "", "not a plugin bundle"),
    "encrypted": (
        lambda: set_flags(good_plus(), "plugin.wasm", 0x1),
        '"plugin.wasm"',
        "encrypted",
    ),
    "bzip2": (bzip2_member, '"plugin.wasm"', "compression method 12 is not allowed"),
    "unknown member": (lambda: good_plus(("install.sh", b"x")), '"install.sh"', "not a member"),
    "nested member": (lambda: good_plus(("docs/x.md", b"x")), '"docs/x.md"', "not a member"),
    "missing manifest": (
        lambda: build_zip([("plugin.wasm", WASM)]),
        '"manifest.toml"',
        "missing from the bundle",
    ),
    "missing wasm": (
        lambda: build_zip([("manifest.toml", MANIFEST), ("config.schema.json", SCHEMA)]),
        '"plugin.wasm"',
        "missing; the manifest's wasm_file",
    ),
    "missing schema": (
        lambda: build_zip([("manifest.toml", MANIFEST), ("plugin.wasm", WASM)]),
        '"config.schema.json"',
        "missing; the manifest's config_schema",
    ),
    "hash mismatch": (
        lambda: good_with("plugin.wasm", b"\0asm\1\0\0\0"),
        "wasm_sha256",
        "the manifest says " + hashlib.sha256(WASM).hexdigest(),
    ),
    "bad schema": (
        lambda: good_with("config.schema.json", b"[1]"),
        "",
        "JSON Schema object",
    ),
    "corrupt data": (
        lambda: corrupt(good_plus(), "plugin.wasm"),
        '"plugin.wasm"',
        "corrupt member",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundle_is_refused_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    make, key, fragment = HOSTILE[case]
    path = tmp_path / "bad.rvp"
    path.write_bytes(make())
    monkeypatch.chdir(tmp_path)  # where a careless extraction would write
    before = tree(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            open_bundle(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = info.value
    assert str(path) in str(err)
    assert err.key == key
    assert fragment in err.message
    assert tree(tmp_path) == before
    assert peak < 40 * MiB  # a bomb never expands past its member's cap


def test_bundle_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.rvp"
    with path.open("wb") as f:
        f.truncate(MAX_BUNDLE_BYTES + 1)
    with pytest.raises(ConfigError, match="larger than the 32 MiB limit") as info:
        open_bundle(path)
    assert info.value.file == str(path)


def test_a_directory_is_not_opened_as_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        open_bundle(tmp_path)


# --- ruvector plugin pack ----------------------------------------------------


def test_pack_writes_name_version_rvp_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["plugin", "pack", str(HELLO)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "hello-0.1.0.rvp"
    digest = load_source(HELLO).digest
    assert result.output == (
        f"hello-0.1.0.rvp: {out.stat().st_size} bytes, digest sha256:{digest}\n"
        "  unsigned (registries accept signed bundles only: `ruvector plugin sign`)\n"
    )
    assert open_bundle(out).digest == digest


def test_pack_out(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "h.rvp"
    result = CliRunner().invoke(cli, ["plugin", "pack", str(HELLO), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}: ")
    assert set(open_bundle(out).files) == {*GOOD, "README.md"}


def test_pack_refuses_a_bad_plugin_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = hello_copy(tmp_path, wasm_sha256="ab" * 32)
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    result = CliRunner().invoke(cli, ["plugin", "pack", str(directory)])
    assert result.exit_code == 1
    assert f"error: {directory / 'manifest.toml'}: wasm_sha256: " in result.output
    assert tree(tmp_path) == before
