"""What `ruvector status` reports: desired, installed and running, per plugin.

Read-only: ruvector.toml, the generation in force and its pins, each
plugin's health record, and the running executor's last published status
(state/executor.json), which counts as running only while its process lives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from reconciler.autoupdate import REPORT_NAME, AutoUpdate
from reconciler.desired import DesiredState
from reconciler.store import StateStore

EXECUTOR_STATUS = "executor.json"  # written by the executor (executor.STATUS_FILE)


def collect(desired: DesiredState) -> dict[str, Any]:
    """A JSON-able report. Raises StateError if the state is damaged."""
    state_dir = Path(desired.settings.state_dir)
    generation = StateStore(state_dir).current()
    executor = _executor(state_dir)
    installed = {p.name: p for p in generation.plugins} if generation else {}
    wanted = {p.name: p for p in desired.plugins}
    running: dict[str, Any] = executor["plugins"] if executor else {}
    refused: dict[str, Any] = executor.get("refused", {}) if executor else {}
    plugins = []
    for name in sorted(wanted.keys() | installed.keys()):
        want, have = wanted.get(name), installed.get(name)
        health = _health(state_dir, name)
        plugins.append(
            {
                "name": name,
                "desired_version": (want.version or "(any)") if want else None,
                "source": str(want.source) if want else (have.source if have else None),
                "installed_version": have.version if have else None,
                "trust": have.trust.value if have else None,
                "enabled": have.enabled if have else (want.enabled if want else False),
                "disabled_for_violations": health.get("disabled") is True,
                "disabled_reason": health.get("reason", ""),
                "violations": health.get("count", 0),
                "running": running.get(name),
                "refused": refused.get(name),
            }
        )
    return {
        "format_version": 1,
        "config": str(desired.path),
        "generation": generation.number if generation else None,
        "executor": None
        if executor is None
        else {k: v for k, v in executor.items() if k not in ("plugins", "refused")},
        "plugins": plugins,
        "auto_update": _auto_update(desired, state_dir),
    }


def _auto_update(desired: DesiredState, state_dir: Path) -> dict[str, Any]:
    """Whether auto-update is on, its schedule, and the last check's report."""
    try:
        last = json.loads((state_dir / "registry" / REPORT_NAME).read_text())
    except (OSError, ValueError):
        last = None
    last = last if isinstance(last, dict) else None
    # From the schedule in force, not the one the last check was made under.
    updater = AutoUpdate(state_dir, desired.update_schedule)
    due = updater.next_at(datetime.now(UTC))
    return {
        "enabled": desired.auto_update,
        "schedule": desired.update_schedule.describe(),
        "last": last,
        "next_at": due.isoformat() if desired.auto_update else None,
    }


def _executor(state_dir: Path) -> dict[str, Any] | None:
    """The last status a live executor published; None if none runs."""
    try:
        data = json.loads((state_dir / EXECUTOR_STATUS).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    if not psutil.pid_exists(data["pid"]) or not isinstance(data.get("plugins"), dict):
        return None  # a record left by an executor that has stopped
    return data


def _health(state_dir: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / "plugins" / name / "health.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
