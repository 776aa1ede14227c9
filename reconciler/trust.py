"""Trust levels, and what each lets a plugin hold (the seed's Security Considerations).

    Verified   signed by a key in [plugins.trust] verified_publisher_keys: every capability
    Signed     signed by the key the registry holds for its publisher: every capability but
               RegistryWrite (dangerous ones still need the user's approval)
    Unsigned   local development only, never accepted from a registry: read-only capabilities

The level comes from a signature checked on this machine, never from a
field someone else wrote (a registry entry's `verified` flag is shown, not
believed). Approval is a separate rule (plan.py holds unapproved installs);
this module says only what a level may hold at all.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from hostcalls.capabilities import Capability, CapabilityKind


class TrustLevel(enum.Enum):
    UNSIGNED = "unsigned"
    SIGNED = "signed"
    VERIFIED = "verified"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __str__(self) -> str:
        return self.value


_RANK = {TrustLevel.UNSIGNED: 0, TrustLevel.SIGNED: 1, TrustLevel.VERIFIED: 2}

# What an unsigned plugin may hold: capabilities that only read.
READ_ONLY = frozenset(
    {
        CapabilityKind.READ_SYSTEM_INFO,
        CapabilityKind.READ_PROCESS_LIST,
        CapabilityKind.SHOW_NOTIFICATIONS,
        CapabilityKind.FILESYSTEM_READ,
        CapabilityKind.REGISTRY_READ,
    }
)

# The seed: "RegistryWrite only available to Verified (RuVector-signed) plugins".
VERIFIED_ONLY = frozenset({CapabilityKind.REGISTRY_WRITE})


def permits(level: TrustLevel, kind: CapabilityKind) -> bool:
    """Whether a plugin of `level` may hold a capability of `kind` at all."""
    if level is TrustLevel.VERIFIED:
        return True
    if level is TrustLevel.SIGNED:
        return kind not in VERIFIED_ONLY
    return kind in READ_ONLY


def beyond(level: TrustLevel, declared: Iterable[Capability]) -> list[str]:
    """The declared capabilities `level` does not permit, as sorted texts."""
    return sorted(str(c) for c in declared if not permits(level, c.kind))


def explain(level: TrustLevel) -> str:
    """What `level` may hold, for messages."""
    if level is TrustLevel.VERIFIED:
        return "verified plugins may hold every capability"
    if level is TrustLevel.SIGNED:
        return (
            "signed plugins may hold every capability but RegistryWrite, "
            "which needs a verified publisher"
        )
    return "unsigned plugins may hold read-only capabilities only"
