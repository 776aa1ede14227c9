"""Author tooling: plugin new, build, inspect and doc, through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.bundle import bundle_from_dir, write_bundle
from reconciler.signature import generate_key, sign_bundle
from ruvector.cli.main import cli
from tests.plugins import module

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello"


def cli_run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


# -- inspect ------------------------------------------------------------------------


def test_inspect_a_directory_a_bundle_and_a_bare_wasm(tmp_path: Path) -> None:
    signed = sign_bundle(bundle_from_dir(HELLO), key := generate_key())
    write_bundle(signed, tmp_path / "hello.rvp")
    for target, trust in (
        (HELLO, "unsigned"),
        (tmp_path / "hello.rvp", f"signed by {key.public}"),
        (HELLO / "plugin.wasm", "none (a bare wasm carries no signature)"),
    ):
        result = cli_run("plugin", "inspect", str(target))
        assert result.exit_code == 0, result.output
        out = result.output
        assert "ABI version:   1" in out
        assert "ruvector.get_cpu_usage" in out and "ruvector.show_notification" in out
        assert "needs:         ReadSystemInfo, ShowNotifications" in out
        assert "exports:       memory, rv_abi_version, rv_alloc" in out
        assert f"trust:         {trust}" in out


def test_inspect_says_what_it_cannot_know(tmp_path: Path) -> None:
    no_abi = tmp_path / "no-abi.wasm"
    no_abi.write_bytes(module('(memory (export "memory") 1)', prelude=False))
    out = cli_run("plugin", "inspect", str(no_abi)).output
    assert "ABI version:   none: it does not export rv_abi_version" in out
    # A start function calling the host: inspect never lets a plugin reach it.
    calls_host = tmp_path / "calls-host.wasm"
    calls_host.write_bytes(
        module(
            """
(func $start (drop (call $get_cpu_usage)))
(start $start)""",
            imports=["get_cpu_usage"],
        )
    )
    out = cli_run("plugin", "inspect", str(calls_host)).output
    assert "ABI version:   unknown: calling it failed" in out
    assert "needs:         ReadSystemInfo" in out
    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"\0asm\x01\0\0\0\xff")
    result = cli_run("plugin", "inspect", str(garbage))
    assert result.exit_code == 1 and "not a valid wasm module" in result.output


# -- doc ----------------------------------------------------------------------------


def test_doc_renders_manifest_capabilities_and_config(tmp_path: Path) -> None:
    plugin = tmp_path / "hello"
    shutil.copytree(HELLO, plugin)
    manifest = plugin / "manifest.toml"
    manifest.write_text(
        manifest.read_text().replace(
            'capabilities = ["ReadSystemInfo", "ShowNotifications"]',
            'capabilities = ["ReadSystemInfo", "ShowNotifications", "KillProcess"]',
        )
    )
    schema = {
        "type": "object",
        "required": ["mode"],
        "properties": {
            "mode": {"enum": ["quiet", "loud"], "default": "quiet", "description": "How."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 99, "default": 30},
        },
        "additionalProperties": False,
    }
    (plugin / "config.schema.json").write_text(json.dumps(schema))
    result = cli_run("plugin", "doc", str(plugin), "--out", str(tmp_path / "hello.md"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "hello.md").read_text()
    assert page.startswith("# hello 0.1.0\n")
    assert "| `KillProcess` | yes | `kill_process` |" in page
    assert '| `mode` | one of `"quiet"`, `"loud"` (required) | `"quiet"` | - | How. |' in page
    assert "| `limit` | integer | `30` | ≥ 1, ≤ 99 |" in page
    assert 'approve = ["KillProcess"]' in page
    assert 'config = { mode = "quiet", limit = 30 }' in page
    assert "## README" in page


# -- new and build --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Name", "--lang", "c"], "is not a plugin name"),
        (["ok", "--lang", "cobol"], "Invalid value for '--lang'"),
    ],
)
def test_new_refuses_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli_run("plugin", "new", *args, "--dir", str(tmp_path))
    assert result.exit_code != 0
    assert message in result.output


def test_new_refuses_a_directory_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    result = cli_run("plugin", "new", "taken", "--lang", "c", "--dir", str(tmp_path))
    assert result.exit_code == 1 and "exists and is not empty" in result.output
    assert (tmp_path / "taken" / "x").read_text() == "mine"


def test_build_without_source_says_how_to_start(tmp_path: Path) -> None:
    shutil.copytree(HELLO, tmp_path / "hello")  # WAT only: no language toolchain
    result = cli_run("plugin", "build", str(tmp_path / "hello"))
    assert result.exit_code == 1
    assert "no plugin source found" in result.output
    assert "ruvector plugin new NAME --lang LANG" in result.output


@pytest.mark.parametrize("language", ["c", "assemblyscript", "rust"])
def test_new_then_build_then_run_in_every_language(tmp_path: Path, language: str) -> None:
    """The whole first minute of an author: new, build, dev run."""
    made = cli_run("plugin", "new", "demo", "--lang", language, "--dir", str(tmp_path))
    assert made.exit_code == 0, made.output
    plugin = tmp_path / "demo"
    built = cli_run("plugin", "build", str(plugin))
    assert built.exit_code == 0, built.output
    assert "manifest, config schema and imports checked" in built.output
    manifest = (plugin / "manifest.toml").read_text()
    assert '"0000000000000000' not in manifest  # the placeholder hash was replaced
    ran = cli_run("dev", "run", str(plugin), "--ticks", "2")
    assert ran.exit_code == 0, ran.output
    assert "violations" in ran.output and "demo" in ran.output
    inspected = cli_run("plugin", "inspect", str(plugin)).output
    assert "ABI version:   1" in inspected
