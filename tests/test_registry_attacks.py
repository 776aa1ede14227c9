"""The registry attack corpus, against a real registry served over loopback HTTP.

Each test installs a good release (or starts from nothing), lets the
registry or a mirror misbehave the way an attacker would, and runs
`ruvector reconcile`. Whatever happens, the attack is refused or its release
not taken, the message names what was wrong, and the installed state is
byte-identical to what it was: generations, the store, the pins and the
registry history. Only TUF's metadata and the download cache may change
(taking newer verified metadata is what a client must do).

Bad releases are published the way a compromised registry would serve
them: written as TUF targets directly (`TufRepository.add_target`, hand
signed roles), past the checks `ruvector registry add` makes.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from tuf.api.metadata import MetaFile, TargetFile

from reconciler.apply import reconcile
from reconciler.bundle import SIGNATURE_NAME, Bundle, write_bundle
from reconciler.desired import load_desired
from reconciler.manifest import MANIFEST_NAME
from reconciler.signature import PublisherKey, generate_key, sign_bundle
from reconciler.store import StateStore
from registry.client import PinnedRoot, RegistryClient
from registry.fetch import FetchSettings
from registry.index import INDEX_PATH, Entry, make_index
from registry.repository import add_bundle, init_registry, list_entries
from registry.tuf_repo import TufRepository
from tests import http_server
from tests.registry_fixtures import (
    HELLO_CAPS,
    Registry,
    run,
    signed_bundle,
    tree_hashes,
    write_config,
)

TABS = "alice/tabs/1.1.0/tabs-1.1.0.rvp"  # the bad release's bundle target
CARET = 'version = "^1.0"'


# ---------------------------------------------------------------------- the client side


def installed(home: Path) -> dict[str, str]:
    gen = StateStore(home / "state").current()
    return {p.name: p.version for p in gen.plugins} if gen else {}


def state_of(home: Path) -> dict[str, str]:
    """The installed state's files and hashes: all but TUF metadata and the cache,
    which an attack may legitimately update."""
    skip = ("registry/metadata/", "registry/cache/")
    return {
        path: digest
        for path, digest in tree_hashes(home / "state").items()
        if not path.startswith(skip)
    }


def install_tabs(reg: Registry, home: Path, version: str = "1.0.0") -> dict[str, str]:
    """Publish and install tabs `version` under `^1.0`; the state it leaves."""
    reg.publish("tabs", version)
    write_config(home, reg, {"tabs": CARET})
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert installed(home) == {"tabs": version}
    state = state_of(home)
    assert {"generations/current", "ruvector.lock", "registry/history.json"} <= set(state)
    assert any(path.startswith("store/") for path in state)
    return state


def update_refused(home: Path, before: dict[str, str], *fragments: str) -> str:
    """`reconcile --upgrade` takes no update, says why, and changes nothing."""
    result = run(home, "reconcile", "--upgrade")
    assert result.exit_code == 0, result.output
    note = next((line for line in result.output.splitlines() if "no update taken" in line), "")
    assert note, result.output
    for fragment in fragments:
        assert fragment in note, (fragment, result.output)
    assert "1.0.0 stays installed" in note
    assert installed(home) == {"tabs": "1.0.0"}
    assert state_of(home) == before
    return note


def install_refused(home: Path, *fragments: str) -> str:
    """A first `reconcile` is refused, says why, and installs nothing."""
    before = state_of(home)
    result = run(home, "reconcile")
    assert result.exit_code == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)
    assert installed(home) == {}
    assert state_of(home) == before
    return result.output


# ---------------------------------------------------------------------- the attacker's side


def zip_of(files: Mapping[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A bundle zip of `files` as given: nothing is checked."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = method
            zf.writestr(info, files[name])
    return buffer.getvalue()


def signed_files(files: Mapping[str, bytes], like: Bundle, key: PublisherKey) -> dict[str, bytes]:
    """`files` with a valid signature by `key` over exactly them (checked or not)."""
    unsigned = {k: v for k, v in files.items() if k != SIGNATURE_NAME}
    crafted = Bundle(like.manifest, MappingProxyType(unsigned), "crafted")
    return dict(sign_bundle(crafted, key).files)


def entry_for(bundle: Bundle, raw: bytes, publisher: str) -> Entry:
    """The index entry a registry would write for `raw` as `bundle` (its manifest's word)."""
    m = bundle.manifest
    base = f"{publisher}/{m.name}/{m.version}"
    return Entry(
        name=m.name,
        version=m.version,
        publisher=publisher,
        author=m.author,
        description=m.description,
        downloads=0,
        rating=None,
        verified=False,
        categories=(),
        capabilities=tuple(sorted(str(c) for c in m.capabilities)),
        size_bytes=len(raw),
        bundle=f"{base}/{m.name}-{m.version}.rvp",
        wasm_url=f"{base}/{m.wasm_file}",
        manifest_url=f"{base}/{MANIFEST_NAME}",
        sha256=m.wasm_sha256,
        platforms=tuple(sorted(p.value for p in m.platforms)),
    )


def publish_directly(reg: Registry, raw: bytes, like: Bundle, publisher: str = "alice") -> Entry:
    """List `raw` as `like`'s release in `publisher`'s role and in the index.

    TUF's hashes and signatures are right; the bundle itself is not checked
    (`registry add` would refuse most of these).
    """
    index = list_entries(reg.dir)
    entry = entry_for(like, raw, publisher)
    repo = TufRepository.open(reg.dir)
    repo.add_target(entry.bundle, raw, publisher=publisher)
    new_index = make_index(index.publishers, (*index.entries, entry))
    repo.add_target(INDEX_PATH, new_index.to_json(), publisher=None)
    repo.publish()
    return entry


def publish_index(reg: Registry, data: bytes) -> None:
    """Serve `data` as index.json, validly signed by the registry's targets role."""
    repo = TufRepository.open(reg.dir)
    repo.add_target(INDEX_PATH, data, publisher=None)
    repo.publish()


def tabs_11(reg: Registry, key: PublisherKey | None = None, caps: str = HELLO_CAPS) -> Bundle:
    """A checked tabs 1.1.0, signed by `key` (default: alice's), not published."""
    return signed_bundle(reg.work, "tabs", "1.1.0", key or reg.key("alice"), caps)


# ---------------------------------------------------------------------- 1. tampered wasm


def test_a_wasm_that_is_not_the_one_its_manifest_pins(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    good = tabs_11(reg)
    files = dict(good.files)
    files["plugin.wasm"] = good.wasm() + b"\x00evil"  # a custom section's worth of bytes
    # Signed after the swap: the signature holds, only the manifest's pin catches it.
    raw = zip_of(signed_files(files, good, reg.key("alice")))
    publish_directly(reg, raw, good)
    update_refused(home, before, "tabs-1.1.0.rvp", "wasm_sha256", "the manifest says")


def test_a_bundle_of_another_release_listed_as_this_one(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    older = signed_bundle(reg.work, "tabs", "0.9.0", reg.key("alice"))
    # alice's own valid 0.9.0, served as 1.1.0: TUF's hashes match what is listed.
    publish_directly(reg, zip_of(older.files), tabs_11(reg))
    update_refused(home, before, "the bundle holds tabs 0.9.0", "the index lists tabs 1.1.0")


# ---------------------------------------------------------------------- 2. tampered manifest


def test_a_served_bundle_edited_after_publishing(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    good = tabs_11(reg)
    # Stored, not deflated, so the manifest's text can be edited in place.
    path = reg.work / "tabs-1.1.0.rvp"
    path.write_bytes(zip_of(good.files, zipfile.ZIP_STORED))
    add_bundle(reg.dir, path, publisher="alice")
    served = reg.target(TABS)
    data = served.read_bytes()
    assert b"Reads CPU" in data
    served.write_bytes(data.replace(b"Reads CPU", b"Reads GPU"))  # same length
    update_refused(home, before, "tabs-1.1.0.rvp", "sha256 mismatch")


def test_a_manifest_edited_after_signing(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    good = tabs_11(reg)
    files = dict(good.files)
    text = files[MANIFEST_NAME].decode()
    files[MANIFEST_NAME] = text.replace("Reads CPU", "Reads GPU").encode()
    publish_directly(reg, zip_of(files), good)
    update_refused(home, before, SIGNATURE_NAME, "changed after signing")


# ---------------------------------------------------------------------- 3. stripped signature


def test_a_bundle_stripped_of_its_signature(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    good = tabs_11(reg)
    files = {k: v for k, v in good.files.items() if k != SIGNATURE_NAME}
    publish_directly(reg, zip_of(files), good)
    update_refused(home, before, "plugin 'tabs' refused", "it is unsigned")


def test_an_unsigned_first_install_is_refused(reg: Registry, home: Path) -> None:
    reg.publish("clock", "1.0.0")  # alice exists
    good = signed_bundle(reg.work, "tabs", "1.0.0", None)
    publish_directly(reg, zip_of(good.files), good)
    write_config(home, reg, {"tabs": ""})
    install_refused(home, "plugins.installed.tabs.source", "it is unsigned")


# ---------------------------------------------------------------------- 4. unknown key


def test_a_signature_by_a_key_that_is_not_the_publishers(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    mallory = generate_key()
    bad = tabs_11(reg, mallory)
    publish_directly(reg, zip_of(bad.files), bad)
    alice = reg.key("alice").public
    update_refused(
        home, before, f"signed by {mallory.public}", f"holds {alice} for publisher 'alice'"
    )


# ---------------------------------------------------------------------- 5. another's namespace


def test_a_publisher_signing_in_anothers_namespace(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    reg.publish("clock", "1.0.0", publisher="bob")
    bob = reg.key("bob")
    bad = tabs_11(reg, bob)
    publish_directly(reg, zip_of(bad.files), bad, publisher="alice")
    update_refused(
        home,
        before,
        f"signed by {bob.public}",
        f"holds {reg.key('alice').public} for publisher 'alice'",
    )


def test_a_publisher_role_listing_a_path_in_anothers_namespace(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    reg.publish("clock", "1.0.0", publisher="bob")
    bad = tabs_11(reg, reg.key("bob"))
    raw = zip_of(bad.files)
    repo = TufRepository.open(reg.dir)
    # bob's own key signs his role, which lists a path under alice/: add_target
    # refuses that, so the role is written by hand.
    info = TargetFile.from_data(TABS, raw, ["sha256"])
    role = repo.role_metadata("bob")
    role.signed.targets[TABS] = info
    role.signed.version += 1
    role.sign(repo.sign_with("bob"))
    repo.write_role(role, "bob")
    served = repo.targets_dir / info.get_prefixed_paths()[0]
    served.parent.mkdir(parents=True, exist_ok=True)
    served.write_bytes(raw)
    index = list_entries(reg.dir)
    entry = entry_for(bad, raw, "alice")
    repo.add_target(
        INDEX_PATH, make_index(index.publishers, (*index.entries, entry)).to_json(), publisher=None
    )
    repo.publish()
    update_refused(home, before, f"{TABS} is not listed by publisher 'alice'")


# ---------------------------------------------------------------------- 6. rollback


def snapshot_version(reg: Registry) -> int:
    version: int = TufRepository.open(reg.dir).role_metadata("snapshot").signed.version
    return version


@pytest.mark.parametrize(
    ("replayed", "said"),
    [("timestamp", "New timestamp version"), ("snapshot", "Expected snapshot version")],
)
def test_older_metadata_served_again(reg: Registry, home: Path, replayed: str, said: str) -> None:
    metadata = reg.served / "metadata"
    reg.publish("tabs", "1.0.0")
    old_timestamp = (metadata / "timestamp.json").read_bytes()
    reg.publish("tabs", "1.1.0")
    seen = snapshot_version(reg)
    write_config(home, reg, {"tabs": CARET})
    assert run(home, "reconcile").exit_code == 0
    assert installed(home) == {"tabs": "1.1.0"}
    before = state_of(home)
    reg.publish("tabs", "1.2.0")
    # A mirror copies older metadata files back over the current ones.
    if replayed == "timestamp":
        (metadata / "timestamp.json").write_bytes(old_timestamp)
    else:
        old = (metadata / f"{seen}.snapshot.json").read_bytes()
        (metadata / f"{snapshot_version(reg)}.snapshot.json").write_bytes(old)
    result = run(home, "reconcile", "--upgrade")
    assert result.exit_code == 0, result.output
    assert "no update taken" in result.output
    assert "its metadata failed verification" in result.output
    assert said in result.output
    assert "1.1.0 stays installed" in result.output
    assert installed(home) == {"tabs": "1.1.0"}
    assert state_of(home) == before


def test_a_new_timestamp_pointing_at_an_older_snapshot(reg: Registry, home: Path) -> None:
    install_tabs(reg, home)
    old_snapshot = snapshot_version(reg)
    reg.publish("tabs", "1.1.0")
    assert run(home, "reconcile", "--upgrade").exit_code == 0  # sees the newer snapshot
    assert installed(home) == {"tabs": "1.1.0"}
    before = state_of(home)
    # The timestamp key (stolen, say) freezes clients on the snapshot before 1.1.0.
    repo = TufRepository.open(reg.dir)
    timestamp = repo.role_metadata("timestamp")
    timestamp.signed.version += 1
    timestamp.signed.snapshot_meta = MetaFile(version=old_snapshot)
    timestamp.sign(repo.sign_with("timestamp"))
    repo.write_role(timestamp, "timestamp")
    result = run(home, "reconcile", "--upgrade")
    assert result.exit_code == 0, result.output
    assert "its metadata failed verification" in result.output
    assert "snapshot version" in result.output
    assert installed(home) == {"tabs": "1.1.0"}
    assert state_of(home) == before


# ---------------------------------------------------------------------- 7. frozen index


def test_an_expired_index(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    path = reg.work / "tabs-1.1.0.rvp"
    write_bundle(tabs_11(reg), path)
    # Published a month ago: its timestamp (valid a week) has expired.
    add_bundle(reg.dir, path, publisher="alice", now=datetime.now(UTC) - timedelta(days=30))
    update_refused(home, before, "its metadata failed verification", "expired")
    # A machine installing for the first time is refused too.
    fresh = home.parent / "fresh"
    fresh.mkdir()
    write_config(fresh, reg, {"tabs": CARET})
    install_refused(fresh, "plugins.registry_url", "expired", "(needed to install tabs)")


# ---------------------------------------------------------------------- 8. downgrade


def withdraw(reg: Registry, name: str, version: str, publisher: str = "alice") -> None:
    """The registry drops `name` `version` from its index and its publisher's role."""
    index = list_entries(reg.dir)
    gone = index.entry(name, version)
    assert gone is not None
    repo = TufRepository.open(reg.dir)
    for path in (gone.bundle, gone.manifest_url, gone.wasm_url):
        repo.remove_target(path, publisher)
    kept = [e for e in index.entries if e != gone]
    repo.add_target(INDEX_PATH, make_index(index.publishers, kept).to_json(), publisher=None)
    repo.publish()


def test_an_older_version_offered_as_the_newest(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home, "1.1.0")
    history = (home / "state" / "registry" / "history.json").read_bytes()
    withdraw(reg, "tabs", "1.1.0")
    reg.publish("tabs", "1.0.0")  # signed by alice, newer index, older version
    result = run(home, "reconcile", "--upgrade")
    assert result.exit_code == 0, result.output
    assert "1.1.0, the highest installed here before" in result.output
    assert installed(home) == {"tabs": "1.1.0"}
    assert state_of(home) == before
    # Not installed: after removing tabs, adding it back finds only 1.0.0.
    write_config(home, reg, {})
    assert run(home, "reconcile", "--allow-empty").exit_code == 0
    assert installed(home) == {}
    assert (home / "state" / "registry" / "history.json").read_bytes() == history
    write_config(home, reg, {"tabs": CARET})
    before = state_of(home)
    result = run(home, "reconcile")
    assert result.exit_code == 1, result.output
    assert "none below 1.1.0, the highest installed here before" in result.output
    assert "published: 1.0.0" in result.output
    assert state_of(home) == before
    # Pinned exactly, the user asks for it: allowed, and the mark stays.
    write_config(home, reg, {"tabs": 'version = "1.0.0"'})
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert installed(home) == {"tabs": "1.0.0"}
    marks = json.loads((home / "state" / "registry" / "history.json").read_text())
    assert marks["plugins"]["tabs"]["high_water"] == "1.1.0"


def test_a_damaged_history_is_an_error_not_a_fresh_start(reg: Registry, home: Path) -> None:
    install_tabs(reg, home)
    write_config(home, reg, {})
    assert run(home, "reconcile", "--allow-empty").exit_code == 0
    path = home / "state" / "registry" / "history.json"
    data = json.loads(path.read_text())
    data["plugins"]["tabs"]["versions"]["1.0.0"]["bundle_sha256"] = "../../elsewhere"
    path.write_text(json.dumps(data))
    # Offline, the history picks the cached bundle to install: its record must hold.
    write_config(home, reg, {"tabs": CARET}, url=http_server.unused_url("").rstrip("/"))
    output = install_refused(home, "history.json: damaged", "tabs 1.0.0: inconsistent record")
    assert "downgrade protection" in output


# ---------------------------------------------------------------------- 9. capability escalation


def test_an_update_that_declares_killprocess_is_held(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    reg.publish("tabs", "1.1.0", caps='["ReadSystemInfo", "ShowNotifications", "KillProcess"]')
    result = run(home, "reconcile", "--upgrade")
    assert result.exit_code == 0, result.output
    assert "hold 1.1.0: needs approval of KillProcess" in result.output
    assert "1.0.0 keeps running" in result.output
    assert "ruvector approve tabs 'KillProcess'" in result.output
    assert installed(home) == {"tabs": "1.0.0"}
    assert state_of(home) == before


def test_an_update_that_declares_registrywrite_from_a_signed_publisher(
    reg: Registry, home: Path
) -> None:
    before = install_tabs(reg, home)
    reg.publish("tabs", "1.1.0", caps='["ReadSystemInfo", "RegistryWrite"]')
    update_refused(home, before, "is signed and declares RegistryWrite", "verified publisher")


# ---------------------------------------------------------------------- 10. oversized, endless


def test_a_served_bundle_bigger_than_its_listing(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    reg.publish("tabs", "1.1.0")
    served = reg.target(TABS)
    listed = served.stat().st_size
    served.write_bytes(served.read_bytes() + b"\0" * 4096)
    update_refused(home, before, "tabs-1.1.0.rvp", f"larger than the expected {listed} bytes")


def mirror(site: http_server.LoopbackServer, reg: Registry) -> None:
    """Serve every file of `reg` from `site`, as they are now (call after a publish)."""
    hostile = {k: v for k, v in site.routes.items() if not isinstance(v, bytes)}
    site.routes = {
        "/" + str(p.relative_to(reg.served)): p.read_bytes()
        for p in reg.served.rglob("*")
        if p.is_file()
    }
    site.routes.update(hostile)


def served_path(reg: Registry, target: str) -> str:
    """The URL path of target `target` as served (hash-prefixed)."""
    return "/" + str(reg.target(target).relative_to(reg.served))


@pytest.fixture
def proxy(reg: Registry) -> Iterator[http_server.LoopbackServer]:
    """A mirror of `reg` on which a test makes single paths misbehave."""
    with http_server.serve() as site:
        mirror(site, reg)
        yield site


def test_an_endless_timestamp(reg: Registry, home: Path, proxy: http_server.LoopbackServer) -> None:
    reg.publish("tabs", "1.0.0")
    mirror(proxy, reg)
    write_config(home, reg, {"tabs": CARET}, url=proxy.base_url)
    assert run(home, "reconcile").exit_code == 0
    before = state_of(home)
    reg.publish("tabs", "1.1.0")
    proxy.routes["/metadata/timestamp.json"] = http_server.endless()
    mirror(proxy, reg)
    update_refused(home, before, "metadata too large", "timestamp")


def test_an_endless_bundle(reg: Registry, home: Path, proxy: http_server.LoopbackServer) -> None:
    reg.publish("tabs", "1.0.0")
    mirror(proxy, reg)
    write_config(home, reg, {"tabs": CARET}, url=proxy.base_url)
    assert run(home, "reconcile").exit_code == 0
    before = state_of(home)
    reg.publish("tabs", "1.1.0")
    mirror(proxy, reg)
    url = served_path(reg, TABS)
    proxy.routes[url] = http_server.endless()
    update_refused(home, before, "tabs-1.1.0.rvp", "endless response")


# ---------------------------------------------------------------------- 11. stalls


def connect_impatiently(home: Path, url: str, root: Path) -> Callable[[], RegistryClient]:
    settings = FetchSettings(read_timeout_s=0.3, total_timeout_s=2.0, retries=0)
    return lambda: RegistryClient(
        url, PinnedRoot(root.read_bytes(), str(root)), home / "state", settings=settings
    )


@pytest.mark.parametrize(
    ("stalled", "said"),
    [
        ("bundle", "tabs-1.1.0.rvp: timed out (ReadTimeout)"),
        ("timestamp", "timestamp.json: timed out (ReadTimeout)"),
    ],
)
def test_a_server_that_stalls_mid_body(
    reg: Registry, home: Path, proxy: http_server.LoopbackServer, stalled: str, said: str
) -> None:
    reg.publish("tabs", "1.0.0")
    mirror(proxy, reg)
    write_config(home, reg, {"tabs": CARET}, url=proxy.base_url)
    assert run(home, "reconcile").exit_code == 0
    before = state_of(home)
    reg.publish("tabs", "1.1.0")
    mirror(proxy, reg)
    path = served_path(reg, TABS) if stalled == "bundle" else "/metadata/timestamp.json"
    body = proxy.routes[path]
    assert isinstance(body, bytes)
    proxy.routes[path] = http_server.stall(body[:100], declared=len(body))
    desired = load_desired(home / "ruvector.toml")
    done = reconcile(
        desired,
        StateStore(home / "state"),
        upgrade=True,
        connect=connect_impatiently(home, proxy.base_url, reg.root),
    )
    notes = " ".join(done.plan.notes)
    assert said in notes, notes
    assert not done.plan.has_changes
    assert installed(home) == {"tabs": "1.0.0"}
    assert state_of(home) == before


def relist(reg: Registry, role: str, target: str, length: int) -> None:
    """`role` (its own key, stolen say) lists `target` at `length` bytes, hashes unchanged."""
    repo = TufRepository.open(reg.dir)
    md = repo.role_metadata(role)
    md.signed.targets[target].length = length
    md.signed.version += 1
    md.sign(repo.sign_with(role))
    repo.write_role(md, role)
    repo.resign_snapshot()


@pytest.mark.parametrize(
    ("role", "target", "cap"),
    [("targets", INDEX_PATH, "64 MiB"), ("alice", TABS, "32 MiB")],
)
def test_a_listing_that_promises_a_file_without_end(
    reg: Registry,
    home: Path,
    proxy: http_server.LoopbackServer,
    role: str,
    target: str,
    cap: str,
) -> None:
    reg.publish("tabs", "1.0.0")
    mirror(proxy, reg)
    write_config(home, reg, {"tabs": CARET}, url=proxy.base_url)
    assert run(home, "reconcile").exit_code == 0
    before = state_of(home)
    reg.publish("tabs", "1.1.0")
    path = served_path(reg, target)
    relist(reg, role, target, 1 << 40)  # a terabyte: the client must not take it at its word
    mirror(proxy, reg)
    proxy.routes[path] = http_server.endless()
    done = reconcile(
        load_desired(home / "ruvector.toml"),
        StateStore(home / "state"),
        upgrade=True,
        connect=connect_impatiently(home, proxy.base_url, reg.root),
    )
    notes = " ".join(done.plan.notes)
    assert f"{target} is listed at {1 << 40} bytes" in notes, notes
    assert f"over the {cap} it may have" in notes, notes
    assert proxy.requests(path) == 0  # refused before a byte was asked for
    assert installed(home) == {"tabs": "1.0.0"}
    assert state_of(home) == before


# ---------------------------------------------------------------------- 12. malformed index


def index_with(reg: Registry, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The current index.json, changed by `change`."""
    data = json.loads(list_entries(reg.dir).to_json())
    change(data)
    return json.dumps(data).encode()


MALFORMED: dict[str, tuple[Callable[[Registry], bytes], str]] = {
    "not JSON": (lambda reg: b'{"format": 1, "plugins": [', "not JSON"),
    "not UTF-8": (lambda reg: b'{"format": 1, "x": "\xff"}', "not JSON"),
    "nested deeply": (lambda reg: b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
    "another format": (lambda reg: index_with(reg, lambda d: d.update(format=2)), "format"),
    "a field of the wrong type": (
        lambda reg: index_with(reg, lambda d: d["plugins"][0].update(size_bytes="big")),
        "plugins[0].size_bytes",
    ),
    "a bundle outside its publisher's namespace": (
        lambda reg: index_with(
            reg, lambda d: d["plugins"][0].update(bundle="bob/tabs/1.0.0/tabs-1.0.0.rvp")
        ),
        "plugins[0].bundle: not inside publisher 'alice's namespace",
    ),
    "a key that is not hex": (
        lambda reg: index_with(reg, lambda d: d["publishers"]["alice"].update(key="zz")),
        "publishers.alice.key",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_index(reg: Registry, home: Path, case: str) -> None:
    before = install_tabs(reg, home)
    make, fragment = MALFORMED[case]
    publish_index(reg, make(reg))
    update_refused(home, before, "index.json", fragment)


def test_a_plugin_name_claimed_by_two_publishers(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    reg.publish("clock", "1.0.0", publisher="bob")
    bad = tabs_11(reg, reg.key("bob"))
    raw = zip_of(bad.files)
    entry = entry_for(bad, raw, "bob")
    repo = TufRepository.open(reg.dir)
    repo.add_target(entry.bundle, raw, publisher="bob")  # in bob's own namespace: TUF agrees
    # make_index refuses such an index; the registry's targets key signs it anyway.
    data = json.loads(list_entries(reg.dir).to_json())
    data["plugins"].append(asdict(entry))
    repo.add_target(INDEX_PATH, json.dumps(data).encode(), publisher=None)
    repo.publish()
    update_refused(home, before, "index.json", "'tabs' belongs to publisher 'alice', not 'bob'")


# ---------------------------------------------------------------------- the pinned root, reachability


def unsigned_root(reg: Registry) -> bytes:
    data = json.loads(reg.root.read_bytes())
    data["signatures"] = []
    return json.dumps(data).encode()


# Caught when ruvector.toml is read (at its line), or, signatures needing the
# client, by the client (at the root file).
NOT_ROOTS: dict[str, tuple[Callable[[Registry], bytes], str, bool]] = {
    "not JSON": (lambda reg: b"\x00 not json", "is not a TUF root.json: not JSON", True),
    "empty": (lambda reg: b"", "is not a TUF root.json: not JSON", True),
    "another role": (
        lambda reg: (reg.served / "metadata" / "timestamp.json").read_bytes(),
        "is not a TUF root.json: it holds timestamp metadata",
        True,
    ),
    "unsigned": (unsigned_root, "not a valid TUF root.json", False),
}


@pytest.mark.parametrize("case", sorted(NOT_ROOTS))
def test_a_pinned_root_that_is_not_a_root(reg: Registry, home: Path, case: str) -> None:
    reg.publish("tabs", "1.0.0")
    make, fragment, early = NOT_ROOTS[case]
    reg.root.write_bytes(make(reg))
    write_config(home, reg, {"tabs": ""})
    if early:
        install_refused(home, "ruvector.toml:4: plugins.registry_root", str(reg.root), fragment)
    else:
        output = install_refused(home, f"{reg.root}: plugins.registry_root", fragment)
        assert "(needed to install tabs)" in output


def test_a_root_pinned_from_another_registry(reg: Registry, home: Path, tmp_path: Path) -> None:
    reg.publish("tabs", "1.0.0")
    other = tmp_path / "other"
    init_registry(other)
    write_config(home, reg, {"tabs": ""})
    config = home / "ruvector.toml"
    config.write_text(config.read_text().replace(str(reg.root), str(other / "root.json")))
    install_refused(
        home,
        "its metadata failed verification",
        "UnsignedMetadataError",
        f"check that plugins.registry_root ({other / 'root.json'}) is the root of the registry",
    )


def test_a_registry_url_that_serves_no_registry(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""}, url=reg.url + "/targets")
    install_refused(
        home,
        "timestamp.json: HTTP 404",
        "holds no registry at this URL",
        "the one holding metadata/ and targets/",
    )


def test_a_registry_unreachable_on_first_install(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    url = http_server.unused_url("").rstrip("/")
    write_config(home, reg, {"tabs": ""}, url=url)
    install_refused(home, f"registry {url} is unreachable", "no version it allows")


# ---------------------------------------------------------------------- a stolen registry key


def swap_publisher_key(reg: Registry, publisher: str, key: PublisherKey, bad: Bundle) -> None:
    """What a thief of the registry's online keys can do: name a new key for
    `publisher` in the index and list a bundle signed by it."""
    index = list_entries(reg.dir)
    raw = zip_of(bad.files)
    entry = entry_for(bad, raw, publisher)
    repo = TufRepository.open(reg.dir)
    repo.add_target(entry.bundle, raw, publisher=publisher)
    publishers = {**index.publishers, publisher: key.public}
    new_index = make_index(publishers, (*index.entries, entry)).to_json()
    repo.add_target(INDEX_PATH, new_index, publisher=None)
    repo.publish()


def test_a_publisher_key_swapped_in_the_index(reg: Registry, home: Path) -> None:
    before = install_tabs(reg, home)
    thief = generate_key()
    swap_publisher_key(reg, "alice", thief, tabs_11(reg, thief))
    alice = reg.key("alice").public
    note = update_refused(
        home,
        before,
        f"signed by {thief.public}",
        f"installed tabs from key {alice}",
        f'plugins.installed.tabs.publisher_key = "{thief.public}"',
    )
    assert "compromised" in note


def test_a_new_publisher_key_accepted_in_ruvector_toml(reg: Registry, home: Path) -> None:
    install_tabs(reg, home)
    rotated = generate_key()
    swap_publisher_key(reg, "alice", rotated, tabs_11(reg, rotated))
    write_config(home, reg, {"tabs": f'{CARET}\npublisher_key = "{rotated.public}"'})
    result = run(home, "reconcile", "--upgrade")
    assert result.exit_code == 0, result.output
    assert installed(home) == {"tabs": "1.1.0"}
    history = json.loads((home / "state" / "registry" / "history.json").read_text())
    assert history["plugins"]["tabs"]["versions"]["1.1.0"]["publisher_key"] == rotated.public


def test_a_pinned_publisher_key_refuses_the_registry_s_own(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    pinned = generate_key().public
    write_config(home, reg, {"tabs": f'publisher_key = "{pinned}"'})
    install_refused(home, "plugins.installed.tabs.source", f"requires {pinned}")


def test_publisher_key_on_a_local_plugin_is_refused(reg: Registry, home: Path) -> None:
    key = generate_key().public
    write_config(home, reg, {"tabs": f'source = "dir:{reg.work}"\npublisher_key = "{key}"'})
    result = run(home, "plan")
    assert result.exit_code == 1
    assert "plugins.installed.tabs.publisher_key: applies to registry plugins only" in result.output
