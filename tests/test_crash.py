"""Crash tests: SIGKILL a reconcile at many points; the next one converges.

Each scenario starts from a fixed ruvector.toml and state/ (the template).
tests/crash_driver.py runs `ruvector reconcile` in a forked child and counts
the line events in the files that write the state (store.py, apply.py,
atomic.py); a run that is not killed gives the total T and the order of the
lines. The reconcile is then killed at a spread of counts over 1..T (every
one if T is small; else evenly spaced ones, plus the kills just before and
just after each os.replace and os.rename and just before each fsync), each
time from a fresh copy of the template. After each kill:

- the child died of SIGKILL;
- the state reads cleanly; the generation in force is the old one or the
  new one, never a mix; every recorded generation's files verify (only the
  drift scenario's tampered file may differ, before its repair);
- a plain `ruvector reconcile` is not blocked by the dead run's lock and
  succeeds;
- then the state is what an uninterrupted reconcile gives: the same plugins
  (name, version, digest, config), no drift in any generation, the pins
  those of the generation in force, every earlier generation kept, no temp
  file left, and a further reconcile says "No changes.".

The plugin sources live outside the homes, so a template's state (which
records each source's absolute path) is valid in every copy; two copies
are worked through at once, one per driver.
"""

from __future__ import annotations

import hashlib
import json
import linecache
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import wasmtime
from click.testing import CliRunner

from reconciler.store import Drift, DriftKind, Generation, StateError, StateStore, pins_of
from ruvector.cli.main import cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello"
DRIVER = Path(__file__).resolve().parent / "crash_driver.py"

SPREAD = 40  # evenly spaced kill points, when T is larger
SLOTS = 2  # copies of the template worked through at once
# A rename makes a write visible: kill on both sides of it. Before and after
# an fsync are the same to a killed process (the page cache survives it),
# so one kill each.
RENAME = re.compile(r"\bos\.(replace|rename)\(")
FSYNC = re.compile(r"\bos\.fsync\(|\bfsync_dir\(")

# A plugin with no capabilities and no config schema. Its two versions
# differ in code, so in digest too.
TINY_WAT = {
    "1.0.0": """(module
  (memory (export "memory") 1)
  (func (export "rv_abi_version") (result i32) (i32.const 1)))""",
    "1.1.0": """(module
  (memory (export "memory") 1)
  (func (export "rv_abi_version") (result i32) (i32.const 1))
  (func (export "on_tick") (param i32)))""",
}


def write_tiny(directory: Path, version: str) -> None:
    """The tiny plugin's directory, its manifest naming the wasm's real sha256."""
    wasm = bytes(wasmtime.wat2wasm(TINY_WAT[version]))
    directory.mkdir(exist_ok=True)
    (directory / "plugin.wasm").write_bytes(wasm)
    (directory / "manifest.toml").write_text(
        f"""name = "tiny"
version = "{version}"
author = "RuVector tests"
description = "Does nothing."
license = "MIT"
capabilities = []
min_ruvector_version = "0.1.0"
platforms = ["linux", "macos", "windows"]
wasm_file = "plugin.wasm"
wasm_sha256 = "{hashlib.sha256(wasm).hexdigest()}"
"""
    )


def write_config(home: Path, greeting: str, tiny_version: str) -> None:
    # The sources are siblings of the home: the same absolute path from every copy.
    (home / "ruvector.toml").write_text(
        f"""[plugins]
tick_interval_ms = 50

[plugins.installed.hello]
source = "dir:../plugins/hello"
config = {{ greeting = "{greeting}" }}

[plugins.installed.tiny]
source = "dir:../plugins/tiny"
version = "{tiny_version}"
config = {{ level = 3 }}
"""
    )


# What must match between two states: each plugin's name, version, digest and config.
View = tuple[tuple[str, str, str, str], ...]


def view(generation: Generation | None) -> View:
    if generation is None:
        return ()
    return tuple(
        (p.name, p.version, p.digest, json.dumps(p.config, sort_keys=True))
        for p in generation.plugins
    )


# -- the driver -----------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    returncode: int  # of the child: -9 if it was killed
    exit_code: int | None = None  # of the command, if it finished
    output: str = ""
    events: tuple[tuple[str, int], ...] = ()  # counted line events, if it finished


class Driver:
    """tests/crash_driver.py for one ruvector.toml: reconciles, killed at N."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )

    def run(self, kill_at: int = 0) -> Run:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{kill_at}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the crash driver died (returncode {self.proc.poll()})"
        reply = json.loads(line)
        return Run(
            reply["returncode"],
            reply.get("exit_code"),
            reply.get("output", ""),
            tuple((file, n) for file, n in reply.get("events", ())),
        )

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def kill_points(events: tuple[tuple[str, int], ...]) -> list[int]:
    """Every count if there are few; else a spread plus the kills around durable lines."""
    total = len(events)
    if total <= SPREAD:
        return list(range(1, total + 1))
    points = {1 + (total - 1) * i // (SPREAD - 1) for i in range(SPREAD)}
    for n, (file, line) in enumerate(events, start=1):
        text = linecache.getline(file, line)
        if RENAME.search(text):
            points |= {n, n + 1}
        elif FSYNC.search(text):
            points.add(n)
    return sorted(p for p in points if p <= total)


def where(events: tuple[tuple[str, int], ...], n: int) -> str:
    file, line = events[n - 1]
    text = linecache.getline(file, line).strip()
    return f"kill {n}/{len(events)}, before {Path(file).name}:{line} `{text}`"


# -- the lab -------------------------------------------------------------------


@dataclass
class Slot:
    """A copy of the template that one driver reconciles."""

    home: Path
    driver: Driver

    @property
    def state(self) -> Path:
        return self.home / "state"


@dataclass
class Lab:
    """The plugin sources, the template home and the slots that copy it."""

    plugins: Path
    template: Path
    slots: list[Slot]

    def reconcile(self) -> None:
        """Reconcile the template in this process, as a scenario's setup."""
        result = CliRunner().invoke(
            cli, ["reconcile", "--config", str(self.template / "ruvector.toml")]
        )
        assert result.exit_code == 0, result.output

    def reset(self, slot: Slot) -> None:
        shutil.rmtree(slot.home, ignore_errors=True)
        shutil.copytree(self.template, slot.home, symlinks=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """hello (examples/hello) and tiny 1.0.0 in ruvector.toml, nothing installed yet."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copytree(HELLO, plugins / "hello")
    write_tiny(plugins / "tiny", "1.0.0")
    template = tmp_path / "template"
    template.mkdir()
    write_config(template, "one", "1.0.0")
    slots: list[Slot] = []
    try:
        for i in range(SLOTS):
            home = tmp_path / f"slot{i}"
            slots.append(Slot(home, Driver(home / "ruvector.toml")))
        yield Lab(plugins, template, slots)
    finally:
        for slot in slots:
            slot.driver.close()


# -- the checks ------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    old: Generation | None  # in force in the template
    new: Generation  # in force after an uninterrupted reconcile
    kept: dict[int, View]  # every generation recorded in the template
    tampered: frozenset[Drift]  # the template's drift, before its repair


def crash_everywhere(lab: Lab, tampered: frozenset[Drift] = frozenset()) -> int:
    """Kill the template's reconcile at each kill point and check the state
    and its recovery each time; return the number of kill points."""
    before = StateStore(lab.template / "state")
    old = before.current()
    assert old is None or set(before.check_drift(old)) == tampered
    runs = []
    for slot in lab.slots:
        lab.reset(slot)
        runs.append(slot.driver.run())
    clean = runs[0]
    assert clean.exit_code == 0 and clean.events, clean.output
    # The same lines in every slot, or a kill point would not mean the same line.
    assert all(run.events == clean.events for run in runs)
    new = StateStore(lab.slots[0].state).current()
    assert new is not None and StateStore(lab.slots[0].state).check_drift(new) == []
    expected = Expected(old, new, {g.number: view(g) for g in before.history()}, tampered)
    points = kill_points(clean.events)

    def work(i: int) -> list[tuple[int, str]]:
        slot = lab.slots[i]
        found = []
        for n in points[i :: len(lab.slots)]:
            lab.reset(slot)
            found += [(n, problem) for problem in kill_and_check(slot, n, expected)]
        return found

    with ThreadPoolExecutor(len(lab.slots)) as pool:
        problems = sorted(p for found in pool.map(work, range(len(lab.slots))) for p in found)
    if problems:
        lines = [f"{where(clean.events, n)}: {problem}" for n, problem in problems]
        pytest.fail(f"{len(problems)} problem(s) in {len(points)} kills:\n" + "\n".join(lines))
    return len(points)


def kill_and_check(slot: Slot, n: int, expected: Expected) -> list[str]:
    killed = slot.driver.run(n)
    if killed.returncode != -9:
        return [f"the child ended with returncode {killed.returncode}, not -9"]
    return check_killed(slot, expected) + check_recovered(slot, expected)


def check_killed(slot: Slot, expected: Expected) -> list[str]:
    """Right after the kill: a whole generation in force, old or new, and intact."""
    store = StateStore(slot.state)
    try:
        current = store.current()
        history = store.history()
    except StateError as exc:
        return [f"after the kill the state is damaged: {exc}"]
    old, new = expected.old, expected.new
    whole = {(new.number, view(new))} | ({(old.number, view(old))} if old else set())
    if current is None and old is not None:
        return ["after the kill no generation is in force"]
    if current is not None and (current.number, view(current)) not in whole:
        return [f"after the kill generation {current.number} is in force: {view(current)}"]
    problems = []
    for g in history:  # those of the template, and any the killed run recorded
        allowed = expected.tampered if old is not None and g.number == old.number else set()
        if drift := set(store.check_drift(g)) - allowed:
            problems.append(f"after the kill generation {g.number} has drift: {_listed(drift)}")
    return problems


def check_recovered(slot: Slot, expected: Expected) -> list[str]:
    """After the next plain reconcile: what an uninterrupted run gives."""
    result = slot.driver.run()
    if result.exit_code != 0:
        return [f"the next reconcile failed: {result.output.strip()}"]
    store = StateStore(slot.state)
    current = store.current()
    if current is None or view(current) != view(expected.new):
        return [f"after the next reconcile: {view(current)}, expected {view(expected.new)}"]
    problems = []
    history = {g.number: g for g in store.history()}
    for g in history.values():
        if drift := store.check_drift(g):
            problems.append(
                f"after the next reconcile generation {g.number} has drift: {_listed(set(drift))}"
            )
    if (pins := store.read_pins()) != pins_of(current):
        pinned = ", ".join(f"{p.name} {p.version}" for p in pins.values()) or "none"
        problems.append(f"after the next reconcile the pins ({pinned}) are not those in force")
    if changed := [
        n for n, v in expected.kept.items() if n not in history or view(history[n]) != v
    ]:
        problems.append(f"after the next reconcile generations {changed} are lost or changed")
    if leftovers := _leftovers(slot.state):
        problems.append(f"after the next reconcile temp files are left: {leftovers}")
    if "No changes." in result.output:
        return problems  # it wrote nothing: a further run would see the same state
    again = slot.driver.run()
    if again.exit_code != 0 or "No changes." not in again.output:
        problems.append(f"a further reconcile is not a no-op: {again.output.strip()}")
    return problems


def _listed(drift: set[Drift]) -> str:
    return ", ".join(sorted(map(str, drift)))


def _leftovers(state: Path) -> list[str]:
    # The store's temp entries (.tmp-, .old-) and atomic_write's (.NAME.random.tmp)
    return sorted(
        str(p.relative_to(state))
        for p in state.rglob("*")
        if p.name.startswith((".tmp-", ".old-")) or p.name.endswith(".tmp")
    )


# -- the scenarios ------------------------------------------------------------


def test_a_first_install_of_two_plugins_survives_a_kill_anywhere(lab: Lab) -> None:
    assert crash_everywhere(lab) >= SPREAD


def test_a_reconfigure_and_upgrade_survive_a_kill_anywhere(lab: Lab) -> None:
    lab.reconcile()
    write_config(lab.template, "two", "1.1.0")  # hello reconfigured, tiny's pin moved
    write_tiny(lab.plugins / "tiny", "1.1.0")
    assert crash_everywhere(lab) >= SPREAD


def test_a_drift_repair_survives_a_kill_anywhere(lab: Lab) -> None:
    lab.reconcile()
    store = StateStore(lab.template / "state")
    generation = store.current()
    assert generation is not None
    hello = generation.plugin("hello")
    assert hello is not None
    wasm = store.artifact_dir(hello.digest) / "plugin.wasm"
    wasm.write_bytes(wasm.read_bytes() + b"tampered")
    assert (
        crash_everywhere(lab, frozenset({Drift("hello", "plugin.wasm", DriftKind.CHANGED)}))
        >= SPREAD
    )
