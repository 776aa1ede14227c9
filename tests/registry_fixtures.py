"""A real registry served over loopback, and a ruvector.toml that follows it.

Plugins are the bundled hello example, renamed and re-versioned by text
replacement in its manifest, packed, signed with a publisher key and added
with the same library calls `ruvector registry add` makes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.bundle import Bundle, bundle_from_dir, write_bundle
from reconciler.signature import PublisherKey, generate_key, sign_bundle
from registry.repository import add_bundle, init_registry
from registry.serve import serve
from ruvector.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello"
HELLO_CAPS = '["ReadSystemInfo", "ShowNotifications"]'


def plugin_dir(work: Path, name: str, version: str, caps: str = HELLO_CAPS) -> Path:
    """A copy of hello as plugin `name` `version` declaring `caps` (a TOML array)
    besides what hello's wasm imports (registries check imports against them)."""
    directory = work / f"{name}-{version}"
    if directory.exists():
        shutil.rmtree(directory)
    shutil.copytree(HELLO, directory)
    manifest = directory / "manifest.toml"
    text = manifest.read_text()
    text = text.replace('name = "hello"', f'name = "{name}"')
    text = text.replace('version = "0.1.0"', f'version = "{version}"', 1)
    wanted = sorted(set(json.loads(HELLO_CAPS)) | set(json.loads(caps)))
    text = text.replace(f"capabilities = {HELLO_CAPS}", f"capabilities = {json.dumps(wanted)}")
    manifest.write_text(text)
    return directory


def signed_bundle(
    work: Path, name: str, version: str, key: PublisherKey | None, caps: str = HELLO_CAPS
) -> Bundle:
    bundle = bundle_from_dir(plugin_dir(work, name, version, caps), check_host=False)
    return sign_bundle(bundle, key) if key is not None else bundle


@dataclass
class Registry:
    """A registry directory, its URL while served, and its publishers' keys."""

    dir: Path
    url: str
    work: Path
    keys: dict[str, PublisherKey] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.dir / "root.json"

    @property
    def served(self) -> Path:
        return self.dir / "repository"

    def key(self, publisher: str) -> PublisherKey:
        return self.keys.setdefault(publisher, generate_key())

    def publish(
        self, name: str, version: str, publisher: str = "alice", caps: str = HELLO_CAPS
    ) -> Bundle:
        bundle = signed_bundle(self.work, name, version, self.key(publisher), caps)
        self.add(bundle, publisher)
        return bundle

    def add(self, bundle: Bundle, publisher: str) -> None:
        path = self.work / f"{bundle.manifest.name}-{bundle.manifest.version}.rvp"
        write_bundle(bundle, path)
        add_bundle(self.dir, path, publisher=publisher)

    def target(self, path: str) -> Path:
        """The served file of target `path` (hash-prefixed, consistent snapshots)."""
        directory, _, name = path.rpartition("/")
        found = sorted((self.served / "targets" / directory).glob(f"*.{name}"))
        assert found, path
        return max(found, key=lambda p: p.stat().st_mtime_ns)


@contextmanager
def registry(tmp_path: Path) -> Iterator[Registry]:
    directory = tmp_path / "registry"
    init_registry(directory)
    work = tmp_path / "work"
    work.mkdir()
    with serve(directory / "repository") as url:
        yield Registry(directory, url, work)


def write_config(
    home: Path,
    reg: Registry,
    plugins: dict[str, str],
    *,
    extra: str = "",
    url: str | None = None,
) -> Path:
    """ruvector.toml following `reg`; `plugins` maps name -> the lines of its table."""
    tables = "".join(
        f"\n[plugins.installed.{name}]\n{body}\n" for name, body in sorted(plugins.items())
    )
    path = home / "ruvector.toml"
    path.write_text(
        f"""[plugins]
tick_interval_ms = 50
registry_url = {json.dumps(url or reg.url)}
registry_root = {json.dumps(str(reg.root))}
{extra}
{tables}"""
    )
    return path


def run(home: Path, *args: str) -> Result:
    """A ruvector command on `home`'s ruvector.toml, through click's runner."""
    return CliRunner().invoke(cli, [*args, "--config", str(home / "ruvector.toml")])


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file under `root` and its sha256 (the reconcile lock's note aside)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "reconcile.lock"
    }
