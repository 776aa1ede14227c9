"""Shared by the loaders: reading input files, checking them against a JSON
Schema, and turning every foreign error into a ConfigError with a key path.

This is the one place that imports tomllib and jsonschema, so their errors
are translated at one choke point. Key paths are tuples of str (a key) and
int (a list index) and are shown dotted: `plugins.installed.hello.approve[0]`.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsonschema ships no type information; the second code keeps mypy quiet
# whether or not types-jsonschema is installed.
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]
from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    SchemaError,
    ValidationError,
    best_match,
)
from referencing import Registry
from referencing.exceptions import Unresolvable

from hostcalls import capabilities
from hostcalls.capabilities import Capability
from ruvector.errors import ConfigError

KeyPath = tuple[str | int, ...]
Problem = tuple[KeyPath, str]  # where in the instance, and what is wrong there

_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")
MAX_DEPTH = 48  # nesting levels of a TOML or JSON document we read
_SHOWN_CHARS = 60  # of a rejected value, in messages


def key_path(at: KeyPath) -> str:
    """Render a key path the way TOML would address it."""
    out = ""
    for part in at:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if _BARE_KEY.match(part) else json.dumps(part)
            out = f"{out}.{key}" if out else key
    return out


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word`, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


def unknown_key_message(word: str, choices: Iterable[str]) -> str:
    """'unknown key ...' with a "did you mean", or the allowed keys if none is close."""
    choices = sorted(choices)
    close = suggest(word, choices)
    if close is not None:
        return f"unknown key '{word}' (did you mean '{close}'?)"
    if choices:
        return f"unknown key '{word}' (expected one of: {', '.join(choices)})"
    return f"unknown key '{word}': no keys are allowed here"


def find_line(text: str, at: KeyPath) -> int | None:
    """Best effort: the line where the deepest findable key of `at` is written.

    Each key is searched after the previous one, so a table header followed
    by its keys is found; indexes are skipped. None when not even the first
    key is in the text (a missing top-level key has no line).
    """
    pos, found = 0, None
    for part in at:
        if isinstance(part, int):
            continue
        m = re.compile(rf"(?<![\w-]){re.escape(part)}(?![\w-])").search(text, pos)
        if m is None:
            break
        pos, found = m.end(), m.start()
    return None if found is None else text.count("\n", 0, found) + 1


def read_capped(path: Path, cap: int, file: str, key: str) -> bytes:
    """Read a regular file of at most `cap` bytes.

    Raises ConfigError (at `file`/`key`) when it is missing, not a regular
    file, unreadable or larger than `cap`.
    """
    # A FIFO or device would block or never end; only plain files are inputs.
    if path.exists() and not path.is_file():
        raise ConfigError(file, key, f"{path} is not a regular file")
    try:
        with path.open("rb") as f:
            data = f.read(cap + 1)  # never more than the cap, even if it grows
    except OSError as exc:
        raise ConfigError(file, key, f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > cap:
        raise ConfigError(file, key, f"{path} is larger than the {size_text(cap)} limit")
    return data


def size_text(n: int) -> str:
    """A byte count for messages: '16 MiB', '256 KiB'."""
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n >> 10} KiB"


def parse_capabilities(
    texts: Sequence[str], at: KeyPath, error: Callable[[KeyPath, str], ConfigError]
) -> frozenset[Capability]:
    """Parse capability texts; raises `error(at + (i,), why)` for the first bad one."""
    parsed = set()
    for i, text in enumerate(texts):
        try:
            parsed.add(capabilities.parse(text))
        except capabilities.CapabilityError as exc:
            raise error((*at, i), str(exc)) from None
    return frozenset(parsed)


@dataclass(frozen=True)
class Document:
    """A parsed TOML file that passed its schema, with its text for line lookups."""

    file: str
    text: str
    data: dict[str, Any]

    def error(self, at: KeyPath, message: str) -> ConfigError:
        return ConfigError(self.file, key_path(at), message, find_line(self.text, at))


def load_document(path: Path, schema_name: str, *, max_bytes: int) -> Document:
    """Read a TOML file with tomllib and check it against one of our schemas.

    Raises ConfigError: unreadable or too large, and what parse_document raises.
    """
    file = str(path)
    return parse_document(read_capped(path, max_bytes, file, ""), file, schema_name)


def parse_document(raw: bytes, file: str, schema_name: str) -> Document:
    """Parse TOML bytes (named `file` in errors) and check them against one of our schemas.

    The caller bounds the size of `raw`. Raises ConfigError: not UTF-8, a
    TOML syntax error (with its line), or the first schema violation (with
    its key path).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(file, "", "not valid UTF-8 text", line) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"TOML syntax: {exc}", _toml_error_line(exc, text)) from None
    except RecursionError:  # tomllib recurses per nesting level
        raise ConfigError(file, "", f"values nest more than {MAX_DEPTH} levels deep") from None
    check_depth(data, file)
    doc = Document(file, text, data)
    problem = first_problem(_own_validator(schema_name), data, describe=True)
    if problem is not None:
        raise doc.error(*problem)
    return doc


def check_depth(value: object, file: str) -> None:
    """Refuse data nested deeper than MAX_DEPTH, before anything recurses on it.

    Validation and every walk over the data recurse once per level, so a few
    kilobytes of brackets could otherwise exhaust the interpreter's stack.
    """
    stack: list[tuple[object, KeyPath]] = [(value, ())]
    while stack:
        item, at = stack.pop()
        if len(at) > MAX_DEPTH:
            raise ConfigError(
                file, key_path(at[:MAX_DEPTH]), f"nests more than {MAX_DEPTH} levels deep"
            )
        if isinstance(item, dict):
            stack.extend((v, (*at, str(k))) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, (*at, i)) for i, v in enumerate(item))


def _toml_error_line(exc: tomllib.TOMLDecodeError, text: str) -> int:
    # tomllib (3.11) puts the position only in the message; "at end of
    # document" has no line number, so use the last line.
    m = _TOML_LINE.search(str(exc))
    return int(m.group(1)) if m else text.count("\n") + 1


@functools.cache
def _own_validator(name: str) -> Any:
    schema = json.loads((_SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return make_validator(schema)


def make_validator(schema: dict[str, Any]) -> Any:
    """A draft 2020-12 validator that never fetches anything.

    An empty Registry has no retrieve function: a $ref to another document
    is Unresolvable instead of an HTTP request (jsonschema's default fetches).
    """
    return Draft202012Validator(schema, registry=Registry())


def check_schema(schema: dict[str, Any]) -> Problem | None:
    """Where `schema` breaks the draft 2020-12 metaschema, if it does."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return tuple(exc.absolute_path), str(exc.message)
    except RecursionError:
        return (), "the schema nests too deeply"
    return None


def first_problem(validator: Any, instance: object, *, describe: bool) -> Problem | None:
    """The most relevant violation of `instance`, or None.

    With `describe`, a subschema's "description" is used as what was
    expected (our own schemas write them for that); otherwise jsonschema's
    message is kept. Unresolvable references and runaway recursion are
    problems at the root, not exceptions.
    """
    try:
        error = best_match(validator.iter_errors(instance))
    except Unresolvable as exc:
        ref = getattr(exc, "ref", "?")
        return (
            (),
            f"the schema's $ref '{ref}' cannot be resolved: other documents are never fetched",
        )
    except RecursionError:
        return (), "the schema nests too deeply to check"
    return None if error is None else _translate(error, describe)


def _translate(error: ValidationError, describe: bool) -> Problem:
    at: KeyPath = tuple(error.absolute_path)
    instance, schema = error.instance, error.schema
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        extra = next(k for k in instance if _is_extra(k, schema))
        return (*at, extra), unknown_key_message(extra, schema.get("properties", {}))
    if error.validator == "required" and isinstance(instance, dict):
        missing = next(k for k in error.validator_value if k not in instance)
        return (*at, missing), "missing required key"
    if "propertyNames" in error.absolute_schema_path and isinstance(instance, str):
        at = (*at, instance)  # the key itself is wrong, not its value
    if describe and isinstance(schema, dict) and "description" in schema:
        return at, f"expected {schema['description']}, got {_show(instance)}"
    return at, str(error.message)


def _is_extra(key: str, schema: dict[str, Any]) -> bool:
    if key in schema.get("properties", {}):
        return False
    return not any(re.search(p, key) for p in schema.get("patternProperties", {}))


def _show(value: object) -> str:
    # JSON spelling is closer to TOML's than Python's repr (true, not True).
    shown = json.dumps(value, ensure_ascii=False, default=str)
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 3] + "..."


def map_leaves(value: object, fn: Callable[[KeyPath, object], object], at: KeyPath = ()) -> object:
    """Copy a TOML/JSON tree, replacing each non-container value by fn(path, value)."""
    if isinstance(value, dict):
        return {k: map_leaves(v, fn, (*at, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [map_leaves(v, fn, (*at, i)) for i, v in enumerate(value)]
    return fn(at, value)
