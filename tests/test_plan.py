"""Table-driven plan tests: each case in tests/plan_cases/*.yaml is
(desired ruvector.toml, installed plugins, what the sources offer, flags)
and the expected actions, counts, next generation, notes or problems."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from executor.spec import Limits
from hostcalls.capabilities import parse_all
from reconciler import plan_json
from reconciler.desired import load_desired, stored_limits
from reconciler.plan import Available, Plan, PlanError, plan
from reconciler.trust import TrustLevel
from ruvector.errors import ConfigError

CASES = Path(__file__).parent / "plan_cases"


def load_cases() -> list[Any]:
    cases = []
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()):
            cases.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return cases


@dataclass(frozen=True)
class FakeInstalled:
    """An installed record with the fields the planner reads."""

    name: str
    version: str
    digest: str
    source: str = ""
    approved: tuple[str, ...] = ()
    declared: tuple[str, ...] = ()
    config: dict[str, object] = field(default_factory=dict)
    enabled: bool = True
    limits: dict[str, int] = field(default_factory=lambda: stored_limits(Limits()))
    trust: TrustLevel = TrustLevel.UNSIGNED


def installed_of(entry: dict[str, Any], root: Path) -> FakeInstalled:
    entry = {"source": f"dir:{root / entry['name']}", **entry}
    for key in ("approved", "declared"):
        entry[key] = tuple(entry.get(key, ()))
    entry["trust"] = TrustLevel(entry.get("trust", "unsigned"))
    return FakeInstalled(**entry)


def available_of(name: str, entry: dict[str, Any], root: Path) -> Available:
    return Available(
        name=entry.get("name", name),
        version=entry["version"],
        digest=entry["digest"],
        wasm_sha256="0" * 64,
        source=f"dir:{root / name}",
        declared=parse_all(entry.get("declared", [])),
        config_schema=entry.get("config_schema"),
        trust=TrustLevel(entry.get("trust", "unsigned")),
    )


def run_case(case: dict[str, Any], root: Path) -> Plan:
    for name in ("a", "b"):
        (root / name).mkdir(exist_ok=True)
    config = root / "ruvector.toml"
    config.write_text(case["desired"])
    desired = load_desired(config)
    installed = [installed_of(e, root) for e in case.get("installed", [])]
    available = {n: available_of(n, e, root) for n, e in case.get("available", {}).items()}
    return plan(desired, installed, available, drift=case.get("drift"), **case.get("flags", {}))


def assert_action(got: Any, want: dict[str, Any]) -> None:
    assert got.kind == want["kind"], (got, want)
    names = {f.name for f in fields(got)}
    for key, value in want.items():
        if key == "kind":
            continue
        assert key in names, f"{got.kind} has no field {key}"
        actual = getattr(got, key)
        if key == "changes":
            actual = [{k: v for k, v in vars(c).items() if v is not None} for c in actual]
        elif isinstance(actual, tuple):
            actual = list(actual)
        assert actual == value, (key, actual, value)


@pytest.mark.parametrize("case", load_cases())
def test_plan(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUVECTOR_PLAN_TOKEN", "s3cret")
    expect = case["expect"]
    if "problems" in expect:
        with pytest.raises(PlanError) as info:
            run_case(case, tmp_path)
        for fragment in expect["problems"]:
            assert fragment in str(info.value), (fragment, str(info.value))
        assert "s3cret" not in str(info.value)
        return
    result = run_case(case, tmp_path)
    assert len(result.actions) == len(expect["actions"]), result.actions
    for got, want in zip(result.actions, expect["actions"], strict=True):
        assert_action(got, want)
    if "counts" in expect:
        assert list(result.counts()) == expect["counts"]
    if "has_changes" in expect:
        assert result.has_changes is expect["has_changes"]
    if "target" in expect:
        assert {t.name: t.digest for t in result.target} == expect["target"]
    for fragment in expect.get("notes", []):
        assert any(fragment in n for n in result.notes), (fragment, result.notes)
    assert "s3cret" not in repr(result)  # secrets stay env: references
    # the versioned JSON form is valid against its schema and round-trips
    assert plan_json.from_json(json.loads(plan_json.dumps(result)), "plan.json") == result


def test_a_damaged_saved_plan_is_refused_with_its_key(tmp_path: Path) -> None:
    bad = {"format_version": 1, "base_generation": None, "summary": {"install": 0, "change": 0, "remove": 0},
           "has_changes": False, "actions": [{"kind": "install", "plugin": "a"}], "target": [], "notes": []}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        plan_json.from_json(bad, "saved.json")
    assert info.value.file == "saved.json" and info.value.key.startswith("actions[0]")


def test_plan_problems_name_the_line_of_ruvector_toml(tmp_path: Path) -> None:
    case = {
        "desired": '[plugins]\n\n[plugins.installed.a]\nsource = "dir:a"\nversion = "9.9.9"\n',
        "available": {"a": {"version": "1.0.0", "digest": "d1"}},
    }
    with pytest.raises(PlanError) as info:
        run_case(case, tmp_path)
    (problem,) = info.value.problems
    assert (
        problem.line == 5
        and f"{tmp_path / 'ruvector.toml'}:5: plugins.installed.a.version" in str(problem)
    )
