"""load_desired (ruvector.toml) and build_spec / load_plugin_dir (a plugin directory)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from executor.spec import ExecutorSettings, Limits
from hostcalls.capabilities import parse
from reconciler.desired import DesiredState, SourceKind, load_desired
from reconciler.plugin_dir import MAX_WASM_BYTES, build_spec, load_plugin_dir
from ruvector.errors import ConfigError

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "ruvector.schema.json"
SECRET = "tok-9f8e7d6c5b4a"
WASM = b"\0asm\x01\0\0\0"

FULL = """\
[plugins]
enabled = true
plugin_dir = "~/.ruvector/plugins"
registry_url = "https://plugins.ruvector.dev/api/v1"
auto_update = false
max_tick_ms = 100
max_memory_mb = 64
fuel_per_tick = 10000000
tick_interval_ms = 5000
state_dir = "state"
profile = "default"
protected_processes = ["sshd"]
allow_other_users = false
memory_high_percent = 85
memory_critical_percent = 95

[plugins.installed.hello]
enabled = true
version = "0.1.0"
source = "dir:examples/hello"
approve = ["ShowNotifications"]
config = { greeting = "hi", api_token = "env:HA_TOKEN" }
max_tick_ms = 50
fuel_per_tick = 1000000
max_memory_mb = 16
"""


def write_plugin(
    directory: Path, changes: dict[str, Any] | None = None, *, schema: dict[str, Any] | None = None
) -> Path:
    """A plugin directory: manifest.toml, plugin.wasm and maybe config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "name": "hello",
        "version": "0.1.0",
        "author": "Ada",
        "description": "Says hello",
        "license": "MIT",
        "capabilities": ["ShowNotifications", "ReadProcessList"],
        "min_ruvector_version": "0.1.0",
        "platforms": ["linux", "macos", "windows"],
        "wasm_file": "plugin.wasm",
        "wasm_sha256": "ab" * 32,
    }
    if schema is not None:
        (directory / "config.json").write_text(json.dumps(schema))
        manifest["config_schema"] = "config.json"
    manifest.update(changes or {})
    (directory / "manifest.toml").write_text(tomlkit.dumps(manifest))
    (directory / "plugin.wasm").write_bytes(WASM)
    return directory


def write_desired(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ruvector.toml"
    path.write_text(text)
    return path


@pytest.fixture
def full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DesiredState:
    monkeypatch.setenv("HA_TOKEN", SECRET)
    write_plugin(tmp_path / "examples" / "hello")
    return load_desired(write_desired(tmp_path, FULL))


def test_ruvector_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(json.loads(SCHEMA.read_text()))


def test_full_file_maps_onto_executor_values(full: DesiredState, tmp_path: Path) -> None:
    assert full.path == tmp_path / "ruvector.toml"
    assert full.enabled is True and full.auto_update is False
    assert full.plugin_dir == Path.home() / ".ruvector" / "plugins"
    assert full.registry_url == "https://plugins.ruvector.dev/api/v1"
    assert full.limits == Limits(max_call_ms=100, max_memory_mb=64, fuel_per_call=10_000_000)
    assert full.settings == ExecutorSettings(
        state_dir=str(tmp_path / "state"),
        tick_interval_ms=5000,
        profile="default",
        protected_processes=("sshd",),
        allow_other_users=False,
        memory_high_percent=85.0,
        memory_critical_percent=95.0,
        private_paths=(
            str(tmp_path / "ruvector.toml"),
            str(Path.home() / ".ruvector" / "plugins"),
            str(tmp_path / "examples" / "hello"),
        ),
    )
    (hello,) = full.plugins
    assert (hello.name, hello.enabled, hello.version) == ("hello", True, "0.1.0")
    assert hello.source.kind is SourceKind.DIR
    assert hello.source.path == tmp_path / "examples" / "hello"
    assert hello.approved == frozenset({parse("ShowNotifications")})
    assert hello.limits == Limits(max_call_ms=50, max_memory_mb=16, fuel_per_call=1_000_000)
    assert hello.origin == tmp_path / "ruvector.toml"


def test_env_secret_is_resolved_and_kept_out_of_reprs(full: DesiredState) -> None:
    (hello,) = full.plugins
    assert hello.config == {"greeting": "hi", "api_token": SECRET}
    assert hello.secrets == {"api_token": "HA_TOKEN"}
    assert hello.redacted_config() == {
        "greeting": "hi",
        "api_token": "<secret from env:HA_TOKEN>",
    }
    assert SECRET not in repr(hello) and SECRET not in repr(full)


def test_nested_secrets_are_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RV_A", "alpha-secret")
    monkeypatch.setenv("RV_B", "beta-secret")
    write_plugin(tmp_path / "hello")
    text = (
        "[plugins.installed.hello]\nsource = 'dir:hello'\n"
        "config = { ha = { tokens = ['plain', 'env:RV_A'] }, 'odd key' = 'env:RV_B', "
        "note = 'see env:RV_A', bad = 'env:1X' }\n"
    )
    (hello,) = load_desired(write_desired(tmp_path, text)).plugins
    assert hello.secrets == {"ha.tokens[1]": "RV_A", '"odd key"': "RV_B"}
    assert hello.redacted_config() == {
        "ha": {"tokens": ["plain", "<secret from env:RV_A>"]},
        "odd key": "<secret from env:RV_B>",
        "note": "see env:RV_A",
        "bad": "env:1X",
    }
    assert "alpha-secret" not in repr(hello)


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    state = load_desired(write_desired(tmp_path, ""))
    assert state.enabled is True and state.plugins == ()
    assert state.limits == Limits()
    assert state.settings == ExecutorSettings(
        state_dir=str(tmp_path / "state"),
        private_paths=(str(tmp_path / "ruvector.toml"), str(Path.home() / ".ruvector" / "plugins")),
    )
    assert state.settings.protected_processes == ()  # only the built-in list


def test_relative_config_path_is_resolved_from_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path / "hello")
    write_desired(
        tmp_path,
        "[plugins]\nstate_dir = '../st'\n[plugins.installed.hello]\nsource = 'dir:hello'\n",
    )
    monkeypatch.chdir(tmp_path)
    state = load_desired(Path("ruvector.toml"))
    assert state.settings.state_dir == str(tmp_path.parent / "st")
    assert state.plugins[0].source.path == tmp_path / "hello"


HELLO = "[plugins.installed.hello]\nsource = 'dir:hello'\n"

BAD = [
    # (file text, key, fragment, line)
    ("[plugins]\nmax_tick = 5\n", "plugins.max_tick", "did you mean 'max_tick_ms'", 2),
    ("[plugin]\nenabled = true\n", "plugin", "did you mean 'plugins'", 1),
    ("[plugins]\nenabled = 'yes'\n", "plugins.enabled", "true or false", 2),
    ("[plugins]\nmax_memory_mb = 4096\n", "plugins.max_memory_mb", "from 1 to 2047", 2),
    ("[plugins]\nmax_memory_mb = 0\n", "plugins.max_memory_mb", "from 1 to 2047", 2),
    ("[plugins]\ntick_interval_ms = 5\n", "plugins.tick_interval_ms", "from 10", 2),
    ("[plugins]\nmax_tick_ms = 1.5\n", "plugins.max_tick_ms", "an integer", 2),
    ("[plugins]\nregistry_url = 'ftp://x'\n", "plugins.registry_url", "https:// URL", 2),
    ("[plugins]\nprotected_processes = ['a', 'a']\n", "plugins.protected_processes", "distinct", 2),
    (
        "[plugins]\nmemory_high_percent = 96\n",
        "plugins.memory_high_percent",
        "below memory_critical_percent (95)",
        2,
    ),
    ("[plugins]\nmemory_critical_percent = 0\n", "plugins.memory_critical_percent", "above 0", 2),
    (
        "[plugins.installed.Hello]\nsource = 'dir:hello'\n",
        "plugins.installed.Hello",
        "plugin name",
        1,
    ),
    ("[plugins]\nupdate_schedule = '5s'\n", "plugins.update_schedule", "at least", 2),
    ("[plugins]\nmetering = 'none'\n", "plugins.metering", "epochs", 2),
    ("[plugins]\nupdate_schedule = '61 * * * *'\n", "plugins.update_schedule", "61", 2),
    (
        "[plugins]\nregistry_url = 'http://x'\nregistry_root = 'nowhere.json'\n",
        "plugins.registry_root",
        "nowhere.json",
        None,
    ),
    (
        "[plugins]\nregistry_root = 'r.json'\n",
        "plugins.registry_root",
        "set plugins.registry_url",
        2,
    ),
    (
        '[plugins]\nregistry_url = \'http://x\'\nregistry_root = \'{"signed": {"_type": "timestamp"}}\'\n',
        "plugins.registry_root",
        "not a TUF root.json: it holds timestamp metadata",
        3,
    ),
    (
        "[plugins]\nregistry_url = 'http://x'\nregistry_root = '{ not json'\n",
        "plugins.registry_root",
        "not a TUF root.json: not JSON",
        3,
    ),
    ("[plugins]\nregistry_url = 'http://x/?a=1'\n", "plugins.registry_url", "without a query", 2),
    (
        "[plugins.installed.hello]\nsource = 'registry:hello'\n",
        "plugins.installed.hello.source",
        "file:PATH (a .rvp bundle) and registry (the default)",
        2,
    ),
    (
        "[plugins.installed.hello]\nsource = 'dir:'\n",
        "plugins.installed.hello.source",
        "needs a path",
        2,
    ),
    (
        "[plugins.installed.hello]\nsource = 'dir:nowhere'\n",
        "plugins.installed.hello.source",
        "is not a directory",
        2,
    ),
    (HELLO + "aprove = []\n", "plugins.installed.hello.aprove", "did you mean 'approve'", 3),
    (
        HELLO + "approve = ['ShowNotifications', 'RunCommand']\n",
        "plugins.installed.hello.approve[1]",
        "RunCommand is not available",
        3,
    ),
    (
        HELLO + "approve = ['FileSystemRead(rel)']\n",
        "plugins.installed.hello.approve[0]",
        "absolute",
        3,
    ),
    (HELLO + "version = '1'\n", "plugins.installed.hello.version", "needs all of x.y.z", 3),
    (HELLO + "version = '^1.x'\n", "plugins.installed.hello.version", "'^1.x'", 3),
    (HELLO + "fuel_per_tick = 0\n", "plugins.installed.hello.fuel_per_tick", "wasm fuel", 3),
    (HELLO + "config = 5\n", "plugins.installed.hello.config", "a table", 3),
    (HELLO + "config = { when = 1979-05-27 }\n", "plugins.installed.hello.config.when", "dates", 3),
    (HELLO + "config = { x = nan }\n", "plugins.installed.hello.config.x", "finite", 3),
    (
        HELLO + "config = { token = 'env:RUVECTOR_TEST_UNSET' }\n",
        "plugins.installed.hello.config.token",
        "RUVECTOR_TEST_UNSET is not set",
        3,
    ),
    (
        HELLO + "[plugins.installed.hello.config.ha]\ntokens = ['x', 'env:RUVECTOR_TEST_UNSET']\n",
        "plugins.installed.hello.config.ha.tokens[1]",
        "RUVECTOR_TEST_UNSET",
        4,
    ),
    ("[plugins]\nenabled = \n", "", "TOML syntax", 2),
    ("[plugins]\nenabled = true\n[plugins]\n", "", "TOML syntax", 3),
]


@pytest.mark.parametrize(("text", "key", "fragment", "line"), BAD)
def test_bad_desired_state_names_file_key_line_and_problem(
    tmp_path: Path, text: str, key: str, fragment: str, line: int | None
) -> None:
    assert "RUVECTOR_TEST_UNSET" not in os.environ
    write_plugin(tmp_path / "hello")
    path = write_desired(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_desired(path)
    err = info.value
    assert (err.file, err.key, err.line) == (str(path), key, line)
    assert fragment in err.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_desired(tmp_path / "ruvector.toml")


# --- build_spec / load_plugin_dir ---------------------------------------------------------


def test_build_spec_hands_the_executor_everything(full: DesiredState, tmp_path: Path) -> None:
    (hello,) = full.plugins
    spec = build_spec(hello)
    assert (spec.name, spec.version, spec.wasm, spec.wasm_sha256) == (
        "hello",
        "0.1.0",
        WASM,
        "ab" * 32,
    )
    assert spec.declared == frozenset({parse("ShowNotifications"), parse("ReadProcessList")})
    assert spec.approved == hello.approved
    assert spec.config == {"greeting": "hi", "api_token": SECRET}
    assert spec.limits == hello.limits
    assert spec.source == str(tmp_path / "examples" / "hello")


def test_config_is_checked_against_the_manifest_schema_without_leaking_secrets(
    full: DesiredState, tmp_path: Path
) -> None:
    schema = {"properties": {"api_token": {"type": "string", "minLength": 100}}}
    write_plugin(tmp_path / "examples" / "hello", schema=schema)
    with pytest.raises(ConfigError) as info:
        build_spec(full.plugins[0])
    err = info.value
    assert (err.file, err.key) == (str(full.path), "plugins.installed.hello.config.api_token")
    assert "is too short" in err.message and "<secret from env:HA_TOKEN>" in err.message
    assert SECRET not in str(err)


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"version": "0.2.0"}, "plugins.installed.hello.version", "0.1.0 is wanted"),
        ({"name": "goodbye"}, "plugins.installed.hello.source", "holds plugin 'goodbye'"),
    ],
)
def test_build_spec_refuses_another_plugin_or_version(
    full: DesiredState, tmp_path: Path, changes: dict[str, Any], key: str, fragment: str
) -> None:
    write_plugin(tmp_path / "examples" / "hello", changes)
    with pytest.raises(ConfigError) as info:
        build_spec(full.plugins[0])
    assert (info.value.file, info.value.key) == (str(full.path), key)
    assert fragment in info.value.message


def test_load_plugin_dir_defaults_and_config_errors_name_the_plugin(tmp_path: Path) -> None:
    directory = write_plugin(tmp_path / "p", schema={"required": ["greeting"]})
    with pytest.raises(ConfigError) as info:
        load_plugin_dir(directory)
    assert (info.value.file, info.value.key) == ("hello", "plugins.installed.hello.config.greeting")
    limits = replace(Limits(), max_call_ms=7)
    spec = load_plugin_dir(directory, config={"greeting": "hi"}, limits=limits)
    assert (spec.config, spec.limits, spec.approved) == ({"greeting": "hi"}, limits, frozenset())


def test_wasm_file_problems(tmp_path: Path) -> None:
    directory = write_plugin(tmp_path / "p")
    manifest = str(directory / "manifest.toml")
    wasm = directory / "plugin.wasm"

    with wasm.open("r+b") as f:  # sparse: no 16 MiB written to disk
        f.truncate(MAX_WASM_BYTES + 1)
    with pytest.raises(ConfigError, match="16 MiB limit") as info:
        load_plugin_dir(directory)
    assert (info.value.file, info.value.key) == (manifest, "wasm_file")

    wasm.unlink()
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_plugin_dir(directory)
    assert info.value.key == "wasm_file"

    (tmp_path / "outside.wasm").write_bytes(WASM)
    wasm.symlink_to(tmp_path / "outside.wasm")
    with pytest.raises(ConfigError, match="outside the plugin directory") as info:
        load_plugin_dir(directory)
    assert info.value.key == "wasm_file"


@pytest.mark.parametrize("depth", [60, 5000])
def test_deep_nesting_is_refused_not_a_crash(tmp_path: Path, depth: int) -> None:
    text = "[plugins.installed.x]\nconfig = { deep = " + "[" * depth + "]" * depth + " }\n"
    with pytest.raises(ConfigError, match="nest"):
        load_desired(write_desired(tmp_path, text))


def test_trust_settings(tmp_path: Path) -> None:
    key = "ab" * 32
    state = load_desired(
        write_desired(
            tmp_path,
            f'[plugins.trust]\nrequire_signature = true\nverified_publisher_keys = ["{key}"]\n',
        )
    )
    assert state.trust.require_signature and state.trust.verified_publisher_keys == (key,)
    assert load_desired(write_desired(tmp_path, "")).trust.require_signature is False
    with pytest.raises(ConfigError) as info:
        load_desired(write_desired(tmp_path, "[plugins.trust]\nrequire_signatures = true\n"))
    assert (
        info.value.key == "plugins.trust.require_signatures"
        and "did you mean" in info.value.message
    )
