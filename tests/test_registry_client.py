"""Installing from a real registry over loopback: resolution, trust, history, updates."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.store import StateStore
from tests.registry_fixtures import Registry, run, write_config


def installed(home: Path) -> dict[str, tuple[str, str]]:
    gen = StateStore(home / "state").current()
    assert gen is not None
    return {p.name: (p.version, p.trust.value) for p in gen.plugins}


def test_install_the_newest_allowed_version_signed(reg: Registry, home: Path) -> None:
    for v in ("1.0.0", "1.2.0", "2.0.0"):
        reg.publish("tabs", v)
    write_config(home, reg, {"tabs": 'version = "^1.0"\nconfig = { greeting = "hi" }'})
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert installed(home) == {"tabs": ("1.2.0", "signed")}
    history = json.loads((home / "state" / "registry" / "history.json").read_text())
    assert history["plugins"]["tabs"]["high_water"] == "1.2.0"


def test_a_pinned_plugin_stays_until_upgrade(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": 'version = "^1.0"'})
    assert run(home, "reconcile").exit_code == 0
    reg.publish("tabs", "1.1.0")
    again = run(home, "reconcile")
    assert again.exit_code == 0, again.output
    assert installed(home)["tabs"][0] == "1.0.0"
    up = run(home, "reconcile", "--upgrade")
    assert up.exit_code == 0, up.output
    assert installed(home)["tabs"][0] == "1.1.0"


def test_an_installed_plugin_needs_no_network(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": 'version = "^1.0"'})
    assert run(home, "reconcile").exit_code == 0
    write_config(home, reg, {"tabs": 'version = "^1.0"'}, url="http://127.0.0.1:9")
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output or "no changes" in result.output.lower()


def test_unknown_plugin_and_unmatched_constraint(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tbas": "", "tabs": 'version = "^2"'})
    result = run(home, "plan")
    assert result.exit_code == 1
    assert "plugins.installed.tbas: the registry has no plugin 'tbas'" in result.output
    assert "did you mean 'tabs'" in result.output
    assert "plugins.installed.tabs.version: no published version of tabs matches" in result.output


def test_rollback_is_remembered_and_upgrade_skips_that_version(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": 'version = "^1.0"'})
    assert run(home, "reconcile").exit_code == 0
    reg.publish("tabs", "1.1.0")
    assert run(home, "reconcile", "--upgrade").exit_code == 0
    back = run(home, "rollback")
    assert back.exit_code == 0, back.output
    assert "tabs 1.1.0 will not be offered again by --upgrade or auto-update" in back.output
    assert installed(home)["tabs"][0] == "1.0.0"
    history = json.loads((home / "state" / "registry" / "history.json").read_text())
    assert history["plugins"]["tabs"]["rolled_back"] == ["1.1.0"]
    # A plain reconcile keeps what the user rolled back to...
    assert run(home, "reconcile").exit_code == 0
    assert installed(home)["tabs"][0] == "1.0.0"
    # ...--upgrade does not take the rolled-back version again, but a newer one.
    up = run(home, "reconcile", "--upgrade")
    assert up.exit_code == 0, up.output
    assert "tabs: 1.1.0 is skipped: it was rolled back on this machine" in up.output
    assert 'pin version = "1.1.0" to take it again' in up.output
    assert installed(home)["tabs"][0] == "1.0.0"
    reg.publish("tabs", "1.2.0")
    assert run(home, "reconcile", "--upgrade").exit_code == 0
    assert installed(home)["tabs"][0] == "1.2.0"


def test_offline_install_from_the_download_cache(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    reg.publish("other", "1.0.0")
    write_config(home, reg, {"tabs": 'version = "^1.0"', "other": ""})
    assert run(home, "reconcile").exit_code == 0
    # Removed, then wanted again while the registry is unreachable.
    write_config(home, reg, {"other": ""})
    assert run(home, "reconcile").exit_code == 0
    assert "tabs" not in installed(home)
    offline = "http://127.0.0.1:9"
    write_config(home, reg, {"tabs": 'version = "^1.0"', "other": ""}, url=offline)
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert "comes from the download cache" in result.output
    assert installed(home)["tabs"] == ("1.0.0", "signed")


def test_offline_without_a_cached_bundle_is_a_clear_error(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""}, url="http://127.0.0.1:9")
    result = run(home, "reconcile")
    assert result.exit_code == 1
    assert "plugins.installed.tabs.source" in result.output
    assert "unreachable" in result.output
    assert "no version it allows is in the download cache" in result.output
    assert not (home / "state" / "generations").exists()


def test_a_cached_bundle_corrupted_on_disk_is_not_used_offline(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""})
    assert run(home, "reconcile").exit_code == 0
    write_config(home, reg, {})
    assert run(home, "reconcile", "--allow-empty").exit_code == 0
    for cached in (home / "state" / "registry" / "cache").iterdir():
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0xFF
        cached.write_bytes(bytes(data))
    write_config(home, reg, {"tabs": ""}, url="http://127.0.0.1:9")
    result = run(home, "reconcile")
    assert result.exit_code == 1
    assert "no version it allows is in the download cache" in result.output


def test_a_registry_plugin_without_a_pinned_root(reg: Registry, home: Path) -> None:
    (home / "ruvector.toml").write_text("[plugins.installed.tabs]\nversion = '^1'\n")
    result = run(home, "plan")
    assert result.exit_code == 1
    assert "plugins.installed.tabs.source" in result.output
    assert "plugins.registry_root is not set" in result.output


def test_an_inline_pinned_root_works(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    root = reg.root.read_text()
    (home / "ruvector.toml").write_text(
        f"[plugins]\nregistry_url = {json.dumps(reg.url)}\n"
        f"registry_root = '''{root}'''\n\n[plugins.installed.tabs]\n"
    )
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert installed(home)["tabs"] == ("1.0.0", "signed")


def test_a_verified_publisher_key_makes_a_plugin_verified(reg: Registry, home: Path) -> None:
    reg.publish("regedit", "1.0.0", caps='["RegistryWrite"]')
    key = reg.key("alice").public
    write_config(
        home,
        reg,
        {"regedit": 'approve = ["RegistryWrite"]'},
        extra=f"\n[plugins.trust]\nverified_publisher_keys = [{json.dumps(key)}]\n",
    )
    result = run(home, "reconcile")
    assert result.exit_code == 0, result.output
    assert installed(home)["regedit"] == ("1.0.0", "verified")


def test_a_signed_plugin_may_not_hold_registry_write(reg: Registry, home: Path) -> None:
    reg.publish("regedit", "1.0.0", caps='["RegistryWrite"]')
    write_config(home, reg, {"regedit": 'approve = ["RegistryWrite"]'})
    result = run(home, "reconcile")
    assert result.exit_code == 1
    assert "is signed and declares RegistryWrite" in result.output
    assert "needs a verified publisher" in result.output


def test_search_and_info(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    reg.publish("tabs", "1.1.0")
    reg.publish("battery-guard", "0.3.0", publisher="bob")
    write_config(home, reg, {})
    found = run(home, "search", "TAB")
    assert found.exit_code == 0, found.output
    assert "tabs" in found.output and "1.1.0" in found.output and "battery" not in found.output
    none = run(home, "search", "nothing-like-it")
    assert "no plugin" in none.output
    info = run(home, "info", "tabs")
    assert info.exit_code == 0, info.output
    assert "latest:        1.1.0" in info.output
    assert "trust:         signed" in info.output
    assert "versions:      1.1.0, 1.0.0" in info.output
    assert "capabilities:  ReadSystemInfo, ShowNotifications" in info.output
    missing = run(home, "info", "tab")
    assert missing.exit_code == 1
    assert "no plugin 'tab'" in missing.output and "did you mean tabs" in missing.output


def test_a_held_upgrade_says_how_to_take_it_once_approved(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "1.0.0")
    write_config(home, reg, {"tabs": ""})
    assert run(home, "reconcile").exit_code == 0
    reg.publish("tabs", "1.1.0", caps='["ReadSystemInfo", "KillProcess"]')
    held = run(home, "reconcile", "--upgrade")
    assert held.exit_code == 0, held.output
    assert "then `ruvector reconcile --upgrade`" in held.output
    write_config(home, reg, {"tabs": 'approve = ["KillProcess"]'})
    assert run(home, "reconcile").exit_code == 0
    assert installed(home)["tabs"][0] == "1.0.0"  # a plain reconcile keeps the pin...
    assert run(home, "reconcile", "--upgrade").exit_code == 0
    assert installed(home)["tabs"][0] == "1.1.0"  # ...as the note said


def test_a_release_outside_the_constraint_is_named_by_upgrade(reg: Registry, home: Path) -> None:
    reg.publish("tabs", "0.1.0")
    write_config(home, reg, {"tabs": 'version = "^0.1"'})
    assert run(home, "reconcile").exit_code == 0
    reg.publish("tabs", "0.2.0")
    up = run(home, "reconcile", "--upgrade")
    assert up.exit_code == 0, up.output
    assert installed(home)["tabs"][0] == "0.1.0"
    assert 'tabs: 0.2.0 is published, outside version = "^0.1"' in up.output
    assert "change plugins.installed.tabs.version in ruvector.toml" in up.output
