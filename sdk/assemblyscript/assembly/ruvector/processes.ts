// Processes (docs/abi.md, 6.3 and 6.4). Reading needs ReadProcessList;
// each action needs its own capability, and the host refuses actions on
// protected processes (PROTECTED) whatever the plugin was granted.

import * as host from "./host";
import { JsonReader, readPackedJson } from "./json";
import { Result, Status, failure, success } from "./status";

/** Priority levels of set_process_priority. */
export enum Priority {
  /** POSIX nice 19; Windows IDLE_PRIORITY_CLASS. */
  IDLE = 0,
  /** nice 10; BELOW_NORMAL_PRIORITY_CLASS. */
  BELOW_NORMAL = 1,
  /** nice 0; NORMAL_PRIORITY_CLASS. */
  NORMAL = 2,
  /** nice -5; ABOVE_NORMAL_PRIORITY_CLASS. */
  ABOVE_NORMAL = 3,
  /** nice -10; HIGH_PRIORITY_CLASS. */
  HIGH = 4,
}

/** The POSIX nice value that set_process_priority gives `level`. */
export function niceOf(level: Priority): i32 {
  switch (level) {
    case Priority.IDLE: return 19;
    case Priority.BELOW_NORMAL: return 10;
    case Priority.NORMAL: return 0;
    case Priority.ABOVE_NORMAL: return -5;
  }
  return -10;
}

// Windows priority class constants, as get_process_list reports them.
const IDLE_CLASS = 64;
const BELOW_NORMAL_CLASS = 16384;
const NORMAL_CLASS = 32;
const ABOVE_NORMAL_CLASS = 32768;
const HIGH_CLASS = 128;
const REALTIME_CLASS = 256;

/** The highest Priority level a process already runs at or above, from the
 *  `nice` of get_process_list: a POSIX nice value (-20..19), or on Windows a
 *  priority class constant (all of them 32 or more). -1 if unrecognised.
 *  A process at nice -7 gives ABOVE_NORMAL: it is at least that high. */
export function priorityOfNice(nice: i32): i32 {
  if (nice >= NORMAL_CLASS) {
    if (nice == REALTIME_CLASS || nice == HIGH_CLASS) return Priority.HIGH;
    if (nice == ABOVE_NORMAL_CLASS) return Priority.ABOVE_NORMAL;
    if (nice == NORMAL_CLASS) return Priority.NORMAL;
    if (nice == BELOW_NORMAL_CLASS) return Priority.BELOW_NORMAL;
    if (nice == IDLE_CLASS) return Priority.IDLE;
    return -1;
  }
  if (nice < -20) return -1;
  if (nice <= -10) return Priority.HIGH;
  if (nice <= -5) return Priority.ABOVE_NORMAL;
  if (nice <= 0) return Priority.NORMAL;
  if (nice <= 10) return Priority.BELOW_NORMAL;
  return Priority.IDLE;
}

/** One process of this tick's reading. */
export class ProcessInfo {
  pid: i32 = 0;
  ppid: i32 = 0;
  /** Valid UTF-8; bytes that were not are U+FFFD. */
  name: string = "";
  /** Resident set size; -1 if the OS refused. */
  memoryBytes: i64 = -1;
  /** CPU since the previous reading, 100 = one core (can exceed 100);
   *  0.0 the first time the host sees the process; NaN if the OS refused. */
  cpuPercent: f64 = NaN;
  /** The nice value (Windows: the priority class constant); meaningful
   *  only when niceKnown. */
  nice: i32 = 0;
  niceKnown: bool = false;

  /** priorityOfNice(nice), or -1 when the nice value is unknown. */
  priority(): i32 {
    return this.niceKnown ? priorityOfNice(this.nice) : -1;
  }
}

/** Every process in this tick's reading. Expect tens of KiB of JSON and a
 *  few hundred objects: call it once per hook, not once per process. */
export function getProcessList(): Result<ProcessInfo[]> {
  return readPackedJson<ProcessInfo[]>(host.get_process_list(), parseProcessList);
}

function parseProcessList(reader: JsonReader): ProcessInfo[] {
  const list = new Array<ProcessInfo>();
  if (!reader.beginArray()) return list;
  while (reader.nextItem()) list.push(parseProcess(reader));
  return list;
}

function parseProcess(reader: JsonReader): ProcessInfo {
  const p = new ProcessInfo();
  if (!reader.beginObject()) return p;
  while (reader.nextMember()) {
    if (reader.keyIs("pid")) p.pid = <i32>reader.readIntegerOr(0);
    else if (reader.keyIs("ppid")) p.ppid = <i32>reader.readIntegerOr(0);
    else if (reader.keyIs("name")) p.name = reader.readStringOr("");
    else if (reader.keyIs("memory_bytes")) p.memoryBytes = reader.readIntegerOr(-1);
    else if (reader.keyIs("cpu_percent")) p.cpuPercent = reader.readNumberOrNaN();
    else if (reader.keyIs("nice")) {
      const nice = reader.readIntegerOr(i64.MIN_VALUE);
      p.niceKnown = nice != i64.MIN_VALUE;
      p.nice = p.niceKnown ? <i32>nice : 0;
    } else reader.skip();
  }
  return p;
}

/** Resident set size of `pid` in bytes (0 is a real value).
 *  INVALID_ARGUMENT, NOT_FOUND or IO_ERROR otherwise. */
export function getProcessMemory(pid: i32): Result<i64> {
  const r = host.get_process_memory(pid);
  return r < 0 ? failure<i64>(<i32>r) : success<i64>(r);
}

/** Set `pid`'s priority. Raising it (ABOVE_NORMAL, HIGH) needs root or
 *  CAP_SYS_NICE on POSIX, else IO_ERROR. PROTECTED, NOT_FOUND,
 *  INVALID_ARGUMENT otherwise. */
export function setProcessPriority(pid: i32, level: Priority): Status {
  return host.set_process_priority(pid, level);
}

/** Empty `pid`'s working set; the bytes freed. Windows only: UNSUPPORTED
 *  on Linux and macOS, whatever the pid. */
export function trimProcessMemory(pid: i32): Result<i64> {
  const r = host.trim_process_memory(pid);
  return r < 0 ? failure<i64>(<i32>r) : success<i64>(r);
}

/** Ask `pid` to end (SIGTERM; TerminateProcess on Windows). OK once the
 *  request is delivered; the exit shows up on a later tick. */
export function killProcess(pid: i32): Status {
  return host.kill_process(pid);
}

/** Whether `name` (a process name) is `wanted`, ignoring case and a
 *  trailing ".exe" on either, as the host's protected list compares names.
 *  Allocates nothing for ASCII names. */
export function processNameIs(name: string, wanted: string): bool {
  const n = bareLength(name);
  if (n != bareLength(wanted)) return false;
  for (let i = 0; i < n; i++) {
    const a = <u32>name.charCodeAt(i);
    const b = <u32>wanted.charCodeAt(i);
    if (a == b) continue;
    if (a >= 0x80 || b >= 0x80) {
      return name.substring(0, n).toLowerCase() == wanted.substring(0, n).toLowerCase();
    }
    if (asciiLower(a) != asciiLower(b)) return false;
  }
  return true;
}

function asciiLower(c: u32): u32 {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

// The length of `name` without a trailing ".exe" (any case).
function bareLength(name: string): i32 {
  const n = name.length;
  if (n < 4 || name.charCodeAt(n - 4) != 0x2e) return n;
  const e = asciiLower(<u32>name.charCodeAt(n - 3));
  const x = asciiLower(<u32>name.charCodeAt(n - 2));
  const e2 = asciiLower(<u32>name.charCodeAt(n - 1));
  return e == 0x65 && x == 0x78 && e2 == 0x65 ? n - 4 : n;
}
