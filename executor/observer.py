"""What the executor reports as it runs. The CLI prints it; tests collect it."""

from __future__ import annotations

from executor.sandbox import Violation


class Observer:
    """Receives the executor's events. Every method is a no-op here."""

    def log(self, plugin: str, level: str, message: str) -> None:
        """A plugin's log line."""

    def notify(self, plugin: str, title: str, message: str) -> None:
        """A notification, from a plugin or from the host about a plugin."""

    def violation(self, plugin: str, violation: Violation, count: int, strikes: int) -> None:
        """A plugin broke a limit; `count` of `strikes` allowed."""

    def disabled(self, plugin: str, reason: str) -> None:
        """A plugin was disabled (now, or found disabled at load)."""

    def refused(self, plugin: str, reason: str) -> None:
        """A plugin could not be loaded."""

    def tick_done(self, tick: int, elapsed_s: float) -> None:
        """One tick over every plugin finished."""
