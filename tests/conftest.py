from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from executor.executor import Executor
from executor.observer import Observer
from executor.sandbox import Violation
from executor.spec import ExecutorSettings
from tests.registry_fixtures import Registry, registry


@dataclass
class Recorder(Observer):
    """Collects everything the executor reports."""

    logs: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[tuple[str, str, str]] = field(default_factory=list)
    violations: list[tuple[str, Violation]] = field(default_factory=list)
    disabled_: list[tuple[str, str]] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)

    def log(self, plugin: str, level: str, message: str) -> None:
        self.logs.append((plugin, level, message))

    def notify(self, plugin: str, title: str, message: str) -> None:
        self.notes.append((plugin, title, message))

    def violation(self, plugin: str, violation: Violation, count: int, strikes: int) -> None:
        self.violations.append((plugin, violation))

    def disabled(self, plugin: str, reason: str) -> None:
        self.disabled_.append((plugin, reason))

    def refused(self, plugin: str, reason: str) -> None:
        self.refusals.append((plugin, reason))

    def messages(self, plugin: str) -> list[str]:
        return [m for p, _, m in self.logs if p == plugin]

    def kinds(self, plugin: str) -> list[str]:
        return [v.kind.name for p, v in self.violations if p == plugin]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=["fast", "reference"])
def call_api(request: pytest.FixtureRequest) -> str:
    """Both ways the executor reaches wasmtime: every executor test runs with
    the fast path and with the high-level API it must agree with."""
    return str(request.param)


@pytest.fixture
def make_executor(tmp_path: Path, recorder: Recorder, call_api: str) -> Iterator[object]:
    made: list[Executor] = []

    def make(**settings: object) -> Executor:
        opts = {
            "state_dir": str(tmp_path / "state"),
            "tick_interval_ms": 50,
            "call_api": call_api,
            **settings,
        }
        ex = Executor(ExecutorSettings(**opts), recorder)  # type: ignore[arg-type]
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown()


class Children:
    """Processes a test starts; all killed and reaped at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *argv: str, user: int | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, user=user)
        self.procs.append(proc)
        return proc

    def sleeper(self, user: int | None = None) -> subprocess.Popen[bytes]:
        """A `sleep 60` that has finished starting (exec'd, loaded, asleep)."""
        proc = self.start("sleep", "60", user=user)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                child = psutil.Process(proc.pid)
                if child.name() == "sleep" and child.status() == psutil.STATUS_SLEEPING:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.005)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    try:
        yield kids
    finally:
        kids.close()


# -- a registry over loopback, and a home that follows it (tests/registry_fixtures.py)


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    """A real registry served over loopback (test modules may define their own `reg`)."""
    with registry(tmp_path) as r:
        yield r


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty directory for a ruvector.toml and its state/."""
    h = tmp_path / "home"
    h.mkdir()
    return h
