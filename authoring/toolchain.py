"""What a language's toolchain offers `ruvector plugin build` and `plugin new`.

Each supported language has a module `authoring/lang_<name>.py` with a
`TOOLCHAIN` implementing this protocol. Building runs the language's own
compiler as a child process; its output is kept for the error message.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from ruvector.errors import HostFault, InputError

BUILD_TIMEOUT_S = 600.0  # a first cargo or npm build can be slow


class BuildFailed(InputError):
    """The plugin's source did not build: the compiler's words say why."""


class ToolchainMissing(HostFault):
    """The language's compiler is not installed: the message says how to get it."""


class Toolchain(Protocol):
    name: str  # "c", "rust", "assemblyscript": what `--lang` takes

    def detect(self, directory: Path) -> bool:
        """Whether `directory` holds a plugin in this language (by its files)."""
        ...

    def build(self, directory: Path) -> bytes:
        """Build the plugin in `directory` and return its wasm (release build).

        Raises BuildFailed (compiler errors, with its output) or
        ToolchainMissing (with how to install it).
        """
        ...

    def skeleton(self, name: str) -> Mapping[str, str]:
        """The source files of a new plugin called `name` (path -> text),
        besides manifest.toml and config.schema.json, which `plugin new` writes.
        It must build as is, export the ABI v1 contract, and log once per tick
        (ShowNotifications and ReadSystemInfo are the capabilities it may use).
        """
        ...


def run_tool(
    args: Sequence[str],
    cwd: Path,
    what: str,
    env: Mapping[str, str] | None = None,
    timeout_s: float = BUILD_TIMEOUT_S,
) -> str:
    """Run a build command; its combined output, or BuildFailed with it.

    Raises ToolchainMissing when the program itself is not found.
    """
    program = args[0]
    if shutil.which(program) is None and not Path(program).is_file():
        raise ToolchainMissing(f"{program} is not installed (needed to build {what})")
    try:
        done = subprocess.run(
            list(args),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"{what}: {' '.join(args)} took longer than {timeout_s:.0f} s") from None
    except OSError as exc:
        raise ToolchainMissing(f"cannot run {program}: {exc}") from exc
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise BuildFailed(f"{what}: {' '.join(args)} failed (exit {done.returncode}):\n{output}")
    return output
