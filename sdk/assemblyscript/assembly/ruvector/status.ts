// Statuses (docs/abi.md, section 4), two of the SDK's own, and Result<T>,
// what every wrapper that returns a value gives back. A status is an
// answer, not a failure of the plugin: check `ok` and act on `status`.

/** The ABI v1 status codes, then the SDK's. Treat any other negative value
 *  as a failure. */
export enum Status {
  OK = 0,
  /** The granted capability does not cover this target (path, host). */
  DENIED = -1,
  /** No such process, file or key. */
  NOT_FOUND = -2,
  /** A malformed argument: JSON, a path, a key, a value out of range. */
  INVALID_ARGUMENT = -3,
  /** This platform has no such thing (e.g. the registry off Windows). */
  UNSUPPORTED = -4,
  /** Too many calls of this kind in this tick. */
  RATE_LIMITED = -5,
  /** The target process is protected. */
  PROTECTED = -6,
  /** The result or a stored value would exceed its cap. */
  TOO_LARGE = -7,
  /** The OS refused or failed. */
  IO_ERROR = -8,
  /** The operation ran out of the call's time. */
  TIMEOUT = -9,
  /** rv_alloc could not give the host a buffer for the result. */
  NO_MEMORY = -10,
  /** A fault inside the host. */
  HOST_ERROR = -11,

  // The SDK's own codes, never sent by the host (ABI v1 statuses stop at -11).

  /** The SDK did not call the host: an argument is over its cap (docs/abi.md,
   *  8.3), which the host would count as a violation. */
  ARGUMENT_OVER_CAP = -100,
  /** The host's reply is not what ABI v1 describes (JSON the SDK cannot read,
   *  "none" where the function always answers). */
  UNREADABLE_RESULT = -101,
}

/** The name of a status, e.g. "NOT_FOUND"; "STATUS(-42)" for one v1 does not define. */
export function statusName(status: i32): string {
  switch (status) {
    case Status.OK: return "OK";
    case Status.DENIED: return "DENIED";
    case Status.NOT_FOUND: return "NOT_FOUND";
    case Status.INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case Status.UNSUPPORTED: return "UNSUPPORTED";
    case Status.RATE_LIMITED: return "RATE_LIMITED";
    case Status.PROTECTED: return "PROTECTED";
    case Status.TOO_LARGE: return "TOO_LARGE";
    case Status.IO_ERROR: return "IO_ERROR";
    case Status.TIMEOUT: return "TIMEOUT";
    case Status.NO_MEMORY: return "NO_MEMORY";
    case Status.HOST_ERROR: return "HOST_ERROR";
    case Status.ARGUMENT_OVER_CAP: return "ARGUMENT_OVER_CAP";
    case Status.UNREADABLE_RESULT: return "UNREADABLE_RESULT";
  }
  return "STATUS(" + status.toString() + ")";
}

/** A value, or the status that stands in its place. */
export class Result<T> {
  constructor(
    /** Status.OK, or why there is no value. */
    readonly status: i32,
    private readonly inner: T,
  ) {}

  get ok(): bool {
    return this.status == Status.OK;
  }

  /** The value. Aborts the call (a TRAP violation) if there is none: check `ok` first. */
  get value(): T {
    if (this.status != Status.OK) throw new Error("no value: the host answered " + statusName(this.status));
    return this.inner;
  }

  /** The value, or `fallback` when the call failed. */
  valueOr(fallback: T): T {
    return this.status == Status.OK ? this.inner : fallback;
  }

  /** The status's name, e.g. "OK" or "IO_ERROR". */
  get statusName(): string {
    return statusName(this.status);
  }
}

/** A successful Result. */
export function success<T>(value: T): Result<T> {
  return new Result<T>(Status.OK, value);
}

/** A Result carrying only `status` (never Status.OK). */
export function failure<T>(status: i32): Result<T> {
  if (isReference<T>()) return new Result<T>(status, changetype<T>(0));
  // @ts-ignore: T is a number type here
  return new Result<T>(status, <T>0);
}
