"""plan / reconcile / rollback end to end: real files, a real state dir."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from reconciler.bundle import bundle_from_dir, write_bundle
from reconciler.store import StateStore
from ruvector.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A ruvector.toml with the bundled hello plugin, its state beside it."""
    shutil.copytree(HELLO, tmp_path / "hello")
    write(tmp_path, 'greeting = "one"')
    return tmp_path


def write(home: Path, config: str, extra: str = "") -> None:
    (home / "ruvector.toml").write_text(
        f"""[plugins]
tick_interval_ms = 50

[plugins.installed.hello]
source = "dir:hello"
config = {{ {config} }}
{extra}"""
    )


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(home / "ruvector.toml")])


def snapshot(home: Path) -> dict[str, str]:
    """Every file under state/ and its hash (the lock's note aside)."""
    state = home / "state"
    return {
        str(p.relative_to(state)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(state.rglob("*"))
        if p.is_file() and p.name != "reconcile.lock"
    }


def test_install_then_nothing_to_do(home: Path) -> None:
    first = run(home, "reconcile")
    assert first.exit_code == 0, first.output
    assert (
        "+ hello" in first.output
        and "Plan: 1 to install, 0 to change, 0 to remove." in first.output
    )
    assert "switched to generation 1" in first.output
    store = StateStore(home / "state")
    gen = store.current()
    assert gen is not None and [p.name for p in gen.plugins] == ["hello"]
    assert store.read_pins()["hello"].version == "0.1.0"
    again = run(home, "reconcile")
    assert again.exit_code == 0 and "No changes." in again.output
    assert StateStore(home / "state").current().number == 1  # type: ignore[union-attr]


def test_plan_changes_nothing_and_has_terraform_exit_codes(home: Path) -> None:
    assert run(home, "plan", "--detailed-exitcode").exit_code == 2
    assert not (home / "state" / "generations").exists()
    run(home, "reconcile")
    assert run(home, "plan", "--detailed-exitcode").exit_code == 0
    write(home, "greeting = 5")  # the schema wants a string
    failed = run(home, "plan", "--detailed-exitcode")
    assert failed.exit_code == 1
    assert "plugins.installed.hello.config.greeting" in failed.output


def test_reconfigure_and_rollback(home: Path) -> None:
    run(home, "reconcile")
    write(home, 'greeting = "two"')
    result = run(home, "reconcile")
    assert '~ greeting: "one" -> "two"' in result.output
    assert "switched to generation 2" in result.output
    back = run(home, "rollback")
    assert back.exit_code == 0 and "Rolled back to generation 1" in back.output
    assert '~ greeting: "one" -> "two"' in run(home, "plan").output
    assert run(home, "rollback").exit_code == 1  # generation 1 has no parent


def test_json_plan_is_versioned_and_valid(home: Path) -> None:
    result = run(home, "plan", "--json")
    data = json.loads(result.output)
    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    assert data["format_version"] == 1 and data["summary"] == {
        "install": 1,
        "change": 0,
        "remove": 0,
    }


def test_saved_plan_applies_exactly_and_goes_stale(home: Path) -> None:
    saved = home / "plan.json"
    assert run(home, "plan", "--out", str(saved)).exit_code == 0
    write(home, 'greeting = "ignored by the saved plan"')
    applied = CliRunner().invoke(
        cli, ["reconcile", str(saved), "--config", str(home / "ruvector.toml")]
    )
    assert applied.exit_code == 0, applied.output
    gen = StateStore(home / "state").current()
    assert gen is not None and gen.plugins[0].config == {"greeting": "one"}
    before = snapshot(home)
    stale = CliRunner().invoke(
        cli, ["reconcile", str(saved), "--config", str(home / "ruvector.toml")]
    )
    assert stale.exit_code == 1 and "make a new plan" in stale.output
    assert snapshot(home) == before


def test_a_saved_plan_cannot_claim_a_trust_level(home: Path) -> None:
    """Trust comes from signatures: an edited plan file saying "verified" is refused."""
    saved = home / "plan.json"
    assert run(home, "plan", "--out", str(saved)).exit_code == 0
    data = json.loads(saved.read_text())
    data["target"][0]["trust"] = "verified"
    saved.write_text(json.dumps(data))
    result = CliRunner().invoke(
        cli, ["reconcile", str(saved), "--config", str(home / "ruvector.toml")]
    )
    assert result.exit_code == 1
    assert "installs hello 0.1.0 as verified, but its signature makes it unsigned" in result.output
    assert StateStore(home / "state").current() is None


def test_drift_is_detected_and_repaired(home: Path) -> None:
    run(home, "reconcile")
    (wasm,) = (home / "state" / "store").glob("*/plugin.wasm")
    good = wasm.read_bytes()
    wasm.write_bytes(good + b"tampered")
    plan = run(home, "plan")
    assert "repair drift under state/: changed plugin.wasm" in plan.output
    assert run(home, "reconcile").exit_code == 0
    assert wasm.read_bytes() == good
    wasm.unlink()
    assert "missing plugin.wasm" in run(home, "reconcile").output
    assert wasm.read_bytes() == good
    assert "No changes." in run(home, "reconcile").output


def test_removing_every_plugin_needs_allow_empty(home: Path) -> None:
    run(home, "reconcile")
    (home / "ruvector.toml").write_text("[plugins]\n")
    before = snapshot(home)
    refused = run(home, "reconcile")
    assert refused.exit_code == 1 and "--allow-empty" in refused.output
    assert snapshot(home) == before
    done = CliRunner().invoke(
        cli, ["reconcile", "--allow-empty", "--config", str(home / "ruvector.toml")]
    )
    assert done.exit_code == 0 and "- hello" in done.output
    assert StateStore(home / "state").current().plugins == ()  # type: ignore[union-attr]


def test_bad_input_changes_nothing(home: Path) -> None:
    run(home, "reconcile")
    before = snapshot(home)
    (home / "ruvector.toml").write_text("[plugins\n")
    syntax = run(home, "reconcile")
    assert syntax.exit_code == 1 and "ruvector.toml:1" in syntax.output
    write(home, 'greeting = "x"', extra='[plugins.installed.evil]\nsource = "dir:nowhere"\n')
    missing = run(home, "reconcile")
    assert missing.exit_code == 1 and "plugins.installed.evil.source" in missing.output
    assert snapshot(home) == before


def test_a_bundle_source_installs(home: Path) -> None:
    bundle = home / "hello-0.1.0.rvp"
    write_bundle(bundle_from_dir(home / "hello"), bundle)
    (home / "ruvector.toml").write_text(
        '[plugins.installed.hello]\nsource = "file:hello-0.1.0.rvp"\nconfig = { greeting = "b" }\n'
    )
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert "install 0.1.0 from file:" in result.output


def test_a_second_reconcile_waits_its_turn(home: Path) -> None:
    """While another process holds the lock, reconcile refuses and names it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from pathlib import Path; from reconciler.lock import ReconcileLock;"
            "lock = ReconcileLock(Path(sys.argv[2])); lock.acquire(); print('held', flush=True); time.sleep(60)"
        ), str(ROOT), str(home / "state")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = run(home, "reconcile")
        assert result.exit_code == 1 and f"pid {holder.pid}" in result.output
    finally:
        holder.kill()
        holder.wait()
    assert run(home, "reconcile").exit_code == 0  # the kernel released the dead holder's lock


def test_limits_are_planned_kept_in_generations_and_rolled_back(home: Path) -> None:
    run(home, "reconcile")
    text = (
        (home / "ruvector.toml")
        .read_text()
        .replace("[plugins.installed.hello]\n", "[plugins.installed.hello]\nmax_tick_ms = 40\n")
    )
    (home / "ruvector.toml").write_text(text)
    result = run(home, "reconcile")
    assert "limits:\n      ~ max_tick_ms: 100 -> 40" in result.output
    gen = StateStore(home / "state").current()
    assert gen is not None and gen.plugins[0].limits["max_tick_ms"] == 40
    run(home, "rollback")
    gen = StateStore(home / "state").current()
    assert gen is not None and gen.plugins[0].limits["max_tick_ms"] == 100


def test_hostile_sources_are_refused_and_nothing_changes(home: Path) -> None:
    """A traversal bundle, a hash mismatch and a hanging config schema, each
    refused with its reason while generation 1 and every file stay as they were."""
    import zipfile

    run(home, "reconcile")
    before = snapshot(home)
    evil = home / "evil.rvp"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../escape.txt", "x")
    cases = {
        f'source = "file:{evil}"': "escape.txt",
    }
    # a copy of hello whose wasm no longer matches its manifest
    bad = home / "bad"
    shutil.copytree(HELLO, bad)
    (bad / "plugin.wasm").write_bytes((bad / "plugin.wasm").read_bytes() + b"\0")
    cases[f'source = "dir:{bad}"'] = "wasm_sha256"
    # a schema whose pattern backtracks for ever on this config
    slow = home / "slow"
    shutil.copytree(HELLO, slow)
    (slow / "config.schema.json").write_text(
        '{"properties": {"greeting": {"type": "string", "pattern": "(a+)+$"}}}'
    )
    cases[f'source = "dir:{slow}"\nconfig = {{ greeting = "{"a" * 40}!" }}'] = "took over"
    for entry, fragment in cases.items():
        (home / "ruvector.toml").write_text(f"[plugins.installed.hello]\n{entry}\n")
        result = run(home, "reconcile")
        assert result.exit_code == 1, result.output
        assert fragment in result.output, result.output
        assert snapshot(home) == before
    assert not (home.parent / "escape.txt").exists()


@pytest.mark.parametrize("replacement", ["symlink", "file"])
def test_an_artifact_replaced_by_a_link_or_a_file_is_republished_in_place(
    home: Path, replacement: str
) -> None:
    run(home, "reconcile")
    (artifact,) = (home / "state" / "store").iterdir()
    victim = home / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    shutil.rmtree(artifact)
    if replacement == "symlink":
        artifact.symlink_to(victim)
    else:
        artifact.write_text("junk")
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert artifact.is_dir() and not artifact.is_symlink()
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]  # never written through
    assert "No changes." in run(home, "reconcile").output


def test_a_lost_current_keeps_the_way_back(home: Path) -> None:
    run(home, "reconcile")
    (home / "state" / "generations" / "current").unlink()
    write(home, 'greeting = "two"')
    assert "switched to generation 2" in run(home, "reconcile").output
    back = run(home, "rollback")
    assert back.exit_code == 0 and "Rolled back to generation 1" in back.output


def test_rollback_works_when_ruvector_toml_does_not(home: Path) -> None:
    run(home, "reconcile")
    write(home, 'greeting = "two"')
    run(home, "reconcile")
    (home / "ruvector.toml").write_text(
        (home / "ruvector.toml").read_text() + "[plugins.installed.x]\n"
    )
    back = run(home, "rollback")
    assert back.exit_code == 0 and "Rolled back to generation 1" in back.output
    assert "plans forward from here again" in back.output


def test_a_changed_secret_is_validated_again(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schema = home / "hello" / "config.schema.json"
    schema.write_text(
        '{"type": "object", "properties": {"greeting": {"type": "string", "minLength": 5}}}'
    )
    write(home, 'greeting = "env:RV_GREETING"')
    monkeypatch.setenv("RV_GREETING", "long enough")
    assert run(home, "reconcile").exit_code == 0
    monkeypatch.setenv("RV_GREETING", "shrt")
    result = run(home, "plan")
    assert result.exit_code == 1 and "plugins.installed.hello.config.greeting" in result.output
    assert "shrt" not in result.output  # the secret is named by its variable, never shown


def test_plan_out_to_a_missing_directory_is_one_clear_error(home: Path) -> None:
    result = run(home, "plan", "--out", str(home / "no" / "such" / "plan.json"))
    assert result.exit_code == 1 and "cannot save the plan" in result.output
    assert "Traceback" not in result.output


def test_a_damaged_generation_record_is_replaced_by_a_fresh_install(home: Path) -> None:
    run(home, "reconcile")
    record = home / "state" / "generations" / "1.json"
    record.write_text(record.read_text().replace('"one"', '"edited by hand"'))
    assert run(home, "plan").exit_code == 1  # plan only reads: it says what is wrong
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert "damaged" in result.output and "switched to generation 2" in result.output
    assert "No changes." in run(home, "reconcile").output
