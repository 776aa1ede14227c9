"""Auto-update: on ruvector.toml's schedule, upgrade registry plugins within their constraints.

An update is an ordinary reconcile with --upgrade for the registry's
plugins only, so it takes the normal plan/apply path and its guarantees:
it never goes below a plugin's high-water mark, skips versions rolled back
on this machine, holds an upgrade that needs a new approval (the old
version keeps running), refuses a release that fails verification while
the installed one stays, and changes nothing at all when the plan fails.

Each check is reported in state/registry/last-update.json (when, what it
did, what it held, when the next one is due), which also carries the
schedule across restarts: a machine restarted every night still updates.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reconciler.apply import reconcile
from reconciler.desired import DesiredState
from reconciler.plan import Hold
from reconciler.store import StateStore
from registry.schedule import Schedule
from ruvector.atomic import atomic_write
from ruvector.errors import HostFault, InputError

REPORT_NAME = "last-update.json"


@dataclass(frozen=True)
class UpdateReport:
    checked_at: str  # ISO 8601, UTC
    ok: bool
    summary: str  # one line
    done: list[str] = field(default_factory=list)  # steps applied
    held: list[str] = field(default_factory=list)  # upgrades waiting for approval
    notes: list[str] = field(default_factory=list)  # refused releases, cache use...
    generation: int | None = None
    next_at: str = ""


class AutoUpdate:
    """When the next check is due, and the check itself."""

    def __init__(self, state_dir: Path, schedule: Schedule) -> None:
        self.path = state_dir / "registry" / REPORT_NAME
        self.schedule = schedule
        self.last_checked = _last_checked(self.path)

    def next_at(self, now: datetime) -> datetime:
        """The first check comes at once if none was ever made (or its record is gone)."""
        # None made, or one recorded in the future (a clock that ran ahead,
        # since corrected): due now, rather than silent until that time.
        if self.last_checked is None or self.last_checked > now:
            return now
        return self.schedule.next_after(self.last_checked)

    def due(self, now: datetime) -> bool:
        return now >= self.next_at(now)

    def check(self, desired: DesiredState, now: datetime | None = None) -> UpdateReport:
        """Reconcile with --upgrade for every registry plugin; report, never raise
        for what the user or the registry can fix."""
        now = now or datetime.now(UTC)
        names = frozenset(p.name for p in desired.from_registry())
        store = StateStore(Path(desired.settings.state_dir))
        try:
            done = reconcile(desired, store, upgrade=names)
        except (InputError, HostFault) as exc:
            report = UpdateReport(
                now.isoformat(), False, f"update check failed, nothing changed: {exc}"
            )
        else:
            plan = done.plan
            held = [
                f"{a.plugin} {a.version} needs {', '.join(a.needs)}"
                for a in plan.actions
                if isinstance(a, Hold)
            ]
            unreachable = any("is unreachable" in n for n in plan.notes)
            if plan.has_changes and done.applied.generation is not None:
                summary = f"updated: generation {done.applied.generation.number} is in force"
            elif unreachable:
                summary = "registry unreachable: nothing checked, nothing changed"
            else:
                summary = "up to date"
            report = UpdateReport(
                now.isoformat(),
                not unreachable or plan.has_changes,
                summary,
                list(done.applied.done),
                held,
                list(plan.notes),
                done.applied.generation.number if done.applied.generation else None,
            )
        self.last_checked = now
        report = UpdateReport(**{**asdict(report), "next_at": self.next_at(now).isoformat()})
        self._save(report)
        return report

    def _save(self, report: UpdateReport) -> None:
        # The report is for people; unwritten, the schedule restarts from now.
        with contextlib.suppress(OSError):
            atomic_write(self.path, (json.dumps(asdict(report), indent=1) + "\n").encode())


def _last_checked(path: Path) -> datetime | None:
    try:
        data = json.loads(path.read_bytes())
        moment = datetime.fromisoformat(data["checked_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return moment if moment.tzinfo is not None else None
