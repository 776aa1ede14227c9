"""Build the WAT example plugins: plugin.wat -> plugin.wasm, SHA-256 pinned.

Usage: python examples/build.py [--check]

--check builds in memory and fails if a committed plugin.wasm or its pinned
hash differs from what its source builds to (the tests run this).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import tomlkit
import wasmtime

EXAMPLES = Path(__file__).resolve().parent


def build(plugin_dir: Path, check: bool) -> list[str]:
    wasm = wasmtime.wat2wasm((plugin_dir / "plugin.wat").read_text())
    sha = hashlib.sha256(wasm).hexdigest()
    manifest_path = plugin_dir / "manifest.toml"
    manifest = tomlkit.parse(manifest_path.read_text())
    wasm_path = plugin_dir / str(manifest["wasm_file"])
    if check:
        problems = []
        if not wasm_path.exists() or wasm_path.read_bytes() != wasm:
            problems.append(f"{wasm_path} is not what plugin.wat builds to")
        if manifest["wasm_sha256"] != sha:
            problems.append(f"{manifest_path}: wasm_sha256 is not {sha}")
        return problems
    wasm_path.write_bytes(wasm)
    manifest["wasm_sha256"] = sha
    manifest_path.write_text(tomlkit.dumps(manifest))
    print(f"built {wasm_path} ({len(wasm)} bytes, sha256 {sha})")
    return []


def main() -> int:
    check = "--check" in sys.argv[1:]
    problems = [p for d in sorted(EXAMPLES.glob("*/plugin.wat")) for p in build(d.parent, check)]
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
