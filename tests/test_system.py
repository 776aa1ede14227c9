"""hostcalls.system and hostcalls.sensors against the real machine.

Children are real processes (`sleep`, a busy Python loop) started here and
killed in teardown; the GPU tests read a fake sysfs tree and a fake
nvidia-smi on PATH through the same functions the host calls.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest

from hostcalls.sensors import read_gpu_status, read_temperature
from hostcalls.system import (
    MemoryStatus,
    PressureLevel,
    Sampler,
    SystemSample,
    memory_pressure_level,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _meminfo() -> dict[str, int]:
    figures = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, rest = line.split(":", 1)
        figures[key] = int(rest.split()[0]) * 1024
    return figures


@linux_only
def test_memory_agrees_with_proc_meminfo():
    memory = Sampler().sample(processes=False).memory
    meminfo = _meminfo()
    assert memory.total_bytes == meminfo["MemTotal"]
    assert memory.swap_total_bytes == meminfo["SwapTotal"]
    # Available moves between the two reads; 5% of RAM is far above the noise.
    assert abs(memory.available_bytes - meminfo["MemAvailable"]) < memory.total_bytes * 0.05
    assert memory.used_bytes == memory.total_bytes - memory.available_bytes
    assert 0.0 < memory.percent < 100.0
    assert 0 <= memory.swap_used_bytes <= memory.swap_total_bytes


def test_memory_json_is_compact_valid_and_cached():
    sample = Sampler().sample(processes=False)
    first = sample.memory_json()
    assert first is sample.memory_json()
    assert b" " not in first
    assert json.loads(first) == {
        "total_bytes": sample.memory.total_bytes,
        "available_bytes": sample.memory.available_bytes,
        "used_bytes": sample.memory.used_bytes,
        "percent": sample.memory.percent,
        "swap_total_bytes": sample.memory.swap_total_bytes,
        "swap_used_bytes": sample.memory.swap_used_bytes,
    }


def test_sample_without_processes_refuses_process_queries():
    sample = Sampler().sample(processes=False)
    assert sample.processes is None
    for query in (sample.process_list_json, sample.keys, lambda: sample.process(1)):
        with pytest.raises(ValueError, match="without processes"):
            query()


def test_sample_times_are_now():
    before_wall, before_mono = time.time(), time.monotonic()
    sample = Sampler().sample(processes=False)
    assert before_wall <= sample.wall_time <= time.time()
    assert before_mono <= sample.monotonic <= time.monotonic()


def test_process_list_has_the_spawned_child(children):
    child = children.start("sleep", "60")
    sample = Sampler().sample(processes=True)
    info = sample.process(child.pid)
    assert info is not None
    assert (info.pid, info.ppid, info.name) == (child.pid, os.getpid(), "sleep")
    real = psutil.Process(child.pid)
    assert info.uid == real.uids().real
    assert info.nice == real.nice()
    assert info.create_time == real.create_time()
    assert info.memory_bytes is not None
    assert info.memory_bytes > 0
    assert abs(info.memory_bytes - real.memory_info().rss) < 1 << 20
    assert info.cpu_percent == 0.0  # first sight: nothing to measure from yet


def test_process_list_json_is_valid_cached_and_public_only(children):
    child = children.start("sleep", "60")
    sample = Sampler().sample(processes=True)
    encoded = sample.process_list_json()
    assert encoded is sample.process_list_json()
    rows = json.loads(encoded)
    assert len(rows) == len(sample.processes or ())
    assert all(
        set(row) == {"pid", "ppid", "name", "memory_bytes", "cpu_percent", "nice"} for row in rows
    )
    info = sample.process(child.pid)
    assert info is not None
    mine = [row for row in rows if row["pid"] == child.pid]
    assert mine == [
        {
            "pid": child.pid,
            "ppid": os.getpid(),
            "name": "sleep",
            "memory_bytes": info.memory_bytes,
            "cpu_percent": 0.0,
            "nice": 0,
        }
    ]


def test_every_derived_form_is_built_once():
    sample = Sampler().sample(processes=True)
    for method in (
        sample.memory_json,
        sample.process_list_json,
        sample.keys,
        sample.temperature_json,
        sample.gpu_json,
    ):
        assert method() is method()


def test_cpu_figures_measure_a_busy_child(children):
    sampler = Sampler()
    busy = children.start(sys.executable, "-c", "while True: pass")
    first = sampler.sample(processes=True)
    time.sleep(0.5)
    second = sampler.sample(processes=True)
    first_info, second_info = first.process(busy.pid), second.process(busy.pid)
    assert first_info is not None
    assert second_info is not None
    assert first_info.cpu_percent == 0.0
    # One core flat out is 100 on psutil's per-core scale; leave room for a
    # loaded CI machine.
    assert second_info.cpu_percent is not None
    assert second_info.cpu_percent > 50.0
    ncpu = psutil.cpu_count() or 1
    assert 100.0 / ncpu * 0.5 < second.cpu_percent <= 100.0


def test_keys_show_launch_and_exit(children):
    sampler = Sampler()
    before = sampler.sample(processes=True)
    child = children.start("sleep", "60")
    during = sampler.sample(processes=True)
    child.kill()
    child.wait(timeout=10)
    after = sampler.sample(processes=True)
    info = during.process(child.pid)
    assert info is not None
    key = (child.pid, info.create_time)
    assert key in during.keys() - before.keys()
    assert key in during.keys() - after.keys()
    assert after.process(child.pid) is None


@linux_only
@pytest.mark.skipif(os.geteuid() != 0, reason="steering pid allocation needs root")
def test_a_reused_pid_is_a_new_process(children):
    """A pid handed to a new process shows up as an exit and a launch."""
    sampler = Sampler()
    old = children.start("sleep", "60")
    first = sampler.sample(processes=True)
    old_info = first.process(old.pid)
    assert old_info is not None
    old.kill()
    old.wait(timeout=10)
    time.sleep(0.05)  # creation times have clock-tick (10 ms) resolution
    try:
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(old.pid - 1))
    except OSError as exc:
        pytest.skip(f"cannot steer pid allocation here: {exc}")
    new = children.start("sleep", "60")
    if new.pid != old.pid:
        pytest.skip("another process took the pid first")
    second = sampler.sample(processes=True)
    new_info = second.process(new.pid)
    assert new_info is not None
    assert new_info.create_time != old_info.create_time
    first_keys, second_keys = first.keys(), second.keys()
    assert (old.pid, old_info.create_time) not in second_keys
    assert (new.pid, new_info.create_time) in second_keys - first_keys


def test_processes_that_vanish_mid_sample_do_not_crash(children):
    # A shell forking short-lived children as fast as it can: some exit
    # between psutil.pids() and the read of their figures.
    children.start("sh", "-c", "while :; do /bin/true; done")
    sampler = Sampler()
    for _ in range(30):
        sample = sampler.sample(processes=True)
        json.loads(sample.process_list_json())


def test_an_unreaped_child_does_not_crash(children):
    zombie = children.start("true")
    deadline = time.monotonic() + 10
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sample = Sampler().sample(processes=True)
    json.loads(sample.process_list_json())


def test_a_process_gone_since_the_last_sample_drops_out(children):
    sampler = Sampler()
    child = children.start("sleep", "60")
    assert sampler.sample(processes=True).process(child.pid) is not None
    child.kill()
    child.wait(timeout=10)
    assert sampler.sample(processes=True).process(child.pid) is None


def _memory(percent: float) -> MemoryStatus:
    return MemoryStatus(100, 100 - int(percent), int(percent), percent, 0, 0)


@pytest.mark.parametrize(
    ("percent", "level"),
    [
        (0.0, PressureLevel.NORMAL),
        (84.9, PressureLevel.NORMAL),
        (85.0, PressureLevel.HIGH),
        (94.9, PressureLevel.HIGH),
        (95.0, PressureLevel.CRITICAL),
        (100.0, PressureLevel.CRITICAL),
    ],
)
def test_pressure_levels(percent, level):
    assert memory_pressure_level(_memory(percent)) == level
    assert int(level) in (0, 1, 2)


def test_pressure_levels_with_custom_thresholds():
    assert memory_pressure_level(_memory(60.0), 50.0, 70.0) == PressureLevel.HIGH
    assert memory_pressure_level(_memory(70.0), 50.0, 70.0) == PressureLevel.CRITICAL


@pytest.mark.parametrize(
    ("high", "critical"), [(95.0, 85.0), (90.0, 90.0), (-1.0, 50.0), (50.0, 101.0)]
)
def test_pressure_thresholds_are_validated(high, critical):
    with pytest.raises(ValueError, match="high < critical"):
        memory_pressure_level(_memory(50.0), high, critical)


def test_pressure_level_of_a_real_sample():
    sample = Sampler().sample(processes=False)
    assert memory_pressure_level(sample.memory) in tuple(PressureLevel)


def test_sample_built_by_hand_serves_the_same_forms():
    sample = SystemSample(1.0, 2.0, _memory(10.0), 3.0, ())
    assert sample.process_list_json() == b"[]"
    assert sample.keys() == frozenset()
    assert sample.process(1) is None


def test_temperature_is_valid_json_of_real_readings():
    document = json.loads(read_temperature())
    sensors = document["sensors"]
    reader = getattr(psutil, "sensors_temperatures", None)
    expected = 0 if reader is None else sum(len(v) for v in reader().values())
    assert len(sensors) <= expected  # entries without a reading are left out
    if expected == 0:
        assert sensors == []
    for entry in sensors:
        assert set(entry) == {"chip", "label", "celsius", "high", "critical"}
        assert isinstance(entry["celsius"], float)


def test_gpu_status_on_this_machine_is_valid_json():
    gpus = json.loads(read_gpu_status())["gpus"]
    assert isinstance(gpus, list)
    if not Path("/sys/class/drm").exists() and shutil.which("nvidia-smi") is None:
        assert gpus == []


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def no_nvidia_smi(monkeypatch, tmp_path):
    """PATH without nvidia-smi, so only the fake sysfs tree is read."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _fake_drm(root: Path) -> None:
    amd = root / "card1" / "device"
    _write(amd / "vendor", "0x1002\n")
    _write(amd / "device", "0x73bf\n")
    _write(amd / "product_name", "Radeon RX 6800\n")
    _write(amd / "gpu_busy_percent", "37\n")
    _write(amd / "mem_info_vram_used", "1048576\n")
    _write(amd / "mem_info_vram_total", "17163091968\n")
    _write(amd / "hwmon" / "hwmon4" / "temp1_input", "45000\n")
    _write(amd / "power" / "runtime_status", "active\n")
    (root / "card1-DP-1").mkdir()  # a connector, not a card
    (root / "renderD128").mkdir()  # a render node, not a card
    intel = root / "card0" / "device"
    _write(intel / "vendor", "0x8086\n")
    _write(intel / "device", "0x9a49\n")
    (root / "drivers" / "i915").mkdir(parents=True)
    (intel / "driver").symlink_to(root / "drivers" / "i915")
    sleeping = root / "card2" / "device"
    _write(sleeping / "vendor", "0x1002\n")
    _write(sleeping / "device", "0x7340\n")
    _write(sleeping / "gpu_busy_percent", "99\n")
    _write(sleeping / "power" / "runtime_status", "suspended\n")
    _write(root / "card3" / "device" / "uevent", "DRIVER=simple-framebuffer\n")


def test_gpu_sysfs_tree(tmp_path, no_nvidia_smi):
    _fake_drm(tmp_path / "drm")
    gpus = json.loads(read_gpu_status(tmp_path / "drm"))["gpus"]
    assert gpus == [
        {
            "index": 0,
            "name": "i915 8086:9a49",
            "vendor": "Intel",
            "utilization_percent": None,
            "memory_used_bytes": None,
            "memory_total_bytes": None,
            "temperature_celsius": None,
        },
        {
            "index": 1,
            "name": "Radeon RX 6800",
            "vendor": "AMD",
            "utilization_percent": 37.0,
            "memory_used_bytes": 1048576,
            "memory_total_bytes": 17163091968,
            "temperature_celsius": 45.0,
        },
        {
            # suspended: its figures are not read, so it is not woken
            "index": 2,
            "name": "PCI 1002:7340",
            "vendor": "AMD",
            "utilization_percent": None,
            "memory_used_bytes": None,
            "memory_total_bytes": None,
            "temperature_celsius": None,
        },
    ]


def test_gpu_without_drm_is_an_empty_list(tmp_path, no_nvidia_smi):
    assert read_gpu_status(tmp_path / "absent") == b'{"gpus":[]}'


def _fake_nvidia_smi(bin_dir: Path, script: str, monkeypatch) -> None:
    exe = bin_dir / "nvidia-smi"
    _write(exe, "#!/bin/sh\n" + script)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")


def test_gpu_from_nvidia_smi(tmp_path, monkeypatch):
    rows = "0, NVIDIA GeForce RTX 3080, 5, 1234, 10240, 45\\n1, Tesla T4, [N/A], 0, 15360, [N/A]\\n"
    _fake_nvidia_smi(tmp_path / "bin", f'printf "{rows}"\n', monkeypatch)
    drm = tmp_path / "drm"
    _write(drm / "card0" / "device" / "vendor", "0x10de\n")  # the same GPU, seen by DRM
    gpus = json.loads(read_gpu_status(drm))["gpus"]
    assert gpus == [
        {
            "index": 0,
            "name": "NVIDIA GeForce RTX 3080",
            "vendor": "NVIDIA",
            "utilization_percent": 5.0,
            "memory_used_bytes": 1234 * 1024 * 1024,
            "memory_total_bytes": 10240 * 1024 * 1024,
            "temperature_celsius": 45.0,
        },
        {
            "index": 1,
            "name": "Tesla T4",
            "vendor": "NVIDIA",
            "utilization_percent": None,
            "memory_used_bytes": 0,
            "memory_total_bytes": 15360 * 1024 * 1024,
            "temperature_celsius": None,
        },
    ]


def test_failing_nvidia_smi_is_skipped(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path / "bin", "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n", monkeypatch)
    drm = tmp_path / "drm"
    _write(drm / "card0" / "device" / "vendor", "0x10de\n")
    gpus = json.loads(read_gpu_status(drm))["gpus"]
    # nvidia-smi gave nothing, so the DRM card stays, with what DRM knows
    assert [(g["vendor"], g["utilization_percent"]) for g in gpus] == [("NVIDIA", None)]


def test_hanging_nvidia_smi_times_out(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path / "bin", "exec sleep 30\n", monkeypatch)
    started = time.monotonic()
    assert read_gpu_status(tmp_path / "absent") == b'{"gpus":[]}'
    assert time.monotonic() - started < 10
