"""The host's view of one plugin's linear memory, and the faults it raises.

Every pointer and length a plugin passes goes through GuestMemory.read, which
checks it against the memory's current size and a per-argument cap. A bad one
raises GuestFault: the executor turns it into a violation for that plugin and
aborts the call; it never reaches the rest of the host.
"""

from __future__ import annotations

import enum
from typing import Protocol


class FaultKind(enum.Enum):
    BAD_POINTER = "bad pointer"  # outside linear memory
    TOO_LARGE = "argument too large"  # over the argument's cap
    BAD_ENCODING = "bad encoding"  # not UTF-8 where text is required
    ABUSE = "host-call abuse"  # too many calls in one hook call
    BAD_ALLOCATOR = "bad allocator"  # rv_alloc returned memory it does not own


class GuestFault(Exception):
    """A plugin broke the ABI in a host call. Raised through the wasm call."""

    def __init__(self, kind: FaultKind, function: str, detail: str) -> None:
        self.kind = kind
        self.function = function
        self.detail = detail
        super().__init__(f"{kind.value} in {function}: {detail}")


class GuestAborted(Exception):
    """The plugin's own code trapped inside a host call (in rv_alloc).

    Carries the binding's original error; host functions let it through so
    the executor reports the trap, not a host error.
    """

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(str(cause))


class GuestMemory(Protocol):
    """One plugin's memory during one host call."""

    def read(self, function: str, ptr: int, length: int, cap: int) -> bytes:
        """Copy `length` bytes at `ptr`; GuestFault if out of bounds or over cap."""
        ...

    def write_result(self, function: str, data: bytes) -> int:
        """Copy `data` into a buffer from rv_alloc and return it packed.

        An empty result still gets a real buffer (rv_alloc(1)), so its packed
        value is never 0, which means "none". Returns Status.NO_MEMORY if the
        allocator returned 0. Raises GuestFault if it returned a buffer outside
        memory, GuestAborted if the allocator trapped.
        """
        ...


def read_text(mem: GuestMemory, function: str, ptr: int, length: int, cap: int) -> str:
    """Read a UTF-8 string argument; GuestFault if it is not UTF-8."""
    raw = mem.read(function, ptr, length, cap)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GuestFault(
            FaultKind.BAD_ENCODING,
            function,
            f"string is not UTF-8 ({exc.reason} at byte {exc.start})",
        ) from None
