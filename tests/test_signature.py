"""Publisher keys, bundle signatures and trust levels, through the CLI and the library."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.bundle import SIGNATURE_NAME, Bundle, bundle_from_dir, open_bundle, write_bundle
from reconciler.signature import (
    SignatureRefused,
    generate_key,
    local_trust,
    read_key,
    read_public_key,
    registry_trust,
    sign_bundle,
    signer_of,
    write_key,
)
from reconciler.trust import TrustLevel
from ruvector.cli.main import cli
from ruvector.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello"


def cli_run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    shutil.copytree(HELLO, tmp_path / "hello")
    return tmp_path / "hello"


def with_capabilities(directory: Path, caps: str) -> None:
    manifest = directory / "manifest.toml"
    text = manifest.read_text().replace(
        'capabilities = ["ReadSystemInfo", "ShowNotifications"]', f"capabilities = {caps}"
    )
    manifest.write_text(text)


def replaced(bundle: Bundle, name: str, data: bytes) -> Bundle:
    files = dict(bundle.files)
    files[name] = data
    return Bundle(bundle.manifest, files, bundle.origin)


# -- keys ---------------------------------------------------------------------


def test_key_files_round_trip_and_the_secret_is_private(tmp_path: Path) -> None:
    key = generate_key()
    public_path = write_key(key, tmp_path / "k")
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert read_key(tmp_path / "k").public == key.public
    assert read_public_key(public_path) == key.public


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    assert cli_run("keygen", "--out", str(tmp_path / "k")).exit_code == 0
    first = (tmp_path / "k").read_text()
    again = cli_run("keygen", "--out", str(tmp_path / "k"))
    assert again.exit_code == 1
    assert "exists: pass --force" in again.output
    assert (tmp_path / "k").read_text() == first
    assert cli_run("keygen", "--out", str(tmp_path / "k"), "--force").exit_code == 0
    assert (tmp_path / "k").read_text() != first


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a" * 64 + "\n", "this is a public key"),
        ("hello\n", "not a ruvector key file"),
        ("ruvector-ed25519-secret:xyz\n", "not 64 lowercase hex"),
        ("x" * 5000, "too large"),
    ],
)
def test_bad_key_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "k").write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_key(tmp_path / "k")
    assert str(tmp_path / "k") in str(info.value)


# -- signatures ---------------------------------------------------------------


def test_a_signed_bundle_names_its_signer_and_survives_packing(hello: Path, tmp_path: Path) -> None:
    key = generate_key()
    signed = sign_bundle(bundle_from_dir(hello), key)
    assert signer_of(signed) == key.public
    write_bundle(signed, tmp_path / "h.rvp")
    assert signer_of(open_bundle(tmp_path / "h.rvp")) == key.public
    assert signer_of(bundle_from_dir(hello)) is None


@pytest.mark.parametrize(
    "member", ["manifest.toml", "plugin.wasm", "config.schema.json", "README.md"]
)
def test_changing_any_member_breaks_the_signature(hello: Path, member: str) -> None:
    signed = sign_bundle(bundle_from_dir(hello), generate_key())
    tampered = replaced(signed, member, signed.files[member] + b" ")
    with pytest.raises(SignatureRefused, match="does not match the bundle's content"):
        signer_of(tampered)


@pytest.mark.parametrize(
    ("sig", "message"),
    [
        (b"not json", "not a signature file"),
        (b'{"format": "other"}', 'format "ruvector-signature-v1"'),
        (
            json.dumps(
                {"format": "ruvector-signature-v1", "public_key": "zz", "signature": "00"}
            ).encode(),
            "public_key",
        ),
        (
            json.dumps(
                {"format": "ruvector-signature-v1", "public_key": "a" * 64, "signature": "00"}
            ).encode(),
            "signature: expected 128",
        ),
        (b"[" * 100000, "not a signature file"),
    ],
)
def test_malformed_signature_files_are_refused(hello: Path, sig: bytes, message: str) -> None:
    bundle = replaced(bundle_from_dir(hello), SIGNATURE_NAME, sig)
    with pytest.raises(SignatureRefused, match=message) as info:
        signer_of(bundle)
    assert SIGNATURE_NAME in str(info.value)


def test_a_signature_made_for_other_content_is_refused(hello: Path) -> None:
    key = generate_key()
    signed = sign_bundle(bundle_from_dir(hello), key)
    (hello / "README.md").write_text("another plugin's readme\n")
    other = bundle_from_dir(hello)  # no signature of its own
    grafted = replaced(other, SIGNATURE_NAME, signed.files[SIGNATURE_NAME])
    with pytest.raises(SignatureRefused):
        signer_of(grafted)


# -- trust levels ---------------------------------------------------------------


def test_local_trust(hello: Path) -> None:
    key, other = generate_key(), generate_key()
    bundle = bundle_from_dir(hello)
    assert local_trust(bundle, [key.public]) is TrustLevel.UNSIGNED
    assert local_trust(sign_bundle(bundle, key), [key.public]) is TrustLevel.VERIFIED
    # Signed by a key nobody vouches for: still unsigned, as far as rights go.
    assert local_trust(sign_bundle(bundle, other), [key.public]) is TrustLevel.UNSIGNED


def test_registry_trust(hello: Path) -> None:
    alice, bob, team = generate_key(), generate_key(), generate_key()
    bundle = bundle_from_dir(hello)
    by_alice = sign_bundle(bundle, alice)
    assert registry_trust(by_alice, [], "alice", alice.public) is TrustLevel.SIGNED
    by_team = sign_bundle(bundle, team)
    assert registry_trust(by_team, [team.public], "alice", alice.public) is TrustLevel.VERIFIED
    with pytest.raises(SignatureRefused, match="unsigned, and a registry's plugins must be signed"):
        registry_trust(bundle, [], "alice", alice.public)
    with pytest.raises(SignatureRefused, match=f"signed by {bob.public}.*for publisher 'alice'"):
        registry_trust(sign_bundle(bundle, bob), [], "alice", alice.public)


# -- through the CLI ----------------------------------------------------------------


def write_config(home: Path, keys: list[str], approve: str = "") -> None:
    (home / "ruvector.toml").write_text(
        f"""[plugins]
tick_interval_ms = 50

[plugins.trust]
verified_publisher_keys = {json.dumps(keys)}

[plugins.installed.hello]
source = "dir:hello"
config = {{ greeting = "hi" }}
approve = {approve or "[]"}
"""
    )


def test_plugin_sign_makes_a_dangerous_plugin_installable_for_a_verified_key(
    hello: Path, tmp_path: Path
) -> None:
    home = tmp_path
    with_capabilities(hello, '["ReadSystemInfo", "ShowNotifications", "KillProcess"]')
    manifest = bundle_from_dir(hello).manifest  # the wasm hash is unchanged
    assert manifest.capabilities
    assert cli_run("keygen", "--out", str(tmp_path / "k")).exit_code == 0
    public = read_public_key(tmp_path / "k.pub")
    write_config(home, [public], '["KillProcess"]')
    config = ["--config", str(home / "ruvector.toml")]

    refused = cli_run("reconcile", *config)
    assert refused.exit_code == 1
    assert "unsigned and declares KillProcess" in refused.output

    signed = cli_run("plugin", "sign", str(hello), "--key", str(tmp_path / "k"))
    assert signed.exit_code == 0, signed.output
    assert public in signed.output
    done = cli_run("reconcile", *config)
    assert done.exit_code == 0, done.output
    status = json.loads(cli_run("status", "--json", *config).output)
    assert status["plugins"][0]["trust"] == "verified"

    # Edited after signing: refused with the reason, and what was installed stays.
    (hello / "README.md").write_text("changed\n")
    broken = cli_run("plan", *config)
    assert broken.exit_code == 1
    assert "does not match the bundle's content" in broken.output
    assert "manifest.toml.sig" in broken.output


def test_plugin_sign_signs_a_bundle_in_place(hello: Path, tmp_path: Path) -> None:
    assert cli_run("keygen", "--out", str(tmp_path / "k")).exit_code == 0
    write_bundle(bundle_from_dir(hello), tmp_path / "h.rvp")
    result = cli_run("plugin", "sign", str(tmp_path / "h.rvp"), "--key", str(tmp_path / "k"))
    assert result.exit_code == 0, result.output
    assert signer_of(open_bundle(tmp_path / "h.rvp")) == read_public_key(tmp_path / "k.pub")


def test_plugin_sign_with_a_public_key_says_so(hello: Path, tmp_path: Path) -> None:
    assert cli_run("keygen", "--out", str(tmp_path / "k")).exit_code == 0
    result = cli_run("plugin", "sign", str(hello), "--key", str(tmp_path / "k.pub"))
    assert result.exit_code == 1
    assert "this is a public key" in result.output
    assert not (hello / SIGNATURE_NAME).exists()


def test_the_hand_off_refuses_a_trust_level_edited_down_by_hand(
    hello: Path, tmp_path: Path
) -> None:
    """The planner's trust rule holds again at the last step before the executor."""
    from reconciler.desired import load_desired
    from reconciler.handoff import hand_off
    from reconciler.store import StateStore

    with_capabilities(hello, '["ReadSystemInfo", "ShowNotifications", "KillProcess"]')
    assert cli_run("keygen", "--out", str(tmp_path / "k")).exit_code == 0
    write_config(tmp_path, [read_public_key(tmp_path / "k.pub")], '["KillProcess"]')
    assert cli_run("plugin", "sign", str(hello), "--key", str(tmp_path / "k")).exit_code == 0
    assert cli_run("reconcile", "--config", str(tmp_path / "ruvector.toml")).exit_code == 0
    record = tmp_path / "state" / "generations" / "1.json"
    record.write_text(record.read_text().replace('"verified"', '"unsigned"'))
    store = StateStore(tmp_path / "state")
    generation = store.current()
    assert generation is not None
    handed = hand_off(generation.plugins, store, load_desired(tmp_path / "ruvector.toml"))
    assert handed.specs == ()
    assert handed.problems[0][0] == "hello"
    assert "unsigned and declares KillProcess" in handed.problems[0][1]
