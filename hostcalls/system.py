"""One reading of the machine per executor tick, shared by every plugin.

The executor asks its Sampler for a SystemSample once per tick; every
get_memory_status, get_cpu_usage, get_process_list... any plugin makes in
that tick is answered from it. The JSON forms are built on first use and
kept on the sample, so twenty plugins reading the process list cost one
serialisation.

Figures are psutil's, never filled in: a field the OS would not give is None
here and null in JSON.
"""

from __future__ import annotations

import enum
import json
import sys
import time
from dataclasses import asdict, dataclass

import psutil

from hostcalls import sensors


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process as a sample saw it.

    `cpu_percent` covers the time since the previous sample, with 100.0
    meaning one full core (psutil's scale, so a busy multi-threaded process
    can exceed 100). It is 0.0 the first time a Sampler sees a process: there
    is no earlier reading to measure from.
    """

    pid: int
    ppid: int
    name: str
    uid: int | None  # real uid; None on Windows or where the OS refused
    memory_bytes: int | None  # resident set size; None where the OS refused
    cpu_percent: float | None  # None where the OS refused
    nice: int | None  # None where the OS refused
    create_time: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class MemoryStatus:
    total_bytes: int
    available_bytes: int
    used_bytes: int
    percent: float  # (total - available) / total, 0..100
    swap_total_bytes: int
    swap_used_bytes: int


class PressureLevel(enum.IntEnum):
    """The argument of on_memory_pressure."""

    NORMAL = 0
    HIGH = 1
    CRITICAL = 2


def memory_pressure_level(
    memory: MemoryStatus, high_percent: float = 85.0, critical_percent: float = 95.0
) -> PressureLevel:
    """Classify memory use against used-percent thresholds (each inclusive).

    Raises ValueError unless 0 <= high_percent < critical_percent <= 100.
    """
    if not 0.0 <= high_percent < critical_percent <= 100.0:
        raise ValueError(
            f"memory pressure thresholds need 0 <= high < critical <= 100, "
            f"got high={high_percent}, critical={critical_percent}"
        )
    if memory.percent >= critical_percent:
        return PressureLevel.CRITICAL
    if memory.percent >= high_percent:
        return PressureLevel.HIGH
    return PressureLevel.NORMAL


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class SystemSample:
    """One reading of the machine, taken once per tick and shared by all plugins.

    The attributes are read once, at sampling. The methods derive from them
    on first call and return the same object afterwards. Two threads asking
    for the same form at once may both build it; both results are equal, and
    the first stored is the one kept.
    """

    __slots__ = (
        "_battery_json",
        "_gpu_json",
        "_index",
        "_keys",
        "_memory_json",
        "_process_list_json",
        "_temperature_json",
        "cpu_percent",
        "memory",
        "monotonic",
        "processes",
        "wall_time",
    )

    def __init__(
        self,
        monotonic: float,
        wall_time: float,
        memory: MemoryStatus,
        cpu_percent: float,
        processes: tuple[ProcessInfo, ...] | None,
    ) -> None:
        self.monotonic = monotonic  # time.monotonic() at sampling
        self.wall_time = wall_time  # time.time() at sampling
        self.memory = memory
        self.cpu_percent = cpu_percent  # system-wide since the previous sample, 0..100
        self.processes = processes  # None: sampled without processes
        self._memory_json: bytes | None = None
        self._process_list_json: bytes | None = None
        self._temperature_json: bytes | None = None
        self._gpu_json: bytes | None = None
        self._battery_json: bytes | None = None
        self._index: dict[int, ProcessInfo] | None = None
        self._keys: frozenset[tuple[int, float]] | None = None

    def memory_json(self) -> bytes:
        """The MemoryStatus as compact JSON."""
        if self._memory_json is None:
            self._memory_json = _dumps(asdict(self.memory))
        return self._memory_json

    def process_list_json(self) -> bytes:
        """The processes as a compact JSON array.

        Raises ValueError if the sample was taken without processes.
        """
        if self._process_list_json is None:
            self._process_list_json = _dumps([_public(p) for p in self._require_processes()])
        return self._process_list_json

    def process(self, pid: int) -> ProcessInfo | None:
        """The process with this pid, or None if the sample did not see it.

        Raises ValueError if the sample was taken without processes.
        """
        if self._index is None:
            self._index = {p.pid: p for p in self._require_processes()}
        return self._index.get(pid)

    def keys(self) -> frozenset[tuple[int, float]]:
        """(pid, create_time) of every process: diff two samples for launches and exits.

        Raises ValueError if the sample was taken without processes.
        """
        if self._keys is None:
            self._keys = frozenset((p.pid, p.create_time) for p in self._require_processes())
        return self._keys

    def temperature_json(self) -> bytes:
        """sensors.read_temperature(), read on first call.

        Raises OSError if the OS fails while the sensors are read.
        """
        if self._temperature_json is None:
            self._temperature_json = sensors.read_temperature()
        return self._temperature_json

    def battery_json(self) -> bytes:
        """sensors.read_battery(), read on first call (a few sysfs files)."""
        if self._battery_json is None:
            self._battery_json = sensors.read_battery()
        return self._battery_json

    def gpu_json(self) -> bytes:
        """sensors.read_gpu_status(), read on first call (may run nvidia-smi)."""
        if self._gpu_json is None:
            self._gpu_json = sensors.read_gpu_status()
        return self._gpu_json

    def _require_processes(self) -> tuple[ProcessInfo, ...]:
        if self.processes is None:
            raise ValueError("this sample was taken without processes (processes=False)")
        return self.processes


def _public(p: ProcessInfo) -> dict[str, object]:
    # What a plugin sees of a process: uid and create_time stay in the host.
    return {
        "pid": p.pid,
        "ppid": p.ppid,
        "name": p.name,
        "memory_bytes": p.memory_bytes,
        "cpu_percent": p.cpu_percent,
        "nice": p.nice,
    }


# "uids" does not exist on Windows: asking for it is a ValueError there.
_ATTRS = ("ppid", "name", "memory_info", "cpu_percent", "nice", "create_time") + (
    () if sys.platform == "win32" else ("uids",)
)


MIN_CPU_WINDOW_S = 0.1


class Sampler:
    """Takes SystemSamples; keeps what per-process CPU figures are measured from.

    The Sampler keeps its own table of psutil.Process objects rather than
    psutil.process_iter's module-wide one, for two reasons: a CPU figure is
    a delta since the previous reading *on that object*, and anyone else in
    the host calling process_iter would move that reading; and process_iter
    reuses its cached object when the OS hands a pid to a new process, so
    the new process would keep the old one's create_time and be missed by
    the launch/exit diff. Here each pid is re-identified by (pid, creation
    time) on every sample, at the cost of one extra read per process.
    """

    def __init__(self) -> None:
        self._known: dict[int, psutil.Process] = {}
        # The first system-wide reading is against process start; prime it
        # so the first sample covers the time since this constructor.
        psutil.cpu_percent(interval=None)
        self._cpu_at = time.monotonic()
        self._cpu: float | None = None

    def _cpu_percent(self) -> float:
        """System-wide CPU over a window of at least MIN_CPU_WINDOW_S.

        CPU times tick in 10 ms steps, so a window of a few ms reads as 0% or
        100%. Samples closer together than the window share the last figure;
        the very first one waits out the rest of the window, once.
        """
        elapsed = time.monotonic() - self._cpu_at
        if self._cpu is None and elapsed < MIN_CPU_WINDOW_S:
            time.sleep(MIN_CPU_WINDOW_S - elapsed)
        elif self._cpu is not None and elapsed < MIN_CPU_WINDOW_S:
            return self._cpu
        self._cpu = psutil.cpu_percent(interval=None)
        self._cpu_at = time.monotonic()
        return self._cpu

    def sample(self, *, processes: bool) -> SystemSample:
        """Read the machine now; with processes=False, skip the process table.

        Raises OSError if the OS fails to report memory figures.
        """
        monotonic, wall_time = time.monotonic(), time.time()
        memory = _read_memory()
        cpu_percent = self._cpu_percent()
        table = self._processes() if processes else None
        return SystemSample(monotonic, wall_time, memory, cpu_percent, table)

    def _processes(self) -> tuple[ProcessInfo, ...]:
        known: dict[int, psutil.Process] = {}
        infos: list[ProcessInfo] = []
        for pid in psutil.pids():
            proc = self._identify(pid)
            info = None if proc is None else _read_process(proc)
            if proc is not None and info is not None:
                known[pid] = proc
                infos.append(info)
        # Exited processes drop out here, so the table never outgrows the machine.
        self._known = known
        return tuple(infos)

    def _identify(self, pid: int) -> psutil.Process | None:
        """Last sample's object for `pid` if it is still the same process, else a new one."""
        try:
            current = psutil.Process(pid)
        except psutil.NoSuchProcess:  # exited since pids()
            return None
        previous = self._known.get(pid)
        # psutil compares Process objects by (pid, creation time).
        return previous if previous is not None and previous == current else current


def _read_process(proc: psutil.Process) -> ProcessInfo | None:
    """The process's figures, or None if it has gone or cannot be identified."""
    try:
        # as_dict reads under oneshot() and puts None in place of a field
        # the OS refuses (AccessDenied, ZombieProcess).
        info = proc.as_dict(_ATTRS, ad_value=None)
    except psutil.NoSuchProcess:
        return None
    ppid, name, create_time = info["ppid"], info["name"], info["create_time"]
    # Without these a process cannot be named to a plugin or told apart
    # from a later one with its pid.
    if ppid is None or name is None or create_time is None:
        return None
    memory, uids, nice = info["memory_info"], info.get("uids"), info["nice"]
    return ProcessInfo(
        pid=proc.pid,
        ppid=ppid,
        name=_valid_utf8(name),
        uid=None if uids is None else uids.real,
        memory_bytes=None if memory is None else memory.rss,
        cpu_percent=info["cpu_percent"],
        nice=None if nice is None else int(nice),  # Windows: a priority-class enum
        create_time=create_time,
    )


def _valid_utf8(name: str) -> str:
    # POSIX names are bytes; psutil keeps undecodable ones as lone surrogates,
    # which JSON encoders escape into text strict parsers (serde_json) refuse.
    if name.isascii():
        return name
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate outside the escape range (Windows)
        raw = name.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def _read_memory() -> MemoryStatus:
    virtual = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return MemoryStatus(
        total_bytes=virtual.total,
        available_bytes=virtual.available,
        used_bytes=virtual.used,
        percent=virtual.percent,
        swap_total_bytes=swap.total,
        swap_used_bytes=swap.used,
    )
