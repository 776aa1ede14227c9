"""The plan: a pure function from (desired, observed, available) to actions.

    plan(desired, installed, available) -> Plan

`desired` is ruvector.toml, `installed` the current generation's plugins,
`available` what each plugin's source offers now (read by the caller). The
plan reads no file and changes nothing; apply (a later stage) carries it out.
A Plan is immutable and serialisable, so `ruvector plan --out` can save one
and `ruvector reconcile FILE` apply exactly it.

Rules, in order, per plugin:
- in ruvector.toml and not installed: Install;
- installed and not in ruvector.toml: Remove;
- both: the installed artifact stays pinned unless the user moved the pin
  (a new `version`, a new `source`, or --upgrade); a newer version is an
  Upgrade, an older one a Downgrade (refused unless the version was pinned
  in ruvector.toml or --allow-downgrade was given); then Reconfigure,
  Approve, Enable and Disable for what changed beside the artifact.
- An install or upgrade whose manifest declares a dangerous capability
  ruvector.toml does not approve is held (Hold): the old version, if any,
  keeps running, and the plan says what to approve.
- Each trust level may hold only some capabilities (reconciler.trust:
  unsigned plugins read-only ones, signed ones all but RegistryWrite):
  anything more fails the plan.
- Each plugin's config is validated against its manifest's schema.
Problems are gathered for every plugin, then raised together as PlanError.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from deepdiff import DeepDiff

from hostcalls.capabilities import Capability, parse_all
from reconciler._validation import find_line
from reconciler.config_schema import ConfigCheck, validate_configs
from reconciler.desired import DesiredPlugin, DesiredState
from reconciler.manifest import semver_key
from reconciler.trust import TrustLevel, beyond, explain
from ruvector.errors import ConfigError, InputError

FORMAT_VERSION = 1


# --upgrade for every plugin (True), none (False), or the plugins named.
UpgradeScope = bool | frozenset[str]


class PlanError(InputError):
    """The plan cannot be made; `problems` lists each, naming plugin and key."""

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# -- inputs -------------------------------------------------------------------


@dataclass(frozen=True)
class Available:
    """What a plugin's source offers now, described (the bytes stay with the caller)."""

    name: str
    version: str
    digest: str  # the bundle's content digest
    wasm_sha256: str
    source: str  # "dir:/abs" or "file:/abs.rvp"
    declared: frozenset[Capability]
    config_schema: Mapping[str, Any] | None = None
    trust: TrustLevel = TrustLevel.UNSIGNED  # from a signature checked on this machine


class Installed(Protocol):
    """An installed plugin as the observed state records it."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def approved(self) -> tuple[str, ...]: ...
    @property
    def declared(self) -> tuple[str, ...]: ...
    @property
    def config(self) -> Mapping[str, object]: ...
    @property
    def limits(self) -> Mapping[str, int]: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def trust(self) -> TrustLevel: ...


# -- actions ------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigChange:
    path: str  # dotted key path inside the plugin's config
    old: object | None  # None with `added`
    new: object | None  # None with `removed`
    kind: str  # "added" | "removed" | "changed"


@dataclass(frozen=True)
class Action:
    plugin: str

    @property
    def symbol(self) -> str:
        return "~"

    @property
    def kind(self) -> str:
        return type(self).__name__.lower()


@dataclass(frozen=True)
class Install(Action):
    version: str
    source: str
    capabilities: tuple[str, ...]
    enabled: bool
    trust: str = TrustLevel.UNSIGNED.value

    @property
    def symbol(self) -> str:
        return "+"


@dataclass(frozen=True)
class Upgrade(Action):
    from_version: str
    to_version: str
    capabilities_added: tuple[str, ...] = ()
    capabilities_removed: tuple[str, ...] = ()
    same_version: bool = False  # the source was rebuilt without a version bump


@dataclass(frozen=True)
class Downgrade(Upgrade):
    pass


@dataclass(frozen=True)
class Remove(Action):
    version: str

    @property
    def symbol(self) -> str:
        return "-"


@dataclass(frozen=True)
class Reconfigure(Action):
    changes: tuple[ConfigChange, ...]


@dataclass(frozen=True)
class Relimit(Action):
    """The plugin's limits in ruvector.toml changed (max_tick_ms, fuel, memory)."""

    changes: tuple[ConfigChange, ...]


@dataclass(frozen=True)
class Approve(Action):
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class Enable(Action):
    pass


@dataclass(frozen=True)
class Disable(Action):
    pass


@dataclass(frozen=True)
class Repair(Action):
    """Drift: installed files changed under state/; publish the artifact again."""

    digest: str
    files: tuple[str, ...]  # e.g. "changed plugin.wasm"


@dataclass(frozen=True)
class Hold(Action):
    """An install or upgrade waiting for approvals; nothing changes for it."""

    version: str
    needs: tuple[str, ...]  # capability texts to approve in ruvector.toml

    @property
    def symbol(self) -> str:
        return "!"


# -- the plan -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One plugin of the generation the plan leads to."""

    name: str
    version: str
    digest: str
    source: str
    approved: tuple[str, ...]
    declared: tuple[str, ...]
    config: Mapping[str, object]  # as written in ruvector.toml: env: references, no secrets
    enabled: bool
    limits: Mapping[str, int] = field(default_factory=dict)  # as ruvector.toml words them
    trust: str = TrustLevel.UNSIGNED.value  # a TrustLevel's value


@dataclass(frozen=True)
class Plan:
    base_generation: int | None  # the observed generation this plan was made against
    actions: tuple[Action, ...]
    target: tuple[Target, ...]  # every plugin of the next generation, sorted
    notes: tuple[str, ...] = ()
    format_version: int = field(default=FORMAT_VERSION)

    @property
    def has_changes(self) -> bool:
        return any(not isinstance(a, Hold) for a in self.actions)

    def counts(self) -> tuple[int, int, int]:
        """(to install, to change, to remove); a plugin counts once."""
        install = {a.plugin for a in self.actions if isinstance(a, Install)}
        remove = {a.plugin for a in self.actions if isinstance(a, Remove)}
        change = {a.plugin for a in self.actions if not isinstance(a, Install | Remove | Hold)}
        return len(install), len(change - install - remove), len(remove)


def plan(
    desired: DesiredState,
    installed: Sequence[Installed],
    available: Mapping[str, Available],
    *,
    base_generation: int | None = None,
    kept: Mapping[str, Available] | None = None,
    drift: Mapping[str, Sequence[str]] | None = None,
    upgrade: UpgradeScope = False,
    allow_downgrade: bool = False,
) -> Plan:
    """Diff desired against installed, given what the sources offer.

    `upgrade` moves pins to what the sources offer: True for every plugin,
    or a set of plugin names (auto-update upgrades registry plugins only).

    `available` must hold an entry for every plugin of `desired`; `kept`
    describes the installed artifacts (from the store), whose config schema
    applies while a pin stays; `drift` lists, per installed plugin, files
    found changed under state/ (a Repair when its artifact stays). Raises
    PlanError listing every problem (invalid config, refused downgrade,
    trust rule, a source holding another version than the one pinned).
    """
    current = {p.name: p for p in installed}
    wanted = {p.name: p for p in desired.plugins}
    kept = kept or {}
    problems: list[ConfigError] = []
    steps: dict[str, _Step] = {}
    for name in sorted(set(current) | set(wanted)):
        if desired.trust.require_signature and name in wanted and name in available:
            problems += _signature_required(wanted[name], available[name])
        steps[name] = _plan_one(
            wanted.get(name),
            current.get(name),
            available.get(name),
            kept,
            upgrades(upgrade, name),
            allow_downgrade,
        )
    # An upgrade only --upgrade asked for, whose new schema rejects the
    # config, is not taken: one bad release must not stop the others.
    refusals = _soft_refusals(steps)
    for name, s in steps.items():
        if s.soft is not None and name not in refusals:
            s.checks = []  # checked just now, and passed
    for name, why in refusals.items():
        have = current[name]
        steps[name] = _plan_one(wanted[name], have, kept[name], kept, False, allow_downgrade)
        steps[name].notes.append(f"{name}: no update taken: {why}; {have.version} stays installed")
    actions = [a for s in steps.values() for a in s.actions]
    targets = [t for s in steps.values() for t in s.target]
    notes = [n for s in steps.values() for n in s.notes]
    problems += [p for s in steps.values() for p in s.problems]
    checks = [c for s in steps.values() for c in s.checks]
    actions += _repairs(targets, current, drift or {})
    if current and not targets and not problems:
        notes.append("this removes every plugin: `ruvector reconcile` needs --allow-empty")
    problems += validate_configs(checks)
    if problems:
        raise PlanError([_placed(p, desired) for p in problems])
    return Plan(base_generation, tuple(actions), tuple(targets), tuple(notes))


def _soft_refusals(steps: Mapping[str, _Step]) -> dict[str, str]:
    """Plugins whose --upgrade-only move fails its new config schema, and why.

    Their checks run first, in one child process; each problem is mapped
    back to its plugin by its key.
    """
    soft = {name: s for name, s in steps.items() if s.soft is not None and not s.problems}
    checks = [c for s in soft.values() for c in s.checks]
    if not checks:
        return {}
    refused: dict[str, str] = {}
    for problem in validate_configs(checks):
        for name, s in soft.items():
            if problem.key.startswith(f"plugins.installed.{name}."):
                refused.setdefault(
                    name,
                    f"{name} {s.soft}'s config schema rejects {problem.key}: {problem.message}",
                )
    return refused


def upgrades(upgrade: UpgradeScope, name: str) -> bool:
    """Whether `upgrade` (True, False, or a set of names) covers plugin `name`."""
    return upgrade if isinstance(upgrade, bool) else name in upgrade


def _repairs(
    targets: Sequence[Target], current: Mapping[str, Installed], drift: Mapping[str, Sequence[str]]
) -> list[Action]:
    """Repair each drifted artifact the next generation keeps (a new one is put fresh)."""
    out: list[Action] = []
    for t in targets:
        have = current.get(t.name)
        if have is not None and have.digest == t.digest and drift.get(t.name):
            out.append(Repair(t.name, t.digest, tuple(drift[t.name])))
    return out


@dataclass
class _Step:
    actions: list[Action] = field(default_factory=list)
    target: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[ConfigError] = field(default_factory=list)
    checks: list[ConfigCheck] = field(default_factory=list)
    soft: str | None = None  # the version an upgrade moves to when only --upgrade asked


def _plan_one(
    want: DesiredPlugin | None,
    have: Installed | None,
    offer: Available | None,
    kept: Mapping[str, Available],
    upgrade: bool,
    allow_downgrade: bool,
) -> _Step:
    step = _Step()
    if want is None:
        assert have is not None
        step.actions.append(Remove(have.name, have.version))
        return step
    if offer is None:
        step.problems.append(_error(want, "source", f"{want.source} offers nothing"))
        return step
    step.problems += _check(want, offer)
    if step.problems:
        return step
    if have is None:
        return _install(want, offer, step)
    return _update(want, have, offer, kept, step, upgrade, allow_downgrade)


def _check(want: DesiredPlugin, offer: Available) -> list[ConfigError]:
    problems = []
    if offer.name != want.name:
        problems.append(_error(want, "source", f"{offer.source} holds plugin '{offer.name}'"))
    if not want.allows(offer.version):
        pinned = "is pinned" if want.exact else "is wanted"
        problems.append(
            _error(
                want,
                "version",
                f"{want.version} {pinned} but {offer.source} holds {offer.version}",
            )
        )
    refused = beyond(offer.trust, offer.declared)
    if refused:
        problems.append(
            _error(
                want,
                "source",
                f"{offer.name} {offer.version} is {offer.trust} and declares "
                f"{', '.join(refused)}: {explain(offer.trust)}",
            )
        )
    return problems


def _validate(want: DesiredPlugin, runs: Available | None) -> list[ConfigCheck]:
    """The config against the schema of the artifact that will run it (checked
    for all plugins at once, after planning: see validate_configs)."""
    if runs is None or runs.config_schema is None:
        return []
    return [ConfigCheck(want.name, runs.config_schema, want.config, str(want.origin), want.secrets)]


def _signature_required(want: DesiredPlugin, offer: Available) -> list[ConfigError]:
    if offer.trust is not TrustLevel.UNSIGNED:
        return []
    message = (
        f"{offer.name} {offer.version} is unsigned and plugins.trust.require_signature is true"
    )
    return [_error(want, "source", message)]


def _install(want: DesiredPlugin, offer: Available, step: _Step) -> _Step:
    step.checks += _validate(want, offer)
    needs = _unapproved(want, offer.declared)
    if needs:
        step.actions.append(Hold(want.name, offer.version, needs))
        step.notes.append(_hold_note(want, offer.version, needs))
        return step
    caps = tuple(sorted(str(c) for c in offer.declared))
    step.actions.append(
        Install(want.name, offer.version, offer.source, caps, want.enabled, offer.trust.value)
    )
    step.target.append(_target(want, offer))
    return step


def _update(
    want: DesiredPlugin,
    have: Installed,
    offer: Available,
    kept: Mapping[str, Available],
    step: _Step,
    upgrade: bool,
    allow_downgrade: bool,
) -> _Step:
    moved = offer.digest != have.digest
    asked = upgrade or not want.allows(have.version) or str(want.source) != have.source
    if moved and not asked:
        step.notes.append(
            f"{want.name}: {offer.source} now offers {offer.version} "
            f"(installed {have.version} stays pinned; take it with `ruvector reconcile --upgrade`)"
        )
    # Only --upgrade moved it: once approved, the user must ask again.
    pinned_elsewhere = not want.allows(have.version) or str(want.source) != have.source
    again = "ruvector reconcile" if pinned_elsewhere else "ruvector reconcile --upgrade"
    artifact = (
        _move_pin(want, have, offer, step, allow_downgrade, again) if moved and asked else None
    )
    if artifact is not None and not pinned_elsewhere and want.name in kept:
        step.soft = artifact.version  # its schema may refuse the config: kept then
    # A config already applied to this very artifact was checked then.
    # (Unless it holds secrets: their values can change under the same text.)
    unchanged = (
        artifact is None
        and not want.secrets
        and config_hash(want.stored_config()) == config_hash(have.config)
    )
    if not unchanged:
        # Looked up only now: describing an installed artifact reads the store.
        step.checks += _validate(want, artifact or kept.get(want.name))
    if step.problems:
        return step
    # Held or not moved, the installed artifact keeps running, with what
    # changed beside it (config, approvals, enabled).
    step.actions += _beside(want, have)
    step.target.append(_target(want, offer) if artifact else _keep(want, have))
    return step


def _move_pin(
    want: DesiredPlugin,
    have: Installed,
    offer: Available,
    step: _Step,
    allow_downgrade: bool,
    again: str,
) -> Available | None:
    older = semver_key(offer.version) < semver_key(have.version)
    if older and not (allow_downgrade or want.exact == offer.version):
        step.problems.append(
            _error(
                want,
                "version",
                f"{offer.source} holds {offer.version}, older than the installed "
                f'{have.version}: pin version = "{offer.version}" or pass --allow-downgrade',
            )
        )
        return None
    before = frozenset(parse_all(have.declared))
    needs = _unapproved(want, offer.declared - before)
    if needs:
        step.actions.append(Hold(want.name, offer.version, needs))
        step.notes.append(_hold_note(want, offer.version, needs, have.version, again))
        return None
    kind = Downgrade if older else Upgrade
    step.actions.append(
        kind(
            want.name,
            have.version,
            offer.version,
            tuple(sorted(str(c) for c in offer.declared - before)),
            tuple(sorted(str(c) for c in before - offer.declared)),
            same_version=offer.version == have.version,
        )
    )
    return offer


def _beside(want: DesiredPlugin, have: Installed) -> list[Action]:
    """What changes besides the artifact: config, approvals, enabled."""
    out: list[Action] = []
    changes = config_diff(have.config, want.stored_config())
    if changes:
        out.append(Reconfigure(want.name, changes))
    # Records from before limits were kept have none: not a change to report.
    limit_changes = config_diff(have.limits, want.stored_limits()) if have.limits else ()
    if limit_changes:
        out.append(Relimit(want.name, limit_changes))
    approved_now = tuple(sorted(str(c) for c in want.approved))
    added = tuple(sorted(set(approved_now) - set(have.approved)))
    removed = tuple(sorted(set(have.approved) - set(approved_now)))
    if added or removed:
        out.append(Approve(want.name, added, removed))
    if want.enabled != have.enabled:
        out.append(Enable(want.name) if want.enabled else Disable(want.name))
    return out


def _unapproved(want: DesiredPlugin, declared: frozenset[Capability]) -> tuple[str, ...]:
    return tuple(
        sorted(
            str(c) for c in declared if c.dangerous and not any(a.covers(c) for a in want.approved)
        )
    )


def _hold_note(
    want: DesiredPlugin,
    version: str,
    needs: tuple[str, ...],
    old: str | None = None,
    again: str = "ruvector reconcile",
) -> str:
    keeps = f"; {old} keeps running" if old else ""
    every = [*sorted(str(c) for c in want.approved), *needs]
    approve = ", ".join(f'"{n}"' for n in every)
    return (
        f"{want.name} {version} is held{keeps}: it needs approval of {', '.join(needs)}. "
        f"Approve with `ruvector approve {want.name} {' '.join(repr(n) for n in needs)}`, "
        f"i.e. plugins.installed.{want.name}.approve = [{approve}], then `{again}`"
    )


def _target(want: DesiredPlugin, offer: Available) -> Target:
    return Target(
        want.name,
        offer.version,
        offer.digest,
        offer.source,
        tuple(sorted(str(c) for c in want.approved)),
        tuple(sorted(str(c) for c in offer.declared)),
        want.stored_config(),
        want.enabled,
        want.stored_limits(),
        offer.trust.value,
    )


def _keep(want: DesiredPlugin, have: Installed) -> Target:
    return Target(
        want.name,
        have.version,
        have.digest,
        have.source,
        tuple(sorted(str(c) for c in want.approved)),
        tuple(have.declared),
        want.stored_config(),
        want.enabled,
        want.stored_limits(),
        have.trust.value,
    )


def _placed(problem: ConfigError, desired: DesiredState) -> ConfigError:
    """The problem with the line of ruvector.toml its key is written on."""
    if problem.line is not None or problem.file != str(desired.path):
        return problem
    at = tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", problem.key) if p)
    line = find_line(desired.text, at)
    return ConfigError(problem.file, problem.key, problem.message, line)


def _error(want: DesiredPlugin, key: str, message: str) -> ConfigError:
    return ConfigError(str(want.origin), f"plugins.installed.{want.name}.{key}", message)


def config_diff(old: Mapping[str, object], new: Mapping[str, object]) -> tuple[ConfigChange, ...]:
    """Per-key changes between two configs as written (env: references, not secrets)."""
    diff = DeepDiff(dict(old), dict(new), verbose_level=2)
    changes = []
    for report, levels in diff.tree.items():
        kind = _KINDS.get(report, "changed")
        for level in levels:
            path = ".".join(str(p) for p in level.path(output_format="list"))
            before = None if kind == "added" else level.t1
            after = None if kind == "removed" else level.t2
            changes.append(ConfigChange(path, before, after, kind))
    return tuple(sorted(changes, key=lambda c: c.path))


_KINDS = {
    "dictionary_item_added": "added",
    "iterable_item_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_removed": "removed",
}


def config_hash(config: Mapping[str, object]) -> str:
    """sha256 of a config's canonical JSON: equal configs, equal hashes."""
    data = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()
