"""Capabilities: what a plugin may ask the host to do.

A capability is written as text wherever people write it (manifest.toml,
ruvector.toml, the command line): a bare name, or a name with an argument list
for the scoped ones::

    ReadProcessList
    FileSystemRead(/var/log/myapp)
    NetworkAccess(homeassistant.local, 192.168.1.20:8123)

The manifest *declares* what a plugin needs; the user *approves* the dangerous
ones; the runtime *grants* the declared capabilities that are safe or
approved and links only their host functions.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass


class CapabilityError(ValueError):
    """A capability's text is malformed or names a refused capability."""


class CapabilityKind(enum.Enum):
    READ_SYSTEM_INFO = "ReadSystemInfo"
    READ_PROCESS_LIST = "ReadProcessList"
    MODIFY_PROCESS_PRIORITY = "ModifyProcessPriority"
    TRIM_PROCESS_MEMORY = "TrimProcessMemory"
    KILL_PROCESS = "KillProcess"
    SHOW_NOTIFICATIONS = "ShowNotifications"
    NETWORK_ACCESS = "NetworkAccess"
    FILESYSTEM_READ = "FileSystemRead"
    FILESYSTEM_WRITE = "FileSystemWrite"
    REGISTRY_READ = "RegistryRead"
    REGISTRY_WRITE = "RegistryWrite"


# The seed's "requires approval" set. FileSystemRead is added: a path the
# author chose (~/.ssh, a browser profile) can hold secrets, and reading it
# should be the user's call, not the author's.
DANGEROUS = frozenset(
    {
        CapabilityKind.MODIFY_PROCESS_PRIORITY,
        CapabilityKind.TRIM_PROCESS_MEMORY,
        CapabilityKind.KILL_PROCESS,
        CapabilityKind.NETWORK_ACCESS,
        CapabilityKind.FILESYSTEM_READ,
        CapabilityKind.FILESYSTEM_WRITE,
        CapabilityKind.REGISTRY_WRITE,
    }
)

_SCOPED_PATH = frozenset({CapabilityKind.FILESYSTEM_READ, CapabilityKind.FILESYSTEM_WRITE})
_SCOPED_HOSTS = frozenset({CapabilityKind.NETWORK_ACCESS})

# The seed's RunCommand: removed by its own security section. Named here so
# the refusal can say so instead of "unknown capability".
REFUSED = {"RunCommand": "RunCommand is not available: plugins use the structured host API"}

_TEXT = re.compile(r"^\s*([A-Za-z]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$")


@dataclass(frozen=True)
class Capability:
    """A capability with its scope: a path for file access, hosts for network."""

    kind: CapabilityKind
    path: str | None = None
    hosts: tuple[str, ...] = ()

    def __lt__(self, other: Capability) -> bool:
        """Sorted by their text form, so lists read alphabetically."""
        return str(self) < str(other)

    @property
    def dangerous(self) -> bool:
        return self.kind in DANGEROUS

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.kind.value}({self.path})"
        if self.hosts:
            return f"{self.kind.value}({', '.join(self.hosts)})"
        return self.kind.value

    def covers(self, other: Capability) -> bool:
        """Whether holding self allows everything `other` asks for."""
        if self.kind is not other.kind:
            return False
        if self.kind in _SCOPED_PATH:
            assert self.path is not None and other.path is not None
            # Access follows symlinks, so the check must too: a declared
            # path that is a link out of the approved tree is not covered.
            return path_within(other.path, self.path) and path_within(
                os.path.realpath(other.path), os.path.realpath(self.path)
            )
        if self.kind in _SCOPED_HOSTS:
            return all(host_allowed(h, self.hosts) for h in other.hosts)
        return True


def parse(text: str) -> Capability:
    """Parse one capability's text form.

    Raises CapabilityError naming the text and what was expected.
    """
    m = _TEXT.match(text)
    if not m:
        raise CapabilityError(f"'{text}' is not a capability: expected Name or Name(argument)")
    name, arg = m.group(1), m.group(2)
    if name in REFUSED:
        raise CapabilityError(REFUSED[name])
    try:
        kind = CapabilityKind(name)
    except ValueError:
        known = ", ".join(k.value for k in CapabilityKind)
        raise CapabilityError(f"unknown capability '{name}' (known: {known})") from None
    if kind in _SCOPED_PATH:
        return Capability(kind, path=_parse_path(name, arg))
    if kind in _SCOPED_HOSTS:
        return Capability(kind, hosts=_parse_hosts(name, arg))
    if arg is not None:
        raise CapabilityError(f"{name} takes no argument, got '{text.strip()}'")
    return Capability(kind)


def parse_all(texts: Iterable[str]) -> frozenset[Capability]:
    return frozenset(parse(t) for t in texts)


def _parse_path(name: str, arg: str | None) -> str:
    if arg is None or not arg.strip():
        raise CapabilityError(f"{name} needs a path: {name}(/some/dir)")
    raw = os.path.expanduser(arg.strip())
    if not os.path.isabs(raw):
        raise CapabilityError(f"{name}({arg}): the path must be absolute")
    # Normalised lexically here; symlinks are resolved at each access.
    return os.path.normpath(raw)


def _parse_hosts(name: str, arg: str | None) -> tuple[str, ...]:
    if arg is None or not arg.strip():
        raise CapabilityError(f"{name} needs the hosts it may reach: {name}(api.example.com)")
    hosts = []
    for part in arg.split(","):
        host = part.strip().lower()
        if not _HOST.match(host):
            raise CapabilityError(f"{name}: '{part.strip()}' is not a host or host:port")
        hosts.append(host)
    return tuple(sorted(set(hosts)))


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether `host` (host or host:port) is allowed by the `allowed` entries.

    An entry without a port allows every port of its host.
    """
    name = _host_name(host)
    return any(a in (host, name) for a in allowed)


def _host_name(host: str) -> str:
    m = _HOST.match(host)
    return m.group(1) if m else host


def path_within(path: str, root: str) -> bool:
    """Whether `path` is `root` or lies below it (both already absolute)."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


@dataclass(frozen=True)
class Grant:
    """What a plugin is allowed: the result of matching declared to approved."""

    granted: frozenset[Capability]
    pending: frozenset[Capability]  # declared, dangerous, not approved

    def kinds(self) -> frozenset[CapabilityKind]:
        return frozenset(c.kind for c in self.granted)

    def of_kind(self, kind: CapabilityKind) -> tuple[Capability, ...]:
        return tuple(sorted(c for c in self.granted if c.kind is kind))


def grant(declared: Iterable[Capability], approved: Iterable[Capability]) -> Grant:
    """Grant each declared capability that is safe, or covered by an approval.

    An approval never widens a declaration: the plugin gets exactly what its
    manifest declared, and only the parts the user approved.
    """
    approved = tuple(approved)
    granted, pending = set(), set()
    for cap in declared:
        if not cap.dangerous or any(a.covers(cap) for a in approved):
            granted.add(cap)
        elif cap.kind in _SCOPED_HOSTS:
            # Hosts are approved one by one: grant the approved part.
            ok, rest = _split_hosts(cap, approved)
            granted.update(ok)
            pending.update(rest)
        else:
            pending.add(cap)
    return Grant(frozenset(granted), frozenset(pending))


def _split_hosts(
    cap: Capability, approved: tuple[Capability, ...]
) -> tuple[list[Capability], list[Capability]]:
    allowed = [h for a in approved if a.kind is cap.kind for h in a.hosts]
    ok = tuple(h for h in cap.hosts if host_allowed(h, allowed))
    rest = tuple(h for h in cap.hosts if h not in ok)
    return (
        [Capability(cap.kind, hosts=ok)] if ok else [],
        [Capability(cap.kind, hosts=rest)] if rest else [],
    )
