"""The registry's TUF repository, checked by python-tuf's real client over loopback."""

from __future__ import annotations

import http.client
import json
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.exceptions import BadVersionNumberError, ExpiredMetadataError
from tuf.api.metadata import Metadata, TargetFile, Targets
from tuf.ngclient.updater import Updater  # the package __all__ is opaque to mypy
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from registry.serve import serve
from registry.tuf_repo import (
    Expiry,
    PublisherError,
    RegistryFileError,
    RootKeyNeeded,
    TargetNotFound,
    TufRepository,
    renewal_due,
)
from ruvector.errors import InputError

INDEX = b'{"plugins": ["alice/x"]}'
BUNDLE = b"\0rvp alice x 1.0.0"
BUNDLE_PATH = "alice/x/x-1.0.0.rvp"


class RecordingFetcher(Urllib3Fetcher):
    """The default fetcher, remembering every URL the client asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.urls.append(url)
        return super()._fetch(url)


@pytest.fixture
def repo(tmp_path: Path) -> TufRepository:
    """A published registry: index.json at top level, alice with one bundle, bob with none."""
    repo = TufRepository.init(tmp_path / "registry")
    repo.add_publisher("alice")
    repo.add_publisher("bob")
    repo.add_target("index.json", INDEX, publisher=None)
    repo.add_target(BUNDLE_PATH, BUNDLE, publisher="alice", custom={"plugin": "x"})
    repo.publish()
    return repo


@pytest.fixture
def base_url(repo: TufRepository) -> Iterator[str]:
    with serve(repo.repository_dir) as url:
        yield url


def updater(
    tmp_path: Path,
    repo: TufRepository,
    base_url: str,
    fetcher: Urllib3Fetcher | None = None,
    bootstrap: bytes | None = None,
) -> Updater:
    """A fresh client; clients made by one test share one metadata cache."""
    metadata_dir = tmp_path / "client" / "metadata"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    return Updater(
        metadata_dir=str(metadata_dir),
        metadata_base_url=f"{base_url}/metadata/",
        target_dir=str(tmp_path / "client" / "targets"),
        target_base_url=f"{base_url}/targets/",
        fetcher=fetcher,
        bootstrap=bootstrap or repo.root_json(),
    )


def fetch_verified(client: Updater, path: str) -> bytes:
    info = client.get_targetinfo(path)
    assert info is not None, path
    return Path(client.download_target(info)).read_bytes()


def version_of(repo: TufRepository, role: str) -> int:
    version: int = repo.role_metadata(role).signed.version
    return version


# ---------------------------------------------------------------------- repository on disk


def test_init_then_open_round_trip(repo: TufRepository, tmp_path: Path) -> None:
    again = TufRepository.open(tmp_path / "registry")
    assert again.root_json() == repo.root_json()
    assert again.publishers() == ["alice", "bob"]
    assert again.list_targets(None) == repo.list_targets(None)
    assert again.list_targets("alice") == repo.list_targets("alice")
    assert again.list_targets("alice")[BUNDLE_PATH].custom == {"plugin": "x"}
    for role in ("root", "targets", "snapshot", "timestamp", "alice", "bob"):
        assert again.sign_with(role).public_key == repo.sign_with(role).public_key
    names = {p.name for p in again.metadata_dir.iterdir()}
    assert {"1.root.json", "root.json", "timestamp.json", "2.snapshot.json"} <= names
    assert {"2.targets.json", "1.alice.json", "1.bob.json"} <= names


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RegistryFileError) as caught:
        TufRepository.init(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_open_names_the_missing_or_damaged_file(repo: TufRepository, tmp_path: Path) -> None:
    with pytest.raises(RegistryFileError, match="not a directory"):
        TufRepository.open(tmp_path / "nowhere")

    keys = tmp_path / "registry" / "keys"
    good_key = (keys / "targets.key").read_bytes()
    (keys / "targets.key").write_bytes((keys / "snapshot.key").read_bytes())
    with pytest.raises(RegistryFileError) as caught:
        TufRepository.open(tmp_path / "registry")
    assert caught.value.path == keys / "targets.key"
    (keys / "targets.key").write_bytes(good_key)

    alice = repo.metadata_dir / "1.alice.json"
    alice.write_bytes(alice.read_bytes().replace(b"x-1.0.0", b"x-6.6.6"))
    with pytest.raises(RegistryFileError, match="signatures do not verify") as caught:
        TufRepository.open(tmp_path / "registry")
    assert caught.value.path == alice

    (repo.metadata_dir / "timestamp.json").write_bytes(b"{not json")
    with pytest.raises(RegistryFileError) as caught:
        TufRepository.open(tmp_path / "registry")
    assert caught.value.path == repo.metadata_dir / "timestamp.json"


def test_key_files_are_private(repo: TufRepository, tmp_path: Path) -> None:
    keys = sorted((tmp_path / "registry" / "keys").rglob("*.key"))
    assert [k.name for k in keys] == [
        "alice.key",
        "bob.key",
        "root.key",
        "snapshot.key",
        "targets.key",
        "timestamp.key",
    ]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_targets_are_hash_prefixed_and_old_files_stay(repo: TufRepository) -> None:
    old = repo.list_targets("alice")[BUNDLE_PATH]
    repo.add_target(BUNDLE_PATH, b"rebuilt", publisher="alice")
    new = repo.list_targets("alice")[BUNDLE_PATH]
    for info, data in ((old, BUNDLE), (new, b"rebuilt")):
        sha = info.hashes["sha256"]
        assert (repo.targets_dir / "alice" / "x" / f"{sha}.x-1.0.0.rvp").read_bytes() == data


@pytest.mark.parametrize(
    ("path", "publisher"),
    [
        ("bob/x/x-1.0.0.rvp", "alice"),
        ("alice", "alice"),
        ("alicex/x.rvp", "alice"),
        ("alice/../bob/x.rvp", "alice"),
        ("alice//x.rvp", "alice"),
        ("alice/.hidden", "alice"),
        ("alice/x y.rvp", "alice"),
        ("alice/1/2/3/4/5.rvp", "alice"),  # deeper than the delegation's patterns
        ("alice/x/x-1.0.0.rvp", None),  # top level may not shadow a publisher
    ],
)
def test_add_target_refuses_paths_outside_the_namespace(
    repo: TufRepository, path: str, publisher: str | None
) -> None:
    with pytest.raises(ValueError):
        repo.add_target(path, b"data", publisher=publisher)


def test_publisher_names_are_checked(repo: TufRepository) -> None:
    for name in ("Alice", "", "a" * 65, "a_b", "root", "targets", "snapshot", "timestamp", "index"):
        with pytest.raises(PublisherError):
            repo.add_publisher(name)
    with pytest.raises(PublisherError, match="already exists"):
        repo.add_publisher("alice")
    with pytest.raises(PublisherError, match="no such publisher"):
        repo.add_target("carol/x.rvp", b"", publisher="carol")
    with pytest.raises(TargetNotFound):
        repo.remove_target("alice/y/y.rvp", "alice")
    assert isinstance(TargetNotFound("p", "r"), InputError)


def test_publish_bumps_only_changed_roles(repo: TufRepository) -> None:
    repo.add_target(BUNDLE_PATH, BUNDLE, publisher="alice", custom={"plugin": "x"})
    repo.publish()  # identical re-add: nothing staged
    assert (version_of(repo, "alice"), version_of(repo, "targets")) == (1, 2)

    repo.add_target("alice/x/x-1.1.0.rvp", b"v1.1", publisher="alice")
    repo.publish()
    assert [version_of(repo, r) for r in ("alice", "bob", "targets")] == [2, 1, 2]
    snapshot = json.loads((repo.metadata_dir / "timestamp.json").read_bytes())
    snapshot_version = snapshot["signed"]["meta"]["snapshot.json"]["version"]
    listed = json.loads((repo.metadata_dir / f"{snapshot_version}.snapshot.json").read_bytes())
    assert {k: v["version"] for k, v in listed["signed"]["meta"].items()} == {
        "alice.json": 2,
        "bob.json": 1,
        "targets.json": 2,
    }


def test_timestamp_and_snapshot_renewal(repo: TufRepository) -> None:
    before = [version_of(repo, r) for r in ("timestamp", "snapshot", "targets")]
    repo.refresh_timestamp()
    assert [version_of(repo, r) for r in ("timestamp", "snapshot", "targets")] == [
        before[0] + 1,
        before[1],
        before[2],
    ]
    repo.resign_snapshot()
    assert [version_of(repo, r) for r in ("timestamp", "snapshot")] == [
        before[0] + 2,
        before[1] + 1,
    ]


# ---------------------------------------------------------------------- a real client


def test_client_finds_and_verifies_targets(
    repo: TufRepository, base_url: str, tmp_path: Path
) -> None:
    client = updater(tmp_path, repo, base_url)
    client.refresh()
    assert fetch_verified(client, "index.json") == INDEX
    assert fetch_verified(client, BUNDLE_PATH) == BUNDLE
    info = client.get_targetinfo(BUNDLE_PATH)
    assert info is not None
    assert info.custom == {"plugin": "x"}
    assert client.get_targetinfo("alice/x/missing.rvp") is None


def test_second_publish_is_seen_by_a_fresh_client(
    repo: TufRepository, base_url: str, tmp_path: Path
) -> None:
    updater(tmp_path, repo, base_url).refresh()
    repo.add_target("alice/x/x-1.1.0.rvp", b"v1.1", publisher="alice")
    repo.remove_target(BUNDLE_PATH, "alice")
    repo.publish()
    client = updater(tmp_path, repo, base_url)
    client.refresh()
    assert fetch_verified(client, "alice/x/x-1.1.0.rvp") == b"v1.1"
    assert client.get_targetinfo(BUNDLE_PATH) is None


def test_publisher_cannot_vouch_for_another_namespace(
    repo: TufRepository, base_url: str, tmp_path: Path
) -> None:
    # bob's own key signs a bob role listing a path in alice's namespace.
    bob: Metadata[Targets] = repo.role_metadata("bob")
    evil = TargetFile.from_data("alice/x/evil.rvp", b"evil")
    bob.signed.targets[evil.path] = evil
    own = TargetFile.from_data("bob/y/y.rvp", b"bob's own")
    bob.signed.targets[own.path] = own
    bob.signed.version += 1
    bob.sign(repo.sign_with("bob"))
    repo.write_role(bob, "bob")
    repo.resign_snapshot()

    client = updater(tmp_path, repo, base_url)
    client.refresh()
    assert client.get_targetinfo("bob/y/y.rvp") == own  # the crafted role is trusted...
    assert client.get_targetinfo("alice/x/evil.rvp") is None  # ...only for bob's paths
    assert fetch_verified(client, BUNDLE_PATH) == BUNDLE


def test_expired_timestamp_is_refused(repo: TufRepository, base_url: str, tmp_path: Path) -> None:
    repo.add_target("index.json", b"{}", publisher=None)
    repo.publish(now=datetime.now(UTC) - timedelta(days=8))  # timestamp: 7 days
    with pytest.raises(ExpiredMetadataError):
        updater(tmp_path, repo, base_url).refresh()


def test_rolled_back_timestamp_is_refused(
    repo: TufRepository, base_url: str, tmp_path: Path
) -> None:
    timestamp = repo.metadata_dir / "timestamp.json"
    old = timestamp.read_bytes()
    repo.refresh_timestamp()
    updater(tmp_path, repo, base_url).refresh()
    timestamp.write_bytes(old)
    with pytest.raises(BadVersionNumberError):
        updater(tmp_path, repo, base_url).refresh()


def test_unchanged_refresh_fetches_only_timestamp(
    repo: TufRepository, base_url: str, tmp_path: Path
) -> None:
    first = updater(tmp_path, repo, base_url)
    first.refresh()
    first.get_targetinfo(BUNDLE_PATH)  # caches alice's role too

    fetcher = RecordingFetcher()
    again = updater(tmp_path, repo, base_url, fetcher)
    again.refresh()
    assert again.get_targetinfo(BUNDLE_PATH) is not None
    # The client always asks for the next root version; the 404 says none.
    assert fetcher.urls == [
        f"{base_url}/metadata/2.root.json",
        f"{base_url}/metadata/timestamp.json",
    ]


def test_publish_renews_a_root_nearing_expiry(
    repo: TufRepository, base_url: str, tmp_path: Path
) -> None:
    pinned = repo.root_json()
    repo.publish(now=datetime.now(UTC) + timedelta(days=200))  # under half of 365 left
    assert (repo.metadata_dir / "2.root.json").read_bytes() == repo.root_json()
    assert (repo.metadata_dir / "root.json").read_bytes() == repo.root_json()
    fetcher = RecordingFetcher()
    updater(tmp_path, repo, base_url, fetcher, bootstrap=pinned).refresh()
    assert fetcher.urls[:2] == [
        f"{base_url}/metadata/2.root.json",
        f"{base_url}/metadata/3.root.json",
    ]
    assert (tmp_path / "client" / "metadata" / "root_history" / "2.root.json").exists()


def test_root_key_is_read_only_when_root_is_due(repo: TufRepository, tmp_path: Path) -> None:
    keys = tmp_path / "registry" / "keys"
    offline = tmp_path / "offline.key"
    (keys / "root.key").rename(offline)
    online = TufRepository.open(tmp_path / "registry")
    online.add_target("alice/x/x-1.1.0.rvp", b"v1.1", publisher="alice")
    online.publish()  # root has a year left
    assert (version_of(online, "root"), version_of(online, "alice")) == (1, 2)
    with pytest.raises(RegistryFileError, match="missing"):
        online.sign_with("root")

    later = datetime.now(UTC) + timedelta(days=200)  # under half of 365 left
    online.add_target("alice/x/x-1.2.0.rvp", b"v1.2", publisher="alice")
    written = sorted(online.metadata_dir.iterdir())
    with pytest.raises(RootKeyNeeded) as caught:
        online.publish(now=later)
    assert caught.value.path == keys / "root.key"
    assert caught.value.expires == online.role_metadata("root").signed.expires
    assert sorted(online.metadata_dir.iterdir()) == written  # refused before any write

    with pytest.raises(RegistryFileError, match="does not match the public key"):
        TufRepository.open(tmp_path / "registry", root_key=keys / "targets.key").publish(later)
    renewed = TufRepository.open(tmp_path / "registry", root_key=offline)
    renewed.publish(now=later)
    assert version_of(renewed, "root") == 2


def test_renewal_is_due_with_less_than_half_the_period_left() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    period = timedelta(days=30)
    assert not renewal_due(at + timedelta(days=15), period, at)
    assert renewal_due(at + timedelta(days=15) - timedelta(seconds=1), period, at)
    assert renewal_due(at - timedelta(days=1), period, at)  # already expired


def test_custom_expiry_periods(tmp_path: Path) -> None:
    repo = TufRepository.init(tmp_path / "r", expiry=Expiry(timestamp=timedelta(hours=1)))
    expires = repo.role_metadata("timestamp").signed.expires
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)


# ---------------------------------------------------------------------- the static server


def get(base_url: str, path: str) -> int:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)  # sent as is: no client-side normalisation
        return conn.getresponse().status
    finally:
        conn.close()


def test_server_serves_files_only(repo: TufRepository, base_url: str) -> None:
    assert get(base_url, "/metadata/timestamp.json") == 200
    assert get(base_url, "/metadata/") == 404  # no listings
    assert get(base_url, "/../keys/root.key") == 404
    assert get(base_url, "/%2e%2e/keys/root.key") == 404


def test_serve_forever_reports_its_url_and_stops_on_interrupt(repo: TufRepository) -> None:
    script = (
        "import sys; from pathlib import Path; from registry.serve import serve_forever\n"
        "serve_forever(Path(sys.argv[1]), ready=lambda url: print(url, flush=True))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(repo.repository_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert get(url, "/metadata/1.root.json") == 200
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=5)
        assert "KeyboardInterrupt" in stderr  # the CLI, not the library, handles it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
