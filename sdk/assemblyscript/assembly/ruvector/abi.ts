// The module's side of the contract (docs/abi.md, section 2): rv_abi_version,
// rv_alloc, and moving bytes across the boundary.
//
// Memory. The SDK is built with `--runtime minimal` (asconfig.json): TLSF
// allocation plus a mark-and-sweep collector that runs only when asked. The
// hook entry points in plugin.ts ask at the start of every hook, when no
// reference can be on the wasm stack, so whatever the previous hook left
// unreferenced is freed. What the plugin holds in globals survives.
//
// Host buffers. rv_alloc does not use the heap: it hands out one scratch
// region, outside TLSF, which every call reuses. The host asks for one
// buffer at a time (a result, or a hook's string argument) and the SDK
// copies or reads it before its next host call, so one region is enough.
// It is reserved when the plugin registers (64 KiB) and grows, by whole
// pages at the end of memory, when a result is larger than any before. So
// rv_alloc never traps, and a heap that has grown to the memory ceiling
// (TLSF doubles memory as it grows) still leaves room for the host's
// answers; only a result larger than any before can then get NO_MEMORY.

import * as host from "./host";
import { Status } from "./status";

/** ABI version this SDK speaks. */
export const ABI_VERSION: i32 = 1;

/** Largest buffer rv_alloc hands out. The host's results are far smaller
 *  (1 MiB for files and HTTP bodies); this bounds a runaway request. */
const MAX_HOST_BUFFER: usize = 32 << 20;
const PAGE: usize = 65536;

let scratch: usize = 0; // the region's address; 0 until reserved
let scratchSize: usize = 0; // bytes

// True while rv_alloc runs: a host call from there is a violation, so the
// abort handler must not log.
let inAllocator = false;

export function rv_abi_version(): i32 {
  return ABI_VERSION;
}

/** Memory for the host to write a result or a hook argument into: the
 *  scratch region. 0 (the host then answers NO_MEMORY) if it must grow and
 *  memory cannot. Valid until the next host call or hook. */
export function rv_alloc(size: i32): usize {
  if (size <= 0 || <usize>size > MAX_HOST_BUFFER) return 0;
  if (<usize>size <= scratchSize) return scratch;
  inAllocator = true;
  const grown = growScratch(<usize>size);
  inAllocator = false;
  return grown ? scratch : 0;
}

/** Reserve the scratch region (64 KiB). Called by register(); idempotent. */
export function reserveScratch(): void {
  if (scratch == 0) growScratch(PAGE);
}

// A new region of at least `size` bytes (and at least twice the old one, so
// regions left behind add up to less than the current one).
function growScratch(size: usize): bool {
  // TLSF takes all of memory when it starts; it must have started before
  // pages are added behind its back (it leaves those alone).
  heap.free(heap.alloc(1));
  let bytes = (size + PAGE - 1) & ~(PAGE - 1);
  if (bytes < scratchSize << 1) bytes = scratchSize << 1;
  const before = memory.grow(<i32>(bytes >>> 16));
  if (before < 0) return false;
  scratch = <usize>before << 16;
  scratchSize = bytes;
  return true;
}

// -- packed results (docs/abi.md, 3.3) ----------------------------------------

/** The buffer address of a packed result r > 0. */
// @ts-ignore: decorator
@inline export function packedPtr(r: i64): usize {
  return <usize>(<u64>r >>> 32);
}

/** The buffer length of a packed result r > 0. */
// @ts-ignore: decorator
@inline export function packedLen(r: i64): usize {
  return <usize>(<u64>r & 0xffffffff);
}

/** A packed result's status: OK for a buffer or none, else the status. */
export function packedStatus(r: i64): i32 {
  return r < 0 ? <i32>r : Status.OK;
}

/** The text in a host buffer, as a string (copied). */
export function takeText(ptr: usize, len: usize): string {
  return String.UTF8.decodeUnsafe(ptr, len);
}

/** The bytes in a host buffer, copied. */
export function takeBytes(ptr: usize, len: usize): Uint8Array {
  const bytes = new Uint8Array(<i32>len);
  memory.copy(bytes.dataStart, ptr, len);
  return bytes;
}

// -- arguments ------------------------------------------------------------------

/** UTF-8 of `text` for the host. Lone surrogates become U+FFFD: the host
 *  counts text that is not UTF-8 as a violation. */
export function utf8(text: string): ArrayBuffer {
  return String.UTF8.encode(text, false, String.UTF8.ErrorMode.REPLACE);
}

/** How many of the first `cap` bytes of `buf` end on a character boundary. */
export function cutUtf8(buf: ArrayBuffer, cap: i32): i32 {
  let n = buf.byteLength;
  if (n <= cap) return n;
  n = cap;
  // back off continuation bytes (10xxxxxx) so no character is split
  while (n > 0 && (load<u8>(changetype<usize>(buf) + <usize>n) & 0xc0) == 0x80) n--;
  return n;
}

// -- abort and trace (aliased in asconfig.json: `use`) ---------------------------

const ABORT_BUFFER_SIZE: usize = 1024;
const abortBuffer = memory.data(<i32>ABORT_BUFFER_SIZE);

/** `abort` for the whole module (assert, throw, out-of-bounds...): logs
 *  "abort: MESSAGE at FILE:LINE:COLUMN" at error level, then traps. It
 *  allocates nothing, as it may run because allocation failed. */
export function abortHandler(message: string | null, fileName: string | null, line: u32, column: u32): void {
  if (!inAllocator) {
    let n: usize = putText(0, "abort: ");
    n = putText(n, message !== null ? message : "(no message)");
    if (fileName !== null) {
      n = putText(n, " at ");
      n = putText(n, fileName);
      n = putText(n, ":");
      n = putNumber(n, line);
      n = putText(n, ":");
      n = putNumber(n, column);
    }
    host.log(4, abortBuffer, <i32>n);
  }
  unreachable();
}

/** `trace` for the whole module: one line at trace level. */
export function traceHandler(message: string, n: i32 = 0, a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0, a4: f64 = 0): void {
  let line = message;
  if (n > 0) line += " " + a0.toString();
  if (n > 1) line += " " + a1.toString();
  if (n > 2) line += " " + a2.toString();
  if (n > 3) line += " " + a3.toString();
  if (n > 4) line += " " + a4.toString();
  const buf = utf8(line);
  host.log(0, changetype<usize>(buf), cutUtf8(buf, 8192));
}

// UTF-16 -> UTF-8 into abortBuffer from offset `at`; stops before a
// character that would not fit. Returns the new offset.
function putText(at: usize, text: string): usize {
  const units = text.length;
  for (let i = 0; i < units; i++) {
    let c = <u32>text.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < units) {
      const d = <u32>text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate
    const size: usize = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (at + size > ABORT_BUFFER_SIZE) break;
    const p = abortBuffer + at;
    if (size == 1) {
      store<u8>(p, c);
    } else if (size == 2) {
      store<u8>(p, 0xc0 | (c >> 6));
      store<u8>(p, 0x80 | (c & 0x3f), 1);
    } else if (size == 3) {
      store<u8>(p, 0xe0 | (c >> 12));
      store<u8>(p, 0x80 | ((c >> 6) & 0x3f), 1);
      store<u8>(p, 0x80 | (c & 0x3f), 2);
    } else {
      store<u8>(p, 0xf0 | (c >> 18));
      store<u8>(p, 0x80 | ((c >> 12) & 0x3f), 1);
      store<u8>(p, 0x80 | ((c >> 6) & 0x3f), 2);
      store<u8>(p, 0x80 | (c & 0x3f), 3);
    }
    at += size;
  }
  return at;
}

function putNumber(at: usize, value: u32): usize {
  let digits: usize = 1;
  for (let v = value / 10; v > 0; v /= 10) digits++;
  if (at + digits > ABORT_BUFFER_SIZE) return at;
  for (let i = digits; i > 0; i--) {
    store<u8>(abortBuffer + at + i - 1, 0x30 + value % 10);
    value /= 10;
  }
  return at + digits;
}
