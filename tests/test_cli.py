"""The command line, end to end: real files, real subprocesses, real signals."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from ruvector.cli.main import cli
from tests.plugins import Strings, module

ROOT = Path(__file__).resolve().parent.parent


def test_bundled_example_is_built_from_its_source() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "build.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def write_config(tmp_path: Path, plugins: str, interval_ms: int = 50) -> Path:
    config = tmp_path / "ruvector.toml"
    config.write_text(
        f"""[plugins]
tick_interval_ms = {interval_ms}
state_dir = "{tmp_path / "state"}"
{plugins}"""
    )
    return config


HELLO = f"""
[plugins.installed.hello]
source = "dir:{ROOT / "examples" / "hello"}"
config = {{ greeting = "hi from the test" }}
"""


def test_run_ticks_the_bundled_example(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["run", "--ticks", "2", "--config", str(write_config(tmp_path, HELLO))]
    )
    assert result.exit_code == 0, result.output
    assert "[hello] info  hi from the test" in result.output
    assert "tick 2: cpu " in result.output
    assert "hello                enabled       2" in result.output
    assert "hello.cpu_percent = " in result.output


def test_config_from_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RUVECTOR_CONFIG", str(write_config(tmp_path, HELLO)))
    result = CliRunner().invoke(cli, ["run", "--ticks", "1"])
    assert result.exit_code == 0, result.output


def test_bad_config_is_one_line_naming_file_line_and_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, HELLO.replace("config =", "confg ="))
    result = CliRunner().invoke(cli, ["run", "--config", str(config)])
    assert result.exit_code == 1
    assert f"{config}:" in result.output
    assert (
        "plugins.installed.hello.confg" in result.output
        and "did you mean 'config'" in result.output
    )
    assert "Traceback" not in result.output


def test_dev_run_with_approvals_and_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "dev", "run", str(ROOT / "examples" / "hello"), "--ticks", "1", "--interval-ms", "10",
            "--set", "greeting=plain text", "--approve", "KillProcess", "--state-dir", str(tmp_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "granted ReadSystemInfo, ShowNotifications" in result.output
    assert "approved but not declared by the manifest (no effect): KillProcess" in result.output
    assert "[hello] info  plain text" in result.output


def test_dev_run_refuses_a_bad_approval(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["dev", "run", str(ROOT / "examples" / "hello"), "--approve", "RunCommand"]
    )
    assert result.exit_code == 1
    assert "RunCommand is not available" in result.output


def make_plugin_dir(tmp_path: Path, name: str, wasm: bytes, caps: list[str]) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "plugin.wasm").write_bytes(wasm)
    (directory / "manifest.toml").write_text(
        f"""name = "{name}"
version = "1.0.0"
author = "tests"
description = "a test plugin"
license = "MIT"
capabilities = {json.dumps(caps)}
min_ruvector_version = "0.1.0"
platforms = ["linux", "macos", "windows"]
wasm_file = "plugin.wasm"
wasm_sha256 = "{hashlib.sha256(wasm).hexdigest()}"
"""
    )
    return directory


def start_run(config: Path, seconds: float = 90) -> subprocess.Popen[str]:
    """A real `python -m ruvector run` process, output merged, with a watchdog.

    The watchdog kills the process if the test is still waiting on it after
    `seconds`: its output then ends, so a missed line fails instead of hanging.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "ruvector", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=config.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    timer = threading.Timer(seconds, proc.kill)
    timer.daemon = True
    timer.start()
    return proc


def test_sigterm_stops_gracefully_with_on_cleanup(tmp_path: Path) -> None:
    s = Strings()
    body = f"""(func (export "on_tick") (param i32) (drop (call $log (i32.const 2) {s("ticked")})))
      (func (export "on_cleanup") (drop (call $log (i32.const 2) {s("cleaned up")})))"""
    plugin = make_plugin_dir(tmp_path, "tidy", module(s.data() + body, ["log"]), [])
    config = write_config(
        tmp_path, f'[plugins.installed.tidy]\nsource = "dir:{plugin}"\n', interval_ms=60_000
    )
    proc = start_run(config)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait for the first tick
        if "ticked" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stdout.read()
    assert proc.wait(timeout=10) == 0
    assert "SIGTERM: stopping after this tick" in rest
    assert "[tidy] info  cleaned up" in rest
    assert "tidy                 enabled       1" in rest


def test_plugin_enable_clears_the_disabled_state(tmp_path: Path) -> None:
    plugin = make_plugin_dir(
        tmp_path, "spinner", module('(func (export "on_tick") (param i32) (loop $l (br $l)))'), []
    )
    config = write_config(
        tmp_path, f'[plugins.installed.spinner]\nsource = "dir:{plugin}"\n', interval_ms=10
    )
    runner = CliRunner()
    first = runner.invoke(cli, ["run", "--ticks", "4", "--config", str(config)])
    assert "violation 3/3" in first.output and "[spinner] disabled" in first.output
    again = runner.invoke(cli, ["run", "--ticks", "1", "--config", str(config)])
    assert "[spinner] disabled" in again.output  # remembered across runs
    enabled = runner.invoke(cli, ["plugin", "enable", "spinner", "--config", str(config)])
    assert enabled.exit_code == 0 and "spinner: enabled" in enabled.output
    third = runner.invoke(cli, ["run", "--ticks", "1", "--config", str(config)])
    assert "violation 1/3" in third.output


def test_sighup_switches_to_the_profile_in_the_file(tmp_path: Path) -> None:
    body = '(func (export "on_profile_switch") (param i32 i32) (drop (call $log (i32.const 2) (local.get 0) (local.get 1))))'
    plugin = make_plugin_dir(tmp_path, "profiled", module(body, ["log"]), [])
    config = write_config(
        tmp_path, f'[plugins.installed.profiled]\nsource = "dir:{plugin}"\n', interval_ms=100
    )
    proc = start_run(config)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("tick 1 done"):
                break
        config.write_text(
            config.read_text().replace("[plugins]\n", '[plugins]\nprofile = "gaming"\n')
        )
        proc.send_signal(signal.SIGHUP)
        for line in proc.stdout:
            if "[profiled] info  gaming" in line:
                break
        else:
            raise AssertionError("the plugin never heard of the new profile")
    finally:
        proc.send_signal(signal.SIGTERM)
        # Drain the output while waiting: a child blocked on a full pipe
        # cannot act on SIGTERM, and what it said is the clue if it hangs.
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest


def test_plugin_enable_checks_the_name(tmp_path: Path) -> None:
    config = write_config(tmp_path, HELLO)
    bad = CliRunner().invoke(cli, ["plugin", "enable", "../../etc", "--config", str(config)])
    assert bad.exit_code == 1 and "'../../etc' is not a plugin name" in bad.output
    unknown = CliRunner().invoke(cli, ["plugin", "enable", "nope", "--config", str(config)])
    assert unknown.exit_code == 1 and "no plugin 'nope' has run" in unknown.output


def keeps_running_after_a_bad_edit(tmp_path: Path, extra: str, fragment: str) -> None:
    """The first run installs hello; a bad entry then fails the reconcile as a
    whole, and generation 1 runs on."""
    first = CliRunner().invoke(
        cli, ["run", "--ticks", "1", "--config", str(write_config(tmp_path, HELLO))]
    )
    assert first.exit_code == 0, first.output
    result = CliRunner().invoke(
        cli, ["run", "--ticks", "1", "--config", str(write_config(tmp_path, HELLO + extra))]
    )
    assert result.exit_code == 0, result.output
    assert "reconcile failed (generation 1 stays in force)" in result.output
    assert fragment in result.output
    assert "tick 1: cpu " in result.output


def test_a_plugin_without_a_manifest_keeps_the_previous_generation(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    keeps_running_after_a_bad_edit(
        tmp_path, f'[plugins.installed.broken]\nsource = "dir:{broken}"\n', "manifest.toml"
    )


def test_a_missing_plugin_source_at_start_is_an_error_naming_the_key(tmp_path: Path) -> None:
    extra = f'[plugins.installed.gone]\nsource = "dir:{tmp_path / "nowhere"}"\n'
    result = CliRunner().invoke(
        cli, ["run", "--ticks", "1", "--config", str(write_config(tmp_path, HELLO + extra))]
    )
    assert result.exit_code == 1
    assert (
        "plugins.installed.gone.source" in result.output and "is not a directory" in result.output
    )


def test_a_manifest_asking_for_run_command_is_refused(tmp_path: Path) -> None:
    shell = make_plugin_dir(
        tmp_path, "shell", module('(func (export "on_tick") (param i32))'), ["RunCommand"]
    )
    extra = f'[plugins.installed.shell]\nsource = "dir:{shell}"\n'
    keeps_running_after_a_bad_edit(tmp_path, extra, "RunCommand is not available")


def test_nothing_installed_and_a_bad_plugin_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    config = write_config(
        tmp_path, HELLO + f'[plugins.installed.broken]\nsource = "dir:{broken}"\n'
    )
    result = CliRunner().invoke(cli, ["run", "--ticks", "1", "--config", str(config)])
    assert result.exit_code == 1
    assert "reconcile failed (nothing is installed)" in result.output
    assert "no generation is installed yet" in result.output


def wait_for(proc: subprocess.Popen[str], text: str) -> list[str]:
    """Lines up to and including the first that contains `text`."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}; saw:\n{''.join(seen)}")


def test_run_follows_each_edit_of_ruvector_toml(tmp_path: Path) -> None:
    """Edits while running: reconfigure one plugin, add one, a bad edit, remove one."""
    s = Strings()
    body = f"""(func (export "on_init") (drop (call $log (i32.const 2) {s("tidy up")})))
      (func (export "on_cleanup") (drop (call $log (i32.const 2) {s("tidy down")})))"""
    tidy = make_plugin_dir(tmp_path, "tidy", module(s.data() + body, ["log"]), [])
    config = write_config(tmp_path, HELLO, interval_ms=100)
    proc = start_run(config)
    try:
        wait_for(proc, "tick 2: cpu")
        config.write_text(config.read_text().replace("hi from the test", "second greeting"))
        lines = wait_for(proc, "[hello] info  second greeting")
        assert any("generation 2 live: restarting hello" in ln for ln in lines)

        config.write_text(config.read_text() + f'[plugins.installed.tidy]\nsource = "dir:{tidy}"\n')
        lines = wait_for(proc, "[tidy] info  tidy up")
        assert not any("second greeting" in ln for ln in lines)  # hello kept running, not restarted

        good = config.read_text()
        config.write_text(good + "[plugins\n")
        wait_for(proc, "(nothing changed)")
        wait_for(proc, "[hello] info  tick")  # still ticking

        config.write_text(good.split("[plugins.installed.tidy]")[0])
        lines = wait_for(proc, "[tidy] info  tidy down")
        assert any("generation 4 live: restarting tidy" in ln for ln in lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_status_says_when_the_executor_runs_on_the_slower_api(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    state = tmp_path / "state"
    state.mkdir()
    note = "wasmtime 51.0.0 is installed; the fast path is built for 50.x"
    published = {"pid": os.getpid(), "ticks": 3, "profile": "default", "plugins": {}}
    published |= {"refused": {}, "call_api": "reference", "call_api_note": note}
    (state / "executor.json").write_text(json.dumps(published))
    text = CliRunner().invoke(cli, ["status", "--config", str(config)]).output
    assert f"on wasmtime-py's slower high-level API: {note}" in text, text


def test_status_shows_desired_installed_and_the_running_executor(tmp_path: Path) -> None:
    spinner = make_plugin_dir(
        tmp_path, "spinner", module('(func (export "on_tick") (param i32) (loop $l (br $l)))'), []
    )
    # Imports a host function its manifest declares no capability for.
    greedy = make_plugin_dir(
        tmp_path,
        "greedy",
        module('(func (export "on_tick") (param i32))', imports=["show_notification"]),
        [],
    )
    config = write_config(
        tmp_path,
        HELLO
        + f'[plugins.installed.spinner]\nsource = "dir:{spinner}"\n'
        + f'[plugins.installed.greedy]\nsource = "dir:{greedy}"\n',
        interval_ms=100,
    )
    proc = start_run(config)
    try:
        wait_for(proc, "[spinner] disabled")
        wait_for(proc, "tick 5 done")
        report = json.loads(
            CliRunner().invoke(cli, ["status", "--json", "--config", str(config)]).output
        )
        assert report["generation"] == 1 and report["executor"]["pid"] == proc.pid
        greedy_row, hello, spin = report["plugins"]
        assert "ShowNotifications" in greedy_row["refused"], greedy_row
        assert (hello["name"], hello["desired_version"], hello["installed_version"]) == (
            "hello",
            "(any)",
            "0.1.0",
        )
        # the executor publishes its status once a second
        assert hello["trust"] == "unsigned" and hello["running"]["ticks"] >= 1
        assert spin["disabled_for_violations"] and spin["violations"] == 3
        text = CliRunner().invoke(cli, ["status", "--config", str(config)]).output
        assert f"executor: running (pid {proc.pid}" in text and "disabled: 3 violations" in text
        assert report["executor"]["call_api"] == "fast" and "slower" not in text
        assert "auto-update: off" in text
        assert "refused at load: import ruvector.show_notification" in text
        assert report["auto_update"] == {
            "enabled": False,
            "schedule": "every 6 hours",
            "last": None,
            "next_at": None,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    after = CliRunner().invoke(cli, ["status", "--config", str(config)]).output
    assert "executor: not running" in after


def test_run_follows_a_rollback_and_a_failed_reconcile_changes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, HELLO, interval_ms=100)
    proc = start_run(config)
    try:
        wait_for(proc, "tick 1: cpu")
        good = config.read_text()
        config.write_text(good.replace("hi from the test", "second"))
        wait_for(proc, "[hello] info  second")
        back = CliRunner().invoke(cli, ["rollback", "--config", str(config)])
        assert back.exit_code == 0, back.output
        lines = wait_for(proc, "[hello] info  hi from the test")  # generation 1 again
        assert any("generation 1 live: restarting hello" in ln for ln in lines)
        # valid TOML that fails the plan (greeting must be a string), with a profile change
        config.write_text(good.replace('greeting = "hi from the test"', "greeting = 5").replace(
            "[plugins]\n", '[plugins]\nprofile = "gaming"\n'))  # fmt: skip
        wait_for(proc, "reconcile failed")
        time.sleep(1.5)  # the executor publishes its status once a second
        report = json.loads(
            CliRunner().invoke(cli, ["status", "--json", "--config", str(config)]).output
        )
        assert report["executor"]["profile"] == "default"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_plan_and_edits_import_no_runtime_and_no_network_stack() -> None:
    """`ruvector plan` is run often (CI, fleets): it must not pay for wasmtime,
    psutil, httpx or tuf unless a registry plugin needs fetching."""
    code = (
        "import sys, ruvector.cli.reconcile, ruvector.cli.edit\n"
        "heavy = sorted({'wasmtime', 'psutil', 'httpx', 'tuf'} & set(sys.modules))\n"
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_dev_run_counts_a_partial_host_approval_as_granted(tmp_path: Path) -> None:
    """Hosts are approved one at a time: approving one of several is not 'no effect'."""
    plugin = make_plugin_dir(
        tmp_path,
        "net",
        module('(func (export "on_tick") (param i32))'),
        ["NetworkAccess(a.example, 127.0.0.1)"],
    )
    result = CliRunner().invoke(
        cli,
        ["dev", "run", str(plugin), "--ticks", "1", "--approve", "NetworkAccess(127.0.0.1)",
         "--state-dir", str(tmp_path / "state")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no effect" not in result.output
    assert "granted NetworkAccess(127.0.0.1)" in result.output
