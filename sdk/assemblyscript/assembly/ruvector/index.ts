// RuVector plugin SDK for AssemblyScript, ABI v1 (docs/abi.md).
//
//   import { Plugin, register, info, getCpuUsage } from "ruvector";
//   export { rv_alloc, rv_abi_version, on_tick } from "ruvector";
//
// See ../../README.md for how to write, build and run a plugin. The raw
// imports, for what the wrappers do not cover, are in "ruvector/host".

export {
  ABI_VERSION, rv_abi_version, rv_alloc,
  packedPtr, packedLen, packedStatus, takeText, takeBytes, utf8, cutUtf8,
  abortHandler, traceHandler,
} from "./abi";
export { Status, statusName, Result, success, failure } from "./status";
export { JsonKind, JsonReader, JsonValue, MAX_DEPTH, jsonNumber, jsonQuote } from "./json";
export {
  LogLevel, log, trace, debug, info, warn, error,
  getConfig, setConfig, configString, configJson, configNumber, configBool, configStrings,
  reportMetric, LearnedPattern, getLearnedPattern,
  LOG_MESSAGE_CAP, CONFIG_KEY_CAP, CONFIG_VALUE_CAP, METRIC_NAME_CAP,
} from "./core";
export {
  MemoryStatus, getMemoryStatus, getCpuUsage,
  TemperatureSensor, ThermalSnapshot, getTemperature,
  GpuInfo, GpuStatus, getGpuStatus,
  PowerSource, BatteryStatus, getBatteryStatus,
} from "./system";
export {
  Priority, niceOf, priorityOfNice, ProcessInfo, getProcessList, getProcessMemory,
  setProcessPriority, trimProcessMemory, killProcess, processNameIs,
} from "./processes";
export {
  showNotification, HttpRequest, HttpResponse, httpRequest,
  readFile, readTextFile, writeFile, writeTextFile,
  RegistryValue, registryRead, registryWrite,
  NOTIFICATION_TITLE_CAP, NOTIFICATION_MESSAGE_CAP, HTTP_REQUEST_CAP, PATH_CAP, FILE_DATA_CAP,
  REGISTRY_KEY_CAP, REGISTRY_VALUE_CAP,
} from "./io";
export {
  PressureLevel, Plugin, register,
  on_init, on_tick, on_memory_pressure, on_process_launch, on_process_exit,
  on_profile_switch, on_cleanup,
} from "./plugin";
