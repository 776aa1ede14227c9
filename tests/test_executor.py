"""The fixed-tick executor: events, lifecycle, schedule, metrics, cache."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from executor.executor import Executor
from executor.health import MAX_RECORDED, Health
from executor.sandbox import Violation, ViolationKind
from executor.spec import Api, ExecutorSettings, Limits
from hostcalls.abi import Status
from hostcalls.host import PluginHost
from ruvector.errors import HostFault
from tests.plugins import COUNTER, Strings, module, spec

# Logs each hook it receives: process names at info (launch) and warn (exit).
s = Strings()
_WATCHER_BODY = f"""
  (func (export "on_process_launch") (param $p i32) (param $l i32) (param $pid i32)
    (drop (call $log (i32.const 2) (local.get $p) (local.get $l))))
  (func (export "on_process_exit") (param $p i32) (param $l i32) (param $pid i32)
    (drop (call $log (i32.const 3) (local.get $p) (local.get $l))))
  (func (export "on_memory_pressure") (param $level i32)
    (drop (call $log (i32.const 4) {s("pressure")})))
  (func (export "on_profile_switch") (param $p i32) (param $l i32)
    (drop (call $log (i32.const 1) (local.get $p) (local.get $l))))
  (func (export "on_cleanup") (drop (call $log (i32.const 0) {s("cleanup")})))
"""
WATCHER = module(s.data() + _WATCHER_BODY, imports=["log"])


def levels(recorder, plugin: str, level: str) -> list[str]:
    return [m for p, lv, m in recorder.logs if p == plugin and lv == level]


def test_process_events_reach_only_plugins_that_may_see_processes(
    make_executor, recorder, tmp_path: Path
) -> None:
    ex = make_executor()
    ex.load(spec("watcher", WATCHER, caps=["ReadProcessList"]))
    ex.load(spec("blind", WATCHER))
    ex.tick()  # the first sample is the baseline: no launch events
    name = "rv-test-child"
    exe = tmp_path / name
    exe.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(exe), "30"])
    try:
        ex.tick()
        assert name in levels(recorder, "watcher", "info")
    finally:
        child.kill()
        child.wait()
    ex.tick()
    assert name in levels(recorder, "watcher", "warn")
    assert levels(recorder, "blind", "info") == levels(recorder, "blind", "warn") == []


def test_memory_pressure_fires_when_the_level_changes(make_executor, recorder) -> None:
    # thresholds below any real usage: the level is critical from the first tick
    ex = make_executor(memory_high_percent=0.001, memory_critical_percent=0.002)
    ex.load(spec("watcher", WATCHER))
    ex.tick()
    ex.tick()
    assert levels(recorder, "watcher", "error") == ["pressure"]  # once, not every tick


def test_profile_switch_and_cleanup(make_executor, recorder) -> None:
    ex = make_executor()
    ex.load(spec("watcher", WATCHER))
    ex.tick()
    ex.switch_profile("gaming")
    ex.tick()
    ex.tick()
    assert levels(recorder, "watcher", "debug") == ["gaming"]
    ex.shutdown()
    assert levels(recorder, "watcher", "trace") == ["cleanup"]


def test_metrics_per_plugin(make_executor) -> None:
    ex = make_executor()
    plugin = ex.load(spec("counter", COUNTER))
    for _ in range(3):
        ex.tick()
    m = plugin.metrics
    assert m.ticks == 3 and m.calls == 1 + 3  # instantiation, then three on_tick
    assert m.host_calls == 3 and m.violations == 0
    assert m.fuel_used > 0 and 0 < m.mean_tick_s <= m.max_tick_s


def test_fixed_schedule_and_stop(make_executor) -> None:
    ex: Executor = make_executor(tick_interval_ms=20)
    ex.load(spec("counter", COUNTER))
    stop = threading.Event()
    runner = threading.Thread(target=ex.run, kwargs={"stop": stop})
    runner.start()
    time.sleep(0.3)
    stop.set()
    runner.join(timeout=2)
    assert not runner.is_alive()
    # roughly 15 ticks in 300 ms; generous bounds for a noisy machine
    assert 5 <= ex.tick_count + ex.overruns <= 20


def test_run_a_number_of_ticks(make_executor) -> None:
    ex = make_executor(tick_interval_ms=10)
    ex.load(spec("counter", COUNTER))
    ex.run(ticks=3)
    assert ex.tick_count == 3


def test_compiled_modules_are_cached_and_tampered_entries_discarded(
    make_executor, tmp_path: Path
) -> None:
    first = make_executor()
    first.load(spec("counter", COUNTER))
    assert (first.cache.hits, first.cache.misses) == (0, 1)
    first.shutdown()

    second = make_executor()
    second.load(spec("counter", COUNTER))
    assert (second.cache.hits, second.cache.misses) == (1, 0)
    second.shutdown()

    for entry in (tmp_path / "state" / "cache" / "modules").glob("*.cwasm"):
        data = bytearray(entry.read_bytes())
        data[-1] ^= 0xFF
        entry.write_bytes(bytes(data))
    third = make_executor()
    third.load(spec("counter", COUNTER))
    assert (third.cache.hits, third.cache.misses) == (0, 1)
    third.tick()
    assert third.plugins["counter"].state.metrics_snapshot()["ticks"]["last"] == 1


def test_process_list_is_there_for_on_init_before_the_first_tick(make_executor, recorder) -> None:
    t = Strings()
    body = f"""(func (export "on_init")
        (drop (call $report_metric {t("list_bytes")}
          (f64.convert_i64_u (i64.and (call $get_process_list) (i64.const 0xffffffff))))))"""
    ex = make_executor()
    ex.load(
        spec(
            "early",
            module(t.data() + body, ["get_process_list", "report_metric"]),
            caps=["ReadProcessList"],
        )
    )
    assert recorder.logs == []  # no host error
    assert ex.plugins["early"].state.metrics_snapshot()["list_bytes"]["last"] > 100


def test_process_events_are_capped_per_tick(make_executor, recorder, children) -> None:
    ex = make_executor()
    plugin = ex.load(
        spec("watcher", WATCHER, caps=["ReadProcessList"], limits=Limits(max_events_per_tick=1))
    )
    ex.tick()
    for _ in range(3):
        children.sleeper()
    ex.tick()
    assert len(levels(recorder, "watcher", "info")) == 1
    assert plugin.metrics.events_dropped >= 2


def test_a_host_bug_is_reported_and_not_counted_against_the_plugin(
    make_executor, recorder, monkeypatch
) -> None:
    t = Strings()
    body = f"""(func (export "on_tick") (param i32)
        (drop (call $report_metric {t("cpu")} (call $get_cpu_usage)))
        (drop (call $log (i32.const 2) {t("ticked")})))"""

    def broken_sample(processes: bool = False) -> object:
        raise RuntimeError("sampler broke")

    # log escapes the host-function guard; it is bound when the plugin links
    monkeypatch.setattr(PluginHost, "log", lambda *a: 1 / 0)
    ex = make_executor()
    wasm = module(t.data() + body, ["get_cpu_usage", "report_metric", "log"])
    plugin = ex.load(spec("p", wasm, caps=["ReadSystemInfo"]))
    monkeypatch.setattr(plugin.sandbox.host, "_sample", broken_sample)
    ex.tick()
    assert recorder.violations == []
    # the f64 function answered with the HOST_ERROR status as a float
    assert plugin.state.metrics_snapshot()["cpu"]["last"] == Status.HOST_ERROR
    assert any(
        "host error in on_tick (not counted against the plugin): ZeroDivisionError" in m
        for m in recorder.messages("p")
    )
    monkeypatch.undo()
    ex.tick()  # the instance is rebuilt and runs again
    assert plugin.enabled and plugin.metrics.restarts == 1 and "ticked" in recorder.messages("p")


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match=r"max_memory_mb must be 1\.\.2047"):
        Limits(max_memory_mb=4096)
    with pytest.raises(ValueError, match="fuel_per_call"):
        Limits(fuel_per_call=0)


def test_an_unusable_state_dir_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(HostFault, match=f"cannot use state directory {blocker}"):
        Executor(ExecutorSettings(state_dir=str(blocker)))


@pytest.mark.parametrize(
    "content", ["[]", '{"sha256": 5, "violations": 5}', "not json", '{"disabled": "yes"}']
)
def test_a_damaged_health_file_is_ignored(make_executor, tmp_path: Path, content: str) -> None:
    health = tmp_path / "state" / "plugins" / "counter" / "health.json"
    health.parent.mkdir(parents=True)
    health.write_text(content)
    ex = make_executor()
    assert ex.load(spec("counter", COUNTER)).enabled


def test_strikes_are_counted_beyond_the_violations_kept(tmp_path: Path) -> None:
    h = Health(tmp_path / "health.json", "sha", strikes=25)
    v = Violation(ViolationKind.TRAP, "on_tick", "x")
    assert [h.record(v) for _ in range(25)][-2:] == [False, True]
    assert len(h.violations) == MAX_RECORDED and h.count == 25
    assert Health.load(tmp_path / "health.json", "sha", 25).count == 25


def test_log_throttle_spans_every_call_of_the_tick(make_executor, recorder, children) -> None:
    ex = make_executor()
    limits = Limits(max_log_lines_per_tick=2)
    plugin = ex.load(spec("watcher", WATCHER, caps=["ReadProcessList"], limits=limits))
    ex.tick()
    for _ in range(5):
        children.sleeper()
    ex.tick()
    assert len(levels(recorder, "watcher", "info")) == 2  # of at least 5 launch events
    assert any(
        m.endswith("log lines dropped this tick (rate limit)") for m in recorder.messages("watcher")
    )
    assert plugin.metrics.logs_dropped >= 3


def test_a_full_disk_does_not_stop_the_executor(make_executor, recorder, monkeypatch) -> None:
    import errno

    from executor import health

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(health, "atomic_write", full)
    ex = make_executor()
    ex.load(spec("good", COUNTER))
    plugin = ex.load(
        spec("spin", module('(func (export "on_tick") (param i32) (loop $l (br $l)))'))
    )
    for _ in range(4):
        ex.tick()
    assert not plugin.enabled  # disabled in memory, though not on disk
    assert ex.plugins["good"].state.metrics_snapshot()["ticks"]["last"] == 4


def test_epoch_only_metering_stops_a_loop_by_its_deadline(
    tmp_path: Path, recorder, call_api: Api
) -> None:
    """metering = "epochs": no fuel budget, so an endless loop meets the deadline."""
    loop = module('(func (export "on_tick") (param i32) (loop $l (br $l)))')
    for metering, kind in (("fuel", "FUEL"), ("epochs", "DEADLINE")):
        settings = ExecutorSettings(
            state_dir=str(tmp_path / metering), metering=metering, call_api=call_api
        )
        ex = Executor(settings, recorder)
        try:
            assert ex.engine_settings.fuel is (metering == "fuel")
            ex.load(spec(metering, loop, limits=Limits(max_call_ms=50)))
            ex.tick()
            assert recorder.kinds(metering) == [kind]
        finally:
            ex.shutdown()


# on_tick(n): n iterations of a little arithmetic, then return.
BUSY = module(
    """
  (global $sink (mut i32) (i32.const 0))
  (func (export "on_tick") (param $n i32) (local $x i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245)) (i32.const 12345)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (global.set $sink (local.get $x)))
"""
)


def test_a_deadline_kept_from_an_earlier_call_is_never_short(make_executor, recorder) -> None:
    """Calls within one epoch keep the deadline armed by the first (no C call):
    a long call after short ones must still get all of max_tick_ms, and a
    spinning one must be stopped no sooner than that."""
    ex = make_executor()
    limits = Limits(fuel_per_call=10**13, max_call_ms=50)
    box = ex.load(spec("busy", BUSY, limits=limits)).sandbox
    probe = box.call("on_tick", 2_000_000)
    per_iteration = probe.elapsed_s / 2_000_000
    long_n = int(0.020 / per_iteration)  # 20 ms of the 50: room for a busy machine
    with ex.ticker.running():
        for _ in range(15):
            for n in (1, 1, long_n):  # short calls arm it; the long one keeps it
                result = box.call("on_tick", n)
                assert result.violation is None, (result, n)
    with ex.ticker.running():
        box.call("on_tick", 1)  # arms the deadline
        result = box.call("on_tick", 2**31 - 1)  # far longer than 50 ms: stopped
    assert result.violation is not None and result.violation.kind == ViolationKind.DEADLINE
    assert 0.050 <= result.elapsed_s < 0.5, result.elapsed_s
