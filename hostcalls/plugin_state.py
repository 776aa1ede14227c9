"""One plugin's persistent state: its config overlay and its metrics.

Each plugin gets its own directory and one PluginState over it, so a plugin
can only ever see and change its own namespace. Two files live there::

    config.json   {"version": 1, "overlay": {key: value}}
    metrics.json  {"version": 1, "metrics": {name: {...}}}

Config is layered: the base comes from the user's ruvector.toml and is never
written here; values the plugin sets go to the overlay, which wins.

Metrics keep, per name, the last series_len points and an hour-of-day
profile: a running count and mean for each local hour 0..23. ABI v1's
"learned pattern" (get_learned_pattern) is that profile: 24 means, null for
hours with no data yet. It is what a plugin needs to act ahead of a daily
rhythm (memory pressure every morning at 9) without keeping history itself.

Calls only change memory and mark it dirty; flush() writes the dirty files
atomically, once per executor tick and at shutdown, so a plugin reporting a
metric per tick does not cost a disk write per call. A file that cannot be
parsed is moved aside to <name>.corrupt and the state starts fresh; the
reason is kept in `warnings`. Not thread-safe: one executor thread owns it.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from hostcalls.abi import Status
from ruvector.atomic import atomic_write
from ruvector.errors import HostFault

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
MAX_METRIC_MAGNITUDE = 1e300
HOURS = 24
MAX_NAME_BYTES = 256  # a config key or metric name

_T = TypeVar("_T")


class CorruptState(ValueError):
    """A state file's content does not have the expected shape."""


class MetricSummary(TypedDict):
    last: float
    count: int
    mean: float


@dataclass
class _Running:
    """A count and a running mean (Welford's update: no sum to overflow)."""

    count: int = 0
    mean: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.mean += (value - self.mean) / self.count


@dataclass
class _Metric:
    series: deque[tuple[float, float]]  # (unix time, value), oldest first
    overall: _Running = field(default_factory=_Running)
    hours: list[_Running] = field(default_factory=lambda: [_Running() for _ in range(HOURS)])
    last: float = 0.0

    def add(self, value: float, now: float) -> None:
        self.series.append((now, value))
        self.overall.add(value)
        self.hours[time.localtime(now).tm_hour].add(value)
        self.last = value


class PluginState:
    """The config overlay and metrics of one plugin, kept in `directory`."""

    def __init__(
        self,
        directory: Path,
        base_config: Mapping[str, object],
        *,
        max_keys: int = 256,
        max_value_bytes: int = 65536,
        max_config_bytes: int = 1 << 20,  # all keys and values together
        max_metrics: int = 64,
        series_len: int = 1440,  # points per metric: a day at one a minute
    ) -> None:
        """Load what a previous run flushed; never raises for a bad file."""
        self.directory = directory
        self.warnings: list[str] = []
        self._base = base_config
        self._max_keys = max_keys
        self._max_value_bytes = max_value_bytes
        self._max_config_bytes = max_config_bytes
        self._max_metrics = max_metrics
        self._series_len = series_len
        self._overlay: dict[str, str] = self._load(CONFIG_FILE, _overlay_from, {})
        self._overlay_bytes = sum(_entry_bytes(k, v) for k, v in self._overlay.items())
        self._metrics: dict[str, _Metric] = self._load(METRICS_FILE, self._metrics_from, {})
        self._config_dirty = False
        self._metrics_dirty = False

    # -- config --------------------------------------------------------------

    def get_config(self, key: str) -> str | None:
        """The overlay's value, else the base's (non-strings as compact JSON)."""
        if key in self._overlay:
            return self._overlay[key]
        if key not in self._base:
            return None
        value = self._base[key]
        return value if isinstance(value, str) else _compact_json(value)

    def set_config(self, key: str, value: str) -> Status:
        """Set a key in the overlay.

        Returns OK, INVALID_ARGUMENT (empty key) or TOO_LARGE (key over
        MAX_NAME_BYTES, value over max_value_bytes, a new key past max_keys,
        or the whole overlay past max_config_bytes: it is rewritten on every
        tick that changes it, so its size is bounded as a whole).
        """
        status = _check_name(key)
        if status is not Status.OK:
            return status
        if len(value.encode("utf-8", "surrogatepass")) > self._max_value_bytes:
            return Status.TOO_LARGE
        if key not in self._overlay and len(self._overlay) >= self._max_keys:
            return Status.TOO_LARGE
        old = _entry_bytes(key, self._overlay[key]) if key in self._overlay else 0
        total = self._overlay_bytes - old + _entry_bytes(key, value)
        if total > self._max_config_bytes:
            return Status.TOO_LARGE
        if self._overlay.get(key) != value:
            self._overlay[key] = value
            self._overlay_bytes = total
            self._config_dirty = True
        return Status.OK

    # -- metrics -------------------------------------------------------------

    def record_metric(self, name: str, value: float, now: float) -> Status:
        """Add one point at unix time `now`.

        Returns OK, INVALID_ARGUMENT (empty name, value not finite or over
        MAX_METRIC_MAGNITUDE) or TOO_LARGE (name over MAX_NAME_BYTES, or a
        new name past max_metrics).
        """
        status = _check_name(name)
        if status is not Status.OK:
            return status
        # Bounded so running means cannot overflow to inf or NaN (1e308 then
        # -1e308 would), which would then be stored and served for good.
        if not math.isfinite(value) or abs(value) > MAX_METRIC_MAGNITUDE:
            return Status.INVALID_ARGUMENT
        metric = self._metrics.get(name)
        if metric is None:
            if len(self._metrics) >= self._max_metrics:
                return Status.TOO_LARGE
            metric = self._metrics[name] = _Metric(deque(maxlen=self._series_len))
        metric.add(float(value), now)
        self._metrics_dirty = True
        return Status.OK

    def learned_pattern(self, name: str) -> list[float | None] | None:
        """Mean per local hour 0..23 (None: no data that hour); None if never reported."""
        metric = self._metrics.get(name)
        if metric is None:
            return None
        return [h.mean if h.count else None for h in metric.hours]

    def series(self, name: str) -> list[tuple[float, float]]:
        """The retained (unix time, value) points of a metric, oldest first."""
        metric = self._metrics.get(name)
        return [] if metric is None else list(metric.series)

    def metrics_snapshot(self) -> dict[str, MetricSummary]:
        """Last value, count and mean of every metric, for display."""
        return {
            name: MetricSummary(last=m.last, count=m.overall.count, mean=m.overall.mean)
            for name, m in sorted(self._metrics.items())
        }

    # -- persistence ---------------------------------------------------------

    @property
    def config_dirty(self) -> bool:
        """The config overlay changed since the last flush."""
        return self._config_dirty

    def flush(self, *, metrics: bool = True) -> None:
        """Write the files whose content changed since the last flush.

        `metrics=False` saves only the config: the executor writes the
        (larger) metrics file less often than every tick.

        Raises HostFault if the OS refuses a write; that part stays dirty, so
        the next flush tries again.
        """
        if self._config_dirty:
            self._write(CONFIG_FILE, {"version": FORMAT_VERSION, "overlay": self._overlay})
            self._config_dirty = False
        if metrics and self._metrics_dirty:
            metrics_data = {name: _metric_to(m) for name, m in self._metrics.items()}
            self._write(METRICS_FILE, {"version": FORMAT_VERSION, "metrics": metrics_data})
            self._metrics_dirty = False

    def _write(self, name: str, doc: Mapping[str, object]) -> None:
        data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            atomic_write(self.directory / name, data, mode=0o600)
        except OSError as exc:
            raise HostFault(f"cannot write plugin state {self.directory / name}: {exc}") from exc

    def _load(self, name: str, convert: Callable[[dict[str, Any]], _T], empty: _T) -> _T:
        """Read and convert one file; on any failure, warn and return `empty`."""
        path = self.directory / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return empty
        except OSError as exc:
            self.warnings.append(f"{path}: unreadable, starting empty: {exc}")
            return empty
        try:
            return convert(_versioned(raw))
        except (CorruptState, ValueError, RecursionError) as exc:
            self.warnings.append(f"{path}: corrupt ({exc}), moved to {name}.corrupt")
            self._move_aside(path)
            return empty

    def _move_aside(self, path: Path) -> None:
        try:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        except OSError as exc:
            self.warnings.append(f"{path}: could not move aside: {exc}")

    def _metrics_from(self, doc: dict[str, Any]) -> dict[str, _Metric]:
        metrics = doc.get("metrics")
        if not isinstance(metrics, dict):
            raise CorruptState("'metrics' is not an object")
        return {name: self._metric_from(name, m) for name, m in metrics.items()}

    def _metric_from(self, name: str, doc: object) -> _Metric:
        if not isinstance(doc, dict):
            raise CorruptState(f"metric '{name}' is not an object")
        try:
            series = deque(((float(t), float(v)) for t, v in doc["series"]), self._series_len)
            hours = [_Running(int(c), float(m)) for c, m in doc["hours"]]
            metric = _Metric(series, _Running(int(doc["count"]), float(doc["mean"])), hours)
            metric.last = float(doc["last"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptState(f"metric '{name}' is malformed") from exc
        if len(hours) != HOURS:
            raise CorruptState(f"metric '{name}' does not have {HOURS} hours")
        return metric


def _check_name(name: str) -> Status:
    if not name:
        return Status.INVALID_ARGUMENT
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return Status.TOO_LARGE
    return Status.OK


def _versioned(raw: bytes) -> dict[str, Any]:
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
        raise CorruptState(f"not a version {FORMAT_VERSION} state file")
    return doc


def _overlay_from(doc: dict[str, Any]) -> dict[str, str]:
    overlay = doc.get("overlay")
    if not isinstance(overlay, dict) or not all(isinstance(v, str) for v in overlay.values()):
        raise CorruptState("'overlay' is not an object of strings")
    return overlay


def _metric_to(metric: _Metric) -> dict[str, object]:
    return {
        "series": list(metric.series),
        "count": metric.overall.count,
        "mean": metric.overall.mean,
        "last": metric.last,
        "hours": [(h.count, h.mean) for h in metric.hours],
    }


def _compact_json(value: object) -> str:
    # TOML values: tables (tomlkit's are dicts), arrays, numbers, booleans
    # and dates. A non-finite float comes out as JSON's Infinity/NaN
    # extension, which is how TOML's inf/nan has to travel.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"base config value of type {type(value).__name__} is not TOML")


def _entry_bytes(key: str, value: str) -> int:
    return len(key.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass"))
