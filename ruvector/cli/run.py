"""`ruvector run`: reconcile, then run the generation in force, following edits."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path

import click

from executor.executor import Executor
from reconciler.apply import reconcile
from reconciler.autoupdate import AutoUpdate
from reconciler.desired import DesiredState, load_desired
from reconciler.handoff import hand_off
from reconciler.lock import LockHeld
from reconciler.store import Generation, InstalledPlugin, StateStore
from ruvector.cli.common import config_option, on_sighup, run_executor
from ruvector.cli.output import ConsoleObserver
from ruvector.cli.render import render
from ruvector.errors import HostFault, InputError


@click.command()
@config_option
@click.option("--ticks", type=click.IntRange(min=1), help="Stop after this many ticks.")
def run(config_path: Path, ticks: int | None) -> None:
    """Reconcile ruvector.toml, then run its plugins on a fixed tick.

    On SIGHUP, or when ruvector.toml changes on disk, it reconciles again and
    applies the result live: only plugins whose version, config or approvals
    changed are restarted; the rest keep ticking. A bad edit is reported and
    changes nothing. With auto_update = true, registry plugins are upgraded
    within their version constraints on update_schedule, in the background.
    SIGINT or SIGTERM stop it after the current tick, calling each plugin's
    on_cleanup.
    """
    desired = load_desired(config_path)
    if not desired.enabled:
        click.echo(f"{config_path}: plugins.enabled is false; nothing to run")
        return
    store = StateStore(Path(desired.settings.state_dir))
    generation = _reconcile(desired, store)
    if generation is None:
        raise InputError("no generation is installed yet; fix the errors above and run again")
    observer = ConsoleObserver()
    executor = Executor(desired.settings, observer)
    follower = _Follower(config_path, store, executor, generation, desired)

    def load() -> None:
        follower.load(generation.plugins)
        interval = desired.settings.tick_interval_ms
        click.echo(f"running {len(executor.plugins)} plugin(s), a tick every {interval} ms")

    with on_sighup() as hup:
        follower.hup = hup
        try:
            run_executor(executor, load, ticks, follower.before_tick)
        finally:
            follower.finish()


def _reconcile(desired: DesiredState, store: StateStore) -> Generation | None:
    """Reconcile once; on failure say so and keep the generation in force."""
    try:
        return _try_reconcile(desired, store)[0]
    except _Busy as exc:
        current = store.current()
        keeping = f"generation {current.number} runs" if current else "nothing is installed"
        click.echo(f"{exc}: not reconciled now ({keeping}; edits are followed)", err=True)
        return current


class _Busy(Exception):
    """Another reconcile (an update check, a command) holds the lock: try again later."""


def _try_reconcile(desired: DesiredState, store: StateStore) -> tuple[Generation | None, bool]:
    """(the generation in force after reconciling, whether the reconcile succeeded).

    Raises _Busy when another reconcile holds the lock.
    """
    try:
        done = reconcile(desired, store)
    except LockHeld as exc:
        raise _Busy(str(exc)) from None
    except (InputError, HostFault) as exc:
        current = store.current()
        keeping = (
            f"generation {current.number} stays in force" if current else "nothing is installed"
        )
        click.echo(
            click.style("reconcile failed", fg="red", bold=True) + f" ({keeping}):\n{exc}", err=True
        )
        return current, False
    if done.plan.has_changes:
        click.echo(render(done.plan, colour=False))
        for step in done.applied.done:
            click.echo(f"  {step}")
    return done.applied.generation, True


# How long stopping waits for an update check under way (a registry that
# stalls is bounded by the download timeouts, 120 s at most).
UPDATE_WAIT_S = 30.0


class _Follower:
    """Applies new generations to the running executor between ticks."""

    def __init__(
        self,
        config: Path,
        store: StateStore,
        executor: Executor,
        generation: Generation,
        desired: DesiredState,
    ) -> None:
        self.config, self.store, self.executor = config, store, executor
        self.generation, self.desired = generation, desired
        self.hup = threading.Event()
        self.seen = _fingerprint(config)
        self.updater: AutoUpdate | None = None
        self.updating: threading.Thread | None = None

    def load(self, plugins: tuple[InstalledPlugin, ...]) -> None:
        handed = hand_off(plugins, self.store, self.desired)
        for name, why in handed.problems:
            self.executor.refuse(name, why)
        self.executor.load_all(handed.specs)

    def before_tick(self) -> None:
        seen = _fingerprint(self.config)
        if self.hup.is_set() or seen != self.seen:
            self.hup.clear()
            self.seen = seen
            self._reconcile()
        self._maybe_update()
        self._follow_current()

    def finish(self, wait_s: float = UPDATE_WAIT_S) -> None:
        """Let an update check under way end before exiting: killed mid-apply it
        would be safe (apply is crash-safe) but lost, and its report unwritten."""
        thread = self.updating
        if thread is None or not thread.is_alive():
            return
        click.echo(f"waiting up to {wait_s:.0f} s for the update check to finish", err=True)
        thread.join(wait_s)
        if thread.is_alive():
            click.echo("update check abandoned; the next start checks again", err=True)

    def _maybe_update(self) -> None:
        """Start a scheduled update check in the background when one is due.

        It reconciles on its own thread (a registry can be slow; ticks must
        not wait) and switches the generation; _follow_current adopts it on
        a later tick like any switch made by another command.
        """
        desired = self.desired
        if not desired.auto_update or not desired.from_registry():
            return
        if self.updating is not None and self.updating.is_alive():
            return
        updater = self.updater
        if updater is None or updater.schedule != desired.update_schedule:
            updater = self.updater = AutoUpdate(self.store.state_dir, desired.update_schedule)
        if not updater.due(datetime.now(UTC)):
            return
        self.updating = threading.Thread(
            target=_update, args=(updater, desired), name="ruvector-update", daemon=True
        )
        self.updating.start()

    def _reconcile(self) -> None:
        click.echo("reconciling ruvector.toml")
        try:
            desired = load_desired(self.config)
        except InputError as exc:
            click.echo(f"{exc}\n(nothing changed)", err=True)
            return
        try:
            generation, ok = _try_reconcile(desired, self.store)
        except _Busy as exc:
            # The edit is not dropped: seen again as new on the next tick.
            click.echo(f"{exc}; trying again next tick", err=True)
            self.seen = None
            return
        if not ok:  # a bad edit changes nothing, the profile included
            return
        self._warn_restart_only(desired)
        self.desired = desired
        self._adopt(generation)
        if desired.settings.profile != self.executor.profile:
            self.executor.switch_profile(desired.settings.profile)

    def _follow_current(self) -> None:
        """Follow a generation switched by another command (a rollback)."""
        try:
            if self.store.current_number() == self.generation.number:
                return  # the common case: one small file read per tick
            self._adopt(self.store.current())
        except HostFault as exc:
            click.echo(f"cannot read the generation in force: {exc}", err=True)

    def _adopt(self, generation: Generation | None) -> None:
        if generation is not None and generation.number != self.generation.number:
            self._switch(self.generation, generation)
            self.generation = generation

    def _warn_restart_only(self, desired: DesiredState) -> None:
        """Settings of the executor itself apply at the next start."""
        old, new = self.desired.settings, desired.settings
        for name in (
            "tick_interval_ms",
            "protected_processes",
            "allow_other_users",
            "state_dir",
            "metering",
        ):
            if getattr(old, name) != getattr(new, name):
                click.echo(f"plugins.{name} changed: it takes effect when ruvector run restarts")
        if old.memory_high_percent != new.memory_high_percent or (
            old.memory_critical_percent != new.memory_critical_percent
        ):
            click.echo("memory pressure thresholds changed: they take effect at restart")
        if desired.enabled != self.desired.enabled:
            click.echo("plugins.enabled changed: it takes effect when ruvector run restarts")

    def _switch(self, old: Generation, new: Generation) -> None:
        """Restart only what changed; everything else keeps its memory and ticks on."""
        before = {p.name: p for p in old.plugins}
        after = {p.name: p for p in new.plugins}
        changed = {
            n for n in before.keys() | after.keys() if _key(before.get(n)) != _key(after.get(n))
        }
        if changed:
            click.echo(f"generation {new.number} live: restarting {', '.join(sorted(changed))}")
        for name in sorted(changed):
            if name in self.executor.plugins:
                self.executor.unload(name)
        self.load(tuple(after[n] for n in sorted(changed) if n in after))


def _update(updater: AutoUpdate, desired: DesiredState) -> None:
    report = updater.check(desired)
    click.echo(f"auto-update: {report.summary}", err=not report.ok)
    for line in (*report.done, *(f"held: {h}" for h in report.held), *report.notes):
        click.echo(f"  {line}")
    click.echo(f"  next check: {report.next_at}")


def _key(p: InstalledPlugin | None) -> tuple[object, ...] | None:
    """What makes a running plugin stale: artifact, config, approvals, state, limits."""
    return (
        None
        if p is None
        else (p.digest, p.config_hash, p.approved, p.enabled, tuple(sorted(p.limits.items())))
    )


def _fingerprint(path: Path) -> bytes | None:
    """The file's content hash: an edit is seen even when the file system's
    coarse mtime does not move (a truncate and a write in one clock tick),
    and a half-written file read mid-edit is read again once complete."""
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None
