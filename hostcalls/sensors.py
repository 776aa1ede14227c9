"""Temperatures and GPUs, read from the OS when a plugin asks.

Both readers return the compact UTF-8 JSON that get_temperature and
get_gpu_status hand to plugins::

    {"sensors":[{"chip":"k10temp","label":"Tctl","celsius":48.5,"high":null,"critical":null}]}
    {"gpus":[{"index":0,"name":"...","vendor":"AMD","utilization_percent":37.0,
              "memory_used_bytes":1048576,"memory_total_bytes":17163091968,
              "temperature_celsius":45.0}]}

Where the machine has nothing to report (a VM without sensors, no GPU) the
list is empty; a figure a device does not offer is null. Nothing here makes a
figure up.

GPUs come from two places: the kernel's DRM class in sysfs (Linux; figures
where the driver publishes them, as amdgpu does) and `nvidia-smi` when it is
on PATH. A GPU's "index" is its position in the list, not a driver number.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

DRM_ROOT = "/sys/class/drm"

# The DRM class also lists connectors (card0-DP-1) and render nodes (renderD128).
_CARD = re.compile(r"card(\d+)")
_VENDORS = {"0x1002": "AMD", "0x10de": "NVIDIA", "0x8086": "Intel"}
_NVIDIA_QUERY = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu"
_NVIDIA_TIMEOUT = 2.0  # seconds; nvidia-smi can hang while the driver wakes up
_MIB = 1024 * 1024


def _dumps(value: object) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON, and a plugin's parser
    # would reject the whole document; the readers below map them to null.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def read_temperature() -> bytes:
    """Every temperature sensor psutil can see, as compact JSON.

    Raises OSError if the OS fails while the sensors are read.
    """
    return _dumps({"sensors": _temperatures()})


class _Temperature(Protocol):
    """The fields of psutil's shwtemp that are used here."""

    @property
    def label(self) -> str: ...
    @property
    def current(self) -> float: ...
    @property
    def high(self) -> float | None: ...
    @property
    def critical(self) -> float | None: ...


def _temperatures() -> list[dict[str, object]]:
    # Absent on Windows and macOS: that is "no sensors", not an error.
    reader: Callable[[], Mapping[str, Sequence[_Temperature]]] | None = getattr(
        psutil, "sensors_temperatures", None
    )
    if reader is None:
        return []
    chips = reader()
    readings: list[dict[str, object]] = []
    for chip, temps in sorted(chips.items()):
        for temp in temps:
            celsius = _finite(temp.current)
            if celsius is None:  # a sensor without a reading tells a plugin nothing
                continue
            readings.append(
                {
                    "chip": chip,
                    "label": temp.label,
                    "celsius": celsius,
                    "high": _finite(temp.high),
                    "critical": _finite(temp.critical),
                }
            )
    return readings


@dataclass(frozen=True)
class _Gpu:
    name: str
    vendor: str
    utilization_percent: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_celsius: float | None

    def to_json(self, index: int) -> dict[str, object]:
        return {
            "index": index,
            "name": self.name,
            "vendor": self.vendor,
            "utilization_percent": self.utilization_percent,
            "memory_used_bytes": self.memory_used_bytes,
            "memory_total_bytes": self.memory_total_bytes,
            "temperature_celsius": self.temperature_celsius,
        }


def read_battery() -> bytes:
    """The battery, as get_battery_status hands it to plugins.

    {"present": false} without one (desktops, VMs): a plugin must say so,
    never guess. `plugged` is null where the OS does not tell, and
    `seconds_left` is null while charging or when unknown.
    """
    battery = psutil.sensors_battery()
    if battery is None:
        return _dumps({"present": False})
    left = battery.secsleft
    known = isinstance(left, int) and left >= 0  # psutil's constants are negative
    return _dumps(
        {
            "present": True,
            "percent": _finite(float(battery.percent)),
            "plugged": battery.power_plugged,
            "seconds_left": left if known else None,
        }
    )


def read_gpu_status(drm_root: str | os.PathLike[str] = DRM_ROOT) -> bytes:
    """Every GPU found in sysfs under `drm_root` or through nvidia-smi, as JSON.

    Raises nothing for a missing or failing source: a GPU that cannot be
    read is not listed (nvidia-smi) or has null figures (sysfs).
    """
    nvidia = _nvidia_gpus()
    drm = _drm_gpus(Path(drm_root))
    if nvidia:
        # The NVIDIA driver registers a DRM card too, without figures;
        # nvidia-smi's row is the same GPU with them.
        drm = [gpu for gpu in drm if gpu.vendor != "NVIDIA"]
    gpus = [*drm, *nvidia]
    return _dumps({"gpus": [gpu.to_json(index) for index, gpu in enumerate(gpus)]})


def _drm_gpus(root: Path) -> list[_Gpu]:
    try:
        entries = os.listdir(root)
    except FileNotFoundError:  # no DRM at all: macOS, Windows, a headless VM
        return []
    cards = sorted((int(m.group(1)), entry) for entry in entries if (m := _CARD.fullmatch(entry)))
    gpus = []
    for _, entry in cards:
        gpu = _drm_card(root / entry / "device")
        if gpu is not None:
            gpus.append(gpu)
    return gpus


def _drm_card(device: Path) -> _Gpu | None:
    vendor_id = _read_text(device / "vendor")
    if vendor_id is None:  # not a PCI device: simpledrm, a virtual framebuffer
        return None
    name = _read_text(device / "product_name") or _pci_description(device, vendor_id)
    vendor = _VENDORS.get(vendor_id.lower(), vendor_id)
    # Reading the figures of a runtime-suspended GPU resumes it on older
    # kernels, and a monitor polling every tick would keep a laptop's
    # discrete GPU awake. Its figures are unknown while it sleeps.
    if _read_text(device / "power" / "runtime_status") == "suspended":
        return _Gpu(name, vendor, None, None, None, None)
    busy = _read_int(device / "gpu_busy_percent")
    return _Gpu(
        name=name,
        vendor=vendor,
        utilization_percent=None if busy is None else float(busy),
        memory_used_bytes=_read_int(device / "mem_info_vram_used"),
        memory_total_bytes=_read_int(device / "mem_info_vram_total"),
        temperature_celsius=_hwmon_celsius(device / "hwmon"),
    )


def _pci_description(device: Path, vendor_id: str) -> str:
    """What sysfs says a card is when it has no product name: driver and PCI ids."""
    device_id = _read_text(device / "device") or "?"
    pci_id = f"{vendor_id.removeprefix('0x')}:{device_id.removeprefix('0x')}"
    try:
        driver = os.path.basename(os.readlink(device / "driver"))
    except OSError:  # no driver bound
        return f"PCI {pci_id}"
    return f"{driver} {pci_id}"


def _hwmon_celsius(hwmon: Path) -> float | None:
    try:
        monitors = sorted(os.listdir(hwmon))
    except OSError:
        return None
    for monitor in monitors:
        millidegrees = _read_int(hwmon / monitor / "temp1_input")
        if millidegrees is not None:
            return millidegrees / 1000.0
    return None


def _read_text(path: Path) -> str | None:
    # Any OSError means "not offered now": the file is absent for this
    # driver, or the driver refuses (EPERM while the GPU resets, EINVAL).
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _nvidia_gpus() -> list[_Gpu]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    command = [exe, f"--query-gpu={_NVIDIA_QUERY}", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=_NVIDIA_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:  # e.g. "No devices were found", a driver mismatch
        return []
    rows = (_parse_nvidia_row(line) for line in done.stdout.splitlines())
    return [gpu for gpu in rows if gpu is not None]


def _parse_nvidia_row(line: str) -> _Gpu | None:
    # index, name, utilization %, memory used MiB, memory total MiB, temperature C.
    # The name is the only field that could hold a comma: take the figures
    # from the right.
    parts = [part.strip() for part in line.split(",")]
    if len(parts) < 6:
        return None
    util, used, total, temp = (_number(part) for part in parts[-4:])
    return _Gpu(
        name=", ".join(parts[1:-4]),
        vendor="NVIDIA",
        utilization_percent=util,
        memory_used_bytes=None if used is None else int(used * _MIB),
        memory_total_bytes=None if total is None else int(total * _MIB),
        temperature_celsius=temp,
    )


def _number(text: str) -> float | None:
    # nvidia-smi writes "[N/A]" or "[Not Supported]" for what a board lacks.
    try:
        return _finite(float(text))
    except ValueError:
        return None
