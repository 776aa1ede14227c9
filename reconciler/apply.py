"""Observe, plan and apply: from ruvector.toml to a new generation, atomically.

    observe(store) -> Observed            what is installed, and its drift
    make_plan(desired, observed, offers) -> Plan
    apply(plan, offers, store) -> Applied

apply stages every artifact the new generation needs (content-addressed, so
staging never disturbs what runs), repairs drifted ones, writes the new
generation's record and only then switches `current`: the one atomic step.
A failure before the switch leaves the previous generation in force and
reports which steps were done. The caller holds the ReconcileLock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from reconciler.config_schema import parse_config_schema
from reconciler.desired import DesiredState
from reconciler.lock import ReconcileLock
from reconciler.manifest import MANIFEST_NAME, parse_manifest, semver_key
from reconciler.plan import (
    Available,
    Plan,
    PlanError,
    Repair,
    Target,
    UpgradeScope,
    config_hash,
    plan,
)
from reconciler.signature import installed_trust
from reconciler.sources import Offers, read_sources
from reconciler.store import (
    Generation,
    InstalledPlugin,
    StateError,
    StateStore,
    hashes_of,
    pins_of,
)
from reconciler.trust import TrustLevel
from registry.history import History
from ruvector.errors import HostFault, InputError

if TYPE_CHECKING:
    from registry.source import ClientFactory

log = logging.getLogger(__name__)

# Generations kept for rollback; older ones and the artifacts only they use go.
KEEP_GENERATIONS = 10


class StalePlan(InputError):
    """A saved plan no longer matches what is installed or offered."""


class EmptyRefused(InputError):
    """The plan would remove every plugin and --allow-empty was not given."""


class ApplyFailed(HostFault):
    """Applying stopped part-way; the previous generation is still in force."""

    def __init__(self, cause: Exception, done: list[str], not_done: list[str]) -> None:
        self.cause, self.done, self.not_done = cause, tuple(done), tuple(not_done)
        lines = [f"apply failed: {cause}", "the previous generation is still in force"]
        lines += [f"  done: {d}" for d in done] + [f"  not done: {n}" for n in not_done]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Observed:
    generation: Generation | None
    drift: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # plugin -> files
    kept: Mapping[str, Available] = field(default_factory=dict)  # installed artifacts, described


def observe(store: StateStore, verified_keys: Collection[str] = ()) -> Observed:
    """The current generation, its drift, and what its artifacts declare.

    `verified_keys` (ruvector.toml's verified_publisher_keys) decide whether
    a plugin installed as Verified still is. Raises StateError if the state
    is damaged beyond drift (e.g. a generation record).
    """
    generation = store.current()
    if generation is None:
        return Observed(None)
    drift: dict[str, list[str]] = {}
    for d in store.check_drift(generation):
        drift.setdefault(d.plugin, []).append(f"{d.kind.value} {d.file}")
    intact = {p.name: p for p in generation.plugins if p.name not in drift}
    kept = _Kept(store, intact, verified_keys)
    return Observed(generation, {k: tuple(v) for k, v in drift.items()}, kept)


class _Kept(Mapping[str, Available]):
    """Installed artifacts, described on first use: the planner needs one only
    when a config changed while its pin stays, and describing reads the store."""

    def __init__(
        self,
        store: StateStore,
        plugins: Mapping[str, InstalledPlugin],
        verified_keys: Collection[str],
    ) -> None:
        self._store, self._plugins, self._verified = store, plugins, verified_keys
        self._done: dict[str, Available] = {}

    def __getitem__(self, name: str) -> Available:
        if name not in self._done:
            p = self._plugins[name]
            described = _describe_installed(self._store, p)
            trust = installed_trust(self._store, p, self._verified)
            self._done[name] = replace(described, trust=trust)
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)


def _describe_installed(store: StateStore, p: InstalledPlugin) -> Available:
    directory = store.artifact_dir(p.digest)
    manifest = parse_manifest(
        (directory / MANIFEST_NAME).read_bytes(), str(directory / MANIFEST_NAME), directory
    )
    schema = None
    if manifest.config_schema is not None:
        path = directory / manifest.config_schema
        schema = parse_config_schema(path.read_bytes(), str(path))
    return Available(
        p.name,
        p.version,
        p.digest,
        p.wasm_sha256,
        p.source,
        manifest.capabilities,
        schema,
        p.trust,
    )


def gather(
    desired: DesiredState,
    store: StateStore,
    *,
    upgrade: UpgradeScope = False,
    connect: ClientFactory | None = None,
) -> tuple[Observed, Offers]:
    """Observe the state, then read the sources in its light (a registry
    plugin that stays installed needs no download)."""
    observed = observe(store, desired.trust.verified_publisher_keys)
    gen = observed.generation
    installed = {p.name: p for p in gen.plugins} if gen else {}
    offers = read_sources(desired, installed, observed.kept, upgrade=upgrade, connect=connect)
    return observed, offers


def make_plan(
    desired: DesiredState,
    observed: Observed,
    offers: Offers,
    *,
    upgrade: UpgradeScope = False,
    allow_downgrade: bool = False,
) -> Plan:
    """The plan from here to ruvector.toml. Raises PlanError listing every problem."""
    if offers.problems:
        raise PlanError(offers.problems)
    gen = observed.generation
    made = plan(
        desired,
        gen.plugins if gen else (),
        offers.available,
        base_generation=gen.number if gen else None,
        kept=observed.kept,
        drift=observed.drift,
        upgrade=upgrade,
        allow_downgrade=allow_downgrade,
    )
    return replace(made, notes=(*offers.notes, *made.notes)) if offers.notes else made


@dataclass(frozen=True)
class Applied:
    generation: Generation | None  # in force after apply
    done: tuple[str, ...]


def apply(
    plan_: Plan,
    offers: Offers,
    store: StateStore,
    *,
    allow_empty: bool = False,
) -> Applied:
    """Carry out `plan_`. Raises StalePlan, EmptyRefused, or ApplyFailed."""
    store.sweep()  # what a killed run left, before anything else
    current = store.current()
    check_base(plan_, current)
    _sync_pins(store, current)
    if not plan_.has_changes:
        return Applied(current, ())
    if not plan_.target and current is not None and current.plugins and not allow_empty:
        raise EmptyRefused(
            "this would remove every plugin; pass --allow-empty if that is what you want"
        )
    if all(isinstance(a, Repair) for a in plan_.actions):
        # Drift only: the same generation, its files put back.
        steps = _repair_steps(plan_, offers, store)
    else:
        steps = _steps(plan_, offers, store, current)
    done: list[str] = []
    for i, (text, step) in enumerate(steps):
        try:
            step()
        except (StateError, HostFault, ValueError, OSError) as exc:
            raise ApplyFailed(exc, done, [t for t, _ in steps[i:]]) from None
        done.append(text)
    generation = store.current()
    assert generation is not None
    try:
        store.write_pins(pins_of(generation))
        pruned = store.prune(KEEP_GENERATIONS)
    except StateError as exc:  # pins are derived from the generation: rewritten next time
        done.append(f"(warning) pins not written or old generations not pruned: {exc}")
    else:
        if pruned.generations:
            done.append(f"pruned generations {', '.join(map(str, pruned.generations))}")
    return Applied(generation, tuple(done))


def _history_step(plan_: Plan, offers: Offers, store: StateStore) -> list[Step]:
    """Record what the plan installs from the registry, before the switch.

    The high-water mark is a floor: raising it before the new generation is
    in force is safe, and if it cannot be written nothing is switched (after
    the switch, a lost write would lose the downgrade protection).
    """
    fetched = {
        t.name: offers.fetched[t.name]
        for t in plan_.target
        if t.name in offers.fetched and offers.bundles[t.name].digest == t.digest
    }
    if not fetched:
        return []

    def record() -> None:
        history = History.load(store.state_dir)
        for name, f in fetched.items():
            history.record(name, f)
        history.save()

    return [("recorded the registry history", record)]


def _sync_pins(store: StateStore, current: Generation | None) -> None:
    """Rewrite the pins if they are not the current generation's.

    The switch of generations and the pins write are two steps; a run killed
    between them left pins of the generation before, whatever comes next.
    """
    if current is not None and store.read_pins() != pins_of(current):
        store.write_pins(pins_of(current))


def check_base(plan_: Plan, current: Generation | None) -> None:
    """Raise StalePlan unless `plan_` was made against `current`."""
    number = current.number if current else None
    if plan_.base_generation != number:
        raise StalePlan(
            f"the plan was made against generation {plan_.base_generation}, "
            f"but generation {number} is installed now: make a new plan"
        )


Step = tuple[str, Callable[[], None]]


def _steps(
    plan_: Plan, offers: Offers, store: StateStore, current: Generation | None
) -> list[Step]:
    installed = {p.name: p for p in current.plugins} if current else {}
    steps: list[Step] = []
    records = []
    for t in plan_.target:
        have = installed.get(t.name)
        if have is not None and have.digest == t.digest:
            _check_trust(t, have.trust)
            records.append(_record(t, have.files, have.wasm_sha256))
            continue
        files = _files_for(t, offers)
        _check_trust(t, offers.available[t.name].trust)
        # Already in the store (a rollback's way forward, say): put just checks it.
        verb = "checked" if store.artifact_dir(t.digest).is_dir() else "staged"
        steps.append((f"{verb} {t.name} {t.version}", _put(store, files, t.digest)))
        records.append(_record(t, hashes_of(files), offers.bundles[t.name].manifest.wasm_sha256))
    steps += _repair_steps(plan_, offers, store)
    number = store.next_number()
    generation = Generation(
        number=number,
        created_at=time.time(),
        plugins=tuple(records),
        summary=_summary_of(plan_),
        # With `current` lost, the newest record is still the way back.
        parent=current.number if current else store.newest_number(),
    )
    steps += _history_step(plan_, offers, store)
    steps.append((f"recorded generation {number}", lambda: store.write_generation(generation)))
    steps.append((f"switched to generation {number}", lambda: store.switch(number)))
    return steps


def _check_trust(t: Target, actual: TrustLevel) -> None:
    """A plan (a saved one is a file anyone could edit) may not claim a trust
    level its artifact's signature does not give: trust is never taken on
    someone's word."""
    if t.trust != actual.value:
        raise StalePlan(
            f"the plan installs {t.name} {t.version} as {t.trust}, but its signature makes "
            f"it {actual}: make a new plan"
        )


def _repair_steps(plan_: Plan, offers: Offers, store: StateStore) -> list[Step]:
    steps: list[Step] = []
    for a in plan_.actions:
        if isinstance(a, Repair):
            files = _files_for(_target_of(plan_, a.plugin), offers, repair=True)
            steps.append(
                (f"repaired {a.plugin} ({', '.join(a.files)})", _replace(store, files, a.digest))
            )
    return steps


def _files_for(t: Target, offers: Offers, repair: bool = False) -> Mapping[str, bytes]:
    bundle = offers.bundles.get(t.name)
    if bundle is not None and bundle.digest == t.digest:
        return bundle.files
    offered = f"{bundle.manifest.version} ({bundle.digest[:12]})" if bundle else "nothing"
    if repair:  # the damaged copy in the store was the only one of this version
        raise StalePlan(
            f"cannot repair {t.name} {t.version}: {t.source} now offers {offered}; "
            "restore that source, or move on with `ruvector reconcile --upgrade`"
        )
    raise StalePlan(
        f"{t.source} no longer offers {t.name} {t.version} ({t.digest[:12]}): make a new plan"
    )


def _target_of(plan_: Plan, name: str) -> Target:
    return next(t for t in plan_.target if t.name == name)


def _put(store: StateStore, files: Mapping[str, bytes], digest: str) -> Callable[[], None]:
    def put() -> None:
        store.put_artifact(files, digest)

    return put


def _replace(store: StateStore, files: Mapping[str, bytes], digest: str) -> Callable[[], None]:
    def replace() -> None:
        store.replace_artifact(files, digest)

    return replace


def _record(t: Target, files: Mapping[str, str], wasm_sha256: str) -> InstalledPlugin:
    config = dict(t.config)
    return InstalledPlugin(
        name=t.name,
        version=t.version,
        digest=t.digest,
        wasm_sha256=wasm_sha256,
        source=t.source,
        approved=t.approved,
        config=config,
        config_hash=config_hash(config),
        enabled=t.enabled,
        trust=TrustLevel(t.trust),
        files=dict(files),
        declared=t.declared,
        limits=dict(t.limits),
    )


def _summary_of(plan_: Plan) -> str:
    install, change, remove = plan_.counts()
    return f"{install} installed, {change} changed, {remove} removed"


def rollback(store: StateStore) -> Generation:
    """Make the current generation's parent current again.

    Raises InputError if there is none; StateError if the state is damaged.
    """
    previous = store.previous()
    if previous is None:
        raise InputError("there is no previous generation to return to")
    current = store.current()
    if current is not None:  # first: a rollback forgotten would be taken again
        _remember_rollback(store, current, previous)
    store.switch(previous.number)
    store.write_pins(pins_of(previous))
    return previous


def _remember_rollback(store: StateStore, left: Generation, back: Generation) -> None:
    """Versions left by a rollback are not offered again by --upgrade or auto-update."""
    history: History | None = None
    for p in left.plugins:
        older = back.plugin(p.name)
        moved = older is None or semver_key(older.version) < semver_key(p.version)
        if p.source.startswith("registry:") and moved:
            history = history or History.load(store.state_dir)
            history.rolled_back(p.name, p.version)
    if history is not None:
        history.save()


__all__ = [
    "Applied",
    "ApplyFailed",
    "EmptyRefused",
    "Observed",
    "StalePlan",
    "apply",
    "check_base",
    "gather",
    "make_plan",
    "observe",
    "reconcile",
    "rollback",
]


@dataclass(frozen=True)
class Reconciled:
    plan: Plan
    applied: Applied


def reconcile(
    desired: DesiredState,
    store: StateStore,
    *,
    upgrade: UpgradeScope = False,
    allow_downgrade: bool = False,
    allow_empty: bool = False,
    connect: ClientFactory | None = None,
) -> Reconciled:
    """Lock, observe, read the sources, plan and apply: the whole loop once.

    Raises LockHeld, PlanError, StalePlan, EmptyRefused, ApplyFailed or
    StateError; the previous generation stays in force on any of them.
    """
    with ReconcileLock(store.state_dir):
        damaged = store.forget_damaged_current()
        if damaged is not None:
            log.warning("the generation in force is damaged (%s): installing afresh", damaged)
        observed, offers = gather(desired, store, upgrade=upgrade, connect=connect)
        made = make_plan(
            desired, observed, offers, upgrade=upgrade, allow_downgrade=allow_downgrade
        )
        return Reconciled(made, apply(made, offers, store, allow_empty=allow_empty))
