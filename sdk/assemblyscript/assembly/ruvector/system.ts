// System information (docs/abi.md, 6.2; capability ReadSystemInfo). Every
// call in a tick returns the same reading, taken once per tick.
//
// A figure the OS does not provide is JSON null, which the SDK keeps
// visible: NaN for a float, -1 for a byte count or a time. Never read
// either as a measurement.

import * as host from "./host";
import { JsonKind, JsonReader, readPackedJson } from "./json";
import { Result, Status, failure, success } from "./status";

/** Physical memory and swap, from this tick's reading. */
export class MemoryStatus {
  totalBytes: i64 = -1;
  /** Memory available to new work without swapping. */
  availableBytes: i64 = -1;
  usedBytes: i64 = -1;
  /** Used share, 0..100: (total - available) / total. Drives on_memory_pressure. */
  percent: f64 = NaN;
  swapTotalBytes: i64 = -1;
  swapUsedBytes: i64 = -1;
}

export function getMemoryStatus(): Result<MemoryStatus> {
  return readPackedJson<MemoryStatus>(host.get_memory_status(), parseMemoryStatus);
}

function parseMemoryStatus(reader: JsonReader): MemoryStatus {
  const m = new MemoryStatus();
  if (!reader.beginObject()) return m;
  while (reader.nextMember()) {
    if (reader.keyIs("total_bytes")) m.totalBytes = reader.readIntegerOr(-1);
    else if (reader.keyIs("available_bytes")) m.availableBytes = reader.readIntegerOr(-1);
    else if (reader.keyIs("used_bytes")) m.usedBytes = reader.readIntegerOr(-1);
    else if (reader.keyIs("percent")) m.percent = reader.readNumberOrNaN();
    else if (reader.keyIs("swap_total_bytes")) m.swapTotalBytes = reader.readIntegerOr(-1);
    else if (reader.keyIs("swap_used_bytes")) m.swapUsedBytes = reader.readIntegerOr(-1);
    else reader.skip(); // keys added within v1
  }
  return m;
}

/** System-wide CPU use, 0..100, between the previous reading and this tick's.
 *  HOST_ERROR is the only failure (the host returns -11.0). */
export function getCpuUsage(): Result<f64> {
  const percent = host.get_cpu_usage();
  if (percent < 0) return failure<f64>(percent == -11.0 ? Status.HOST_ERROR : <i32>percent);
  return success<f64>(percent);
}

/** One temperature sensor. */
export class TemperatureSensor {
  chip: string = "";
  label: string = "";
  /** Always a reading: the host leaves out sensors without one. */
  celsius: f64 = NaN;
  /** Thresholds; NaN where the sensor gives none. */
  high: f64 = NaN;
  critical: f64 = NaN;
}

/** Every temperature sensor the OS reports. Empty in VMs, and on Windows and
 *  macOS, where the host reads none: empty means unknown, not cool. */
export class ThermalSnapshot {
  sensors: TemperatureSensor[] = [];

  /** The highest reading, NaN when there are no sensors. */
  hottest(): f64 {
    let top = NaN;
    for (let i = 0; i < this.sensors.length; i++) {
      const c = this.sensors[i].celsius;
      if (isNaN(top) || c > top) top = c;
    }
    return top;
  }
}

/** IO_ERROR if sensors exist but the OS fails to read them. */
export function getTemperature(): Result<ThermalSnapshot> {
  return readPackedJson<ThermalSnapshot>(host.get_temperature(), parseThermal);
}

function parseThermal(reader: JsonReader): ThermalSnapshot {
  const t = new ThermalSnapshot();
  if (!reader.beginObject()) return t;
  while (reader.nextMember()) {
    if (reader.keyIs("sensors") && reader.beginArray()) {
      while (reader.nextItem()) t.sensors.push(parseSensor(reader));
    } else {
      reader.skip();
    }
  }
  return t;
}

function parseSensor(reader: JsonReader): TemperatureSensor {
  const s = new TemperatureSensor();
  if (!reader.beginObject()) return s;
  while (reader.nextMember()) {
    if (reader.keyIs("chip")) s.chip = reader.readStringOr("");
    else if (reader.keyIs("label")) s.label = reader.readStringOr("");
    else if (reader.keyIs("celsius")) s.celsius = reader.readNumberOrNaN();
    else if (reader.keyIs("high")) s.high = reader.readNumberOrNaN();
    else if (reader.keyIs("critical")) s.critical = reader.readNumberOrNaN();
    else reader.skip();
  }
  return s;
}

/** One GPU. A figure the device does not publish (or every figure, while it
 *  is runtime-suspended) is NaN or -1. */
export class GpuInfo {
  /** Position in GpuStatus.gpus, not a driver number. */
  index: i32 = 0;
  name: string = "";
  /** "AMD", "NVIDIA", "Intel", or the PCI vendor id. */
  vendor: string = "";
  utilizationPercent: f64 = NaN;
  memoryUsedBytes: i64 = -1;
  memoryTotalBytes: i64 = -1;
  temperatureCelsius: f64 = NaN;
}

/** The GPUs in sysfs (DRM) and from nvidia-smi; empty if there is none. */
export class GpuStatus {
  gpus: GpuInfo[] = [];
}

export function getGpuStatus(): Result<GpuStatus> {
  return readPackedJson<GpuStatus>(host.get_gpu_status(), parseGpuStatus);
}

function parseGpuStatus(reader: JsonReader): GpuStatus {
  const g = new GpuStatus();
  if (!reader.beginObject()) return g;
  while (reader.nextMember()) {
    if (reader.keyIs("gpus") && reader.beginArray()) {
      while (reader.nextItem()) g.gpus.push(parseGpu(reader));
    } else {
      reader.skip();
    }
  }
  return g;
}

function parseGpu(reader: JsonReader): GpuInfo {
  const gpu = new GpuInfo();
  if (!reader.beginObject()) return gpu;
  while (reader.nextMember()) {
    if (reader.keyIs("index")) gpu.index = <i32>reader.readIntegerOr(0);
    else if (reader.keyIs("name")) gpu.name = reader.readStringOr("");
    else if (reader.keyIs("vendor")) gpu.vendor = reader.readStringOr("");
    else if (reader.keyIs("utilization_percent")) gpu.utilizationPercent = reader.readNumberOrNaN();
    else if (reader.keyIs("memory_used_bytes")) gpu.memoryUsedBytes = reader.readIntegerOr(-1);
    else if (reader.keyIs("memory_total_bytes")) gpu.memoryTotalBytes = reader.readIntegerOr(-1);
    else if (reader.keyIs("temperature_celsius")) gpu.temperatureCelsius = reader.readNumberOrNaN();
    else reader.skip();
  }
  return gpu;
}

/** Whether the machine runs on mains power, as the OS tells it. */
export enum PowerSource {
  /** The OS does not tell (JSON null), or there is no battery. */
  UNKNOWN = 0,
  BATTERY = 1,
  MAINS = 2,
}

/** The battery, where the OS has one (psutil's sensors_battery). */
export class BatteryStatus {
  /** False on a desktop or a VM: then every other field is unknown. */
  present: bool = false;
  /** Charge, 0..100; NaN when there is no battery. */
  percent: f64 = NaN;
  power: PowerSource = PowerSource.UNKNOWN;
  /** Seconds of charge left; -1 while charging, or when the OS does not know. */
  secondsLeft: i64 = -1;
}

export function getBatteryStatus(): Result<BatteryStatus> {
  return readPackedJson<BatteryStatus>(host.get_battery_status(), parseBattery);
}

function parseBattery(reader: JsonReader): BatteryStatus {
  const b = new BatteryStatus();
  if (!reader.beginObject()) return b;
  while (reader.nextMember()) {
    if (reader.keyIs("present")) b.present = reader.readBool();
    else if (reader.keyIs("percent")) b.percent = reader.readNumberOrNaN();
    else if (reader.keyIs("plugged")) {
      if (reader.peek() == JsonKind.NULL) reader.readNull();
      else b.power = reader.readBool() ? PowerSource.MAINS : PowerSource.BATTERY;
    } else if (reader.keyIs("seconds_left")) b.secondsLeft = reader.readIntegerOr(-1);
    else reader.skip();
  }
  return b;
}
