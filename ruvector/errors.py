"""The two exception roots every layer raises from.

    InputError            bad input the user (or plugin author) can fix
    ├── ConfigError       ruvector.toml, manifest.toml, a config schema
    └── PluginRefused     a plugin that may not be loaded (hash, ABI, imports...)
    HostFault             the machine or a dependency failed (OS, I/O, wasmtime)

Violations by a running plugin are not exceptions that reach callers: the
executor records them (see executor.health). The CLI maps both roots to a
one-line message and an exit code; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class InputError(Exception):
    """Something the user can fix: the message says what and where."""


class ConfigError(InputError):
    """A configuration or manifest file is invalid.

    `file` and `key` (a dotted path, or "" for the whole file) locate the
    problem; `line` is set when the parser knows it.
    """

    def __init__(self, file: str, key: str, message: str, line: int | None = None) -> None:
        self.file = file
        self.key = key
        self.line = line
        self.message = message
        where = file if line is None else f"{file}:{line}"
        if key:
            where = f"{where}: {key}"
        super().__init__(f"{where}: {message}")


class PluginRefused(InputError):
    """A plugin was refused before any of its code ran (or at load)."""

    def __init__(self, plugin: str, reason: str) -> None:
        self.plugin = plugin
        self.reason = reason
        super().__init__(f"plugin '{plugin}' refused: {reason}")


class HostFault(Exception):
    """The host, the OS or a dependency failed; not the user's input."""
