"""The registry's figures (issue 4): reconcile from a loopback registry, and refresh cost.

8. reconcile() of N plugins from a registry served over loopback by its own
   process (`ruvector registry serve`, so the server does not share this
   interpreter), into an empty state dir:
   - cold: no TUF metadata, no download cache; every bundle is fetched;
   - warm: the download cache already holds every bundle (copied in before
     the timer starts); only the metadata and the index are fetched;
   - the same N plugins from local `dir:` sources, for scale.
   And the bytes a refresh fetches when nothing changed, counted by a
   fetcher that wraps the client's: the timestamp alone, plus the probe for
   a newer root (a 404) that TUF makes on every refresh.

Each plugin is a distinct bundle (the no-op fixture, numbered), signed by
one publisher key and added with the library `ruvector registry add` uses.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import fixtures
from bench.figures import Figure, Lab, Size
from bench.timing import Prepare, Stat, interleaved_fresh, ratio
from reconciler.apply import reconcile
from reconciler.bundle import bundle_from_dir, write_bundle
from reconciler.desired import load_desired
from reconciler.signature import generate_key, sign_bundle
from reconciler.store import StateStore
from registry.client import PinnedRoot, RegistryClient
from registry.fetch import FetchSettings, HttpxFetcher
from registry.repository import add_bundle, init_registry

ROOT = Path(__file__).resolve().parent.parent


def registry_reconcile(lab: Lab, size: Size) -> list[Figure]:
    count = size.registry_plugins
    base = lab.root / "registry"
    plugins = [_plugin(base / "plugins", k) for k in range(count)]
    reg = base / "reg"
    _publish(reg, base / "bundles", plugins)
    with _served(reg) as url:
        warm_cache = base / "warm-cache"
        made: list[Path] = []
        prepares = {
            "cold": _fresh(base, url, reg, count, made, None),
            "warm": _fresh(base, url, reg, count, made, warm_cache),
            "local": _fresh_local(base, plugins, made),
        }
        # A cold run first fills the cache the warm runs start from.
        first = prepares["cold"]()
        first()
        shutil.copytree(made[-1].parent / "state" / "registry" / "cache", warm_cache)
        t = interleaved_fresh(prepares, 1, size.repeats)
        for config in made:
            _check_installed(config, count)
        fetched = _refresh_bytes(base, url, reg)
    g = f"8. reconcile of {count} plugins from a loopback registry (own process)"
    return [
        Figure(g, "cold: no metadata, no download cache", Stat.of(t["cold"]), "ms"),
        Figure(g, "cold, per plugin", Stat.of([s / count for s in t["cold"]]), "ms"),
        Figure(g, "warm download cache", Stat.of(t["warm"]), "ms"),
        Figure(g, "warm / cold", Stat.of(ratio(t["warm"], t["cold"])), "x"),
        Figure(g, f"the same {count} from local dir: sources", Stat.of(t["local"]), "ms"),
        Figure(g, "cold / local", Stat.of(ratio(t["cold"], t["local"])), "x"),
        Figure(g, "refresh with nothing changed: bytes fetched", Stat.of([fetched[0]]), "B"),
        Figure(g, "of them: timestamp.json", Stat.of([fetched[1]]), "B"),
        Figure(g, "requests made by that refresh", Stat.of([fetched[2]]), "n"),
    ]


def _plugin(root: Path, k: int) -> Path:
    path = root / f"r{k:04}"
    if not path.exists():
        fixtures.plugin_dir(path, f"r{k:04}", fixtures.numbered_noop(k), fixtures.CONFIG_SCHEMA)
    return path


def _publish(reg: Path, bundles: Path, plugins: list[Path]) -> None:
    if reg.exists():
        return
    init_registry(reg)
    key = generate_key()
    bundles.mkdir(parents=True, exist_ok=True)
    for i, directory in enumerate(plugins):
        bundle = sign_bundle(bundle_from_dir(directory), key)
        path = bundles / f"{directory.name}.rvp"
        write_bundle(bundle, path)
        add_bundle(reg, path, publisher="bench" if i == 0 else None)


def _served(reg: Path) -> _ServedContext:
    return _ServedContext(reg)


class _ServedContext:
    """`ruvector registry serve DIR --port 0` in a child process; yields its URL."""

    def __init__(self, reg: Path) -> None:
        self.reg = reg
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ruvector", "registry", "serve", str(self.reg), "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = re.search(r" at (http://\S+) ", line)
            if m:
                return m.group(1)
        raise RuntimeError(f"ruvector registry serve exited {self.proc.wait()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _config(home: Path, url: str, reg: Path, count: int) -> Path:
    lines = [
        "[plugins]",
        f'registry_url = "{url}"',
        f'registry_root = "{reg / "root.json"}"',
    ]
    for k in range(count):
        lines += ["", f"[plugins.installed.r{k:04}]", 'config = { greeting = "hi" }']
    path = home / "ruvector.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _fresh(
    base: Path, url: str, reg: Path, count: int, made: list[Path], cache: Path | None
) -> Prepare:
    def prepare() -> Callable[[], None]:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=base))
        config = _config(home, url, reg, count)
        if cache is not None:
            shutil.copytree(cache, home / "state" / "registry" / "cache")
        made.append(config)
        return lambda: _reconcile(config)

    return prepare


def _fresh_local(base: Path, plugins: list[Path], made: list[Path]) -> Prepare:
    def prepare() -> Callable[[], None]:
        home = Path(tempfile.mkdtemp(prefix="local-", dir=base))
        lines = ["[plugins]"]
        for p in plugins:
            lines += [
                "",
                f"[plugins.installed.{p.name}]",
                f'source = "dir:{p}"',
                'config = { greeting = "hi" }',
            ]
        config = home / "ruvector.toml"
        config.write_text("\n".join(lines) + "\n")
        made.append(config)
        return lambda: _reconcile(config)

    return prepare


def _reconcile(config: Path) -> None:
    desired = load_desired(config)
    reconcile(desired, StateStore(Path(desired.settings.state_dir)))


def _check_installed(config: Path, count: int) -> None:
    current = StateStore(config.parent / "state").current()
    if current is None or len(current.plugins) != count:
        raise RuntimeError(f"reconciling {config} did not install its {count} plugins")


class _Counting(HttpxFetcher):
    """The client's fetcher, counting what each request brings."""

    def __init__(self) -> None:
        super().__init__(FetchSettings())
        self.requests: list[tuple[str, int]] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        total = 0
        try:
            for chunk in super()._fetch(url):
                total += len(chunk)
                yield chunk
        finally:
            self.requests.append((url, total))


def _refresh_bytes(base: Path, url: str, reg: Path) -> tuple[int, int, int]:
    """(bytes, bytes of timestamp.json, requests) of a refresh after one that changed nothing."""
    state = Path(tempfile.mkdtemp(prefix="refresh-", dir=base))
    root = PinnedRoot((reg / "root.json").read_bytes(), str(reg / "root.json"))
    with RegistryClient(url, root, state) as first:
        first.index()
    counting = _Counting()
    with RegistryClient(url, root, state, fetcher=counting) as client:
        client.index()
    total = sum(n for _, n in counting.requests)
    stamp = sum(n for u, n in counting.requests if u.endswith("/timestamp.json"))
    return total, stamp, len(counting.requests)
