"""The fixed-tick executor: every plugin, every tick, within its limits.

Each tick samples the machine once (shared by every plugin), derives the
events (process launches and exits, memory-pressure and profile changes),
delivers them to the plugins that may see them, then calls on_tick. Each call
runs under its plugin's own fuel budget and deadline; a violation counts a
strike against that plugin only, and everything else keeps its schedule.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from executor import health as health_mod
from executor.engine import EngineSettings, EpochTicker, make_engine
from executor.loader import check_module
from executor.metrics import PluginMetrics
from executor.module_cache import ModuleCache
from executor.observer import Observer
from executor.sandbox import CallResult, Sandbox, resolve_api
from executor.spec import ExecutorSettings, PluginSpec
from executor.status_file import StatusWriter
from hostcalls import capabilities
from hostcalls.capabilities import CapabilityKind, Grant
from hostcalls.host import HostLimits, PluginHost
from hostcalls.plugin_state import PluginState
from hostcalls.processes import DEFAULT_PROTECTED_NAMES, ProtectionPolicy
from hostcalls.system import Sampler, SystemSample, memory_pressure_level
from ruvector.errors import HostFault, PluginRefused

log = logging.getLogger(__name__)

# The metrics file can reach megabytes; a crash loses at most this much of it.
METRICS_SAVE_INTERVAL_S = 60.0
WAIT_SLICE_S = 0.2  # longest sleep between looks at pending signals
STATUS_FILE = "executor.json"  # in the state dir, for `ruvector status`


@dataclass
class LoadedPlugin:
    spec: PluginSpec
    grant: Grant
    sandbox: Sandbox
    health: health_mod.Health
    state: PluginState
    metrics: PluginMetrics = field(default_factory=PluginMetrics)
    pressure_seen: int = 0  # the memory-pressure level this plugin last heard of
    profile_seen: str = ""
    metrics_saved_at: float = 0.0  # time.monotonic() of the last metrics flush
    # Fixed for the plugin's life and read on every tick, so kept as fields.
    sees_processes: bool = field(init=False)  # granted the process list: hears its events
    has_on_tick: bool = field(init=False)

    def __post_init__(self) -> None:
        self.sees_processes = CapabilityKind.READ_PROCESS_LIST in self.grant.kinds()
        self.has_on_tick = self.sandbox.has("on_tick")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def enabled(self) -> bool:
        return not self.health.disabled


class Executor:
    """Loads plugins and ticks them. Not thread-safe: drive it from one thread."""

    def __init__(
        self,
        settings: ExecutorSettings | None = None,
        observer: Observer | None = None,
        engine_settings: EngineSettings | None = None,
    ) -> None:
        self.settings = settings or ExecutorSettings()
        self.observer = observer or Observer()
        self.engine_settings = engine_settings or EngineSettings(
            fuel=self.settings.metering == "fuel",
            max_wasm_stack_bytes=self.settings.max_wasm_stack_bytes,
        )
        self.state_dir = Path(self.settings.state_dir)
        self.engine = make_engine(self.engine_settings)
        # A status note when the fast path had to give way (wasmtime version).
        self.api, self.api_note = resolve_api(self.settings.call_api)
        self.ticker = EpochTicker(self.engine)
        try:
            self.cache = ModuleCache(
                self.state_dir / "cache" / "modules",
                self.engine,
                self.engine_settings.fingerprint(),
            )
        except OSError as exc:
            self.ticker.close()
            raise HostFault(f"cannot use state directory {self.state_dir}: {exc}") from None
        self.policy = ProtectionPolicy(
            protected_names=(*DEFAULT_PROTECTED_NAMES, *self.settings.protected_processes),
            allow_other_users=self.settings.allow_other_users,
        )
        self.sampler = Sampler()
        self.plugins: dict[str, LoadedPlugin] = {}
        self.refused: dict[str, str] = {}  # plugin -> why it was not loaded
        self.profile = self.settings.profile
        self.tick_count = 0
        self.overruns = 0  # ticks skipped because the previous ones ran long
        self._sample: SystemSample | None = None
        self._previous: SystemSample | None = None
        self._status_at = -math.inf
        self.status_writer = StatusWriter(self.state_dir / STATUS_FILE)

    # -- loading -------------------------------------------------------------

    def load(self, spec: PluginSpec) -> LoadedPlugin:
        """Check, instantiate and initialise one plugin.

        Raises PluginRefused if the plugin may not run at all (bad hash,
        malformed wasm, imports beyond its grant, ABI mismatch...). A plugin
        that merely misbehaves in on_init is loaded and takes a strike.
        """
        if spec.name in self.plugins:
            raise PluginRefused(spec.name, "a plugin of this name is already loaded")
        grant = capabilities.grant(spec.declared, spec.approved)
        checked = check_module(spec, grant, self.cache)
        pdir = health_mod.plugin_dir(self.state_dir, spec.name)
        health = health_mod.Health.load(pdir / "health.json", spec.wasm_sha256, spec.limits.strikes)
        state = PluginState(pdir, spec.config)
        for warning in state.warnings:
            self.observer.log(spec.name, "warn", warning)
        host = PluginHost(
            spec.name,
            grant,
            state=state,
            policy=self.policy,
            sample=self.current_sample,
            sinks=self.observer,
            limits=_host_limits(spec),
            private_paths=(str(self.state_dir), *self.settings.private_paths),
        )
        box = Sandbox(
            spec,
            checked,
            self.engine,
            host,
            self.ticker,
            fuel=self.engine_settings.fuel,
            api=self.api,
        )
        plugin = LoadedPlugin(spec, grant, box, health, state, profile_seen=self.profile)
        if health.disabled:
            self.observer.disabled(spec.name, health.reason)
        else:
            # Sample now, outside the call: sampling time must not count
            # against on_init's deadline.
            self.current_sample(processes=plugin.sees_processes)
            try:
                self._start(plugin)
            except PluginRefused:  # nothing registered yet; free the store
                box.close()
                raise
        self.plugins[spec.name] = plugin
        return plugin

    def load_all(self, specs: Iterable[PluginSpec]) -> list[PluginRefused]:
        """Load each plugin; a refusal is reported and the others go on."""
        refusals = []
        for spec in specs:
            try:
                self.load(spec)
            except PluginRefused as exc:
                self.refuse(exc.plugin, exc.reason)
                refusals.append(exc)
            else:
                self.refused.pop(spec.name, None)
        return refusals

    def refuse(self, name: str, reason: str) -> None:
        """Record that plugin `name` was not loaded, and why: status shows it."""
        self.refused[name] = reason
        self.observer.refused(name, reason)

    def _start(self, plugin: LoadedPlugin) -> bool:
        """(Re)instantiate and run on_init; False if either broke a limit."""
        if self._settle(plugin, plugin.sandbox.start()) and plugin.sandbox.has("on_init"):
            return self._settle(plugin, plugin.sandbox.call("on_init"))
        return not plugin.sandbox.poisoned

    def unload(self, name: str) -> None:
        """Run on_cleanup, persist the plugin's state and drop it."""
        plugin = self.plugins.pop(name)
        if plugin.enabled and not plugin.sandbox.poisoned and plugin.sandbox.has("on_cleanup"):
            self._settle(plugin, plugin.sandbox.call("on_cleanup"))
        self._flush(plugin, final=True)
        plugin.sandbox.close()

    def shutdown(self) -> None:
        """Graceful stop: on_cleanup for every plugin, state saved, threads ended."""
        for name in list(self.plugins):
            self.unload(name)
        self.ticker.close()
        self.status_writer.close()

    def enable(self, name: str) -> None:
        """Re-enable a disabled plugin now (its record of strikes is cleared)."""
        plugin = self.plugins[name]
        plugin.health.enable()
        self._start(plugin)

    # -- ticking -------------------------------------------------------------

    def current_sample(self, processes: bool = False) -> SystemSample:
        """This tick's sample; taken now if there is none, or none with processes.

        A plugin loaded between ticks (or calling from on_init) may need the
        process table before the first tick has sampled it.
        """
        if self._sample is None or (processes and self._sample.processes is None):
            self._sample = self.sampler.sample(processes=processes or self._wants_processes())
        return self._sample

    def _wants_processes(self) -> bool:
        return any(p.sees_processes and p.enabled for p in self.plugins.values())

    def _prefetch(self, sample: SystemSample) -> None:
        """Read the slow parts of the sample now, outside any plugin's deadline.

        A GPU query may run nvidia-smi; it is read once per tick, and only if
        a plugin imports the host function that returns it.
        """
        imported = {
            n for p in self.plugins.values() if p.enabled for n in p.sandbox.checked.imports
        }
        try:
            if "get_gpu_status" in imported:
                sample.gpu_json()
            if "get_temperature" in imported:
                sample.temperature_json()
        except OSError as exc:  # the host call will report IO_ERROR itself
            log.warning("reading sensors failed: %s", exc)

    def switch_profile(self, profile: str) -> None:
        """Make `profile` active; plugins hear of it on the next tick."""
        self.profile = profile

    def tick(self) -> None:
        """One pass over every enabled plugin."""
        start = time.perf_counter()
        self._previous, self._sample = (
            self._sample,
            self.sampler.sample(processes=self._wants_processes()),
        )
        launched, exited = self._process_events()
        self._prefetch(self._sample)
        level = memory_pressure_level(
            self._sample.memory,
            self.settings.memory_high_percent,
            self.settings.memory_critical_percent,
        )
        # One active span for the whole pass, so calls don't wake the ticker.
        with self.ticker.running():
            for plugin in list(self.plugins.values()):
                if plugin.enabled:
                    self._tick_plugin(plugin, launched, exited, level)
        self.tick_count += 1
        self.observer.tick_done(self.tick_count, time.perf_counter() - start)

    def status(self) -> dict[str, object]:
        """What `ruvector status` shows of a running executor."""
        return {
            "pid": os.getpid(),
            "updated_at": time.time(),
            "ticks": self.tick_count,
            "overruns": self.overruns,
            "profile": self.profile,
            "call_api": self.api,
            "call_api_note": self.api_note,
            "plugins": {name: _plugin_status(p) for name, p in self.plugins.items()},
            "refused": dict(self.refused),
        }

    def publish_status(self, force: bool = False) -> None:
        """Hand status() to the status file's writer, at most every status_interval_s.

        run() calls it after each tick. It is reporting, not ticking: a tick
        (the plugins' turns) does not include it, and the file is written on
        a thread of its own (executor.status_file), so the disk never delays
        a tick.
        """
        now = time.monotonic()
        if not force and now - self._status_at < self.settings.status_interval_s:
            return
        self._status_at = now
        self.status_writer.submit(self.status())

    def _tick_plugin(
        self,
        plugin: LoadedPlugin,
        launched: list[tuple[str, int]],
        exited: list[tuple[str, int]],
        level: int,
    ) -> None:
        # Every plugin, every tick: the common case (no events, no change of
        # pressure or profile, a clean call) costs a few attribute reads.
        start = time.perf_counter()
        box = plugin.sandbox
        box.host.begin_tick()
        ok = not box.poisoned or self._restart(plugin)
        if ok and plugin.sees_processes and (launched or exited):
            ok = self._deliver_events(plugin, exited, launched, start)
        if ok and level != plugin.pressure_seen:
            plugin.pressure_seen = level
            ok = not box.has("on_memory_pressure") or self._settle(
                plugin, box.call("on_memory_pressure", level)
            )
        if ok and self.profile != plugin.profile_seen:
            plugin.profile_seen = self.profile
            ok = not box.has("on_profile_switch") or self._settle(
                plugin, box.call_with_text("on_profile_switch", self.profile)
            )
        if ok and plugin.has_on_tick:
            self._settle(plugin, box.call("on_tick", self.settings.tick_interval_ms))
        plugin.metrics.record_tick(time.perf_counter() - start)
        self._report_throttled(plugin)
        self._flush(plugin)

    def _report_throttled(self, plugin: LoadedPlugin) -> None:
        counts = plugin.sandbox.host.tick
        if not (counts.logs_dropped or counts.notifications_dropped):
            return
        plugin.metrics.logs_dropped += counts.logs_dropped
        for what, n in (
            ("log lines", counts.logs_dropped),
            ("notifications", counts.notifications_dropped),
        ):
            if n:
                self.observer.log(plugin.name, "warn", f"{n} {what} dropped this tick (rate limit)")

    def _restart(self, plugin: LoadedPlugin) -> bool:
        plugin.metrics.restarts += 1
        # A new instance knows nothing: tell it the pressure and profile again.
        plugin.pressure_seen, plugin.profile_seen = 0, self.settings.profile
        try:
            return self._start(plugin)
        except PluginRefused as exc:  # cannot happen for a module that loaded once
            self._disable(plugin, exc.reason)
            return False

    def _deliver_events(
        self,
        plugin: LoadedPlugin,
        exited: list[tuple[str, int]],
        launched: list[tuple[str, int]],
        start: float,
    ) -> bool:
        """Process exits then launches, within a count and a time budget.

        Each event is a call with its own limits, so without a budget for the
        lot a plugin could hold the tick for max_events x max_call_ms. Events
        past either budget are dropped (counted), never carried over.
        """
        box = plugin.sandbox
        events = [("on_process_exit", e) for e in exited if box.has("on_process_exit")]
        events += [("on_process_launch", e) for e in launched if box.has("on_process_launch")]
        until = start + plugin.spec.limits.max_call_ms / 1000
        cap = plugin.spec.limits.max_events_per_tick
        for i, (hook, (name, pid)) in enumerate(events):
            if i >= cap or time.perf_counter() > until:
                plugin.metrics.events_dropped += len(events) - i
                break
            if not self._settle(plugin, box.call_with_text(hook, name, pid)):
                return False
        return True

    def _process_events(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        prev, cur = self._previous, self._sample
        if prev is None or cur is None or prev.processes is None or cur.processes is None:
            return [], []
        new, old = cur.keys(), prev.keys()
        launched = [(p.name, p.pid) for p in cur.processes if (p.pid, p.create_time) not in old]
        exited = [(p.name, p.pid) for p in prev.processes if (p.pid, p.create_time) not in new]
        return launched, exited

    def _settle(self, plugin: LoadedPlugin, result: CallResult) -> bool:
        """Account for one call; True if it broke no limit."""
        plugin.metrics.record_call(result.fuel_used, result.host_calls)
        if result.violation is None and result.host_error is None:
            return True
        if result.host_error is not None:
            plugin.metrics.host_errors += 1
            note = "(not counted against the plugin)"
            self.observer.log(
                plugin.name, "error", f"host error in {result.hook} {note}: {result.host_error}"
            )
            return False
        assert result.violation is not None  # the clean case returned above
        plugin.metrics.violations += 1
        newly_disabled = plugin.health.record(result.violation)
        self.observer.violation(
            plugin.name, result.violation, plugin.health.count, plugin.health.strikes
        )
        if newly_disabled:
            self._disable(plugin, plugin.health.reason)
        return False

    def _disable(self, plugin: LoadedPlugin, reason: str) -> None:
        if not plugin.health.disabled:
            plugin.health.disabled, plugin.health.reason = True, reason
            plugin.health.try_save()
        plugin.sandbox.close()
        self.observer.disabled(plugin.name, reason)
        self.observer.notify(
            "ruvector", "Plugin disabled", f"'{plugin.name}' was disabled: {reason}"
        )

    def _flush(self, plugin: LoadedPlugin, final: bool = False) -> None:
        """Save what the plugin changed: config every tick, metrics now and then."""
        now = time.monotonic()
        metrics = final or now - plugin.metrics_saved_at >= METRICS_SAVE_INTERVAL_S
        if not (metrics or plugin.state.config_dirty):
            return
        try:
            plugin.state.flush(metrics=metrics)
            if metrics:
                plugin.metrics_saved_at = now
        except HostFault as exc:
            log.warning("cannot save state of plugin %s: %s", plugin.name, exc)

    def run(
        self,
        ticks: int | None = None,
        stop: threading.Event | None = None,
        before_tick: Callable[[], None] | None = None,
    ) -> None:
        """Tick every tick_interval_ms until `stop` is set or `ticks` ran.

        `before_tick` runs before each tick, on this thread: the place for a
        caller to apply changes (a profile switch) between ticks.

        The schedule is fixed: a tick that runs long does not shift the ones
        after it; ticks that could not start on time are skipped and counted
        in `overruns` rather than run in a burst.
        """
        stop = stop or threading.Event()
        interval = self.settings.tick_interval_ms / 1000
        next_at, done = time.monotonic(), 0
        while not stop.is_set() and (ticks is None or done < ticks):
            if before_tick is not None:
                before_tick()
            self.tick()
            self.publish_status()
            done += 1
            next_at += interval
            now = time.monotonic()
            if now > next_at:
                missed = math.ceil((now - next_at) / interval)
                self.overruns += missed
                next_at += missed * interval
            if ticks is None or done < ticks:
                _wait_until(next_at, stop)


def _wait_until(deadline: float, stop: threading.Event) -> None:
    """Sleep until time.monotonic() reaches `deadline` or `stop` is set.

    In slices: a signal the kernel hands to another thread only sets
    Python's flag, and the main thread runs the handler (which sets `stop`)
    when it next wakes. One long wait would sleep through a SIGTERM.
    """
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        stop.wait(min(remaining, WAIT_SLICE_S))


def _plugin_status(p: LoadedPlugin) -> dict[str, object]:
    m = p.metrics
    return {
        "version": p.spec.version,
        "enabled": p.enabled,
        "disabled_reason": p.health.reason,
        "ticks": m.ticks,
        "mean_tick_ms": round(m.mean_tick_s * 1000, 3),
        "max_tick_ms": round(m.max_tick_s * 1000, 3),
        "fuel_used": m.fuel_used,
        "host_calls": m.host_calls,
        "violations": m.violations,
        "host_errors": m.host_errors,
        "restarts": m.restarts,
    }


def _host_limits(spec: PluginSpec) -> HostLimits:
    lim = spec.limits
    return HostLimits(
        max_host_calls_per_call=lim.max_host_calls_per_call,
        max_log_lines_per_tick=lim.max_log_lines_per_tick,
        max_notifications_per_tick=lim.max_notifications_per_tick,
        max_http_response_bytes=lim.max_http_response_bytes,
        max_file_bytes=lim.max_file_bytes,
    )
