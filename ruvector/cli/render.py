"""A plan for people: Terraform's symbols, grouped by plugin, then the summary.

+ name 1.0.0            install
~ name                  change (version, config, approvals, enabled)
- name 1.0.0            remove
! name 1.1.0            held: needs an approval
"""

from __future__ import annotations

import json

import click

from reconciler import plan as p

_COLOURS = {"+": "green", "~": "yellow", "-": "red", "!": "magenta"}


def render(plan: p.Plan, colour: bool = True) -> str:
    """The whole plan as text, ending with the summary line."""
    lines: list[str] = []
    for plugin in _plugins(plan):
        actions = [a for a in plan.actions if a.plugin == plugin]
        lines += _plugin_block(plugin, actions, colour)
    if plan.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in plan.notes]
    if lines:
        lines.append("")
    lines.append(summary(plan))
    return "\n".join(lines)


def summary(plan: p.Plan) -> str:
    held = sum(isinstance(a, p.Hold) for a in plan.actions)
    if not plan.has_changes and held:
        return f"No changes can be applied: {held} held, waiting for approval (see the notes)."
    if not plan.has_changes:
        return "No changes. The installed plugins match ruvector.toml."
    install, change, remove = plan.counts()
    return f"Plan: {install} to install, {change} to change, {remove} to remove."


def _plugins(plan: p.Plan) -> list[str]:
    seen: dict[str, None] = {}
    for a in plan.actions:
        seen.setdefault(a.plugin, None)
    return list(seen)


def _plugin_block(plugin: str, actions: list[p.Action], colour: bool) -> list[str]:
    symbol = _symbol(actions)
    head = f"{symbol} {plugin}"
    lines = [click.style(head, fg=_COLOURS[symbol]) if colour else head]
    for action in actions:
        lines += [f"    {line}" for line in _describe(action)]
    return lines


def _symbol(actions: list[p.Action]) -> str:
    symbols = {a.symbol for a in actions}
    for s in ("+", "-", "!"):
        if symbols == {s}:
            return s
    return "~" if "~" in symbols else sorted(symbols)[0]


def _describe(action: p.Action) -> list[str]:
    match action:
        case p.Install():
            caps = ", ".join(action.capabilities) or "none"
            state = "" if action.enabled else " (disabled)"
            return [
                f"install {action.version} from {action.source}{state}",
                f"capabilities: {caps}",
                f"trust: {action.trust}",
            ]
        case p.Upgrade():  # Downgrade too
            verb = "rebuild" if action.same_version else action.kind
            lines = [f"{verb} {action.from_version} -> {action.to_version}"]
            lines += [f"+ capability {c}" for c in action.capabilities_added]
            lines += [f"- capability {c}" for c in action.capabilities_removed]
            return lines
        case p.Remove():
            return [f"remove {action.version} (on_cleanup, then uninstall)"]
        case p.Reconfigure():
            return ["config:"] + [f"  {_change(c)}" for c in action.changes]
        case p.Relimit():
            return ["limits:"] + [f"  {_change(c)}" for c in action.changes]
        case p.Approve():
            return [f"+ approve {c}" for c in action.added] + [
                f"- approve {c}" for c in action.removed
            ]
        case p.Enable():
            return ["enable"]
        case p.Disable():
            return ["disable"]
        case p.Repair():
            return [f"repair drift under state/: {', '.join(action.files)}"]
        case p.Hold():
            return [f"hold {action.version}: needs approval of {', '.join(action.needs)}"]
    return [action.kind]


def _change(change: p.ConfigChange) -> str:
    if change.kind == "added":
        return f"+ {change.path} = {_value(change.new)}"
    if change.kind == "removed":
        return f"- {change.path} (was {_value(change.old)})"
    return f"~ {change.path}: {_value(change.old)} -> {_value(change.new)}"


def _value(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
