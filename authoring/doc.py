"""`ruvector plugin doc DIR|FILE`: a plugin's documentation page, from its manifest
and config schema (the design's "plugin documentation generator").

The page is Markdown: what the plugin is, what it may do (each capability,
and whether the user must approve it), its configuration (every key of the
schema: type, default, limits, description), and the lines to add to
ruvector.toml. Its README follows, when it has one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hostcalls.abi import HOST_FUNCTIONS
from hostcalls.capabilities import Capability
from reconciler.bundle import Bundle

_LIMITS = (
    ("minimum", "≥"),
    ("maximum", "≤"),
    ("exclusiveMinimum", ">"),
    ("exclusiveMaximum", "<"),
    ("minLength", "length ≥"),
    ("maxLength", "length ≤"),
    ("minItems", "items ≥"),
    ("maxItems", "items ≤"),
    ("pattern", "matches"),
)


def render(bundle: Bundle) -> str:
    m = bundle.manifest
    lines = [f"# {m.name} {m.version}", "", m.description, ""]
    lines += _facts(bundle)
    lines += ["## What it may do", "", *_capabilities(m.capabilities), ""]
    schema = bundle.config_schema()
    lines += ["## Configuration", "", *_config(schema), ""]
    lines += ["## Install", "", "```toml", *_toml(bundle, schema), "```", ""]
    readme = bundle.readme()
    if readme:
        lines += ["## README", "", readme.strip(), ""]
    return "\n".join(lines)


def _facts(bundle: Bundle) -> list[str]:
    m = bundle.manifest
    rows = [
        ("Author", m.author),
        ("License", m.license),
        ("Homepage", m.homepage or "-"),
        ("Platforms", ", ".join(sorted(p.value for p in m.platforms))),
        ("Needs ruvector", f"≥ {m.min_ruvector_version}"),
        ("wasm", f"`{m.wasm_file}`, sha256 `{m.wasm_sha256}`"),
    ]
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]


def _capabilities(caps: frozenset[Capability]) -> list[str]:
    if not caps:
        return ["Nothing beyond logging, its own config and metrics."]
    out = ["| Capability | Needs your approval | Lets it call |", "|---|---|---|"]
    for cap in sorted(caps, key=str):
        fns = ", ".join(f"`{f.name}`" for f in HOST_FUNCTIONS.values() if f.capability is cap.kind)
        out.append(f"| `{cap}` | {'yes' if cap.dangerous else 'no'} | {fns} |")
    return out


def _config(schema: Mapping[str, Any] | None) -> list[str]:
    if schema is None:
        return ["It takes no configuration."]
    props: Mapping[str, Any] = schema.get("properties", {})
    if not props:
        return ["Its schema names no keys."]
    required = set(schema.get("required", ()))
    out = ["| Key | Type | Default | Limits | Description |", "|---|---|---|---|---|"]
    for key, sub in props.items():
        sub = sub if isinstance(sub, dict) else {}
        kind = _type(sub) + (" (required)" if key in required else "")
        default = f"`{json.dumps(sub['default'])}`" if "default" in sub else "-"
        out.append(
            f"| `{key}` | {kind} | {default} | {_limits(sub)} | {sub.get('description', '')} |"
        )
    return out


def _type(sub: Mapping[str, Any]) -> str:
    if "enum" in sub:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in sub["enum"])
    kind = sub.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and isinstance(sub.get("items"), dict):
        kind = f"array of {_type(sub['items'])}"
    return str(kind)


def _limits(sub: Mapping[str, Any]) -> str:
    parts = [f"{label} {sub[key]}" for key, label in _LIMITS if key in sub]
    return ", ".join(parts) or "-"


def _toml(bundle: Bundle, schema: Mapping[str, Any] | None) -> list[str]:
    m = bundle.manifest
    out = [f"[plugins.installed.{m.name}]", f'version = "^{m.version}"']
    dangerous = sorted(str(c) for c in m.capabilities if c.dangerous)
    if dangerous:
        out.append(f"approve = {json.dumps(dangerous)}")
    defaults = {
        k: v["default"]
        for k, v in (schema or {}).get("properties", {}).items()
        # An object or null has no inline TOML form worth guessing.
        if isinstance(v, dict) and "default" in v and not isinstance(v["default"], dict | None)
    }
    if defaults:
        pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in defaults.items())
        out.append(f"config = {{ {pairs} }}")
    return out
