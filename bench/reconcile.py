"""The reconciler's figures: `ruvector plan` and `ruvector reconcile` over
many local plugins. Targets are issue 3's.

6. `ruvector plan` with installed plugins and nothing to change, as a whole
   process, against its own parts: the interpreter's start, the imports
   (`python -c "import ruvector.cli.main"`, the floor of any command; and
   the modules plan uses, imported alone), and the planning done in-process
   (load_desired, read_sources, observe, make_plan). Then the same plugins
   with a config schema each, as real plugins ship: the plan then checks
   every config, in one child process (reconciler.config_schema).
7. `reconcile()` of new plugins into an empty state dir, at three sizes, to
   show whether its time grows linearly; the middle size with config
   schemas, and as a whole `ruvector reconcile` process.

Every plugin is a distinct no-op module (`fixtures.numbered_noop`) in its
own `dir:` plugin directory, written once per run. Each reconcile gets a new
ruvector.toml and an empty state dir, made before its timer starts. Old
state dirs stay until the run's temp dir goes: on this machine's disk,
deleting 1000 artifacts made the following reconciles slower, repeat after
repeat, which would have timed the deletions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bench import fixtures
from bench.figures import Figure, Lab, Size
from bench.timing import Prepare, Runner, Stat, interleaved, interleaved_fresh, minus, ratio
from reconciler.apply import make_plan, observe, reconcile
from reconciler.config_schema import ConfigCheck, validate_configs
from reconciler.desired import load_desired
from reconciler.plan import Plan
from reconciler.sources import read_sources
from reconciler.store import StateStore

PLAN_TARGET_MS = 400.0  # issue 3: a whole `ruvector plan` of 100 plugins

# What `ruvector plan` runs: click and the reconciler's modules. The CLI's
# entry point imports more (every subcommand, the executor with them).
PLAN_IMPORTS = (
    "click, reconciler.apply, reconciler.sources, reconciler.plan_json, ruvector.cli.render"
)

ReconcileFn = Callable[[Path], None]  # reconciles the ruvector.toml at this path


class _Farm:
    """Plugin directories under one root, and ruvector.toml files naming them.

    With `schemas`, each plugin ships a config schema (fixtures.CONFIG_SCHEMA,
    as examples/hello does) and ruvector.toml gives each a config to check.
    """

    def __init__(self, root: Path, schemas: bool) -> None:
        self.root = root / ("with-schemas" if schemas else "bare")
        self.schemas = schemas

    def plugins(self, count: int) -> list[Path]:
        """The first `count` plugin directories, written if not there yet."""
        paths = [self.root / "plugins" / _name(k) for k in range(count)]
        new = [(k, p) for k, p in enumerate(paths) if not p.exists()]
        schema = fixtures.CONFIG_SCHEMA if self.schemas else None
        for k, path in new:
            fixtures.plugin_dir(path, _name(k), fixtures.numbered_noop(k), schema)
        if new and hasattr(os, "sync"):
            os.sync()  # so their writeback does not land in a timed run
        return paths

    def desired(self, count: int) -> Path:
        """A new ruvector.toml naming the first `count` plugins; its state dir
        (`state`, beside it) does not exist yet."""
        configs = self.root / "configs"
        configs.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{count}-", dir=configs)) / "ruvector.toml"
        lines = ["[plugins]", 'state_dir = "state"']
        for plugin in self.plugins(count):
            lines += [
                "",
                f"[plugins.installed.{plugin.name}]",
                f"source = {_toml(f'dir:{plugin}')}",
            ]
            if self.schemas:
                lines.append(f"config = {{ greeting = {_toml(_greeting(plugin.name))} }}")
        path.write_text("\n".join(lines) + "\n")
        return path


def _name(k: int) -> str:
    return f"p{k:04}"


def _greeting(name: str) -> str:
    return f"hello from {name}"


def _toml(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's for these values."""
    return json.dumps(text)


# -- 6. plan with nothing to change -------------------------------------------


def plan_no_change(lab: Lab, size: Size) -> list[Figure]:
    """`ruvector plan` over installed plugins, as a process and in parts;
    bare plugins, then plugins with a config schema."""
    count = size.plan_plugins
    bare = _installed(_Farm(lab.root / "plan", schemas=False), count)
    with_schemas = _installed(_Farm(lab.root / "plan", schemas=True), count)
    t = interleaved(
        {
            "process": _plan_process(bare),
            "process, schemas": _plan_process(with_schemas),
            "import": _process_runner(["-c", "import ruvector.cli.main"]),
            "needed": _process_runner(["-c", f"import {PLAN_IMPORTS}"]),
            "python": _process_runner(["-c", "pass"]),
            "library": _plans(bare, count),
            "library, schemas": _plans(with_schemas, count),
            "config checks": _config_checks(with_schemas),
        },
        size.plan_runs,
        size.repeats,
    )
    g = f"6. ruvector plan, {count} installed plugins, nothing to change"
    return _plan_rows(g, t, count)


def _installed(farm: _Farm, count: int) -> Path:
    """A ruvector.toml of `count` plugins, reconciled: planning it changes nothing."""
    config = farm.desired(count)
    _reconcile_in_process(config)
    return config


def _plan_rows(g: str, t: Mapping[str, list[float]], count: int) -> list[Figure]:
    unused = minus(t["import"], t["needed"])
    rest = minus(minus(t["process"], t["import"]), t["library"])
    per_plugin = [s / count for s in t["library"]]
    return [
        Figure(g, "`ruvector plan`, a whole process", Stat.of(t["process"]), "ms", PLAN_TARGET_MS),
        Figure(g, 'floor: python -c "import ruvector.cli.main"', Stat.of(t["import"]), "ms"),
        Figure(g, "of the floor: python -c pass", Stat.of(t["python"]), "ms"),
        Figure(
            g, "of the floor: the modules plan uses, imported alone", Stat.of(t["needed"]), "ms"
        ),
        Figure(g, "of the floor: not used by plan (floor - what plan uses)", Stat.of(unused), "ms"),
        Figure(g, "in-process: load, read sources, observe, plan", Stat.of(t["library"]), "ms"),
        Figure(g, "in-process, per plugin", Stat.of(per_plugin), "ms"),
        Figure(
            g, "the rest: CLI, output, exit (process - floor - in-process)", Stat.of(rest), "ms"
        ),
        Figure(
            g,
            "with a config schema each: `ruvector plan`, a whole process",
            Stat.of(t["process, schemas"]),
            "ms",
            PLAN_TARGET_MS,
        ),
        Figure(g, "with a config schema each: in-process", Stat.of(t["library, schemas"]), "ms"),
        Figure(g, "of it: validate_configs (one child process)", Stat.of(t["config checks"]), "ms"),
    ]


def _plan_process(config: Path) -> Runner:
    """`ruvector plan`; --detailed-exitcode makes "changes" an exit 2, which fails."""
    return _process_runner(
        ["-m", "ruvector", "plan", "--detailed-exitcode", "--config", str(config)]
    )


def _config_checks(config: Path) -> Runner:
    """The plan's config checks alone: every plugin's config against its schema."""
    checks = [
        ConfigCheck(p.name, fixtures.CONFIG_SCHEMA, p.config, str(config))
        for p in load_desired(config).plugins
    ]

    def run(n: int) -> None:
        for _ in range(n):
            problems = validate_configs(checks)
            if problems:
                raise RuntimeError(f"bench config refused: {problems[0]}")

    return run


def _plans(config: Path, count: int) -> Runner:
    """What `ruvector plan` computes, in this process; checked to change nothing."""

    def run(n: int) -> None:
        for _ in range(n):
            made = _plan(config)
            if made.has_changes or len(made.target) != count:
                raise RuntimeError(f"the plan of {config} is not 'no changes' for {count} plugins")

    return run


def _plan(config: Path) -> Plan:
    desired = load_desired(config)
    store = StateStore(Path(desired.settings.state_dir))
    offers = read_sources(desired)
    return make_plan(desired, observe(store), offers)


def _process_runner(args: Sequence[str]) -> Runner:
    def run(n: int) -> None:
        for _ in range(n):
            _python(args)

    return run


def _python(args: Sequence[str]) -> None:
    """Run this interpreter with `args`; raise unless it exits 0."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    if done.returncode != 0:
        shown = " ".join(args)
        raise RuntimeError(f"python {shown} exited {done.returncode}: {done.stderr.strip()}")


# -- 7. reconcile of new plugins ----------------------------------------------


def reconcile_new(lab: Lab, size: Size) -> list[Figure]:
    """reconcile() of new plugins into an empty state dir, at three sizes; the
    middle size with a config schema each, and as a `ruvector reconcile` process."""
    bare = _Farm(lab.root / "reconcile", schemas=False)
    with_schemas = _Farm(lab.root / "reconcile", schemas=True)
    sizes = size.reconcile_plugins
    mid = sizes[1]
    bare.plugins(max(sizes))
    made: list[tuple[Path, int]] = []  # each config reconciled, and its plugin count
    prepares = {str(n): _fresh(bare, n, made, _reconcile_in_process) for n in sizes}
    prepares["schemas"] = _fresh(with_schemas, mid, made, _reconcile_in_process)
    prepares["process"] = _fresh(bare, mid, made, _reconcile_process)
    runs = {str(n): max(1, size.reconcile_batch // n) for n in sizes}
    t = interleaved_fresh(prepares, {**runs, "schemas": runs[str(mid)], "process": 1}, size.repeats)
    for config, count in made:
        _check_installed(config, count)

    g = "7. reconcile of new local plugins into an empty state dir"
    beyond = minus(t["process"], t[str(mid)])
    schemas = f"reconcile(), {mid} plugins with a config schema each"
    return [
        *_size_rows(g, t, sizes),
        *_linearity_rows(g, t, sizes),
        Figure(g, schemas, Stat.of(t["schemas"]), "ms"),
        Figure(g, f"{schemas}, per plugin", Stat.of([s / mid for s in t["schemas"]]), "ms"),
        Figure(
            g, f"`ruvector reconcile`, {mid} plugins, a whole process", Stat.of(t["process"]), "ms"
        ),
        Figure(g, "of it, beyond reconcile() in-process", Stat.of(beyond), "ms"),
    ]


def _size_rows(g: str, t: Mapping[str, list[float]], sizes: Sequence[int]) -> list[Figure]:
    rows = []
    for n in sizes:
        per_plugin = [s / n for s in t[str(n)]]
        rows += [
            Figure(g, f"reconcile(), {n} plugins", Stat.of(t[str(n)]), "ms"),
            Figure(g, f"reconcile(), {n} plugins, per plugin", Stat.of(per_plugin), "ms"),
        ]
    return rows


def _linearity_rows(
    g: str, t: Mapping[str, list[float]], sizes: tuple[int, int, int]
) -> list[Figure]:
    """Both ratios are 1 if time grows linearly with the number of plugins."""
    small, mid, large = sizes
    per_small = [s / small for s in t[str(small)]]
    per_large = [s / large for s in t[str(large)]]
    # The cost of one more plugin, from each size to the next: fixed costs
    # (the lock, the generation record, the switch) cancel out.
    low = [(b - a) / (mid - small) for a, b in zip(t[str(small)], t[str(mid)], strict=True)]
    high = [(b - a) / (large - mid) for a, b in zip(t[str(mid)], t[str(large)], strict=True)]
    return [
        Figure(g, f"per plugin, {large} / {small}", Stat.of(ratio(per_large, per_small)), "x"),
        Figure(
            g, f"one more plugin, {mid}-{large} / {small}-{mid}", Stat.of(ratio(high, low)), "x"
        ),
    ]


def _fresh(
    farm: _Farm, count: int, made: list[tuple[Path, int]], reconcile_: ReconcileFn
) -> Prepare:
    """Prepares a reconcile of `count` plugins with a new ruvector.toml and an empty state dir."""

    def prepare() -> Callable[[], None]:
        config = farm.desired(count)
        made.append((config, count))
        return lambda: reconcile_(config)

    return prepare


def _reconcile_in_process(config: Path) -> None:
    """What `ruvector reconcile` does, in this process."""
    desired = load_desired(config)
    reconcile(desired, StateStore(Path(desired.settings.state_dir)))


def _reconcile_process(config: Path) -> None:
    _python(["-m", "ruvector", "reconcile", "--config", str(config)])


def _check_installed(config: Path, count: int) -> None:
    """Raise unless `config`'s state dir holds its first generation, of `count` plugins."""
    current = StateStore(config.parent / "state").current()
    if current is None or current.number != 1 or len(current.plugins) != count:
        raise RuntimeError(f"reconciling {config} did not install its {count} plugins")
