"""`ruvector plugin new NAME --lang LANG`: a plugin skeleton that builds as is.

The language's toolchain gives the source files (authoring/lang_*.py); this
adds what every plugin has: manifest.toml (declaring what the skeleton
uses), config.schema.json and README.md. The manifest's wasm_sha256 is a
placeholder until `ruvector plugin build` pins the real one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import ruvector
from authoring.build import toolchain
from ruvector.atomic import atomic_write
from ruvector.errors import HostFault, InputError

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")  # as manifest.schema.json names plugins
PLACEHOLDER_SHA256 = "0" * 64  # replaced by `ruvector plugin build`

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "",
    "type": "object",
    "properties": {
        "greeting": {
            "type": "string",
            "maxLength": 200,
            "default": "hello",
            "description": "Logged when the plugin starts.",
        }
    },
    "additionalProperties": False,
}


def new_plugin(name: str, language: str, parent: Path) -> Path:
    """Write a new plugin `name` in `parent`/`name`; returns that directory.

    Raises InputError for a bad name or language, or a directory in the
    way; HostFault when a file cannot be written.
    """
    if not _NAME.match(name):
        raise InputError(
            f"'{name}' is not a plugin name: a lowercase letter, then up to 62 lowercase "
            "letters, digits or '-'"
        )
    chain = toolchain(language)
    directory = parent / name
    if directory.exists() and any(directory.iterdir()):
        raise InputError(f"{directory} exists and is not empty")
    files = {
        **chain.skeleton(name),
        "manifest.toml": _manifest(name),
        "config.schema.json": json.dumps({**CONFIG_SCHEMA, "title": f"{name} config"}, indent=2)
        + "\n",
        "README.md": _readme(name, language),
    }
    for relative, text in files.items():
        path = directory / relative
        try:
            atomic_write(path, text.encode())
        except OSError as exc:
            raise HostFault(f"cannot write {path}: {exc.strerror or exc}") from exc
    return directory


def _manifest(name: str) -> str:
    return f"""name = "{name}"
version = "0.1.0"
author = "you"
description = "What {name} does, in one line."
license = "MIT"
# What the plugin may do. ReadSystemInfo and ShowNotifications need no
# approval; see docs/abi.md, section 7, for every capability.
capabilities = ["ReadSystemInfo", "ShowNotifications"]
min_ruvector_version = "{ruvector.__version__}"
platforms = ["linux", "macos", "windows"]
wasm_file = "plugin.wasm"
config_schema = "config.schema.json"
# Filled in by `ruvector plugin build`.
wasm_sha256 = "{PLACEHOLDER_SHA256}"
"""


def _readme(name: str, language: str) -> str:
    return f"""# {name}

What {name} does, for its users.

Build it: `ruvector plugin build .` (the {language} toolchain must be installed);
try it: `ruvector dev run .`; document it: `ruvector plugin doc .`.
"""
