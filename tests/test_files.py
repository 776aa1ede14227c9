"""read_file / write_file against real files, symlinks and FIFOs in tmp_path."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from hostcalls.abi import Status
from hostcalls.capabilities import Capability, CapabilityKind
from hostcalls.files import read_file, write_file

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="symlinks/FIFOs need POSIX")


def can_read(*roots: Path) -> list[Capability]:
    return [Capability(CapabilityKind.FILESYSTEM_READ, path=str(r)) for r in roots]


def can_write(*roots: Path) -> list[Capability]:
    return [Capability(CapabilityKind.FILESYSTEM_WRITE, path=str(r)) for r in roots]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    (r / "a.txt").write_bytes(b"hello")
    (r / "sub").mkdir()
    (r / "sub" / "b.txt").write_bytes(b"nested")
    (tmp_path / "secret.txt").write_bytes(b"outside")
    return r


# -- read_file ---------------------------------------------------------------


def test_read_absolute_and_relative(root: Path) -> None:
    grants = can_read(root)
    assert read_file(grants, str(root / "a.txt"), 100) == b"hello"
    assert read_file(grants, "sub/b.txt", 100) == b"nested"


def test_read_relative_is_ambiguous_with_two_roots_or_none(root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert read_file(can_read(root, other), "a.txt", 100) == Status.INVALID_ARGUMENT
    assert read_file([], "a.txt", 100) == Status.INVALID_ARGUMENT


def test_read_outside_root_denied(root: Path, tmp_path: Path) -> None:
    grants = can_read(root)
    assert read_file(grants, str(tmp_path / "secret.txt"), 100) == Status.DENIED
    assert read_file(grants, "../secret.txt", 100) == Status.DENIED
    assert read_file(grants, str(root / "sub/../../secret.txt"), 100) == Status.DENIED
    # a missing file outside the root is DENIED too: no probing for existence
    assert read_file(grants, str(tmp_path / "nope"), 100) == Status.DENIED


def test_read_needs_a_read_grant_not_a_write_grant(root: Path) -> None:
    assert read_file(can_write(root), str(root / "a.txt"), 100) == Status.DENIED


def test_read_sibling_with_common_prefix_denied(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "rootkit").mkdir()
    (tmp_path / "rootkit" / "x").write_bytes(b"x")
    assert read_file(can_read(tmp_path / "root"), str(tmp_path / "rootkit/x"), 10) == Status.DENIED


@posix_only
def test_read_symlink_escaping_root_denied(root: Path, tmp_path: Path) -> None:
    (root / "link").symlink_to(tmp_path / "secret.txt")
    (root / "dirlink").symlink_to(tmp_path)
    grants = can_read(root)
    assert read_file(grants, "link", 100) == Status.DENIED
    assert read_file(grants, "dirlink/secret.txt", 100) == Status.DENIED


@posix_only
def test_read_symlink_inside_root_followed(root: Path) -> None:
    (root / "alias").symlink_to(root / "a.txt")
    assert read_file(can_read(root), "alias", 100) == b"hello"


@posix_only
def test_root_given_through_a_symlink(root: Path, tmp_path: Path) -> None:
    (tmp_path / "rootlink").symlink_to(root)
    assert read_file(can_read(tmp_path / "rootlink"), str(root / "a.txt"), 100) == b"hello"


def test_read_errors(root: Path) -> None:
    grants = can_read(root)
    assert read_file(grants, "missing.txt", 100) == Status.NOT_FOUND
    assert read_file(grants, "a.txt/below", 100) == Status.NOT_FOUND
    assert read_file(grants, "sub", 100) == Status.INVALID_ARGUMENT
    assert read_file(grants, "", 100) == Status.INVALID_ARGUMENT  # the root itself
    assert read_file(grants, "a\x00.txt", 100) == Status.INVALID_ARGUMENT


def test_read_size_cap(root: Path) -> None:
    grants = can_read(root)
    assert read_file(grants, "a.txt", 5) == b"hello"
    assert read_file(grants, "a.txt", 4) == Status.TOO_LARGE
    (root / "empty").write_bytes(b"")
    assert read_file(grants, "empty", 0) == b""


@posix_only
def test_read_fifo_refused_without_blocking(root: Path) -> None:
    os.mkfifo(root / "pipe")
    assert read_file(can_read(root), "pipe", 100) == Status.INVALID_ARGUMENT


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_read_device_refused() -> None:
    assert read_file(can_read(Path("/dev")), "/dev/zero", 100) == Status.INVALID_ARGUMENT


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_read_permission_error_is_io_error(root: Path) -> None:
    (root / "a.txt").chmod(0)
    if os.geteuid() != 0:
        assert read_file(can_read(root), "a.txt", 100) == Status.IO_ERROR
        return
    # Root reads anything: ask as an unprivileged user, in a forked child.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        os.setgid(65534)
        os.setuid(65534)
        os._exit(0 if read_file(can_read(root), str(root / "a.txt"), 100) == Status.IO_ERROR else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- write_file --------------------------------------------------------------


def test_write_creates_and_replaces(root: Path) -> None:
    grants = can_write(root)
    assert write_file(grants, "new.txt", b"one", 100) == Status.OK
    assert (root / "new.txt").read_bytes() == b"one"
    assert write_file(grants, str(root / "new.txt"), b"two", 100) == Status.OK
    assert (root / "new.txt").read_bytes() == b"two"
    assert sorted(p.name for p in root.iterdir()) == ["a.txt", "new.txt", "sub"]  # no temp left


@posix_only
def test_write_keeps_the_mode_of_a_replaced_file(root: Path) -> None:
    (root / "a.txt").chmod(0o600)
    assert write_file(can_write(root), "a.txt", b"private", 100) == Status.OK
    assert stat.S_IMODE((root / "a.txt").stat().st_mode) == 0o600


def test_write_outside_root_denied(root: Path, tmp_path: Path) -> None:
    grants = can_write(root)
    assert write_file(grants, str(tmp_path / "x.txt"), b"x", 100) == Status.DENIED
    assert write_file(grants, "../x.txt", b"x", 100) == Status.DENIED
    assert write_file(can_read(root), "x.txt", b"x", 100) == Status.INVALID_ARGUMENT
    assert write_file(can_read(root), str(root / "x.txt"), b"x", 100) == Status.DENIED
    assert not (tmp_path / "x.txt").exists()


def test_write_errors(root: Path) -> None:
    grants = can_write(root)
    assert write_file(grants, "nodir/x.txt", b"x", 100) == Status.NOT_FOUND
    assert write_file(grants, "sub", b"x", 100) == Status.INVALID_ARGUMENT
    assert write_file(grants, "sub/", b"x", 100) == Status.INVALID_ARGUMENT
    assert write_file(grants, "x\x00y", b"x", 100) == Status.INVALID_ARGUMENT
    assert write_file(grants, "big", b"x" * 11, 10) == Status.TOO_LARGE
    assert not (root / "big").exists()


@posix_only
def test_write_through_symlinks(root: Path, tmp_path: Path) -> None:
    grants = can_write(root)
    (root / "out").symlink_to(tmp_path / "secret.txt")
    (root / "in").symlink_to(root / "a.txt")
    (root / "outdir").symlink_to(tmp_path)
    assert write_file(grants, "out", b"x", 100) == Status.DENIED
    assert write_file(grants, "in", b"x", 100) == Status.DENIED  # final symlink: refused
    assert write_file(grants, "outdir/new.txt", b"x", 100) == Status.DENIED
    assert (tmp_path / "secret.txt").read_bytes() == b"outside"
    assert (root / "a.txt").read_bytes() == b"hello"
    assert (root / "in").is_symlink()


@posix_only
def test_write_over_fifo_refused(root: Path) -> None:
    os.mkfifo(root / "pipe")
    assert write_file(can_write(root), "pipe", b"x", 100) == Status.INVALID_ARGUMENT
    assert stat.S_ISFIFO(os.lstat(root / "pipe").st_mode)


def test_the_hosts_own_files_are_private_whatever_the_grant(tmp_path: Path) -> None:
    """A grant of a whole tree never reaches ruvector.toml or the state dir."""
    config = tmp_path / "ruvector.toml"
    config.write_text("[plugins]\n")
    state = tmp_path / "state"
    (state / "cache").mkdir(parents=True)
    (state / "cache" / "host.key").write_bytes(b"k" * 32)
    private = (str(config), str(state))
    assert read_file(can_read(tmp_path), str(config), 1024, private) is Status.DENIED
    assert (
        read_file(can_read(tmp_path), str(state / "cache" / "host.key"), 1024, private)
        is Status.DENIED
    )
    assert write_file(can_write(tmp_path), str(config), b"x", 1024, private) is Status.DENIED
    assert (
        write_file(can_write(tmp_path), str(state / "cache" / "x.cwasm"), b"x", 1024, private)
        is Status.DENIED
    )
    # through a link too
    (tmp_path / "alias").symlink_to(state)
    assert (
        read_file(can_read(tmp_path), str(tmp_path / "alias" / "cache" / "host.key"), 1024, private)
        is Status.DENIED
    )
    # the rest of the tree stays open
    assert (
        write_file(can_write(tmp_path), str(tmp_path / "note.txt"), b"ok", 1024, private)
        is Status.OK
    )
    assert config.read_text() == "[plugins]\n"
