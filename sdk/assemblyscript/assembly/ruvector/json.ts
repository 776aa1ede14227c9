// A small JSON reader and writer, enough for what the host sends and takes.
//
// JsonReader pulls values from UTF-8 bytes without building a tree; the
// typed results (MemoryStatus, ProcessInfo...) are read with it. JsonValue
// is a tree for everything else: config values, file contents, HTTP
// bodies, registry values. Nesting is limited to MAX_DEPTH, so hostile
// input cannot exhaust the wasm stack; malformed input makes the reader
// fail (`failed`), never trap.

import { packedLen, packedPtr, packedStatus, utf8 } from "./abi";
import { Result, Status, failure, success } from "./status";

/** Deepest nesting of arrays and objects the reader accepts. */
export const MAX_DEPTH: i32 = 64;

export enum JsonKind {
  NULL,
  BOOL,
  NUMBER,
  STRING,
  ARRAY,
  OBJECT,
  /** Not a value: the input ended or is malformed (JsonReader.peek). */
  INVALID,
}

const POW10: StaticArray<f64> = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/** Pulls JSON values, one at a time, from UTF-8 bytes in memory.
 *
 *  `beginObject()` then `nextMember()` until it returns false (test the key
 *  with `keyIs`, or get it with `key()`); `beginArray()` then `nextItem()`
 *  until it returns false. Read each value with a read*
 *  method or `skip()` it. After a failure every read returns a default and
 *  `failed` stays true: check it once at the end. */
export class JsonReader {
  private pos: usize;
  private end: usize;
  private depth: i32 = 0;
  private keyStart: usize = 0;
  private keyEnd: usize = 0;
  private keyEscaped: bool = false;
  private scanEnd: usize = 0;
  private scanEscaped: bool = false;
  // whether the container at each depth has had its first member yet
  private started: StaticArray<bool> = new StaticArray<bool>(MAX_DEPTH + 1);
  // keeps text passed to fromString alive while it is read
  private owner: ArrayBuffer | null = null;
  failed: bool = false;

  /** Reads `len` bytes at `ptr`; they must stay valid while reading. */
  constructor(ptr: usize, len: usize) {
    this.pos = ptr;
    this.end = ptr + len;
  }

  static fromString(text: string): JsonReader {
    const buf = utf8(text);
    const reader = new JsonReader(changetype<usize>(buf), <usize>buf.byteLength);
    reader.owner = buf;
    return reader;
  }

  static fromBytes(bytes: Uint8Array): JsonReader {
    const reader = new JsonReader(bytes.dataStart, <usize>bytes.byteLength);
    reader.owner = bytes.buffer;
    return reader;
  }

  /** Whether only whitespace is left: a whole document was read. */
  atEnd(): bool {
    this.skipSpace();
    return this.pos >= this.end;
  }

  /** The kind of the next value, without reading it. */
  peek(): JsonKind {
    if (this.failed) return JsonKind.INVALID;
    this.skipSpace();
    if (this.pos >= this.end) return JsonKind.INVALID;
    const c = load<u8>(this.pos);
    if (c == 0x7b) return JsonKind.OBJECT; // {
    if (c == 0x5b) return JsonKind.ARRAY; // [
    if (c == 0x22) return JsonKind.STRING; // "
    if (c == 0x74 || c == 0x66) return JsonKind.BOOL; // t f
    if (c == 0x6e) return JsonKind.NULL; // n
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return JsonKind.NUMBER;
    return JsonKind.INVALID;
  }

  beginObject(): bool {
    return this.open(0x7b);
  }

  /** Move to the next member of the current object: true with the reader
   *  placed on its value (see keyIs, key); false after the last one (the
   *  object is then closed) or on failure. Allocates nothing. */
  nextMember(): bool {
    if (!this.member(0x7d)) return false;
    this.skipSpace();
    if (!this.expect(0x22)) return false;
    this.keyStart = this.pos;
    if (!this.scanString()) return false;
    this.keyEnd = this.scanEnd;
    this.keyEscaped = this.scanEscaped;
    this.skipSpace();
    return this.expect(0x3a); // :
  }

  /** Whether the current member's key is `name`, compared without allocating. */
  keyIs(name: string): bool {
    if (this.keyEscaped) return this.key() == name;
    const n = this.keyEnd - this.keyStart;
    if (<usize>name.length > n) return false;
    // ASCII fast path; anything else decodes
    for (let i: usize = 0; i < n; i++) {
      const b = <u32>load<u8>(this.keyStart + i);
      if (b >= 0x80) return this.key() == name;
      if (i >= <usize>name.length || b != <u32>name.charCodeAt(<i32>i)) return false;
    }
    return n == <usize>name.length;
  }

  /** The current member's key. */
  key(): string {
    if (!this.keyEscaped) return String.UTF8.decodeUnsafe(this.keyStart, this.keyEnd - this.keyStart);
    return this.unescape(this.keyStart, this.keyEnd);
  }

  /** nextMember, returning the key: null after the last member or on failure. */
  nextKey(): string | null {
    return this.nextMember() ? this.key() : null;
  }

  beginArray(): bool {
    return this.open(0x5b);
  }

  /** Whether the current array has another item (the reader is placed on
   *  it); false after the last one (the array is then closed) or on failure. */
  nextItem(): bool {
    return this.member(0x5d);
  }

  readString(): string {
    this.skipSpace();
    if (!this.expect(0x22)) return "";
    const start = this.pos;
    if (!this.scanString()) return "";
    if (!this.scanEscaped) return String.UTF8.decodeUnsafe(start, this.scanEnd - start);
    return this.unescape(start, this.scanEnd);
  }

  readNumber(): f64 {
    this.skipSpace();
    // pos and end live in locals here: the hot loops then touch no fields
    const start = this.pos;
    const end = this.end;
    let p = start;
    let negative = false;
    if (p < end && load<u8>(p) == 0x2d) {
      negative = true;
      p++;
    }
    let mantissa: u64 = 0;
    let digits = 0; // significant digits kept in mantissa
    let scale = 0; // power of ten to apply to mantissa
    const intStart = p;
    while (p < end) {
      const d = <u32>load<u8>(p) - 0x30;
      if (d > 9) break;
      if (digits < 19) {
        mantissa = mantissa * 10 + <u64>d;
        if (mantissa != 0) digits++;
      } else {
        scale++;
      }
      p++;
    }
    if (p == intStart) return this.failWith(0.0);
    if (p < end && load<u8>(p) == 0x2e) {
      p++;
      const fracStart = p;
      while (p < end) {
        const d = <u32>load<u8>(p) - 0x30;
        if (d > 9) break;
        if (digits < 19) {
          mantissa = mantissa * 10 + <u64>d;
          if (mantissa != 0) digits++;
          scale--;
        }
        p++;
      }
      if (p == fracStart) return this.failWith(0.0);
    }
    if (p < end && (load<u8>(p) | 0x20) == 0x65) { // e E
      p++;
      let expNegative = false;
      if (p < end && (load<u8>(p) == 0x2b || load<u8>(p) == 0x2d)) {
        expNegative = load<u8>(p) == 0x2d;
        p++;
      }
      let exponent = 0;
      const expStart = p;
      while (p < end) {
        const d = <u32>load<u8>(p) - 0x30;
        if (d > 9) break;
        if (exponent < 10000) exponent = exponent * 10 + <i32>d;
        p++;
      }
      if (p == expStart) return this.failWith(0.0);
      scale += expNegative ? -exponent : exponent;
    }
    this.pos = p;
    if (mantissa < (<u64>1 << 53) && scale >= -22 && scale <= 22) {
      // both operands exact: one correctly rounded operation
      const value = scale >= 0 ? <f64>mantissa * unchecked(POW10[scale]) : <f64>mantissa / unchecked(POW10[-scale]);
      return negative ? -value : value;
    }
    return parseFloat(String.UTF8.decodeUnsafe(start, p - start)); // the sign is in the text
  }

  /** A number, or NaN for null. */
  readNumberOrNaN(): f64 {
    if (this.peek() == JsonKind.NULL) {
      this.readNull();
      return NaN;
    }
    return this.readNumber();
  }

  /** An integer, or `fallback` for null. Fractions are truncated. */
  readIntegerOr(fallback: i64): i64 {
    if (this.peek() == JsonKind.NULL) {
      this.readNull();
      return fallback;
    }
    const n = this.readNumber();
    return isFinite(n) ? <i64>n : fallback;
  }

  /** A string, or `fallback` for null. */
  readStringOr(fallback: string): string {
    if (this.peek() == JsonKind.NULL) {
      this.readNull();
      return fallback;
    }
    return this.readString();
  }

  readBool(): bool {
    this.skipSpace();
    if (this.word("true")) return true;
    if (!this.word("false")) this.fail();
    return false;
  }

  readNull(): void {
    this.skipSpace();
    if (!this.word("null")) this.fail();
  }

  /** Read past the next value, whatever it is. */
  skip(): void {
    const kind = this.peek();
    if (kind == JsonKind.OBJECT) {
      if (!this.beginObject()) return;
      while (this.nextMember()) this.skip();
    } else if (kind == JsonKind.ARRAY) {
      if (!this.beginArray()) return;
      while (this.nextItem()) this.skip();
    } else if (kind == JsonKind.STRING) {
      this.skipString();
    } else if (kind == JsonKind.NUMBER) {
      this.readNumber();
    } else if (kind == JsonKind.BOOL) {
      this.readBool();
    } else if (kind == JsonKind.NULL) {
      this.readNull();
    } else {
      this.fail();
    }
  }

  /** The next value as a tree; null on failure. */
  readValue(): JsonValue | null {
    const kind = this.peek();
    if (kind == JsonKind.OBJECT) {
      const object = JsonValue.newObject();
      if (!this.beginObject()) return null;
      let key = this.nextKey();
      while (key !== null) {
        const item = this.readValue();
        if (item === null) return null;
        object.set(key, item);
        key = this.nextKey();
      }
      return this.failed ? null : object;
    }
    if (kind == JsonKind.ARRAY) {
      const array = JsonValue.newArray();
      if (!this.beginArray()) return null;
      while (this.nextItem()) {
        const item = this.readValue();
        if (item === null) return null;
        array.push(item);
      }
      return this.failed ? null : array;
    }
    if (kind == JsonKind.STRING) return this.checked(JsonValue.ofString(this.readString()));
    if (kind == JsonKind.NUMBER) return this.checked(JsonValue.ofNumber(this.readNumber()));
    if (kind == JsonKind.BOOL) return this.checked(JsonValue.ofBool(this.readBool()));
    if (kind == JsonKind.NULL) {
      this.readNull();
      return this.checked(JsonValue.ofNull());
    }
    this.fail();
    return null;
  }

  // -- internals ------------------------------------------------------------------

  private checked(value: JsonValue): JsonValue | null {
    return this.failed ? null : value;
  }

  private open(bracket: u8): bool {
    this.skipSpace();
    if (this.depth >= MAX_DEPTH) {
      this.fail();
      return false;
    }
    if (!this.expect(bracket)) return false;
    this.depth++;
    unchecked((this.started[this.depth] = false));
    return true;
  }

  // Before a member of the current container: closes it on `closer`, else
  // takes the comma that separates members.
  private member(closer: u8): bool {
    if (this.failed || this.depth == 0) return false;
    this.skipSpace();
    if (this.pos >= this.end) {
      this.fail();
      return false;
    }
    if (load<u8>(this.pos) == closer) {
      this.pos++;
      this.depth--;
      return false;
    }
    if (unchecked(this.started[this.depth])) {
      if (!this.expect(0x2c)) return false; // ,
    } else {
      unchecked((this.started[this.depth] = true));
    }
    return true;
  }

  private skipString(): void {
    this.skipSpace();
    if (this.expect(0x22)) this.scanString();
  }

  // From just after an opening quote, find the closing one: sets scanEnd
  // (its address) and scanEscaped, and moves the reader past it.
  private scanString(): bool {
    let p = this.pos;
    const end = this.end;
    let escaped = false;
    while (p < end) {
      const c = load<u8>(p);
      if (c == 0x22) {
        this.scanEnd = p;
        this.scanEscaped = escaped;
        this.pos = p + 1;
        return true;
      }
      if (c < 0x20) break; // control characters must be escaped
      if (c == 0x5c) {
        escaped = true;
        p++;
      }
      p++;
    }
    this.fail();
    return false;
  }

  // The string between `start` and `stop` (quotes excluded) with its escapes
  // resolved, UTF-8 to UTF-8, then decoded once.
  private unescape(start: usize, stop: usize): string {
    const out = heap.alloc(stop - start); // never longer than the escaped form
    let n: usize = 0;
    let p = start;
    while (p < stop) {
      let c = <u32>load<u8>(p++);
      if (c != 0x5c) {
        store<u8>(out + n++, c);
        continue;
      }
      c = <u32>load<u8>(p++);
      if (c == 0x75) { // \uXXXX, maybe a surrogate pair
        let code = hex4(p, stop);
        p += 4;
        if (code >= 0xd800 && code < 0xdc00 && p + 6 <= stop && load<u8>(p) == 0x5c && load<u8>(p + 1) == 0x75) {
          const low = hex4(p + 2, stop);
          if (low >= 0xdc00 && low < 0xe000) {
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
            p += 6;
          }
        }
        if (code < 0 || (code >= 0xd800 && code < 0xe000)) {
          if (code < 0) {
            heap.free(out);
            return this.failWith("");
          }
          code = 0xfffd; // a lone surrogate
        }
        n += putUtf8(out + n, <u32>code);
        continue;
      }
      let byte: u32 = 0;
      if (c == 0x22 || c == 0x5c || c == 0x2f) byte = c;
      else if (c == 0x62) byte = 0x08; // b
      else if (c == 0x66) byte = 0x0c; // f
      else if (c == 0x6e) byte = 0x0a; // n
      else if (c == 0x72) byte = 0x0d; // r
      else if (c == 0x74) byte = 0x09; // t
      else {
        heap.free(out);
        return this.failWith("");
      }
      store<u8>(out + n++, byte);
    }
    const text = String.UTF8.decodeUnsafe(out, n);
    heap.free(out);
    return text;
  }

  private skipSpace(): void {
    let p = this.pos;
    const end = this.end;
    while (p < end) {
      const c = load<u8>(p);
      if (c > 0x20 || (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09)) break;
      p++;
    }
    this.pos = p;
  }

  private expect(c: u8): bool {
    if (this.failed || this.pos >= this.end || load<u8>(this.pos) != c) {
      this.fail();
      return false;
    }
    this.pos++;
    return true;
  }

  private word(w: string): bool {
    const n = <usize>w.length;
    if (this.failed || this.pos + n > this.end) return false;
    for (let i: usize = 0; i < n; i++) {
      if (<u32>load<u8>(this.pos + i) != <u32>w.charCodeAt(<i32>i)) return false;
    }
    this.pos += n;
    return true;
  }

  private fail(): void {
    this.failed = true;
    this.pos = this.end;
  }

  private failWith<T>(value: T): T {
    this.fail();
    return value;
  }
}

// Four hex digits at p (before stop) as a number; -1 if they are not.
function hex4(p: usize, stop: usize): i32 {
  if (p + 4 > stop) return -1;
  let value = 0;
  for (let i: usize = 0; i < 4; i++) {
    const c = <i32>load<u8>(p + i);
    let d: i32;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x61 + 10;
    else return -1;
    value = (value << 4) | d;
  }
  return value;
}

// One code point as UTF-8 at p; returns the bytes written.
function putUtf8(p: usize, c: u32): usize {
  if (c < 0x80) {
    store<u8>(p, c);
    return 1;
  }
  if (c < 0x800) {
    store<u8>(p, 0xc0 | (c >> 6));
    store<u8>(p, 0x80 | (c & 0x3f), 1);
    return 2;
  }
  if (c < 0x10000) {
    store<u8>(p, 0xe0 | (c >> 12));
    store<u8>(p, 0x80 | ((c >> 6) & 0x3f), 1);
    store<u8>(p, 0x80 | (c & 0x3f), 2);
    return 3;
  }
  store<u8>(p, 0xf0 | (c >> 18));
  store<u8>(p, 0x80 | ((c >> 12) & 0x3f), 1);
  store<u8>(p, 0x80 | ((c >> 6) & 0x3f), 2);
  store<u8>(p, 0x80 | (c & 0x3f), 3);
  return 4;
}

/** A JSON document as a tree. Objects keep their keys in order. */
export class JsonValue {
  kind: JsonKind = JsonKind.NULL;
  private b: bool = false;
  private n: f64 = 0;
  private s: string = "";
  private items: JsonValue[] | null = null;
  private keys: string[] | null = null;

  static ofNull(): JsonValue {
    return new JsonValue();
  }

  static ofBool(value: bool): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.BOOL;
    v.b = value;
    return v;
  }

  static ofNumber(value: f64): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.NUMBER;
    v.n = value;
    return v;
  }

  static ofString(value: string): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.STRING;
    v.s = value;
    return v;
  }

  static newArray(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.ARRAY;
    v.items = [];
    return v;
  }

  static newObject(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.OBJECT;
    v.items = [];
    v.keys = [];
    return v;
  }

  /** Parse a whole document; null if it is not valid JSON. */
  static parse(text: string): JsonValue | null {
    return whole(JsonReader.fromString(text));
  }

  /** Parse a whole document from UTF-8 bytes; null if it is not valid JSON. */
  static parseBytes(bytes: Uint8Array): JsonValue | null {
    return whole(JsonReader.fromBytes(bytes));
  }

  get isNull(): bool {
    return this.kind == JsonKind.NULL;
  }

  /** Items of an array, members of an object; 0 for anything else. */
  get length(): i32 {
    const items = this.items;
    return items === null ? 0 : items.length;
  }

  /** Item `i` of an array (or the value of member `i` of an object); null if none. */
  at(i: i32): JsonValue | null {
    const items = this.items;
    if (items === null || i < 0 || i >= items.length) return null;
    return unchecked(items[i]);
  }

  /** Key `i` of an object; null if none. */
  keyAt(i: i32): string | null {
    const keys = this.keys;
    if (keys === null || i < 0 || i >= keys.length) return null;
    return unchecked(keys[i]);
  }

  /** Member `key` of an object; null if absent or not an object. */
  get(key: string): JsonValue | null {
    const keys = this.keys;
    if (keys === null) return null;
    for (let i = keys.length - 1; i >= 0; i--) {
      if (unchecked(keys[i]) == key) return this.at(i);
    }
    return null;
  }

  /** Set member `key` of an object (replacing it). Returns this. */
  set(key: string, value: JsonValue): JsonValue {
    const keys = this.keys;
    const items = this.items;
    if (keys === null || items === null) throw new Error("JsonValue.set on a non-object");
    for (let i = 0; i < keys.length; i++) {
      if (unchecked(keys[i]) == key) {
        unchecked((items[i] = value));
        return this;
      }
    }
    keys.push(key);
    items.push(value);
    return this;
  }

  /** Append to an array. Returns this. */
  push(value: JsonValue): JsonValue {
    const items = this.items;
    if (items === null || this.keys !== null) throw new Error("JsonValue.push on a non-array");
    items.push(value);
    return this;
  }

  asBool(fallback: bool): bool {
    return this.kind == JsonKind.BOOL ? this.b : fallback;
  }

  asNumber(fallback: f64): f64 {
    return this.kind == JsonKind.NUMBER ? this.n : fallback;
  }

  asString(fallback: string): string {
    return this.kind == JsonKind.STRING ? this.s : fallback;
  }

  /** Compact JSON text. NaN and infinities are written as null. */
  toJson(): string {
    const parts = new Array<string>();
    this.write(parts);
    return parts.join("");
  }

  private write(parts: string[]): void {
    if (this.kind == JsonKind.NULL) parts.push("null");
    else if (this.kind == JsonKind.BOOL) parts.push(this.b ? "true" : "false");
    else if (this.kind == JsonKind.NUMBER) parts.push(jsonNumber(this.n));
    else if (this.kind == JsonKind.STRING) parts.push(jsonQuote(this.s));
    else {
      const items = this.items!;
      const keys = this.keys;
      parts.push(keys === null ? "[" : "{");
      for (let i = 0; i < items.length; i++) {
        if (i > 0) parts.push(",");
        if (keys !== null) {
          parts.push(jsonQuote(unchecked(keys[i])));
          parts.push(":");
        }
        unchecked(items[i]).write(parts);
      }
      parts.push(keys === null ? "]" : "}");
    }
  }
}

function whole(reader: JsonReader): JsonValue | null {
  const value = reader.readValue();
  if (value === null || reader.failed || !reader.atEnd()) return null;
  return value;
}

/** A number as JSON: integers without a fraction, NaN and infinities as null. */
export function jsonNumber(value: f64): string {
  if (!isFinite(value)) return "null";
  if (value == Math.floor(value) && Math.abs(value) < 9007199254740992.0) return (<i64>value).toString();
  const text = value.toString();
  // AssemblyScript writes a large whole number as "1234...000.0"
  return text.endsWith(".0") ? text.substring(0, text.length - 2) : text;
}

const HEX = "0123456789abcdef";

/** A string as a JSON string literal, quotes included. */
export function jsonQuote(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c == 0x22 || c == 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return "\"" + text + "\"";
  const parts = new Array<string>();
  parts.push("\"");
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    if (i > from) parts.push(text.substring(from, i));
    if (c == 0x22) parts.push("\\\"");
    else if (c == 0x5c) parts.push("\\\\");
    else if (c == 0x0a) parts.push("\\n");
    else if (c == 0x0d) parts.push("\\r");
    else if (c == 0x09) parts.push("\\t");
    else parts.push("\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15));
    from = i + 1;
  }
  if (text.length > from) parts.push(text.substring(from));
  parts.push("\"");
  return parts.join("");
}

/** A packed host result holding JSON, read by `parse` into a T; frees the
 *  buffer. A status stays a status; none (0) or JSON `parse` cannot read
 *  is UNREADABLE_RESULT: the functions using this always return a document. */
export function readPackedJson<T>(r: i64, parse: (reader: JsonReader) => T): Result<T> {
  if (r < 0) return failure<T>(packedStatus(r));
  if (r == 0) return failure<T>(Status.UNREADABLE_RESULT);
  const ptr = packedPtr(r);
  const reader = new JsonReader(ptr, packedLen(r));
  const value = parse(reader);
  const good = !reader.failed && reader.atEnd();
  return good ? success<T>(value) : failure<T>(Status.UNREADABLE_RESULT);
}
