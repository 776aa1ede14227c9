"""load_manifest: good and bad manifest.toml files, written to tmp_path."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from hostcalls.capabilities import parse
from reconciler.manifest import Platform, current_platform, load_manifest, semver_key
from ruvector.errors import ConfigError, PluginRefused

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"

GOOD: dict[str, Any] = {
    "name": "hello",
    "version": "0.1.0",
    "author": "Ada",
    "description": "Says hello",
    "license": "MIT",
    "capabilities": ["ReadProcessList", "FileSystemRead(/var/log)", "NetworkAccess(ha.local:8123)"],
    "min_ruvector_version": "0.1.0",
    "platforms": ["linux", "macos", "windows"],
    "wasm_file": "plugin.wasm",
    "wasm_sha256": "ab" * 32,
}

DROP = object()  # a change that removes the key


def write_manifest(directory: Path, changes: dict[str, Any] | None = None) -> Path:
    data = {**GOOD, **(changes or {})}
    data = {k: v for k, v in data.items() if v is not DROP}
    path = directory / "manifest.toml"
    path.write_text(tomlkit.dumps(data), encoding="utf-8")
    return path


def test_manifest_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(json.loads(SCHEMA.read_text()))


def test_good_manifest_loads_into_typed_fields(tmp_path: Path) -> None:
    m = load_manifest(write_manifest(tmp_path))
    assert m.directory == tmp_path
    assert m.path == tmp_path / "manifest.toml"
    assert (m.name, m.version, m.author, m.license) == ("hello", "0.1.0", "Ada", "MIT")
    assert m.capabilities == frozenset(parse(c) for c in GOOD["capabilities"])
    assert m.platforms == frozenset(Platform)
    assert (m.wasm_file, m.wasm_sha256) == ("plugin.wasm", "ab" * 32)
    assert (m.homepage, m.config_schema, m.signature) == (None, None, None)


@pytest.mark.parametrize(
    "changes",
    [
        {"homepage": "https://example.org/hello", "config_schema": "schema/config.json"},
        {"signature": "base64sig==", "capabilities": []},
        {"version": "1.2.3-rc.1", "min_ruvector_version": "0.1.0-alpha"},
        {"wasm_file": "build/out/plugin.wasm"},
    ],
)
def test_other_good_manifests(tmp_path: Path, changes: dict[str, Any]) -> None:
    m = load_manifest(write_manifest(tmp_path, changes))
    assert m.name == "hello"


BAD = [
    # (changes, key, fragment of the message)
    ({"name": "Hello"}, "name", "plugin name"),
    ({"name": "-x"}, "name", "lowercase letter"),
    ({"version": "1.0"}, "version", "x.y.z"),
    ({"version": "01.0.0"}, "version", "x.y.z"),
    ({"author": DROP}, "author", "missing required key"),
    ({"author": ""}, "author", "non-empty"),
    ({"descripton": "typo"}, "descripton", "did you mean 'description'"),
    ({"zzzz": 1}, "zzzz", "expected one of: author"),
    ({"capabilities": ["ReadProcessList", "RunCommand"]}, "capabilities[1]", "RunCommand is not"),
    ({"capabilities": ["FileSystemRead(var/log)"]}, "capabilities[0]", "must be absolute"),
    ({"capabilities": ["Teleport"]}, "capabilities[0]", "unknown capability 'Teleport'"),
    ({"capabilities": ["ReadProcessList(x)"]}, "capabilities[0]", "takes no argument"),
    ({"capabilities": "ReadProcessList"}, "capabilities", "a list of capabilities"),
    ({"capabilities": [5]}, "capabilities[0]", "a capability"),
    ({"platforms": ["linux", "beos"]}, "platforms[1]", "one of linux, macos, windows"),
    ({"platforms": []}, "platforms", "non-empty list"),
    ({"platforms": ["linux", "linux"]}, "platforms", "distinct"),
    ({"wasm_file": "../x.wasm"}, "wasm_file", "inside the plugin directory"),
    ({"wasm_file": "/etc/x.wasm"}, "wasm_file", "inside the plugin directory"),
    ({"wasm_file": "C:\\x.wasm"}, "wasm_file", "inside the plugin directory"),
    ({"config_schema": "a/../../s.json"}, "config_schema", "inside the plugin directory"),
    ({"wasm_sha256": "AB" * 32}, "wasm_sha256", "64 lowercase hex"),
    ({"wasm_sha256": "ab" * 31}, "wasm_sha256", "64 lowercase hex"),
    ({"homepage": "ftp://example.org"}, "homepage", "https:// URL"),
    ({"signature": 5}, "signature", "signature string"),
    ({"min_ruvector_version": "latest"}, "min_ruvector_version", "x.y.z"),
]


@pytest.mark.parametrize(("changes", "key", "fragment"), BAD)
def test_bad_manifest_names_file_key_and_problem(
    tmp_path: Path, changes: dict[str, Any], key: str, fragment: str
) -> None:
    path = write_manifest(tmp_path, changes)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    err = info.value
    assert (err.file, err.key) == (str(path), key)
    assert fragment in err.message
    assert key in str(err) and str(path) in str(err)


def test_key_error_carries_the_line_of_the_key(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"zzzz": 1})
    expected = path.read_text().splitlines().index("zzzz = 1") + 1
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert info.value.line == expected


def test_toml_syntax_error_carries_the_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text('name = "hello"\nversion = \nauthor = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert (info.value.key, info.value.line) == ("", 2)
    assert "TOML" in info.value.message
    assert f"{path}:2" in str(info.value)


def test_missing_and_oversized_manifests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_manifest(tmp_path / "manifest.toml")
    path = write_manifest(tmp_path, {"description": "x" * 1000})
    path.write_text(path.read_text() + "#" * (64 * 1024))
    with pytest.raises(ConfigError, match="64 KiB limit"):
        load_manifest(path)


def test_a_newer_ruvector_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PluginRefused) as info:
        load_manifest(write_manifest(tmp_path, {"min_ruvector_version": "99.0.0"}))
    assert info.value.plugin == "hello"
    assert "needs ruvector >= 99.0.0 and this is 0.1.0" in info.value.reason


def test_another_platform_is_refused(tmp_path: Path) -> None:
    here = current_platform()
    others = [p.value for p in Platform if p is not here]
    with pytest.raises(PluginRefused) as info:
        load_manifest(write_manifest(tmp_path, {"platforms": others}))
    assert f"not on {here.value if here else sys.platform}" in info.value.reason


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0.1.0", "0.1.1"),
        ("0.9.0", "0.10.0"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.2", "1.0.0-alpha.10"),
        ("1.0.0-2", "1.0.0-alpha"),
    ],
)
def test_semver_precedence(older: str, newer: str) -> None:
    assert semver_key(older) < semver_key(newer)
