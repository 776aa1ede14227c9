"""Violations and the three-strikes rule, persisted so a restart remembers.

A plugin that breaks its limits `strikes` times is disabled. The disabled
state is written to state/plugins/NAME/health.json with the SHA-256 of the
wasm that earned it: the same build stays disabled across restarts until the
user re-enables it (`ruvector plugin enable`), while a new version starts
with a clean record.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from executor.sandbox import Violation
from ruvector.atomic import atomic_write
from ruvector.errors import HostFault

log = logging.getLogger(__name__)

MAX_RECORDED = 20  # most recent violations kept for display


@dataclass
class Health:
    path: Path
    sha256: str
    strikes: int
    violations: list[dict[str, object]] = field(default_factory=list)  # the latest
    count: int = 0  # every violation of this build, not only the ones kept
    disabled: bool = False
    reason: str = ""

    @classmethod
    def load(cls, path: Path, sha256: str, strikes: int) -> Health:
        health = cls(path, sha256, strikes)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return health
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
            return health
        if not isinstance(data, dict):
            log.warning("ignoring %s: not a health record", path)
            return health
        if data.get("sha256") != sha256:  # another build's record
            return health
        violations = data.get("violations")
        health.violations = violations[-MAX_RECORDED:] if isinstance(violations, list) else []
        count = data.get("count")
        health.count = count if isinstance(count, int) else len(health.violations)
        health.disabled = data.get("disabled") is True
        health.reason = str(data.get("reason", ""))
        return health

    def record(self, violation: Violation) -> bool:
        """Record a violation; True if this one disables the plugin."""
        self.violations.append(
            {
                "at": time.time(),
                "kind": violation.kind.name,
                "hook": violation.hook,
                "detail": violation.detail,
            }
        )
        del self.violations[:-MAX_RECORDED]
        self.count += 1
        newly = not self.disabled and self.count >= self.strikes
        if newly:
            self.disabled = True
            self.reason = f"{self.count} violations; last: {violation}"
        self.try_save()
        return newly

    def enable(self) -> None:
        self.violations.clear()
        self.count = 0
        self.disabled = False
        self.reason = ""
        self.save()

    def try_save(self) -> None:
        """save(), but a full or read-only disk is logged, not raised.

        The record stays correct in memory: this run still disables the
        plugin; only a restart would forget what could not be written.
        """
        try:
            self.save()
        except OSError as exc:
            log.warning("cannot save %s: %s", self.path, exc)

    def save(self) -> None:
        """Write the record atomically. Raises OSError from the OS."""
        data = {
            "sha256": self.sha256,
            "disabled": self.disabled,
            "reason": self.reason,
            "count": self.count,
            "violations": self.violations,
        }
        atomic_write(self.path, json.dumps(data, indent=2).encode())


def enable_plugin(state_dir: Path, name: str) -> bool:
    """Clear a plugin's disabled state; False if it was not disabled.

    Raises HostFault if the record cannot be rewritten.
    """
    path = plugin_dir(state_dir, name) / "health.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("disabled") is not True:
        return False
    try:
        Health.load(path, str(data.get("sha256", "")), 1).enable()
    except OSError as exc:
        raise HostFault(f"cannot re-enable '{name}': {exc}") from None
    return True


def plugin_dir(state_dir: Path, name: str) -> Path:
    return state_dir / "plugins" / name
