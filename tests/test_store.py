"""The observed state: artifacts, generations, pins and drift, on a real disk."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from reconciler.store import (
    Drift,
    DriftKind,
    Generation,
    InstalledPlugin,
    Pin,
    Pruned,
    StateError,
    StateStore,
    config_hash,
    digest_of,
    hashes_of,
    pins_of,
)
from reconciler.trust import TrustLevel
from ruvector.errors import HostFault

ROOT = Path(__file__).resolve().parent.parent
WASM = b"\0asm\1\0\0\0"


def bundle(version: str = "1.0.0", extra: bytes = b"") -> dict[str, bytes]:
    return {
        "manifest.toml": f'name = "hello"\nversion = "{version}"\n'.encode(),
        "plugin.wasm": WASM + extra,
        "README.md": b"hello\n",
    }


def installed(
    name: str = "hello",
    files: dict[str, bytes] | None = None,
    config: Mapping[str, object] | None = None,
) -> InstalledPlugin:
    files = bundle() if files is None else files
    config = {"greeting": "hi"} if config is None else config
    return InstalledPlugin(
        name=name,
        version="1.0.0",
        digest=digest_of(files),
        wasm_sha256=hashes_of(files)["plugin.wasm"],
        source=f"dir:/plugins/{name}",
        approved=("ShowNotifications", "ReadSystemInfo"),
        config=config,
        config_hash=config_hash(config),
        enabled=True,
        trust=TrustLevel.UNSIGNED,
        files=hashes_of(files),
    )


def generation(number: int, *plugins: InstalledPlugin, parent: int | None = None) -> Generation:
    return Generation(number, 1700000000.5 + number, plugins, f"generation {number}", parent)


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(tmp_path / "state")


def applied(store: StateStore, files: dict[str, bytes], number: int, parent: int | None = None):
    """Stage, record and switch, as an apply does."""
    store.put_artifact(files, digest_of(files))
    g = generation(number, installed(files=files), parent=parent)
    store.write_generation(g)
    store.switch(number)
    return g


def run_killed_writer(state: Path, kill_at: str, action: str) -> None:
    """Run `action` on a StateStore in a child that SIGKILLs itself at `kill_at`."""
    script = f"""
import os, signal, sys
from collections.abc import Mapping
from pathlib import Path
from reconciler import store as s
from tests.test_store import bundle, generation, installed
st = s.StateStore(Path(sys.argv[1]))
def die(*args): os.kill(os.getpid(), signal.SIGKILL)
os.{kill_at} = die
{action}
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script, str(state)], env=env, cwd=ROOT)
    assert proc.returncode == -9


posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")


# -- digests ------------------------------------------------------------------


def test_digest_depends_on_names_and_content_not_order():
    files = bundle()
    assert digest_of(files) == digest_of(dict(reversed(files.items())))
    assert digest_of(files) != digest_of(bundle(extra=b"x"))
    renamed = {("main.wasm" if k == "plugin.wasm" else k): v for k, v in files.items()}
    assert digest_of(files) != digest_of(renamed)


def test_digest_scheme_is_fixed():
    # One line per member, sorted by name; bundles compute the same digest.
    files = {"b": b"2", "a": b"1"}
    lines = "".join(f"{n}\0{hashlib.sha256(files[n]).hexdigest()}\n" for n in ("a", "b"))
    assert digest_of(files) == hashlib.sha256(lines.encode()).hexdigest()


@pytest.mark.parametrize(
    "name", ["../x", "/abs", "a/../b", "", "a//b", "a\\b", "C:x", "./a", "a/", "new\nline"]
)
def test_unsafe_member_names_are_refused(store, name):
    files = {name: b"x"}
    with pytest.raises(ValueError, match="unsafe"):
        digest_of(files)
    assert not store.store_dir.exists()


def test_a_member_inside_another_member_is_refused():
    with pytest.raises(ValueError, match="inside another"):
        digest_of({"a": b"1", "a/b": b"2"})


# -- artifacts ----------------------------------------------------------------


def test_put_artifact_round_trip(store):
    files = {**bundle(), "build/wasm/plugin.wasm": WASM}
    digest = digest_of(files)
    path = store.put_artifact(files, digest)
    assert path == store.artifact_dir(digest) == store.state_dir / "store" / digest
    for name, data in files.items():
        assert (path / name).read_bytes() == data
    assert store.verify_artifact(digest, hashes_of(files)) == []
    assert [p.name for p in store.store_dir.iterdir()] == [digest]  # no temp dir left


def test_put_artifact_again_is_a_no_op(store):
    files = bundle()
    path = store.put_artifact(files, digest_of(files))
    inode = (path / "plugin.wasm").stat().st_ino
    assert store.put_artifact(files, digest_of(files)) == path
    assert (path / "plugin.wasm").stat().st_ino == inode


def test_put_artifact_repairs_a_damaged_copy(store):
    files = bundle()
    path = store.put_artifact(files, digest_of(files))
    (path / "plugin.wasm").write_bytes(b"tampered")
    store.put_artifact(files, digest_of(files))
    assert (path / "plugin.wasm").read_bytes() == files["plugin.wasm"]


def test_put_artifact_refuses_a_wrong_digest(store):
    with pytest.raises(ValueError, match="not the digest"):
        store.put_artifact(bundle(), digest_of(bundle(extra=b"x")))
    with pytest.raises(ValueError, match="not a sha256"):
        store.put_artifact(bundle(), "../../etc")


@posix_only
def test_killed_writer_leaves_a_temp_dir_that_is_ignored_then_cleaned(tmp_path):
    state = tmp_path / "state"
    files = bundle()
    # Killed between writing the temp dir and renaming it into place.
    run_killed_writer(state, "rename", "st.put_artifact(bundle(), s.digest_of(bundle()))")
    leftovers = list((state / "store").iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-")
    store = StateStore(state)
    assert not store.artifact_dir(digest_of(files)).exists()
    assert store.verify_artifact(digest_of(files), hashes_of(files)) == [
        "missing file README.md",
        "missing file manifest.toml",
        "missing file plugin.wasm",
    ]
    other = bundle(version="2.0.0")
    store.put_artifact(other, digest_of(other))
    assert [p.name for p in (state / "store").iterdir()] == [digest_of(other)]


@posix_only
def test_killed_switch_leaves_the_old_generation_current(tmp_path):
    state = tmp_path / "state"
    store = StateStore(state)
    g1 = applied(store, bundle(), 1)
    store.write_generation(generation(2, installed(), parent=1))
    run_killed_writer(state, "replace", "st.switch(2)")
    assert any(p.name.endswith(".tmp") for p in (state / "generations").iterdir())
    store = StateStore(state)
    assert store.current() == g1
    assert [g.number for g in store.history()] == [1, 2]
    store.prune(keep=5)  # any write sweeps the leftover
    assert not any(p.name.endswith(".tmp") for p in (state / "generations").iterdir())


# -- generations --------------------------------------------------------------


def test_generation_round_trip(store):
    g = generation(1, installed("b"), installed("a"))
    store.write_generation(g)
    assert store.generation(1) == g
    assert [p.name for p in store.generation(1).plugins] == ["a", "b"]
    assert g.plugins[0].approved == ("ReadSystemInfo", "ShowNotifications")
    data = json.loads((store.generations_dir / "1.json").read_text())
    assert data["format_version"] == 1
    assert data["plugins"][0]["trust"] == "unsigned"


def test_nothing_is_current_before_the_first_switch(store):
    assert store.current() is None
    assert store.previous() is None
    assert store.history() == []
    assert store.next_number() == 1
    store.write_generation(generation(1, installed()))
    assert store.current() is None


def test_generations_are_never_rewritten(store):
    store.write_generation(generation(1, installed()))
    with pytest.raises(StateError, match="already exists") as refused:
        store.write_generation(generation(1))
    assert refused.value.file == str(store.generations_dir / "1.json")
    assert store.generation(1).plugins != ()


def test_switch_previous_history(store):
    g1 = applied(store, bundle("1.0.0"), 1)
    g2 = applied(store, bundle("2.0.0"), 2, parent=1)
    assert store.current() == g2
    assert store.previous() == g1
    assert store.history() == [g1, g2]
    assert store.next_number() == 3
    store.switch(1)  # a rollback
    assert store.current() == g1
    assert store.previous() is None
    assert (store.generations_dir / "current").read_text() == "1\n"


def test_switch_to_a_missing_generation_changes_nothing(store):
    applied(store, bundle(), 1)
    with pytest.raises(StateError, match="missing"):
        store.switch(7)
    assert store.current().number == 1


def test_prune_keeps_current_its_parent_and_their_artifacts(store):
    versions = {n: bundle(f"{n}.0.0") for n in range(1, 6)}
    for n, files in versions.items():
        applied(store, files, n, parent=n - 1 or None)
    store.switch(3)  # rolled back: 3 is current, 2 its parent, 5 the newest
    pruned = store.prune(keep=1)
    assert pruned.generations == (1, 4)
    assert [g.number for g in store.history()] == [2, 3, 5]
    assert sorted(pruned.artifacts) == sorted(digest_of(versions[n]) for n in (1, 4))
    kept = {digest_of(versions[n]) for n in (2, 3, 5)}
    assert {p.name for p in store.store_dir.iterdir()} == kept
    assert store.current().number == 3
    assert store.previous().number == 2
    assert store.prune(keep=1) == Pruned((), ())


def test_prune_refuses_to_delete_if_a_kept_generation_is_damaged(store):
    applied(store, bundle("1.0.0"), 1)
    applied(store, bundle("2.0.0"), 2, parent=1)
    applied(store, bundle("3.0.0"), 3, parent=2)
    (store.generations_dir / "2.json").write_text("{")
    with pytest.raises(StateError, match=r"2\.json"):
        store.prune(keep=0)
    assert len(list(store.store_dir.iterdir())) == 3
    assert (store.generations_dir / "1.json").exists()


def test_prune_rejects_a_negative_keep(store):
    with pytest.raises(ValueError):
        store.prune(-1)


DAMAGED = {
    "truncated": (b'{"format_version": 1, "number":', "not valid JSON"),
    "not an object": (b"[]", "expected a JSON object"),
    "newer format": (b'{"format_version": 2}', "unknown format_version 2"),
    "no format": (b'{"number": 1}', "unknown format_version None"),
}


@pytest.mark.parametrize("content, message", DAMAGED.values(), ids=DAMAGED.keys())
def test_damaged_generation_is_a_state_error_naming_the_file(store, content, message):
    path = store.generations_dir / "1.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(StateError, match=message) as damaged:
        store.generation(1)
    assert damaged.value.file == str(path)
    assert str(damaged.value).startswith(f"{path}: ")
    assert isinstance(damaged.value, HostFault)


FIELD_DAMAGE = {
    "plugin version": (lambda d: d["plugins"][0].update(version=3), "plugins[0].version"),
    "bool as int": (lambda d: d.update(number=True), "number: expected an integer"),
    "trust": (lambda d: d["plugins"][0].update(trust="root"), "unknown trust level"),
    "config edited": (lambda d: d["plugins"][0]["config"].update(x=1), "config_hash does not"),
    "file hash": (lambda d: d["plugins"][0]["files"].update(x="0" * 64), "digest does not"),
    "parent": (lambda d: d.update(parent=1), "cannot have parent 1"),
    "number": (lambda d: d.update(number=2), "holds generation 2, not 1"),
}


@pytest.mark.parametrize("damage, message", FIELD_DAMAGE.values(), ids=FIELD_DAMAGE.keys())
def test_damaged_fields_are_state_errors(store, damage, message):
    store.write_generation(generation(1, installed()))
    path = store.generations_dir / "1.json"
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match=re.escape(message)) as damaged:
        store.generation(1)
    assert damaged.value.file == str(path)


@pytest.mark.parametrize("content", [b"", b"abc\n", b"0\n", b"-1", b"1\n2\n"])
def test_damaged_current_is_a_state_error(store, content):
    applied(store, bundle(), 1)
    (store.generations_dir / "current").write_bytes(content)
    with pytest.raises(StateError, match="current: expected a generation number"):
        store.current()


def test_current_naming_a_missing_generation_is_a_state_error(store):
    applied(store, bundle(), 1)
    (store.generations_dir / "current").write_text("9\n")
    with pytest.raises(StateError, match=r"9\.json: missing"):
        store.current()


def test_no_secrets_on_disk(store, monkeypatch):
    monkeypatch.setenv("TOKEN", "s3cret-value")
    config = {"api": {"token": "env:TOKEN"}, "greeting": "hi"}
    store.write_generation(generation(1, installed(config=config)))
    assert b"s3cret-value" not in (store.generations_dir / "1.json").read_bytes()
    assert store.generation(1).plugins[0].config == config


# -- pins ---------------------------------------------------------------------


def test_pins_round_trip(store):
    assert store.read_pins() == {}
    g = applied(store, bundle(), 1)
    pins = pins_of(g)
    store.write_pins(pins)
    assert store.read_pins() == pins
    pin = pins["hello"]
    assert pin == Pin(
        "hello",
        "1.0.0",
        hashes_of(bundle())["plugin.wasm"],
        g.plugins[0].digest,
        "dir:/plugins/hello",
    )
    data = json.loads(store.pins_path.read_text())
    assert data["format_version"] == 1
    assert set(data["plugins"]["hello"]) == {"version", "wasm_sha256", "digest", "source"}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{", "not valid JSON"),
        (b'{"format_version": 1, "plugins": {"a": {"version": "1"}}}', "plugins.a.wasm_sha256"),
        (b'{"format_version": 1, "plugins": {"a": []}}', "plugins.a: expected an object"),
    ],
)
def test_damaged_pins_are_a_state_error(store, content, message):
    store.state_dir.mkdir()
    store.pins_path.write_bytes(content)
    with pytest.raises(StateError, match=message) as damaged:
        store.read_pins()
    assert damaged.value.file == str(store.pins_path)


# -- drift --------------------------------------------------------------------


def test_no_drift_on_an_intact_install(store):
    g = applied(store, bundle(), 1)
    assert store.check_drift(g) == []


def test_drift_finds_a_deleted_a_changed_and_an_extra_file(store):
    g = applied(store, bundle(), 1)
    path = store.artifact_dir(g.plugins[0].digest)
    (path / "README.md").unlink()
    data = bytearray((path / "plugin.wasm").read_bytes())
    data[-1] ^= 1  # one bit of one byte
    (path / "plugin.wasm").write_bytes(bytes(data))
    (path / "evil.wasm").write_bytes(b"x")
    assert store.check_drift(g) == [
        Drift("hello", "README.md", DriftKind.MISSING),
        Drift("hello", "evil.wasm", DriftKind.EXTRA),
        Drift("hello", "plugin.wasm", DriftKind.CHANGED),
    ]
    assert str(store.check_drift(g)[0]) == "hello: missing file README.md"


@pytest.mark.skipif(os.name != "posix", reason="symlinks need privileges on Windows")
def test_a_symlink_is_drift_even_to_identical_bytes(store, tmp_path):
    g = applied(store, bundle(), 1)
    path = store.artifact_dir(g.plugins[0].digest)
    copy = tmp_path / "copy.wasm"
    copy.write_bytes((path / "plugin.wasm").read_bytes())
    (path / "plugin.wasm").unlink()
    (path / "plugin.wasm").symlink_to(copy)
    assert store.check_drift(g) == [Drift("hello", "plugin.wasm", DriftKind.CHANGED)]


def test_drift_of_a_deleted_artifact_and_an_extra_directory(store):
    files = {**bundle(), "lib/helper.wasm": b"h"}
    g = applied(store, files, 1)
    path = store.artifact_dir(g.plugins[0].digest)
    (path / "junk").mkdir()
    assert store.check_drift(g) == [Drift("hello", "junk", DriftKind.EXTRA)]
    for p in sorted(path.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    path.rmdir()
    assert {d.kind for d in store.check_drift(g)} == {DriftKind.MISSING}
    assert len(store.check_drift(g)) == len(files)


def test_replace_artifact_repairs_drift(store):
    files = bundle()
    g = applied(store, files, 1)
    path = store.artifact_dir(g.plugins[0].digest)
    (path / "plugin.wasm").write_bytes(b"tampered")
    (path / "extra").write_bytes(b"x")
    assert store.replace_artifact(files, digest_of(files)) == path
    assert store.check_drift(g) == []
    assert [p.name for p in store.store_dir.iterdir()] == [path.name]  # old copy deleted


def test_replace_artifact_restores_a_deleted_artifact(store):
    files = bundle()
    g = applied(store, files, 1)
    path = store.artifact_dir(g.plugins[0].digest)
    for p in path.iterdir():
        p.unlink()
    path.rmdir()
    store.replace_artifact(files, digest_of(files))
    assert store.check_drift(g) == []


# -- records ------------------------------------------------------------------


def test_records_refuse_broken_invariants():
    plugin = installed()
    with pytest.raises(ValueError, match="config_hash"):
        InstalledPlugin(**{**plugin.__dict__, "config": {"other": 1}})
    with pytest.raises(ValueError, match="digest"):
        InstalledPlugin(**{**plugin.__dict__, "digest": "0" * 64})
    with pytest.raises(ValueError, match="wasm_sha256"):
        InstalledPlugin(**{**plugin.__dict__, "wasm_sha256": "0" * 64})
    with pytest.raises(ValueError, match="twice"):
        generation(1, plugin, plugin)
    with pytest.raises(ValueError, match="below 1"):
        generation(0)
