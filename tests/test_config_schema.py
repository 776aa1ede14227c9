"""Plugin config schemas: loading them, checking configs, bounding hostile ones."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reconciler.config_schema import (
    MAX_CONFIG_STRING_BYTES,
    MAX_SCHEMA_BYTES,
    VALIDATION_TIMEOUT_S,
    ConfigCheck,
    load_config_schema,
    validate_config,
    validate_configs,
)
from ruvector.errors import ConfigError

ROOT = "plugins.installed.tabs.config"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["max_tabs"],
    "properties": {
        "max_tabs": {"type": "integer", "minimum": 1},
        "greeting": {"type": "string", "enum": ["hi", "hello"]},
        "hosts": {"type": "array", "items": {"type": "string"}},
        "fan": {"type": "object", "properties": {"curve": {"type": "string"}}},
    },
}


def test_good_schema_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SCHEMA))
    assert load_config_schema(path) == SCHEMA


BAD_FILES = [
    # (file text, key, fragment, line)
    ('{"type": "object",\n "properties": {,}}', "", "not JSON", 2),
    ("[1, 2]", "", "JSON Schema object", None),
    ('{"type": 5}', "type", "not a valid JSON Schema", None),
    ('{"properties": {"a": {"pattern": "("}}}', "properties.a.pattern", "regex", None),
    ("{" + " " * MAX_SCHEMA_BYTES + "}", "", "256 KiB limit", None),
]


@pytest.mark.parametrize(("text", "key", "fragment", "line"), BAD_FILES)
def test_bad_schema_file(
    tmp_path: Path, text: str, key: str, fragment: str, line: int | None
) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_schema(path)
    err = info.value
    assert (err.file, err.key, err.line) == (str(path), key, line)
    assert fragment in err.message


@pytest.mark.parametrize(
    "config",
    [
        {"max_tabs": 30},
        {"max_tabs": 1, "greeting": "hi", "hosts": ["a", "b"], "fan": {"curve": "quiet"}},
    ],
)
def test_good_config_passes(config: dict[str, object]) -> None:
    validate_config("tabs", SCHEMA, config)


BAD_CONFIGS = [
    # (config, key below ROOT, fragment)
    ({"max_tabs": "30"}, ".max_tabs", "is not of type 'integer'"),
    ({"max_tabs": 0}, ".max_tabs", "less than the minimum of 1"),
    ({}, ".max_tabs", "missing required key"),
    ({"max_tabs": 3, "greetin": "hi"}, ".greetin", "did you mean 'greeting'"),
    ({"max_tabs": 3, "greeting": "yo"}, ".greeting", "is not one of"),
    ({"max_tabs": 3, "hosts": ["a", 1]}, ".hosts[1]", "is not of type 'string'"),
    ({"max_tabs": 3, "fan": {"curve": 2}}, ".fan.curve", "is not of type 'string'"),
    ({"max_tabs": float("nan")}, "", "JSON values"),
]


@pytest.mark.parametrize(("config", "key", "fragment"), BAD_CONFIGS)
def test_bad_config_names_plugin_key_and_schema_message(
    config: dict[str, object], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config("tabs", SCHEMA, config)
    err = info.value
    assert (err.file, err.key) == ("tabs", ROOT + key)
    assert fragment in err.message


def test_error_names_the_given_file() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config("tabs", SCHEMA, {"max_tabs": "x"}, file="/etc/ruvector.toml")
    assert info.value.file == "/etc/ruvector.toml"


def test_over_long_config_string_is_refused_before_validating() -> None:
    config = {"max_tabs": 3, "fan": {"curve": "q" * (MAX_CONFIG_STRING_BYTES + 1)}}
    with pytest.raises(ConfigError) as info:
        validate_config("tabs", SCHEMA, config)
    assert info.value.key == ROOT + ".fan.curve"
    assert "64 KiB" in info.value.message


def test_secret_values_never_appear_in_messages() -> None:
    schema = {"properties": {"token": {"type": "string", "minLength": 100}}, "maxProperties": 1}
    secret = "s3cr3t-Value-42"
    for config in ({"token": secret}, {"token": secret, "other": 1}):
        with pytest.raises(ConfigError) as info:
            validate_config("tabs", schema, config, secrets={"token": "HA_TOKEN"})
        assert secret not in str(info.value)
        assert "<secret from env:HA_TOKEN>" in info.value.message


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that serves a schema and records requests."""
    seen: list[str] = []
    handler = type("Handler", (_Recorder,), {"requests": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_loopback_server_answers(loopback: tuple[str, list[str]]) -> None:
    # Proves the next test's "no request" means something.
    import urllib.request

    base, seen = loopback
    with urllib.request.urlopen(f"{base}/probe.json") as answer:
        assert json.load(answer) == {"type": "string"}
    assert seen == ["/probe.json"]


def test_remote_refs_are_never_fetched(tmp_path: Path, loopback: tuple[str, list[str]]) -> None:
    base, seen = loopback
    schemas = [
        {"$ref": f"{base}/root.json"},
        {"properties": {"a": {"$ref": f"{base}/a.json"}}},
        {"$id": f"{base}/dir/schema.json", "properties": {"a": {"$ref": "other.json"}}},
        {"$schema": f"{base}/meta.json", "properties": {"a": {"$dynamicRef": f"{base}/d#x"}}},
    ]
    for schema in schemas:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(schema))
        loaded = load_config_schema(path)
        with pytest.raises(ConfigError) as info:
            validate_config("tabs", loaded, {"a": 1})
        assert "never fetched" in info.value.message
    assert seen == []


def test_catastrophic_pattern_cannot_hang_the_host() -> None:
    schema = {"properties": {"name": {"type": "string", "pattern": "(a+)+$"}}}
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        validate_config("tabs", schema, {"name": "a" * 40 + "!"})
    assert time.monotonic() - start < 3.0  # the 2 s budget and a margin to kill
    assert info.value.key == ROOT
    assert "took over" in info.value.message


def test_doubling_ref_chain_cannot_hang_the_host() -> None:
    defs: dict[str, Any] = {
        f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
        for i in range(40)
    }
    defs["d40"] = {"type": "object"}
    start = time.monotonic()
    with pytest.raises(ConfigError, match="took over"):
        validate_config("tabs", {"$defs": defs, "$ref": "#/$defs/d0"}, {})
    assert time.monotonic() - start < 3.0


def test_a_deeply_nested_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text('{"allOf": ' + '[{"allOf": ' * 200 + "[]" + "}]" * 200 + "}")
    with pytest.raises(ConfigError, match="nests more than"):
        load_config_schema(path)


def test_a_batch_is_checked_in_one_child_and_a_hang_is_pinned_on_its_plugin() -> None:
    good = {"type": "object", "properties": {"n": {"type": "integer"}}}
    hostile = {"properties": {"name": {"type": "string", "pattern": "(a+)+$"}}}
    checks = [
        ConfigCheck("ok", good, {"n": 1}),
        ConfigCheck("typo", good, {"n": "one"}, file="ruvector.toml"),
        ConfigCheck("slow", hostile, {"name": "a" * 40 + "!"}),
    ]
    start = time.monotonic()
    problems = validate_configs(checks)
    assert time.monotonic() - start < 4 * VALIDATION_TIMEOUT_S + 2
    assert [(p.file, p.key) for p in problems] == [
        ("ruvector.toml", "plugins.installed.typo.config.n"),
        ("slow", "plugins.installed.slow.config"),
    ]
    assert validate_configs(checks[:1]) == []
