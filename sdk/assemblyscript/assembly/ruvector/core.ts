// Always-linked host functions (docs/abi.md, 6.1): log, config, metrics.

import * as host from "./host";
import { cutUtf8, packedLen, packedPtr, packedStatus, takeText, utf8 } from "./abi";
import { JsonKind, JsonReader, JsonValue } from "./json";
import { Result, Status, failure, success } from "./status";

// Argument caps, in UTF-8 bytes (docs/abi.md, 8.3). Over a cap the host
// counts a violation, so the SDK answers ARGUMENT_OVER_CAP without calling it
// (a log line is cut to fit instead).
export const LOG_MESSAGE_CAP: i32 = 8192;
export const CONFIG_KEY_CAP: i32 = 256;
export const CONFIG_VALUE_CAP: i32 = 65536;
export const METRIC_NAME_CAP: i32 = 128;

export enum LogLevel {
  TRACE = 0,
  DEBUG = 1,
  INFO = 2,
  WARN = 3,
  ERROR = 4,
}

/** Log one line. A message over 8192 bytes is cut at a character boundary.
 *  Returns OK, or RATE_LIMITED past 100 lines in a tick (the line is dropped). */
export function log(level: LogLevel, message: string): Status {
  const buf = utf8(message);
  return host.log(level, changetype<usize>(buf), cutUtf8(buf, LOG_MESSAGE_CAP));
}

export function trace(message: string): Status {
  return log(LogLevel.TRACE, message);
}

export function debug(message: string): Status {
  return log(LogLevel.DEBUG, message);
}

export function info(message: string): Status {
  return log(LogLevel.INFO, message);
}

export function warn(message: string): Status {
  return log(LogLevel.WARN, message);
}

export function error(message: string): Status {
  return log(LogLevel.ERROR, message);
}

/** The config value `key`: the value stored with setConfig, else the user's.
 *  A user's string comes back raw, any other value as compact JSON. The
 *  value is null when the key is not set. */
export function getConfig(key: string): Result<string | null> {
  const k = utf8(key);
  if (k.byteLength > CONFIG_KEY_CAP) return failure<string | null>(Status.ARGUMENT_OVER_CAP);
  const r = host.get_config(changetype<usize>(k), k.byteLength);
  if (r < 0) return failure<string | null>(packedStatus(r));
  if (r == 0) return success<string | null>(null);
  return success<string | null>(takeText(packedPtr(r), packedLen(r)));
}

/** Store `value` under `key` in the plugin's own config overlay (kept across
 *  restarts). From then on getConfig(key) returns it. */
export function setConfig(key: string, value: string): Status {
  const k = utf8(key);
  const v = utf8(value);
  if (k.byteLength > CONFIG_KEY_CAP || v.byteLength > CONFIG_VALUE_CAP) return Status.ARGUMENT_OVER_CAP;
  return host.set_config(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

/** A string config value, or `fallback` when unset or unreadable. */
export function configString(key: string, fallback: string): string {
  const r = getConfig(key);
  if (!r.ok) return fallback;
  const value = r.value;
  return value !== null ? value : fallback;
}

/** A config value as parsed JSON; null when unset, unreadable or a raw string. */
export function configJson(key: string): JsonValue | null {
  const r = getConfig(key);
  if (!r.ok) return null;
  const text = r.value;
  return text !== null ? JsonValue.parse(text) : null;
}

/** A number config value, or `fallback` when unset or not a number. */
export function configNumber(key: string, fallback: f64): f64 {
  const value = configJson(key);
  return value !== null ? value.asNumber(fallback) : fallback;
}

/** A boolean config value, or `fallback` when unset or not a boolean. */
export function configBool(key: string, fallback: bool): bool {
  const value = configJson(key);
  return value !== null ? value.asBool(fallback) : fallback;
}

/** An array-of-strings config value (other items are skipped), or
 *  `fallback` when unset or not an array. */
export function configStrings(key: string, fallback: string[]): string[] {
  const value = configJson(key);
  if (value === null || value.kind != JsonKind.ARRAY) return fallback;
  const out = new Array<string>();
  for (let i = 0; i < value.length; i++) {
    const item = value.at(i)!;
    if (item.kind == JsonKind.STRING) out.push(item.asString(""));
  }
  return out;
}

/** Record one point of metric `name` (finite, |value| <= 1e300).
 *  INVALID_ARGUMENT for an empty name or a bad value, TOO_LARGE for a
 *  65th metric name. */
export function reportMetric(name: string, value: f64): Status {
  const n = utf8(name);
  if (n.byteLength > METRIC_NAME_CAP) return Status.ARGUMENT_OVER_CAP;
  return host.report_metric(changetype<usize>(n), n.byteLength, value);
}

/** The mean of metric `name` for each local hour of the day, over all days. */
export class LearnedPattern {
  /** 24 entries; NaN for an hour with no point yet. */
  readonly hourly: StaticArray<f64> = new StaticArray<f64>(24);

  /** Whether hour `h` (0..23) has a mean. */
  has(h: i32): bool {
    return h >= 0 && h < 24 && !isNaN(this.hourly[h]);
  }

  /** The mean for hour `h`, NaN if none. */
  mean(h: i32): f64 {
    return h >= 0 && h < 24 ? this.hourly[h] : NaN;
  }
}

/** The learned hourly pattern of metric `name`; null if it was never reported. */
export function getLearnedPattern(name: string): Result<LearnedPattern | null> {
  const n = utf8(name);
  if (n.byteLength > METRIC_NAME_CAP) return failure<LearnedPattern | null>(Status.ARGUMENT_OVER_CAP);
  const r = host.get_learned_pattern(changetype<usize>(n), n.byteLength);
  if (r < 0) return failure<LearnedPattern | null>(packedStatus(r));
  if (r == 0) return success<LearnedPattern | null>(null);
  const ptr = packedPtr(r);
  const reader = new JsonReader(ptr, packedLen(r));
  const pattern = new LearnedPattern();
  let h = 0;
  if (reader.beginArray()) {
    while (reader.nextItem()) {
      const v = reader.readNumberOrNaN();
      if (h < 24) pattern.hourly[h] = v;
      h++;
    }
  }
  const good = !reader.failed && reader.atEnd() && h == 24;
  return good ? success<LearnedPattern | null>(pattern) : failure<LearnedPattern | null>(Status.UNREADABLE_RESULT);
}
