"""A plugin's config schema, and checking the user's config against it.

The schema is written by the plugin's author and may be hostile. What
bounds it:

- nothing is fetched: references to other documents are errors (an empty
  `referencing.Registry`, see `_validation.make_validator`);
- sizes: a schema file is at most MAX_SCHEMA_BYTES, a config string at
  most MAX_CONFIG_STRING_BYTES;
- time: Python's `re` cannot be interrupted and a schema can be slow in
  more ways than a catastrophic `pattern` (`$ref` chains that double at each
  step, nested `unevaluatedProperties`), so every validation runs in a child
  process (a fresh interpreter, `python -m reconciler.config_schema`, about
  0.1 s) that is killed after VALIDATION_TIMEOUT_S. Not multiprocessing:
  its spawn re-runs the caller's __main__ in the child, and its fork
  copies a process that may hold threads (the executor's).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler._validation import (
    KeyPath,
    Problem,
    check_depth,
    check_schema,
    first_problem,
    key_path,
    make_validator,
    map_leaves,
    read_capped,
)
from ruvector.errors import ConfigError

MAX_SCHEMA_BYTES = 256 * 1024
MAX_CONFIG_STRING_BYTES = 64 * 1024  # UTF-8 bytes of one config string
VALIDATION_TIMEOUT_S = 2.0  # wall clock for one config check, child start included


def load_config_schema(path: Path) -> dict[str, Any]:
    """Read a plugin's JSON Schema file and check it is a draft 2020-12 schema.

    Raises ConfigError (file = `path`): unreadable, over MAX_SCHEMA_BYTES,
    not JSON (with its line), not an object, or not a valid schema (key =
    where in the schema).
    """
    file = str(path)
    return parse_config_schema(read_capped(path, MAX_SCHEMA_BYTES, file, ""), file)


def parse_config_schema(raw: bytes, file: str) -> dict[str, Any]:
    """Parse a plugin's JSON Schema from bytes (named `file` in errors) and check it.

    The caller bounds the size of `raw` (MAX_SCHEMA_BYTES). Raises
    ConfigError (file = `file`) as load_config_schema does, reading aside.
    """
    try:
        schema = json.loads(raw)
    except UnicodeDecodeError:
        raise ConfigError(file, "", "not valid UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(file, "", f"not JSON: {exc.msg}", exc.lineno) from None
    except RecursionError:
        raise ConfigError(file, "", "the JSON nests too deeply") from None
    if not isinstance(schema, dict):
        raise ConfigError(file, "", "expected a JSON Schema object at the top level")
    check_depth(schema, file)
    problem = _metaschema_problem(hashlib.sha256(raw).hexdigest(), schema)
    if problem is not None:
        at, message = problem
        raise ConfigError(file, key_path(at), f"not a valid JSON Schema: {message}")
    return schema


_CHECKED: dict[str, Problem | None] = {}  # sha256 of a schema's bytes -> its check


def _metaschema_problem(digest: str, schema: dict[str, Any]) -> Problem | None:
    """check_schema, once per distinct schema in a process: a plan reads each
    plugin's schema from its source and again from its installed artifact."""
    if digest not in _CHECKED:
        if len(_CHECKED) >= 4096:  # bounded: a long-running host sees new schemas
            _CHECKED.clear()
        _CHECKED[digest] = check_schema(schema)
    return _CHECKED[digest]


def validate_config(
    plugin: str,
    schema: dict[str, Any],
    config: Mapping[str, object],
    *,
    file: str | None = None,
    secrets: Mapping[str, str] | None = None,
) -> None:
    """Check `config` against the plugin's `schema` (from load_config_schema).

    `file` names where the config was written (ruvector.toml), defaulting to
    the plugin's name; `secrets` maps config key paths whose values came
    from the environment to the variable's name, and those values are
    replaced in any message.

    Raises ConfigError at key `plugins.installed.<plugin>.config.<path>`
    with the schema's message; for an over-long string, a value JSON cannot
    hold, or a check that fails or does not finish within
    VALIDATION_TIMEOUT_S.
    """
    where = file or plugin
    root: KeyPath = ("plugins", "installed", plugin, "config")
    long = _first_long_string(config)
    if long is not None:
        raise ConfigError(
            where,
            key_path(root + long),
            f"a config string may be at most {MAX_CONFIG_STRING_BYTES // 1024} KiB",
        )
    problem = _check_in_child(schema, config)
    if problem is not None:
        at, message = problem
        raise ConfigError(where, key_path(root + at), _scrub(message, config, secrets or {}))


@dataclass(frozen=True)
class ConfigCheck:
    """One plugin's config to check against its schema (see validate_configs)."""

    plugin: str
    schema: Mapping[str, Any]
    config: Mapping[str, object]
    file: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)


def validate_configs(checks: Sequence[ConfigCheck]) -> list[ConfigError]:
    """validate_config for many plugins, in one child process: a plan of a
    hundred plugins pays one interpreter start, not a hundred.

    Returns every problem. If the batch does not finish in time, each check
    runs alone, so the message names the plugin whose schema hangs.
    """
    if not checks:
        return []
    problems: list[ConfigError] = []
    ready: list[ConfigCheck] = []
    for c in checks:
        long = _first_long_string(c.config)
        if long is not None:
            problems.append(_long_error(c, long))
        else:
            ready.append(c)
    answers = _check_batch_in_child([(dict(c.schema), c.config) for c in ready])
    if answers is None:  # timed out or failed: find which one, one at a time
        answers = [_check_in_child(dict(c.schema), c.config) for c in ready]
    for c, problem in zip(ready, answers, strict=True):
        if problem is not None:
            problems.append(_problem_error(c, problem))
    return problems


def _long_error(c: ConfigCheck, at: KeyPath) -> ConfigError:
    root: KeyPath = ("plugins", "installed", c.plugin, "config")
    return ConfigError(
        c.file or c.plugin,
        key_path(root + at),
        f"a config string may be at most {MAX_CONFIG_STRING_BYTES // 1024} KiB",
    )


def _problem_error(c: ConfigCheck, problem: Problem) -> ConfigError:
    root: KeyPath = ("plugins", "installed", c.plugin, "config")
    at, message = problem
    return ConfigError(
        c.file or c.plugin, key_path(root + at), _scrub(message, c.config, c.secrets)
    )


def _check_batch_in_child(
    items: Sequence[tuple[dict[str, Any], Mapping[str, object]]],
) -> list[Problem | None] | None:
    """The first problem of each (schema, config), or None if the batch did not finish."""
    try:
        request = json.dumps(
            {"batch": [{"schema": s, "config": dict(c)} for s, c in items]}, allow_nan=False
        )
    except (TypeError, ValueError):
        return None  # one of them holds a non-JSON value: checked alone, it says so
    done = _run_child(request)
    if done is None or done.returncode != 0:
        return None
    answers = json.loads(done.stdout)
    return [None if a is None else (tuple(a[0]), a[1]) for a in answers]


def _first_long_string(config: Mapping[str, object]) -> KeyPath | None:
    found: list[KeyPath] = []

    def visit(at: KeyPath, value: object) -> object:
        if isinstance(value, str) and len(value.encode()) > MAX_CONFIG_STRING_BYTES:
            found.append(at)
        return value

    map_leaves(dict(config), visit)
    return found[0] if found else None


def _scrub(message: str, config: Mapping[str, object], secrets: Mapping[str, str]) -> str:
    """Replace every secret value (and its repr) in `message` by its origin."""
    values: list[tuple[str, str]] = []

    def collect(at: KeyPath, value: object) -> object:
        name = secrets.get(key_path(at))
        if name is not None and isinstance(value, str) and value:
            values.append((value, f"<secret from env:{name}>"))
        return value

    map_leaves(dict(config), collect)
    # Longest first, so a secret that contains another is replaced whole.
    for value, label in sorted(values, key=lambda v: -len(v[0])):
        message = message.replace(repr(value), label).replace(value, label)
    return message


def _check_in_child(schema: dict[str, Any], config: Mapping[str, object]) -> Problem | None:
    try:
        request = json.dumps({"schema": schema, "config": dict(config)}, allow_nan=False)
    except (TypeError, ValueError):  # dates, NaN: nothing a JSON Schema can check
        return (), "config values must be JSON values (strings, numbers, booleans, lists, tables)"
    done = _run_child(request)
    if done is None:
        return (), (
            f"the plugin's schema took over {VALIDATION_TIMEOUT_S} s to check this config "
            "(a catastrophic pattern or $ref chain?)"
        )
    if done.returncode != 0:  # e.g. a schema that exhausts memory
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        return (), f"checking the config against the plugin's schema failed: {last}"
    answer = json.loads(done.stdout)
    return None if answer is None else (tuple(answer[0]), answer[1])


def _run_child(request: str) -> subprocess.CompletedProcess[bytes] | None:
    """Run the checking child on `request`; None if it did not finish in time
    (run() has killed it by then)."""
    try:
        return subprocess.run(
            _CHILD_COMMAND,
            input=request.encode(),
            capture_output=True,
            env=_child_env(),
            timeout=VALIDATION_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


# -P: nothing from the working directory shadows our modules in the child.
_CHILD_COMMAND = (sys.executable, "-P", "-m", "reconciler.config_schema")


def _child_env() -> dict[str, str]:
    # The child must import this package from where the parent did.
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _child_main() -> None:
    """In the child: read {schema, config} (or {batch: [...]}) on stdin and
    write the first problem of each, or null."""
    request = json.load(sys.stdin.buffer)
    if "batch" in request:
        json.dump([_first(r) for r in request["batch"]], sys.stdout)
    else:
        json.dump(_first(request), sys.stdout)


def _first(request: dict[str, Any]) -> Problem | None:
    problem: Problem | None = first_problem(
        make_validator(request["schema"]), request["config"], describe=False
    )
    return problem


if __name__ == "__main__":
    _child_main()
