"""PluginState on real directories: persistence, precedence, caps, recovery."""

from __future__ import annotations

import datetime
import json
import math
import time
from pathlib import Path

import pytest
import tomlkit

from hostcalls.abi import Status
from hostcalls.plugin_state import MAX_NAME_BYTES, PluginState
from ruvector.errors import HostFault

BASE: dict[str, object] = {
    "threshold": 80,
    "ratio": 0.5,
    "enabled": True,
    "name": "plain text",
    "targets": ["chrome", "code"],
    "limits": {"soft": 1, "hard": 2},
}


def at_local_hour(hour: int, day: int = 15) -> float:
    """A unix time that is `hour` o'clock local time, whatever the zone."""
    return time.mktime((2024, 1, day, hour, 30, 0, 0, 0, -1))


def test_base_values_as_text(tmp_path: Path) -> None:
    state = PluginState(tmp_path, BASE)
    assert state.get_config("name") == "plain text"
    assert state.get_config("threshold") == "80"
    assert state.get_config("ratio") == "0.5"
    assert state.get_config("enabled") == "true"
    assert state.get_config("targets") == '["chrome","code"]'
    assert state.get_config("limits") == '{"soft":1,"hard":2}'
    assert state.get_config("missing") is None


def test_base_from_tomlkit(tmp_path: Path) -> None:
    doc = tomlkit.parse('s = "x"\nn = 3\nd = 1979-05-27\n[t]\nk = [1, 2]\n')
    state = PluginState(tmp_path, doc)
    assert state.get_config("s") == "x"
    assert state.get_config("n") == "3"
    assert state.get_config("d") == '"1979-05-27"'
    assert state.get_config("t") == '{"k":[1,2]}'
    stamp = {"at": datetime.datetime(2024, 1, 2, 3, 4, 5)}
    assert PluginState(tmp_path, stamp).get_config("at") == '"2024-01-02T03:04:05"'


def test_overlay_wins_and_base_is_never_written(tmp_path: Path) -> None:
    base = dict(BASE)
    state = PluginState(tmp_path, base)
    assert state.set_config("threshold", "90") == Status.OK
    assert state.set_config("fresh", "new") == Status.OK
    assert state.get_config("threshold") == "90"
    assert state.get_config("fresh") == "new"
    state.flush()
    assert base == BASE
    on_disk = json.loads((tmp_path / "config.json").read_bytes())
    assert on_disk == {"version": 1, "overlay": {"threshold": "90", "fresh": "new"}}


def test_survives_restart(tmp_path: Path) -> None:
    state = PluginState(tmp_path, BASE)
    state.set_config("k", "v")
    state.record_metric("mem", 40.0, at_local_hour(9))
    state.record_metric("mem", 60.0, at_local_hour(9, day=16))
    state.flush()

    again = PluginState(tmp_path, BASE)
    assert again.warnings == []
    assert again.get_config("k") == "v"
    assert again.metrics_snapshot() == {"mem": {"last": 60.0, "count": 2, "mean": 50.0}}
    assert again.series("mem") == [(at_local_hour(9), 40.0), (at_local_hour(9, day=16), 60.0)]
    pattern = again.learned_pattern("mem")
    assert pattern is not None and pattern[9] == 50.0


def test_nothing_written_until_flush_and_only_dirty_parts(tmp_path: Path) -> None:
    state = PluginState(tmp_path / "p", {})
    state.set_config("k", "v")
    assert not (tmp_path / "p").exists()
    state.flush()
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["config.json"]
    before = (tmp_path / "p" / "config.json").stat().st_mtime_ns
    state.record_metric("m", 1.0, 0.0)
    state.set_config("k", "v")  # unchanged: not dirty
    state.flush()
    assert (tmp_path / "p" / "config.json").stat().st_mtime_ns == before
    assert (tmp_path / "p" / "metrics.json").exists()


def test_config_caps(tmp_path: Path) -> None:
    state = PluginState(tmp_path, {}, max_keys=2, max_value_bytes=4)
    assert state.set_config("a", "1234") == Status.OK
    assert state.set_config("a", "12345") == Status.TOO_LARGE
    assert state.set_config("b", "é" * 2) == Status.OK  # 4 bytes of UTF-8
    assert state.set_config("b", "é" * 3) == Status.TOO_LARGE
    assert state.set_config("c", "1") == Status.TOO_LARGE  # a third key
    assert state.set_config("a", "x") == Status.OK  # replacing is not adding
    assert state.set_config("", "x") == Status.INVALID_ARGUMENT
    assert state.get_config("a") == "x"


def test_name_caps(tmp_path: Path) -> None:
    state = PluginState(tmp_path, {}, max_keys=10)
    long_name = "k" * (MAX_NAME_BYTES + 1)
    assert state.set_config(long_name, "x") == Status.TOO_LARGE
    assert state.record_metric(long_name, 1.0, 0.0) == Status.TOO_LARGE
    assert state.record_metric("", 1.0, 0.0) == Status.INVALID_ARGUMENT


def test_metric_caps(tmp_path: Path) -> None:
    state = PluginState(tmp_path, {}, max_metrics=2, series_len=3)
    assert state.record_metric("a", 1.0, 0.0) == Status.OK
    assert state.record_metric("b", 1.0, 0.0) == Status.OK
    assert state.record_metric("c", 1.0, 0.0) == Status.TOO_LARGE
    for i in range(5):
        assert state.record_metric("a", float(i), float(i)) == Status.OK
    assert state.series("a") == [(2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]
    # the summary covers every point, not just the retained series
    expected = {"last": 4.0, "count": 6, "mean": 11.0 / 6}
    assert state.metrics_snapshot()["a"] == pytest.approx(expected)
    assert state.learned_pattern("c") is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_metric_refused(tmp_path: Path, bad: float) -> None:
    state = PluginState(tmp_path, {})
    assert state.record_metric("m", bad, 0.0) == Status.INVALID_ARGUMENT
    assert state.learned_pattern("m") is None
    assert state.metrics_snapshot() == {}


def test_hour_profile(tmp_path: Path) -> None:
    state = PluginState(tmp_path, {})
    for day, value in ((1, 10.0), (2, 20.0), (3, 60.0)):
        state.record_metric("cpu", value, at_local_hour(9, day))
    state.record_metric("cpu", 5.0, at_local_hour(23))
    state.record_metric("cpu", 7.0, at_local_hour(0))
    pattern = state.learned_pattern("cpu")
    assert pattern is not None and len(pattern) == 24
    assert pattern[9] == pytest.approx(30.0)
    assert pattern[23] == 5.0
    assert pattern[0] == 7.0
    assert [h for h, v in enumerate(pattern) if v is not None] == [0, 9, 23]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 2, "overlay": {}}',
        b'{"version": 1, "overlay": {"k": 1}}',
        b'{"version": 1, "overlay": []}',
    ],
)
def test_corrupt_config_moved_aside(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "config.json").write_bytes(content)
    state = PluginState(tmp_path, {"k": "base"})
    assert len(state.warnings) == 1 and "config.json" in state.warnings[0]
    assert state.get_config("k") == "base"
    assert (tmp_path / "config.json.corrupt").read_bytes() == content
    assert not (tmp_path / "config.json").exists()
    state.set_config("k", "new")
    state.flush()
    assert PluginState(tmp_path, {}).get_config("k") == "new"


@pytest.mark.parametrize(
    "metrics",
    [
        [],
        {"m": []},
        {"m": {"series": [], "count": 0, "mean": 0.0, "last": 0.0}},  # no hours
        {"m": {"series": [[1]], "count": 1, "mean": 1.0, "last": 1.0, "hours": []}},
        {"m": {"series": [], "count": 0, "mean": 0.0, "last": 0.0, "hours": [[0, 0.0]]}},
        {"m": {"series": [], "count": "x", "mean": 0.0, "last": 0.0, "hours": [[0, 0]] * 24}},
    ],
)
def test_corrupt_metrics_moved_aside(tmp_path: Path, metrics: object) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"version": 1, "metrics": metrics}))
    (tmp_path / "config.json").write_text(json.dumps({"version": 1, "overlay": {"k": "kept"}}))
    state = PluginState(tmp_path, {})
    assert len(state.warnings) == 1 and "metrics.json" in state.warnings[0]
    assert state.metrics_snapshot() == {}
    assert state.get_config("k") == "kept"  # the other file is unaffected
    assert (tmp_path / "metrics.json.corrupt").exists()


def test_flush_failure_is_a_host_fault_and_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    state = PluginState(blocker, {})
    assert state.warnings  # config.json under a file: unreadable, started empty
    state.set_config("k", "v")
    with pytest.raises(HostFault):
        state.flush()
    blocker.unlink()
    state.flush()  # still dirty: written now
    assert json.loads((blocker / "config.json").read_bytes())["overlay"] == {"k": "v"}


def test_plugins_do_not_see_each_other(tmp_path: Path) -> None:
    a = PluginState(tmp_path / "a", {"shared": "base-a"})
    b = PluginState(tmp_path / "b", {"shared": "base-b"})
    a.set_config("secret", "a-only")
    a.record_metric("m", 1.0, 0.0)
    a.flush()
    b.flush()
    assert b.get_config("secret") is None
    assert b.learned_pattern("m") is None
    reloaded_b = PluginState(tmp_path / "b", {})
    assert reloaded_b.get_config("secret") is None
    assert reloaded_b.metrics_snapshot() == {}
    assert PluginState(tmp_path / "a", {}).get_config("secret") == "a-only"


def test_the_overlay_is_capped_as_a_whole(tmp_path: Path) -> None:
    state = PluginState(tmp_path, {}, max_config_bytes=100)
    assert state.set_config("a", "x" * 60) is Status.OK
    assert state.set_config("b", "y" * 60) is Status.TOO_LARGE
    assert state.set_config("a", "z" * 90) is Status.OK  # replacing counts the new size only
    assert state.get_config("b") is None


def test_metric_values_that_could_overflow_a_mean_are_refused(tmp_path: Path) -> None:
    state = PluginState(tmp_path, {})
    assert state.record_metric("m", 1e300, time.time()) is Status.OK
    assert state.record_metric("m", -1e308, time.time()) is Status.INVALID_ARGUMENT
    assert state.record_metric("m", -1e300, time.time()) is Status.OK
    assert all(v is None or math.isfinite(v) for v in state.learned_pattern("m") or [])
