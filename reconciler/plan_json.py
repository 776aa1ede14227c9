"""A plan as versioned JSON (schemas/plan.schema.json), and back.

`ruvector plan --json` prints it; `ruvector plan --out FILE` saves it, and
`ruvector reconcile FILE` loads it to apply exactly that plan.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from reconciler import plan as p
from reconciler._validation import first_problem, key_path, make_validator
from ruvector.errors import ConfigError

_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "plan.schema.json"

ACTION_TYPES: dict[str, type[p.Action]] = {
    cls.__name__.lower(): cls
    for cls in (
        p.Install,
        p.Upgrade,
        p.Downgrade,
        p.Remove,
        p.Reconfigure,
        p.Relimit,
        p.Approve,
        p.Enable,
        p.Disable,
        p.Hold,
        p.Repair,
    )
}


def to_json(plan: p.Plan) -> dict[str, Any]:
    install, change, remove = plan.counts()
    return {
        "format_version": plan.format_version,
        "base_generation": plan.base_generation,
        "summary": {"install": install, "change": change, "remove": remove},
        "has_changes": plan.has_changes,
        "actions": [_action(a) for a in plan.actions],
        "target": [_plain(dataclasses.asdict(t)) for t in plan.target],
        "notes": list(plan.notes),
    }


def _action(action: p.Action) -> dict[str, Any]:
    data = _plain(dataclasses.asdict(action))
    return {"kind": action.kind, **data}


def _plain(value: Any) -> Any:
    """Tuples to lists, mappings to dicts: what json.dumps and the schema expect."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def from_json(data: object, file: str) -> p.Plan:
    """Rebuild a Plan from its JSON form. Raises ConfigError naming file and key."""
    problem = first_problem(make_validator(_schema()), data, describe=True)
    if problem is not None:
        at, message = problem
        raise ConfigError(file, key_path(at), message)
    assert isinstance(data, dict)
    return p.Plan(
        base_generation=data["base_generation"],
        actions=tuple(_load_action(a) for a in data["actions"]),
        target=tuple(_load_target(t) for t in data["target"]),
        notes=tuple(data["notes"]),
    )


def _load_action(data: dict[str, Any]) -> p.Action:
    cls = ACTION_TYPES[data["kind"]]
    kwargs = {k: v for k, v in data.items() if k != "kind"}
    if cls in (p.Reconfigure, p.Relimit):
        kwargs["changes"] = tuple(p.ConfigChange(**c) for c in kwargs["changes"])
    fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return cls(**fixed)


def _load_target(data: dict[str, Any]) -> p.Target:
    return p.Target(
        name=data["name"],
        version=data["version"],
        digest=data["digest"],
        source=data["source"],
        approved=tuple(data["approved"]),
        declared=tuple(data["declared"]),
        config=data["config"],
        enabled=data["enabled"],
        limits=data["limits"],
        trust=data.get("trust", "unsigned"),
    )


def dumps(plan: p.Plan) -> str:
    return json.dumps(to_json(plan), indent=2, ensure_ascii=False) + "\n"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(_SCHEMA.read_text(encoding="utf-8"))
    return schema
