"""The plugin registry tooling: registry.repository and `ruvector registry`, on real files."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner, Result
from tuf.ngclient.updater import Updater  # the package __all__ is opaque to mypy

from reconciler.bundle import (
    Bundle,
    bundle_from_bytes,
    bundle_from_dir,
    open_bundle,
    write_bundle,
)
from reconciler.lock import LockHeld
from reconciler.signature import PublisherKey, SignatureRefused, generate_key, sign_bundle
from registry.index import INDEX_PATH, parse_index
from registry.repository import (
    LOCK_FILE,
    BundleRefused,
    add_bundle,
    init_registry,
    list_entries,
    refresh,
)
from registry.tuf_repo import PublisherError, RegistryFileError, RootKeyNeeded, TufRepository
from ruvector.cli.main import cli
from ruvector.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello"
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_bundle(
    tmp_path: Path,
    key: PublisherKey | None,
    *,
    name: str = "hello",
    version: str = "0.1.0",
    edits: tuple[tuple[str, str], ...] = (),
) -> Path:
    """examples/hello renamed, re-versioned and edited, signed by `key` (None: unsigned)."""
    src = tmp_path / "src" / f"{name}-{version}-{len(list(tmp_path.glob('src/*')))}"
    shutil.copytree(HELLO, src, ignore=shutil.ignore_patterns("manifest.toml.sig"))
    manifest = src / "manifest.toml"
    text = manifest.read_text(encoding="utf-8")
    text = text.replace('name = "hello"\n', f'name = "{name}"\n')
    text = text.replace('\nversion = "0.1.0"\n', f'\nversion = "{version}"\n')
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    manifest.write_text(text, encoding="utf-8")
    bundle = bundle_from_dir(src, check_host=False)
    if key is not None:
        bundle = sign_bundle(bundle, key)
    out = src.parent / f"{src.name}.rvp"
    write_bundle(bundle, out)
    return out


def tree_hash(directory: Path) -> dict[str, str]:
    """Every path under `directory` with its content hash ("dir" for directories).

    The writer lock's note is left out: every write, even a refused one,
    rewrites it with its own pid.
    """

    def digest(p: Path) -> str:
        return "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()

    return {
        str(p.relative_to(directory)): digest(p)
        for p in sorted(directory.rglob("*"))
        if p != directory / LOCK_FILE
    }


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["registry", *map(str, args)])


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    directory = tmp_path / "reg"
    init_registry(directory)
    return directory


@pytest.fixture
def alice() -> PublisherKey:
    return generate_key()


@pytest.fixture
def bob() -> PublisherKey:
    return generate_key()


@pytest.fixture
def published(reg: Path, tmp_path: Path, alice: PublisherKey) -> Path:
    """`reg` with alice registered and hello 0.1.0 published by her."""
    add_bundle(reg, make_bundle(tmp_path, alice), publisher="alice", now=NOW)
    return reg


# ---------------------------------------------------------------------- init


def test_init_publishes_an_empty_index_and_a_root_to_pin(tmp_path: Path) -> None:
    directory = tmp_path / "reg"
    result = run("init", directory)
    assert result.exit_code == 0, result.output
    root = directory / "root.json"
    assert root.read_bytes() == (directory / "repository" / "metadata" / "1.root.json").read_bytes()
    index = list_entries(directory)
    assert dict(index.publishers) == {} and index.entries == ()
    out = result.output
    assert str(directory / "keys") in out
    assert "root.key" in out and "offline" in out
    assert 'registry_url = "http://127.0.0.1:8765"' in out
    assert f'registry_root = "{root.absolute()}"' in out


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "reg").mkdir()
    (tmp_path / "reg" / "x").write_text("")
    result = run("init", tmp_path / "reg")
    assert result.exit_code == 1
    assert "not empty" in result.output


# ---------------------------------------------------------------------- add


def test_add_registers_the_publisher_and_lists_the_entry(
    reg: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    bundle = make_bundle(tmp_path, alice)
    result = add_bundle(reg, bundle, publisher="alice", verified=True, now=NOW)
    assert result.registered_new_publisher and not result.unchanged
    assert result.publisher == "alice" and result.publisher_key == alice.public
    assert result.warnings == ()
    index = list_entries(reg)
    assert dict(index.publishers) == {"alice": alice.public}
    entry = index.entry("hello", "0.1.0")
    assert entry == result.entry
    assert entry is not None
    assert entry.bundle == "alice/hello/0.1.0/hello-0.1.0.rvp"
    assert entry.manifest_url == "alice/hello/0.1.0/manifest.toml"
    assert entry.wasm_url == "alice/hello/0.1.0/plugin.wasm"
    assert entry.capabilities == ("ReadSystemInfo", "ShowNotifications")
    assert entry.platforms == ("linux", "macos", "windows")
    assert entry.size_bytes == bundle.stat().st_size
    assert entry.published_at == "2030-01-02T03:04:05Z"
    assert entry.verified and entry.downloads == 0 and entry.rating is None
    assert entry.categories == () and entry.min_ruvector_version == "0.1.0"
    listed = TufRepository.open(reg).list_targets("alice")
    assert sorted(listed) == sorted([entry.bundle, entry.manifest_url, entry.wasm_url])


def test_add_through_the_cli_then_list(reg: Path, tmp_path: Path, alice: PublisherKey) -> None:
    result = run("add", reg, make_bundle(tmp_path, alice), "--publisher", "alice")
    assert result.exit_code == 0, result.output
    assert f"registered publisher 'alice' with key {alice.public}" in result.output
    assert "hello 0.1.0: published by 'alice'" in result.output
    # Once registered, the key finds its publisher by itself.
    result = run("add", reg, make_bundle(tmp_path, alice, version="0.2.0"))
    assert result.exit_code == 0, result.output
    assert "registered" not in result.output
    listing = run("list", reg)
    assert listing.exit_code == 0
    assert f"alice  {alice.public}" in listing.output
    assert "hello 0.1.0  by alice" in listing.output
    assert "hello 0.2.0  by alice" in listing.output


def test_re_adding_the_same_bytes_changes_nothing(
    published: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    bundle = sorted((tmp_path / "src").glob("*.rvp"))[0]
    before = tree_hash(published)
    result = add_bundle(published, bundle, now=NOW + timedelta(days=1))
    assert result.unchanged and result.entry.published_at == "2030-01-02T03:04:05Z"
    assert tree_hash(published) == before
    cli_result = run("add", published, bundle)
    assert cli_result.exit_code == 0
    assert "already published with these bytes; nothing changed" in cli_result.output


def test_a_second_publisher(
    published: Path, tmp_path: Path, alice: PublisherKey, bob: PublisherKey
) -> None:
    result = add_bundle(published, make_bundle(tmp_path, bob, name="other"), publisher="bob")
    assert result.registered_new_publisher
    index = list_entries(published)
    assert dict(index.publishers) == {"alice": alice.public, "bob": bob.public}
    assert [(e.name, e.publisher) for e in index.entries] == [
        ("hello", "alice"),
        ("other", "bob"),
    ]
    repo = TufRepository.open(published)
    assert repo.publishers() == ["alice", "bob"]
    assert all(path.startswith("bob/") for path in repo.list_targets("bob"))


def test_bundles_for_other_hosts_are_accepted(
    reg: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    # A registry serves every platform and ruvector version, not only its own.
    other = "windows" if sys.platform != "win32" else "linux"
    bundle = make_bundle(
        tmp_path,
        alice,
        edits=(
            ('platforms = ["linux", "macos", "windows"]', f'platforms = ["{other}"]'),
            ('min_ruvector_version = "0.1.0"', 'min_ruvector_version = "99.0.0"'),
        ),
    )
    entry = add_bundle(reg, bundle, publisher="alice").entry
    assert entry.platforms == (other,) and entry.min_ruvector_version == "99.0.0"


def test_registry_write_is_published_with_a_warning(
    reg: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    bundle = make_bundle(
        tmp_path,
        alice,
        edits=(('"ShowNotifications"]', '"ShowNotifications", "RegistryWrite"]'),),
    )
    result = add_bundle(reg, bundle, publisher="alice")
    assert not result.unchanged
    (warning,) = result.warnings
    assert "declares RegistryWrite" in warning
    assert alice.public in warning and "verified_publisher_keys" in warning
    cli_result = CliRunner().invoke(
        cli, ["registry", "add", str(reg), str(bundle)], catch_exceptions=False
    )
    assert "warning: " in cli_result.stderr


# ---------------------------------------------------------------------- refusals


def refused(
    directory: Path,
    bundle: Path,
    publisher: str | None,
    *parts: str,
    error: type[Exception] = BundleRefused,
) -> None:
    """The add is refused with a message holding `parts`, and nothing in `directory` changes."""
    before = tree_hash(directory)
    with pytest.raises(error) as info:
        add_bundle(directory, bundle, publisher=publisher)
    for part in parts:
        assert part in str(info.value)
    assert tree_hash(directory) == before
    # The CLI says the same in one line, exit 1.
    args = ["add", str(directory), str(bundle)]
    result = run(*args, *(["--publisher", publisher] if publisher else []))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and parts[0] in result.stderr
    assert tree_hash(directory) == before


def test_unsigned_bundles_are_refused(published: Path, tmp_path: Path) -> None:
    refused(
        published,
        make_bundle(tmp_path, None, version="0.2.0"),
        "alice",
        "registries accept signed bundles only: sign it with `ruvector plugin sign`",
    )


def test_a_bundle_changed_after_signing_is_refused(
    published: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    signed = open_bundle(make_bundle(tmp_path, alice, version="0.2.0"))
    files = {**signed.files, "README.md": b"# changed after signing\n"}
    tampered = tmp_path / "tampered.rvp"
    write_bundle(Bundle(signed.manifest, MappingProxyType(files), signed.origin), tampered)
    refused(
        published,
        tampered,
        None,
        "does not match the bundle's content",
        error=SignatureRefused,
    )


def test_an_unknown_key_needs_a_publisher_name(
    published: Path, tmp_path: Path, bob: PublisherKey
) -> None:
    refused(
        published,
        make_bundle(tmp_path, bob, name="other"),
        None,
        f"its signing key {bob.public} is not registered to any publisher",
        "pass --publisher NAME to register the key",
    )


def test_a_publisher_name_taken_by_another_key(
    published: Path, tmp_path: Path, alice: PublisherKey, bob: PublisherKey
) -> None:
    refused(
        published,
        make_bundle(tmp_path, bob, name="other"),
        "alice",
        f"publisher 'alice' is registered with key {alice.public}",
        f"signed by {bob.public}",
    )


def test_a_key_registered_under_another_name(
    published: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    refused(
        published,
        make_bundle(tmp_path, alice, version="0.2.0"),
        "mallory",
        f"its signing key {alice.public} is registered as publisher 'alice', not 'mallory'",
    )


@pytest.mark.parametrize("name", ["Bob", "index", "targets", "a/b"])
def test_publisher_names_are_checked_before_anything_is_written(
    published: Path, tmp_path: Path, bob: PublisherKey, name: str
) -> None:
    bundle = make_bundle(tmp_path, bob, name="other")
    refused(published, bundle, name, f"publisher {name!r}", error=PublisherError)


def test_a_plugin_name_belongs_to_its_first_publisher(
    published: Path, tmp_path: Path, bob: PublisherKey
) -> None:
    add_bundle(published, make_bundle(tmp_path, bob, name="other"), publisher="bob")
    refused(
        published,
        make_bundle(tmp_path, bob, version="0.2.0"),
        None,
        "plugin 'hello' belongs to publisher 'alice'",
        "publisher 'bob' cannot publish that name",
    )


def test_a_published_version_is_immutable(
    published: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    changed = make_bundle(
        tmp_path, alice, edits=(('description = "Reads', 'description = "Now reads'),)
    )
    refused(
        published,
        changed,
        None,
        "hello 0.1.0 is already published with other content",
        "bump the version",
    )


def test_versions_clients_could_not_fetch_or_parse_are_refused(
    reg: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    # The manifest sets no length for a version; the index allows 100
    # characters, a target path segment 128.
    unparsable = make_bundle(tmp_path, alice, version="1.0.0-" + "a" * 104)
    refused(reg, unparsable, "alice", "its index.json entry", "version", error=ConfigError)
    unfetchable = make_bundle(tmp_path, alice, version="1.0.0-" + "a" * 120)
    refused(reg, unfetchable, "alice", "segments must be 1-128 characters")


def test_a_directory_without_a_registry(tmp_path: Path, alice: PublisherKey) -> None:
    result = run("add", tmp_path / "nowhere", make_bundle(tmp_path, alice), "--publisher", "a")
    assert result.exit_code == 1
    assert "no registry here" in result.stderr


# ---------------------------------------------------------------------- refresh


def version_of(directory: Path, role: str) -> int:
    version: int = TufRepository.open(directory).role_metadata(role).signed.version
    return version


def test_refresh_writes_a_timestamp_and_renews_roles_when_due(published: Path) -> None:
    snapshot = version_of(published, "snapshot")
    timestamp = version_of(published, "timestamp")
    done = refresh(published, NOW + timedelta(days=1))
    assert not done.renewed and done.timestamp_version == timestamp + 1
    assert version_of(published, "snapshot") == snapshot
    # 20 days on, the 30-day snapshot has less than half its validity left.
    done = refresh(published, NOW + timedelta(days=20))
    assert done.renewed
    assert version_of(published, "snapshot") == snapshot + 1
    result = run("refresh", published)
    assert result.exit_code == 0 and "timestamp version" in result.output


# ---------------------------------------------------------------------- the root key offline


def take_root_key_offline(directory: Path, tmp_path: Path) -> Path:
    offline = tmp_path / "usb-stick" / "root.key"
    offline.parent.mkdir()
    (directory / "keys" / "root.key").rename(offline)
    return offline


def test_add_and_refresh_work_without_the_root_key_until_root_is_due(
    tmp_path: Path, alice: PublisherKey
) -> None:
    directory = tmp_path / "reg"
    assert run("init", directory).exit_code == 0
    offline = take_root_key_offline(directory, tmp_path)
    result = run("add", directory, make_bundle(tmp_path, alice), "--publisher", "alice")
    assert result.exit_code == 0, result.output
    result = run("refresh", directory)
    assert result.exit_code == 0, result.output

    # 200 days on, root (365 days) has less than half its validity left.
    later = datetime.now(UTC) + timedelta(days=200)
    expires = TufRepository.open(directory).role_metadata("root").signed.expires
    before = tree_hash(directory)
    with pytest.raises(RootKeyNeeded) as caught:
        refresh(directory, later)
    message = str(caught.value)
    assert f"root metadata is due for renewal (it expires {expires:%Y-%m-%d})" in message
    assert f"{directory / 'keys' / 'root.key'} is missing" in message
    assert "put keys/root.key back for this one run" in message
    assert "--root-key PATH" in message
    with pytest.raises(RootKeyNeeded):
        add_bundle(directory, make_bundle(tmp_path, alice, version="0.2.0"), now=later)
    assert tree_hash(directory) == before  # checked before anything was written

    done = refresh(directory, later, root_key=offline)
    assert done.renewed
    assert version_of(directory, "root") == 2
    assert not (directory / "keys" / "root.key").exists()
    # Renewed, root is not due for another half year: no key needed.
    add_bundle(directory, make_bundle(tmp_path, alice, version="0.2.0"), now=later)


def test_the_cli_reads_the_root_key_from_root_key_path(
    reg: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    # A root expiring in 30 days is due now, so the real clock (the CLI's) needs the key.
    repo = TufRepository.open(reg)
    root = repo.role_metadata("root")
    root.signed.version += 1
    root.signed.expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    root.sign(repo.sign_with("root"))
    repo.write_role(root, "root")
    offline = take_root_key_offline(reg, tmp_path)
    bundle = make_bundle(tmp_path, alice)
    before = tree_hash(reg)

    for args in (("refresh", reg), ("add", reg, bundle, "--publisher", "alice")):
        result = run(*args)
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1
        assert "root metadata is due for renewal" in result.stderr
        assert tree_hash(reg) == before

    result = run("refresh", reg, "--root-key", offline)
    assert result.exit_code == 0, result.output
    assert "re-signed" in result.output
    assert version_of(reg, "root") == 3
    result = run("add", reg, bundle, "--publisher", "alice", "--root-key", tmp_path / "nowhere")
    assert result.exit_code == 0, result.output  # not due any more: the path is not read


def test_a_root_key_path_holding_another_key_is_refused(reg: Path, tmp_path: Path) -> None:
    offline = take_root_key_offline(reg, tmp_path)
    later = datetime.now(UTC) + timedelta(days=200)
    with pytest.raises(RootKeyNeeded):
        refresh(reg, later, root_key=tmp_path / "nowhere" / "root.key")
    wrong = reg / "keys" / "targets.key"
    with pytest.raises(RegistryFileError, match="does not match the public key") as caught:
        refresh(reg, later, root_key=wrong)
    assert caught.value.path == wrong
    assert refresh(reg, later, root_key=offline).renewed


# ---------------------------------------------------------------------- one writer at a time

# Takes the registry's writer lock, says so on stdout, and sleeps until killed.
HOLDER = """
import sys, time
from pathlib import Path
from registry.repository import writer_lock
writer_lock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
while True:
    time.sleep(60)
"""


@pytest.fixture
def lock_holder(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes]]:
    """A child Python process holding the writer lock of the directory in request.param."""
    directory: Path = request.getfixturevalue(request.param)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"locked\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("lock_holder", ["published"], indirect=True)
def test_a_second_writer_is_refused_at_once_and_a_killed_one_frees_the_lock(
    published: Path,
    tmp_path: Path,
    alice: PublisherKey,
    lock_holder: subprocess.Popen[bytes],
) -> None:
    lock = published / LOCK_FILE
    bundle = make_bundle(tmp_path, alice, version="0.2.0")
    before = tree_hash(published)
    writes: dict[str, Callable[[], object]] = {
        "add": lambda: add_bundle(published, bundle),
        "refresh": lambda: refresh(published),
    }
    for name, write in writes.items():
        with pytest.raises(LockHeld) as caught:
            write()
        assert caught.value.path == lock, name
        assert caught.value.holder is not None and caught.value.holder.pid == lock_holder.pid
        assert f"another registry write holding {lock} is running" in str(caught.value)
        assert f"(pid {lock_holder.pid}, since " in str(caught.value)
    result = run("add", published, bundle)
    assert result.exit_code == 1
    assert f"(pid {lock_holder.pid}, since " in result.stderr
    assert tree_hash(published) == before

    lock_holder.kill()  # no cleanup in the child: the kernel drops its lock
    lock_holder.wait(timeout=10)
    assert not add_bundle(published, bundle).unchanged
    assert not refresh(published).renewed


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "new"
    directory.mkdir()
    return directory


@pytest.mark.parametrize("lock_holder", ["empty_dir"], indirect=True)
def test_init_is_refused_while_another_writer_holds_the_lock(
    empty_dir: Path, lock_holder: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(LockHeld) as caught:
        init_registry(empty_dir)
    assert caught.value.holder is not None and caught.value.holder.pid == lock_holder.pid
    assert [p.name for p in empty_dir.iterdir()] == [LOCK_FILE]
    lock_holder.kill()
    lock_holder.wait(timeout=10)
    init_registry(empty_dir)  # the lock file left behind does not count as content
    assert list_entries(empty_dir).entries == ()


def test_writes_leave_no_lock_file_where_there_is_no_registry(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    for directory in (tmp_path / "nowhere", tmp_path / "plain"):
        with pytest.raises(RegistryFileError, match="no registry here"):
            refresh(directory)
    assert not (tmp_path / "nowhere").exists()
    assert list((tmp_path / "plain").iterdir()) == []
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(RegistryFileError, match="not empty"):
        init_registry(tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["x"]


# ---------------------------------------------------------------------- served


def test_a_tuf_client_downloads_what_serve_serves(
    published: Path, tmp_path: Path, alice: PublisherKey
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ruvector", "registry", "serve", str(published), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split(" at ")[1].split(" ")[0]
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines[1] == f'registry_url = "{url}"'
        assert lines[2] == f'registry_root = "{(published / "root.json").absolute()}"'
        for sub in ("metadata", "targets"):
            (tmp_path / "client" / sub).mkdir(parents=True)
        client = Updater(
            metadata_dir=str(tmp_path / "client" / "metadata"),
            metadata_base_url=f"{url}/metadata/",
            target_dir=str(tmp_path / "client" / "targets"),
            target_base_url=f"{url}/targets/",
            bootstrap=(published / "root.json").read_bytes(),
        )
        client.refresh()
        index = parse_index(download(client, INDEX_PATH), "index.json")
        entry = index.latest("hello")
        assert entry is not None and entry.publisher == "alice"
        raw = download(client, entry.bundle)
        bundle = bundle_from_bytes(raw, Path(entry.bundle), check_host=False)
        assert bundle.manifest.wasm_sha256 == entry.sha256
        assert download(client, entry.wasm_url) == bundle.wasm()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=5)
        assert proc.returncode == 0 and "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def download(client: Updater, path: str) -> bytes:
    info = client.get_targetinfo(path)
    assert info is not None, path
    return Path(client.download_target(info)).read_bytes()
