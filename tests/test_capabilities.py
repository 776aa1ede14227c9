"""Capabilities: the text form, approval matching and the grant."""

from __future__ import annotations

import pytest

from hostcalls.capabilities import (
    Capability,
    CapabilityError,
    CapabilityKind,
    grant,
    parse,
    parse_all,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ReadProcessList", Capability(CapabilityKind.READ_PROCESS_LIST)),
        (" KillProcess ", Capability(CapabilityKind.KILL_PROCESS)),
        ("FileSystemRead(/var/log/)", Capability(CapabilityKind.FILESYSTEM_READ, path="/var/log")),
        (
            "FileSystemWrite(/tmp/a/../b)",
            Capability(CapabilityKind.FILESYSTEM_WRITE, path="/tmp/b"),
        ),
        (
            "NetworkAccess(HA.local:8123, api.example.com)",
            Capability(CapabilityKind.NETWORK_ACCESS, hosts=("api.example.com", "ha.local:8123")),
        ),
        ("NetworkAccess([::1]:80)", Capability(CapabilityKind.NETWORK_ACCESS, hosts=("[::1]:80",))),
    ],
)
def test_parse(text: str, expected: Capability) -> None:
    assert parse(text) == expected
    assert parse(str(expected)) == expected  # the text form round-trips


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RunCommand", "RunCommand is not available"),
        ("RunCommand(rm -rf /)", "RunCommand is not available"),
        ("ReadEverything", "unknown capability 'ReadEverything'"),
        ("KillProcess(1)", "KillProcess takes no argument"),
        ("FileSystemRead", "FileSystemRead needs a path"),
        ("FileSystemRead(relative/path)", "must be absolute"),
        ("NetworkAccess", "needs the hosts it may reach"),
        ("NetworkAccess(http://x.com)", "is not a host or host:port"),
        ("", "is not a capability"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(CapabilityError, match=message.replace("(", r"\(")):
        parse(text)


def test_dangerous_ones_need_approval() -> None:
    dangerous = {
        c.kind.value
        for c in parse_all(SCOPED.get(k.value, k.value) for k in CapabilityKind)
        if c.dangerous
    }
    assert dangerous == {
        "ModifyProcessPriority", "TrimProcessMemory", "KillProcess", "NetworkAccess",
        "FileSystemRead", "FileSystemWrite", "RegistryWrite",
    }  # fmt: skip


SCOPED = {
    "FileSystemRead": "FileSystemRead(/x)",
    "FileSystemWrite": "FileSystemWrite(/x)",
    "NetworkAccess": "NetworkAccess(x)",
}


def test_safe_capabilities_are_granted_without_approval() -> None:
    g = grant(parse_all(["ReadSystemInfo", "ShowNotifications", "KillProcess"]), [])
    assert {str(c) for c in g.granted} == {"ReadSystemInfo", "ShowNotifications"}
    assert {str(c) for c in g.pending} == {"KillProcess"}


def test_an_approval_covers_but_never_widens() -> None:
    declared = parse_all(["FileSystemRead(/var/log/app)"])
    g = grant(declared, parse_all(["FileSystemRead(/var/log)"]))
    assert g.granted == declared  # the declared path, not the approved parent
    assert grant(declared, parse_all(["FileSystemRead(/var/log/app/sub)"])).pending == declared
    assert grant(declared, parse_all(["FileSystemRead(/var/logs)"])).pending == declared


def test_hosts_are_approved_one_by_one_and_a_bare_host_allows_any_port() -> None:
    declared = parse_all(["NetworkAccess(ha.local:8123, evil.example)"])
    g = grant(declared, parse_all(["NetworkAccess(ha.local)"]))
    assert [str(c) for c in g.granted] == ["NetworkAccess(ha.local:8123)"]
    assert [str(c) for c in g.pending] == ["NetworkAccess(evil.example)"]
    # a port-scoped approval does not cover another port
    other_port = grant(
        parse_all(["NetworkAccess(ha.local:80)"]), parse_all(["NetworkAccess(ha.local:8123)"])
    )
    assert other_port.granted == frozenset()


def test_a_declared_path_that_links_out_of_the_approval_is_not_covered(tmp_path) -> None:
    approved = tmp_path / "approved"
    approved.mkdir()
    (approved / "link").symlink_to("/etc")
    declared = parse_all([f"FileSystemRead({approved / 'link'})"])
    assert grant(declared, parse_all([f"FileSystemRead({approved})"])).pending == declared
    (approved / "inner").mkdir()
    inside = parse_all([f"FileSystemRead({approved / 'inner'})"])
    assert grant(inside, parse_all([f"FileSystemRead({approved})"])).granted == inside
