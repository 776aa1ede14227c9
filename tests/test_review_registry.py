"""Review findings on the registry client: each test fails on the code as reviewed.

Every test names the bug it shows. They run against a real registry over
loopback (tests.registry_fixtures), like tests/test_registry_attacks.py.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.bundle import bundle_from_dir
from reconciler.desired import load_desired
from reconciler.handoff import hand_off
from reconciler.lock import ReconcileLock
from reconciler.signature import sign_bundle
from reconciler.store import StateStore
from registry.client import PinnedRoot, RegistryClient
from registry.fetch import Downloader, FetchSettings
from registry.index import INDEX_PATH, make_index
from registry.repository import list_entries
from registry.tuf_repo import TufRepository
from tests import http_server
from tests.registry_fixtures import (
    HELLO,
    Registry,
    plugin_dir,
    run,
    signed_bundle,
    write_config,
)

CARET = 'version = "^1.0"'


def installed(home: Path) -> dict[str, str]:
    gen = StateStore(home / "state").current()
    return {p.name: p.version for p in gen.plugins} if gen else {}


def history(home: Path) -> dict[str, Any]:
    path = home / "state" / "registry" / "history.json"
    return json.loads(path.read_text()) if path.exists() else {"plugins": {}}


def damage_installed_wasm(home: Path, name: str) -> None:
    """Drift: the installed artifact's wasm changes on disk."""
    store = StateStore(home / "state")
    gen = store.current()
    assert gen is not None
    plugin = gen.plugin(name)
    assert plugin is not None
    (store.artifact_dir(plugin.digest) / "plugin.wasm").write_bytes(b"not the wasm")


def withdraw(reg: Registry, name: str, version: str, publisher: str = "alice") -> None:
    """The registry drops `name` `version` from its index and its publisher's role."""
    index = list_entries(reg.dir)
    gone = index.entry(name, version)
    assert gone is not None
    repo = TufRepository.open(reg.dir)
    for path in (gone.bundle, gone.manifest_url, gone.wasm_url):
        repo.remove_target(path, publisher)
    rest = [e for e in index.entries if e != gone]
    repo.add_target(INDEX_PATH, make_index(index.publishers, rest).to_json(), publisher=None)
    repo.publish()


def mirror_of(site: http_server.LoopbackServer, reg: Registry) -> None:
    """Serve every file of `reg`, as it is now, from `site`."""
    site.routes = {
        "/" + str(p.relative_to(reg.served)): p.read_bytes()
        for p in reg.served.rglob("*")
        if p.is_file()
    }


def served_path(reg: Registry, target: str) -> str:
    directory, _, name = target.rpartition("/")
    found = sorted((reg.served / "targets" / directory).glob(f"*.{name}"))
    assert found, target
    return "/" + str(found[-1].relative_to(reg.served))


# ------------------------------------------------------------------ resolution


def test_a_drifted_registry_plugin_is_repaired_though_a_newer_release_exists(
    reg: Registry, home: Path
) -> None:
    """resolve() fetches the newest allowed release for a drifted plugin, not the
    installed one, so the Repair finds no bytes for it and the whole apply fails
    with "restore that source", although the registry still serves 1.0.0."""
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": CARET})
    assert run(home, "reconcile").exit_code == 0
    reg.publish("tabs", "1.1.0")  # an update the user has not taken
    damage_installed_wasm(home, "tabs")
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert installed(home) == {"tabs": "1.0.0"}
    store = StateStore(home / "state")
    current = store.current()
    assert current is not None and store.check_drift(current) == []


def test_offline_upgrade_does_not_reinstall_a_rolled_back_version(
    reg: Registry, home: Path
) -> None:
    """_offline() ignores the rolled-back versions (want.skip): with the registry
    unreachable, --upgrade (and auto-update) installs from the cache the very
    version the user rolled back from."""
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": CARET})
    assert run(home, "reconcile").exit_code == 0
    reg.publish("tabs", "1.1.0")
    assert run(home, "reconcile", "--upgrade").exit_code == 0
    assert run(home, "rollback").exit_code == 0
    assert installed(home) == {"tabs": "1.0.0"}
    damage_installed_wasm(home, "tabs")  # or anything else that makes it leave `kept`
    write_config(home, reg, {"tabs": CARET}, url=http_server.unused_url("").rstrip("/"))
    run(home, "reconcile", "--upgrade")
    assert installed(home) != {"tabs": "1.1.0"}, "the rolled-back 1.1.0 came back"


def test_one_release_whose_schema_rejects_the_config_does_not_block_other_updates(
    reg: Registry, home: Path
) -> None:
    """A new release whose config schema rejects the user's (unchanged) config is a
    PlanError for the whole plan: no plugin is updated, auto-update fails every
    time, and the message blames ruvector.toml without naming the release."""
    reg.publish("tabs", "1.0.0")
    reg.publish("clock", "1.0.0")
    write_config(
        home,
        reg,
        {"tabs": f'{CARET}\nconfig = {{ greeting = "hi" }}', "clock": CARET},
    )
    assert run(home, "reconcile").exit_code == 0
    directory = plugin_dir(reg.work, "tabs", "1.1.0")
    schema = json.loads((directory / "config.schema.json").read_text())
    schema["properties"]["greeting"]["type"] = "integer"
    (directory / "config.schema.json").write_text(json.dumps(schema))
    reg.add(sign_bundle(bundle_from_dir(directory, check_host=False), reg.key("alice")), "alice")
    reg.publish("clock", "1.1.0")  # a good release of another plugin
    result = run(home, "reconcile", "--upgrade")
    assert result.exit_code == 0, result.output
    assert installed(home) == {"tabs": "1.0.0", "clock": "1.1.0"}
    # ...and a note says why tabs 1.1.0 was not taken.
    assert any("tabs" in line and "1.1.0" in line for line in result.output.splitlines())


def test_the_upgrade_floor_is_never_below_the_installed_version(reg: Registry, home: Path) -> None:
    """The floor is the history's high-water mark only. Without a record (history
    deleted, as HistoryDamaged tells the user to do, or never written) an older
    release offered as the newest fails the whole plan instead of being a note."""
    reg.publish("tabs", "1.0.0")
    reg.publish("tabs", "1.1.0")
    reg.publish("clock", "1.0.0")
    write_config(home, reg, {"tabs": CARET, "clock": CARET})
    assert run(home, "reconcile").exit_code == 0
    assert installed(home) == {"tabs": "1.1.0", "clock": "1.0.0"}
    (home / "state" / "registry" / "history.json").unlink()
    withdraw(reg, "tabs", "1.1.0")  # 1.0.0 is now the registry's newest
    reg.publish("clock", "1.1.0")
    result = run(home, "reconcile", "--upgrade")
    assert result.exit_code == 0, result.output
    assert installed(home) == {"tabs": "1.1.0", "clock": "1.1.0"}


def test_a_republished_version_with_other_bytes_is_refused(reg: Registry, home: Path) -> None:
    """history.json records the sha256 of each installed version, but a fresh
    fetch never compares with it: a registry (or stolen publisher key) that
    re-lists 1.0.0 with other content is installed silently, and the record is
    overwritten."""
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": 'version = "1.0.0"'})
    assert run(home, "reconcile").exit_code == 0
    first = history(home)["plugins"]["tabs"]["versions"]["1.0.0"]["bundle_sha256"]
    write_config(home, reg, {})
    assert run(home, "reconcile", "--allow-empty").exit_code == 0
    # The same version again, with other (validly signed) content.
    withdraw(reg, "tabs", "1.0.0")
    directory = plugin_dir(reg.work, "tabs", "1.0.0")
    (directory / "README.md").write_text("other content under the same version\n")
    reg.add(sign_bundle(bundle_from_dir(directory, check_host=False), reg.key("alice")), "alice")
    write_config(home, reg, {"tabs": 'version = "1.0.0"'})
    result = run(home, "reconcile")
    assert history(home)["plugins"]["tabs"]["versions"]["1.0.0"]["bundle_sha256"] == first
    assert result.exit_code != 0 or installed(home) == {}, result.output


# ------------------------------------------------------------------ crash, full disk


def _disk_full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_the_high_water_mark_survives_a_history_write_failure(
    reg: Registry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply() switches the generation first and writes history.json after, and a
    failed write is only a warning: 1.1.0 runs while the machine's downgrade
    protection (and the offline cache record) still says 1.0.0. A crash between
    the two steps does the same."""
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": CARET})
    assert run(home, "reconcile").exit_code == 0
    reg.publish("tabs", "1.1.0")
    monkeypatch.setattr("registry.history.atomic_write", _disk_full)
    run(home, "reconcile", "--upgrade")
    monkeypatch.undo()
    if installed(home) == {"tabs": "1.1.0"}:
        assert history(home)["plugins"]["tabs"]["high_water"] == "1.1.0"


def test_a_rollback_is_remembered_even_when_history_cannot_be_written(
    reg: Registry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rollback() switches first and records the rolled-back version after; when
    that write fails (or the process dies) the rollback stands but is forgotten,
    and the next --upgrade / auto-update installs the version the user left."""
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": CARET})
    assert run(home, "reconcile").exit_code == 0
    reg.publish("tabs", "1.1.0")
    assert run(home, "reconcile", "--upgrade").exit_code == 0
    monkeypatch.setattr("registry.history.atomic_write", _disk_full)
    run(home, "rollback")
    monkeypatch.undo()
    if installed(home) == {"tabs": "1.0.0"}:  # the rollback took effect
        assert run(home, "reconcile", "--upgrade").exit_code == 0
        assert installed(home) == {"tabs": "1.0.0"}, "--upgrade took back the rolled-back 1.1.0"


# ------------------------------------------------------------------ trust


def test_revoking_a_verified_key_demotes_an_installed_registry_plugin(
    reg: Registry, home: Path
) -> None:
    """Trust of an installed registry plugin is read from the generation record and
    never recomputed: after the user removes the key from verified_publisher_keys
    the plugin keeps running as verified, with RegistryWrite. (A dir:/file:
    plugin is re-checked on every reconcile; and hand_off's "a record edited by
    hand cannot lift the trust rule" trusts the record's own trust field.)"""
    reg.publish("regedit", "1.0.0", caps='["RegistryWrite"]')
    key = reg.key("alice").public
    trust = f"\n[plugins.trust]\nverified_publisher_keys = [{json.dumps(key)}]\n"
    body = {"regedit": 'approve = ["RegistryWrite"]'}
    write_config(home, reg, body, extra=trust)
    assert run(home, "reconcile").exit_code == 0
    write_config(home, reg, body)  # the key is revoked
    run(home, "reconcile")
    store = StateStore(home / "state")
    current = store.current()
    assert current is not None
    handed = hand_off(current.plugins, store, load_desired(home / "ruvector.toml"))
    assert [s.name for s in handed.specs] == [], "still handed over as verified"


# ------------------------------------------------------------------ mirrors, messages


def test_switching_mirrors_cannot_roll_back_the_index(reg: Registry, home: Path) -> None:
    """The TUF metadata directory is keyed by the URL as well as the pinned root, so
    a second mirror of the same registry starts from root v1 with no memory of
    the versions seen: it may serve an older (unexpired) index, which the first
    mirror could not."""
    reg.publish("tabs", "1.0.0")
    reg.publish("other", "1.0.0")
    with http_server.serve() as stale:
        mirror_of(stale, reg)  # the registry as it was
        reg.publish("other", "1.1.0")  # a fix
        write_config(home, reg, {"tabs": CARET})
        assert run(home, "reconcile").exit_code == 0  # this machine saw the newer index
        write_config(home, reg, {"tabs": CARET, "other": CARET}, url=stale.base_url)
        result = run(home, "reconcile")
    assert installed(home).get("other") != "1.0.0", result.output


def test_info_shows_the_capabilities_the_signed_bundle_declares(reg: Registry, home: Path) -> None:
    """`ruvector info` verifies the newest bundle for its trust line but prints the
    index's `capabilities`, the registry's unchecked word: a registry can show
    "ReadSystemInfo" for a bundle that declares KillProcess."""
    bundle = signed_bundle(reg.work, "tabs", "1.0.0", reg.key("alice"), '["KillProcess"]')
    reg.add(bundle, "alice")
    index = list_entries(reg.dir)
    entry = index.entry("tabs", "1.0.0")
    assert entry is not None
    lie = replace(entry, capabilities=("ReadSystemInfo",))
    entries = [lie if e == entry else e for e in index.entries]
    repo = TufRepository.open(reg.dir)
    repo.add_target(INDEX_PATH, make_index(index.publishers, entries).to_json(), publisher=None)
    repo.publish()
    write_config(home, reg, {})
    result = run(home, "info", "tabs")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("capabilities:"))
    assert "KillProcess" in line, result.output


def test_search_and_info_keep_terminal_escapes_out(reg: Registry, home: Path) -> None:
    """Index text (description, author) goes to the terminal raw; plugin output is
    escaped (cli/output.py) but registry text is not."""
    directory = plugin_dir(reg.work, "tabs", "1.0.0")
    manifest = directory / "manifest.toml"
    text = manifest.read_text()
    start = text.index("description = ")
    end = text.index("\n", start)
    evil = 'description = "tabs\\u001b]0;owned\\u0007\\u001b[2J\\u001b[1A safe"'
    manifest.write_text(text[:start] + evil + text[end:])
    reg.add(sign_bundle(bundle_from_dir(directory, check_host=False), reg.key("alice")), "alice")
    write_config(home, reg, {})
    for args in (("search", "tabs"), ("info", "tabs")):
        result = run(home, *args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output, args


# ------------------------------------------------------------------ time bounds


def _slow_headers(handler: http_server.RouteHandler) -> None:
    """A status line, then one header line every 0.1 s for 3 s: each read is quick."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    handler.wfile.flush()
    for i in range(30):
        if handler.wait(0.1):
            return
        handler.wfile.write(b"X-Pad-%d: y\r\n" % i)
        handler.wfile.flush()
    handler.wfile.write(b"Content-Length: 3\r\n\r\nabc")
    handler.wfile.flush()
    handler.close_connection = True


def test_a_header_trickle_is_bound_by_the_total_deadline(tmp_path: Path) -> None:
    """total_timeout_s is checked only once the headers are in: a mirror sending
    its headers a byte at a time (within each read timeout) holds a download,
    and the reconcile lock, for up to h11's 16 KiB of headers x read_timeout_s
    (some 45 hours with the defaults), not the documented 120 s."""
    settings = FetchSettings(read_timeout_s=0.3, total_timeout_s=0.6, retries=0)
    with http_server.serve({"/f": _slow_headers}) as site, Downloader(settings, None) as d:
        started = time.monotonic()
        # Failing is right; how long it took is the point.
        with contextlib.suppress(Exception):
            d.fetch(site.url("/f"), 3, hashlib.sha256(b"abc").hexdigest())
        elapsed = time.monotonic() - started
    # The docstring's bound: the total, plus at most one read.
    assert elapsed < settings.total_timeout_s + settings.read_timeout_s + 0.5, elapsed


def test_a_failed_batch_is_not_downloaded_again_one_by_one(
    reg: Registry, home: Path, tmp_path: Path
) -> None:
    """_download() re-fetches every bundle sequentially when the parallel batch
    fails, so each bad or stalled bundle is requested twice and N stalled
    bundles cost (N + 1) x total_timeout_s instead of one."""
    for name in ("tabs", "clock", "dock"):
        reg.publish(name, "1.0.0")
    with http_server.serve() as site:
        mirror_of(site, reg)
        write_config(home, reg, {n: CARET for n in ("tabs", "clock", "dock")}, url=site.base_url)
        assert run(home, "reconcile").exit_code == 0
        for name in ("tabs", "clock", "dock"):
            reg.publish(name, "1.1.0")
        mirror_of(site, reg)
        stalled = [
            served_path(reg, f"alice/{n}/1.1.0/{n}-1.1.0.rvp") for n in ("tabs", "clock", "dock")
        ]
        for path in stalled:
            site.routes[path] = http_server.trickle(interval_s=0.05)
        settings = FetchSettings(read_timeout_s=0.3, total_timeout_s=0.8, retries=0)
        root = reg.root.read_bytes()
        state = home / "state"
        from reconciler.apply import reconcile

        started = time.monotonic()
        done = reconcile(
            load_desired(home / "ruvector.toml"),
            StateStore(state),
            upgrade=True,
            connect=lambda: RegistryClient(
                site.base_url, PinnedRoot(root, str(reg.root)), state, settings=settings
            ),
        )
        elapsed = time.monotonic() - started
        requests = [site.requests(p) for p in stalled]
    assert not done.plan.has_changes
    assert requests == [1, 1, 1], requests
    assert elapsed < 3 * settings.total_timeout_s, elapsed


# ------------------------------------------------------------------ disk


def test_the_download_cache_does_not_keep_every_index_ever_fetched(
    reg: Registry, home: Path
) -> None:
    """Every index.json version (up to 64 MiB each) and every bundle ever fetched,
    refused ones included, stays in state/registry/cache/ for ever: nothing
    prunes it, so a long-running auto-updating machine fills its disk."""
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": CARET})
    assert run(home, "reconcile").exit_code == 0
    for patch in range(1, 6):
        reg.publish("other", f"1.0.{patch}")  # a new index each time
        assert run(home, "reconcile", "--upgrade").exit_code == 0
    cache = home / "state" / "registry" / "cache"
    indexes = [p for p in cache.iterdir() if p.read_bytes().startswith(b'{\n "format"')]
    assert len(indexes) <= 1, f"{len(indexes)} copies of index.json kept"


# ------------------------------------------------------------------ auto-update


def test_auto_update_is_not_silenced_by_a_check_time_in_the_future(tmp_path: Path) -> None:
    """Clock skew: a check recorded while the clock ran ahead (a year, say) makes
    next_at a year away once the clock is right again; auto-update silently
    stops for that long."""
    from reconciler.autoupdate import AutoUpdate
    from registry.schedule import Schedule

    now = datetime.now(UTC)
    report = tmp_path / "registry" / "last-update.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"checked_at": (now + timedelta(days=365)).isoformat()}))
    updater = AutoUpdate(tmp_path, Schedule.parse("6h"))
    assert updater.next_at(now) <= now + timedelta(hours=6)


class _Executor:
    """What _Follower uses of an Executor."""

    def __init__(self) -> None:
        self.plugins: dict[str, object] = {}
        self.profile = "balanced"

        class _Observer:
            def refused(self, name: str, why: str) -> None:
                pass

        self.observer = _Observer()

    def load_all(self, specs: Any) -> None:
        for s in specs:
            self.plugins[s.name] = s

    def unload(self, name: str) -> None:
        self.plugins.pop(name, None)

    def switch_profile(self, profile: str) -> None:
        self.profile = profile


def test_an_edit_refused_while_an_update_check_holds_the_lock_is_applied_later(
    tmp_path: Path,
) -> None:
    """`ruvector run`: an edit seen while the background update check holds the
    reconcile lock fails with LockHeld, and _Follower has already recorded the
    file as seen: the edit (here: revoking an approval by disabling the plugin)
    is never retried until the file changes again or SIGHUP."""
    from reconciler.apply import reconcile
    from ruvector.cli.run import _Follower

    home = tmp_path / "home"
    home.mkdir()
    config = home / "ruvector.toml"
    table = (
        f'[plugins]\ntick_interval_ms = 50\n\n[plugins.installed.hello]\nsource = "dir:{HELLO}"\n'
    )
    config.write_text(table)
    desired = load_desired(config)
    store = StateStore(home / "state")
    generation = reconcile(desired, store).applied.generation
    assert generation is not None
    follower = _Follower(config, store, _Executor(), generation, desired)  # type: ignore[arg-type]
    config.write_text(table + "enabled = false\n")
    with ReconcileLock(home / "state"):  # the update thread, mid-check
        follower.before_tick()
    follower.before_tick()  # the lock is free again
    current = store.current()
    assert current is not None and current.plugin("hello") is not None
    assert current.plugin("hello").enabled is False, "the edit was dropped"  # type: ignore[union-attr]
