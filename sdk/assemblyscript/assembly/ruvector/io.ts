// Notifications, HTTP, files and the Windows registry (docs/abi.md, 6.5 to
// 6.8). Scoped capabilities (NetworkAccess(host), FileSystemRead(path)...)
// are checked per call: a target outside the grant answers DENIED.

import * as host from "./host";
import { cutUtf8, packedLen, packedPtr, packedStatus, takeBytes, utf8 } from "./abi";
import { JsonKind, JsonReader, JsonValue, jsonQuote, readPackedJson } from "./json";
import { Result, Status, failure, success } from "./status";

export const NOTIFICATION_TITLE_CAP: i32 = 256;
export const NOTIFICATION_MESSAGE_CAP: i32 = 4096;
export const HTTP_REQUEST_CAP: i32 = 1 << 20;
export const PATH_CAP: i32 = 4096;
export const FILE_DATA_CAP: i32 = 1 << 20;
export const REGISTRY_KEY_CAP: i32 = 1024;
export const REGISTRY_VALUE_CAP: i32 = 65536;

/** Show a desktop notification (ShowNotifications). A title over 256 bytes
 *  or a message over 4096 is cut at a character boundary. RATE_LIMITED
 *  past 5 in a tick (dropped). */
export function showNotification(title: string, message: string): Status {
  const t = utf8(title);
  const m = utf8(message);
  return host.show_notification(
    changetype<usize>(t), cutUtf8(t, NOTIFICATION_TITLE_CAP),
    changetype<usize>(m), cutUtf8(m, NOTIFICATION_MESSAGE_CAP),
  );
}

// -- HTTP (NetworkAccess(host)) -----------------------------------------------------

/** A request for httpRequest. Redirects are not followed; the whole
 *  exchange must fit the calling hook's deadline (100 ms by default). */
export class HttpRequest {
  /** GET, POST, PUT, PATCH, DELETE or HEAD. */
  method: string = "GET";
  url: string;
  headers: Map<string, string> = new Map<string, string>();
  body: string | null = null;

  constructor(url: string, method: string = "GET") {
    this.url = url;
    this.method = method;
  }

  header(name: string, value: string): HttpRequest {
    this.headers.set(name, value);
    return this;
  }

  withBody(body: string): HttpRequest {
    this.body = body;
    return this;
  }

  /** The request as the host reads it. */
  toJson(): string {
    const parts = new Array<string>();
    parts.push("{\"method\":" + jsonQuote(this.method) + ",\"url\":" + jsonQuote(this.url));
    const names = this.headers.keys();
    if (names.length > 0) {
      parts.push(",\"headers\":{");
      for (let i = 0; i < names.length; i++) {
        if (i > 0) parts.push(",");
        parts.push(jsonQuote(names[i]) + ":" + jsonQuote(this.headers.get(names[i])));
      }
      parts.push("}");
    }
    const body = this.body;
    if (body !== null) parts.push(",\"body\":" + jsonQuote(body));
    parts.push("}");
    return parts.join("");
  }
}

export class HttpResponse {
  status: i32 = 0;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Map<string, string> = new Map<string, string>();
  /** Decoded as UTF-8 with bad bytes replaced: binary bodies do not survive. */
  body: string = "";

  /** A header by (any-case) name, or null. */
  header(name: string): string | null {
    const key = name.toLowerCase();
    return this.headers.has(key) ? this.headers.get(key) : null;
  }
}

/** Send `request`. DENIED (host not granted), INVALID_ARGUMENT, TIMEOUT,
 *  TOO_LARGE (body over 1 MiB), IO_ERROR otherwise. */
export function httpRequest(request: HttpRequest): Result<HttpResponse> {
  const req = utf8(request.toJson());
  if (req.byteLength > HTTP_REQUEST_CAP) return failure<HttpResponse>(Status.ARGUMENT_OVER_CAP);
  return readPackedJson<HttpResponse>(
    host.http_request(changetype<usize>(req), req.byteLength), parseResponse,
  );
}

function parseResponse(reader: JsonReader): HttpResponse {
  const response = new HttpResponse();
  if (!reader.beginObject()) return response;
  while (reader.nextMember()) {
    if (reader.keyIs("status")) response.status = <i32>reader.readIntegerOr(0);
    else if (reader.keyIs("body")) response.body = reader.readStringOr("");
    else if (reader.keyIs("headers") && reader.beginObject()) {
      let name = reader.nextKey();
      while (name !== null) {
        response.headers.set(name, reader.readStringOr(""));
        name = reader.nextKey();
      }
    } else reader.skip();
  }
  return response;
}

// -- files (FileSystemRead(path), FileSystemWrite(path)) ------------------------------

/** The whole file at `path` (at most 1 MiB). A relative path is taken
 *  against the plugin's single read root. DENIED, NOT_FOUND, TOO_LARGE,
 *  INVALID_ARGUMENT (directory, ambiguous path...), IO_ERROR otherwise. */
export function readFile(path: string): Result<Uint8Array> {
  const p = utf8(path);
  if (p.byteLength > PATH_CAP) return failure<Uint8Array>(Status.ARGUMENT_OVER_CAP);
  const r = host.read_file(changetype<usize>(p), p.byteLength);
  if (r <= 0) return failure<Uint8Array>(r < 0 ? packedStatus(r) : Status.UNREADABLE_RESULT);
  return success<Uint8Array>(takeBytes(packedPtr(r), packedLen(r)));
}

/** readFile, decoded as UTF-8 (invalid bytes are decoded loosely). */
export function readTextFile(path: string): Result<string> {
  const r = readFile(path);
  if (!r.ok) return failure<string>(r.status);
  const bytes = r.value;
  return success<string>(String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.byteLength));
}

/** Create or replace `path` atomically with `data` (at most 1 MiB; over
 *  that, ARGUMENT_OVER_CAP without calling the host). RATE_LIMITED past 4 MiB or 64
 *  files in a tick. DENIED, NOT_FOUND (no parent), INVALID_ARGUMENT, IO_ERROR. */
export function writeFile(path: string, data: Uint8Array): Status {
  const p = utf8(path);
  if (p.byteLength > PATH_CAP || data.byteLength > FILE_DATA_CAP) return Status.ARGUMENT_OVER_CAP;
  return host.write_file(changetype<usize>(p), p.byteLength, data.dataStart, data.byteLength);
}

/** writeFile with `text` as UTF-8. */
export function writeTextFile(path: string, text: string): Status {
  return writeFile(path, Uint8Array.wrap(utf8(text)));
}

// -- Windows registry (RegistryRead, RegistryWrite) ---------------------------------

/** A registry value: its type name and its value as JSON (a string for
 *  REG_SZ, a list of strings for REG_MULTI_SZ, a number for REG_DWORD and
 *  REG_QWORD, lower-case hex text for binary types). */
export class RegistryValue {
  constructor(
    public type: string,
    public value: JsonValue,
  ) {}

  static sz(text: string): RegistryValue {
    return new RegistryValue("REG_SZ", JsonValue.ofString(text));
  }

  static expandSz(text: string): RegistryValue {
    return new RegistryValue("REG_EXPAND_SZ", JsonValue.ofString(text));
  }

  static multiSz(items: string[]): RegistryValue {
    const list = JsonValue.newArray();
    for (let i = 0; i < items.length; i++) list.push(JsonValue.ofString(items[i]));
    return new RegistryValue("REG_MULTI_SZ", list);
  }

  static dword(value: u32): RegistryValue {
    return new RegistryValue("REG_DWORD", JsonValue.ofNumber(<f64>value));
  }

  /** Values above 2^53 lose precision in JSON's numbers: this takes an f64. */
  static qword(value: f64): RegistryValue {
    return new RegistryValue("REG_QWORD", JsonValue.ofNumber(value));
  }

  toJson(): string {
    return "{\"type\":" + jsonQuote(this.type) + ",\"value\":" + this.value.toJson() + "}";
  }
}

/** The value at `key` (e.g. "HKCU\\Software\\Vendor\\Name"). UNSUPPORTED
 *  off Windows; NOT_FOUND, INVALID_ARGUMENT, IO_ERROR on it. */
export function registryRead(key: string): Result<RegistryValue> {
  const k = utf8(key);
  if (k.byteLength > REGISTRY_KEY_CAP) return failure<RegistryValue>(Status.ARGUMENT_OVER_CAP);
  return readPackedJson<RegistryValue>(
    host.registry_read(changetype<usize>(k), k.byteLength), parseRegistryValue,
  );
}

function parseRegistryValue(reader: JsonReader): RegistryValue {
  const out = new RegistryValue("", JsonValue.ofNull());
  if (!reader.beginObject()) return out;
  while (reader.nextMember()) {
    if (reader.keyIs("type")) out.type = reader.readStringOr("");
    else if (reader.keyIs("value")) {
      const value = reader.readValue();
      if (value !== null) out.value = value;
    } else reader.skip();
  }
  if (out.value.kind == JsonKind.NULL) reader.failed = true; // a value always has one
  return out;
}

/** Write `value` at `key`, creating the key if missing. UNSUPPORTED off
 *  Windows; INVALID_ARGUMENT or IO_ERROR on it. */
export function registryWrite(key: string, value: RegistryValue): Status {
  const k = utf8(key);
  const v = utf8(value.toJson());
  if (k.byteLength > REGISTRY_KEY_CAP || v.byteLength > REGISTRY_VALUE_CAP) return Status.ARGUMENT_OVER_CAP;
  return host.registry_write(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}
