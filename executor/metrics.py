"""Per-plugin runtime metrics, kept in memory for display and the bench."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PluginMetrics:
    ticks: int = 0
    calls: int = 0
    total_tick_s: float = 0.0
    max_tick_s: float = 0.0
    fuel_used: int = 0
    host_calls: int = 0
    logs_dropped: int = 0
    events_dropped: int = 0
    violations: int = 0
    host_errors: int = 0  # calls a fault of the host aborted: not the plugin's strikes
    restarts: int = 0

    @property
    def mean_tick_s(self) -> float:
        return self.total_tick_s / self.ticks if self.ticks else 0.0

    def record_call(self, fuel: int, host_calls: int) -> None:
        self.calls += 1
        self.fuel_used += fuel
        self.host_calls += host_calls

    def record_tick(self, elapsed_s: float) -> None:
        self.ticks += 1
        self.total_tick_s += elapsed_s
        self.max_tick_s = max(self.max_tick_s, elapsed_s)
