"""Auto-update on schedule, against a real registry over loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from reconciler.autoupdate import AutoUpdate
from reconciler.desired import load_desired
from reconciler.store import StateStore
from registry.schedule import Schedule
from ruvector.cli.main import cli
from tests.registry_fixtures import HELLO, Registry, write_config

ROOT = Path(__file__).resolve().parent.parent


def versions(home: Path) -> dict[str, str]:
    gen = StateStore(home / "state").current()
    assert gen is not None
    return {p.name: p.version for p in gen.plugins}


def reconcile(home: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["reconcile", *args, "--config", str(home / "ruvector.toml")])
    assert result.exit_code == 0, result.output


def test_schedule_first_check_at_once_then_on_schedule(tmp_path: Path) -> None:
    updater = AutoUpdate(tmp_path, Schedule.parse("6h"))
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert updater.due(now)
    updater.last_checked = now
    assert not updater.due(now + timedelta(hours=5, minutes=59))
    assert updater.due(now + timedelta(hours=6))


def test_the_schedule_survives_a_restart(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""}, extra="auto_update = true\nupdate_schedule = '6h'")
    desired = load_desired(home / "ruvector.toml")
    first = AutoUpdate(home / "state", desired.update_schedule)
    report = first.check(desired)
    assert report.ok, report
    again = AutoUpdate(home / "state", desired.update_schedule)  # a restart
    checked = datetime.fromisoformat(report.checked_at)
    assert not again.due(checked + timedelta(hours=1))
    assert again.next_at(checked) == checked + timedelta(hours=6)


def test_update_upgrades_within_the_constraint_and_reports(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": 'version = "^1.0"'}, extra="auto_update = true")
    reconcile(home)
    reg.publish("tabs", "1.1.0")
    reg.publish("tabs", "2.0.0")
    desired = load_desired(home / "ruvector.toml")
    report = AutoUpdate(home / "state", desired.update_schedule).check(desired)
    assert report.ok and report.summary.startswith("updated"), report
    assert versions(home) == {"tabs": "1.1.0"}
    saved = json.loads((home / "state" / "registry" / "last-update.json").read_text())
    assert saved["summary"] == report.summary and saved["next_at"]
    # Nothing newer within ^1.0: up to date, nothing changes.
    report = AutoUpdate(home / "state", desired.update_schedule).check(desired)
    assert report.summary == "up to date", report


def test_update_holds_an_upgrade_that_needs_approval(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""}, extra="auto_update = true")
    reconcile(home)
    reg.publish("tabs", "1.1.0", caps='["ReadSystemInfo", "KillProcess"]')
    desired = load_desired(home / "ruvector.toml")
    report = AutoUpdate(home / "state", desired.update_schedule).check(desired)
    assert report.ok and report.summary == "up to date", report
    assert report.held == ["tabs 1.1.0 needs KillProcess"]
    assert versions(home) == {"tabs": "1.0.0"}


def test_update_leaves_local_sources_pinned(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    shutil.copytree(HELLO, home / "hello")
    write_config(
        home, reg, {"tabs": "", "hello": 'source = "dir:hello"'}, extra="auto_update = true"
    )
    reconcile(home)
    before = StateStore(home / "state").current()
    assert before is not None
    (home / "hello" / "README.md").write_text("rebuilt without a version bump\n")
    reg.publish("tabs", "1.0.1")
    desired = load_desired(home / "ruvector.toml")
    AutoUpdate(home / "state", desired.update_schedule).check(desired)
    after = StateStore(home / "state").current()
    assert after is not None
    assert versions(home) == {"tabs": "1.0.1", "hello": "0.1.0"}
    assert before.plugin("hello") is not None
    assert after.plugin("hello").digest == before.plugin("hello").digest  # type: ignore[union-attr]


def test_update_with_the_registry_unreachable_keeps_what_runs(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""}, extra="auto_update = true")
    reconcile(home)
    write_config(home, reg, {"tabs": ""}, extra="auto_update = true", url="http://127.0.0.1:9")
    desired = load_desired(home / "ruvector.toml")
    report = AutoUpdate(home / "state", desired.update_schedule).check(desired)
    assert not report.ok, report
    assert report.summary == "registry unreachable: nothing checked, nothing changed"
    assert any("unreachable" in n and "1.0.0 stays installed" in n for n in report.notes)
    assert versions(home) == {"tabs": "1.0.0"}


def test_ruvector_run_updates_in_the_background(reg: Registry, home: Path) -> None:
    """A real `ruvector run` process: a release published while it runs is taken
    at the next scheduled check and the running plugin is restarted on it."""
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""}, extra="auto_update = true\nupdate_schedule = '60s'")
    reconcile(home)
    # The first check is due at once (none was made); make it seem made just now,
    # minus a little under the interval, so the next one comes a few seconds in.
    report = home / "state" / "registry" / "last-update.json"
    checked = datetime.now(UTC) - timedelta(seconds=57)
    report.write_text(json.dumps({"checked_at": checked.isoformat()}))
    reg.publish("tabs", "1.1.0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ruvector", "run", "--config", str(home / "ruvector.toml")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("restarting tabs" in x for x in lines):
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        reader.join(timeout=5)
    out = "".join(lines)
    assert "auto-update: updated: generation 2 is in force" in out, out
    assert "generation 2 live: restarting tabs" in out, out
    assert versions(home)["tabs"] == "1.1.0"


def test_status_shows_the_last_update_check(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""}, extra="auto_update = true")
    reconcile(home)
    reg.publish("tabs", "1.1.0", caps='["ReadSystemInfo", "KillProcess"]')
    desired = load_desired(home / "ruvector.toml")
    AutoUpdate(home / "state", desired.update_schedule).check(desired)
    config = ["--config", str(home / "ruvector.toml")]
    text = CliRunner().invoke(cli, ["status", *config]).output
    assert "auto-update: every 6 hours" in text
    assert ": up to date" in text and "held: tabs 1.1.0 needs KillProcess" in text
    report = json.loads(CliRunner().invoke(cli, ["status", "--json", *config]).output)
    assert report["auto_update"]["last"]["held"] == ["tabs 1.1.0 needs KillProcess"]
    assert report["plugins"][0]["source"] == "registry:tabs"


def test_status_computes_the_next_check_from_the_schedule_in_force(
    reg: Registry, home: Path
) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""}, extra="auto_update = true\nupdate_schedule = '6h'")
    desired = load_desired(home / "ruvector.toml")
    report = AutoUpdate(home / "state", desired.update_schedule).check(desired)
    write_config(home, reg, {"tabs": ""}, extra="auto_update = true\nupdate_schedule = '1m'")
    status = (
        CliRunner()
        .invoke(cli, ["status", "--json", "--config", str(home / "ruvector.toml")])
        .output
    )
    checked = datetime.fromisoformat(report.checked_at)
    due = json.loads(status)["auto_update"]["next_at"]
    assert datetime.fromisoformat(due) == checked + timedelta(minutes=1)
