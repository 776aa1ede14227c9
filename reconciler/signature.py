"""Publisher code signing: Ed25519 keys (PyNaCl) and bundle signatures.

A publisher signs a bundle's content, not its zip: the message is a fixed
prefix and the digest of every member but the signature itself (see
reconciler.store.digest_of). The manifest is among those members and pins
the wasm's sha256, so one signature covers the manifest, the wasm, the
config schema and the README; changing any byte of any of them breaks it.

The signature travels in the bundle as `manifest.toml.sig`:

    {"format": "ruvector-signature-v1", "public_key": "<64 hex>", "signature": "<128 hex>"}

The public key in it only says which key to check against; a signature
counts when that key is one the verifier already trusts (verified publisher
keys, or the registry's key for the publisher). Key files:

    NAME      the secret key: a comment line, then `ruvector-ed25519-secret:<64 hex seed>`
    NAME.pub  the public key: 64 hex digits, the form ruvector.toml lists
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from reconciler.bundle import SIGNATURE_NAME, Bundle
from reconciler.store import InstalledPlugin, StateStore, digest_of
from reconciler.trust import TrustLevel
from registry.history import History
from ruvector.atomic import atomic_write
from ruvector.errors import HostFault, InputError

FORMAT = "ruvector-signature-v1"
_MESSAGE_PREFIX = b"ruvector plugin bundle signature v1\n"
_SECRET_PREFIX = "ruvector-ed25519-secret:"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
MAX_KEY_FILE_BYTES = 4096


class SignatureRefused(InputError):
    """A signature that does not hold, or one by a key that may not sign this plugin."""

    def __init__(self, plugin: str, where: str, reason: str) -> None:
        self.plugin = plugin
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: plugin '{plugin}' refused: {reason}")


@dataclass(frozen=True)
class PublisherKey:
    """A secret signing key and its public half (64 hex digits)."""

    signing: SigningKey
    path: Path | None = None

    @property
    def public(self) -> str:
        return bytes(self.signing.verify_key).hex()


def generate_key() -> PublisherKey:
    return PublisherKey(SigningKey.generate())


def write_key(key: PublisherKey, path: Path, *, force: bool = False) -> Path:
    """Write the secret key to `path` (mode 0600) and the public key to `path`.pub.

    Refuses to overwrite an existing key unless `force`: a lost secret key
    cannot sign updates to what it published. Returns the .pub path.
    """
    public = path.with_name(path.name + ".pub")
    if not force:
        for p in (path, public):
            if p.exists():
                raise InputError(f"{p} exists: pass --force to replace it (its key is then lost)")
    text = (
        "# ruvector publisher key (Ed25519). Keep this file secret; "
        f"its public key is in {public.name}.\n"
        f"{_SECRET_PREFIX}{bytes(key.signing).hex()}\n"
    )
    try:
        atomic_write(path, text.encode(), mode=0o600)
        atomic_write(public, f"{key.public}\n".encode())
    except OSError as exc:
        raise HostFault(f"cannot write the key to {path}: {exc.strerror or exc}") from exc
    return public


def read_key(path: Path) -> PublisherKey:
    """Read a secret key file written by write_key. Raises InputError naming the file."""
    text = _read_small(path, "key file")
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(_SECRET_PREFIX):
            seed = line[len(_SECRET_PREFIX) :]
            if not _HEX64.match(seed):
                raise InputError(f"{path}: the secret key is not 64 lowercase hex digits")
            return PublisherKey(SigningKey(bytes.fromhex(seed)), path)
    if _HEX64.match(text.strip()):
        raise InputError(f"{path}: this is a public key; signing needs the secret key file")
    raise InputError(f"{path}: not a ruvector key file (made by `ruvector keygen`)")


def read_public_key(path: Path) -> str:
    """A public key file's 64 hex digits. Raises InputError naming the file."""
    text = _read_small(path, "public key file").strip()
    if not _HEX64.match(text):
        raise InputError(f"{path}: expected a public key of 64 lowercase hex digits")
    return text


def _read_small(path: Path, what: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise InputError(f"{path}: too large for a {what}")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a {what} (not ASCII text)") from None


# -- signing and checking -----------------------------------------------------


def message_of(files: Mapping[str, bytes]) -> bytes:
    """What a signature signs: the digest of every member but the signature."""
    unsigned = {name: data for name, data in files.items() if name != SIGNATURE_NAME}
    return _MESSAGE_PREFIX + digest_of(unsigned).encode() + b"\n"


def sign_bundle(bundle: Bundle, key: PublisherKey) -> Bundle:
    """The same bundle with `manifest.toml.sig` by `key` (replacing any signature)."""
    signature = key.signing.sign(message_of(bundle.files)).signature
    sig = {"format": FORMAT, "public_key": key.public, "signature": signature.hex()}
    files = dict(bundle.files)
    files[SIGNATURE_NAME] = (json.dumps(sig, indent=2) + "\n").encode()
    return Bundle(bundle.manifest, MappingProxyType(dict(sorted(files.items()))), bundle.origin)


def signer_of(bundle: Bundle) -> str | None:
    """The public key whose valid signature the bundle carries; None if unsigned.

    Raises SignatureRefused for a signature file that is malformed or does
    not verify (a tampered member, or a signature made for other content):
    a broken signature is never read as "unsigned".
    """
    return signer_of_files(bundle.files, bundle.manifest.name, bundle.origin)


def signer_of_files(files: Mapping[str, bytes], plugin: str, origin: str) -> str | None:
    """signer_of, for a plugin's files as a mapping (e.g. read from the store)."""
    raw = files.get(SIGNATURE_NAME)
    if raw is None:
        return None
    where = f"{origin}: {SIGNATURE_NAME}"
    public, signature = _parse_signature(raw, plugin, where)
    try:
        VerifyKey(bytes.fromhex(public)).verify(message_of(files), signature)
    except BadSignatureError:
        raise SignatureRefused(
            plugin,
            where,
            f"the signature by {public} does not match the bundle's content "
            "(a member was changed after signing)",
        ) from None
    return public


def trust_now(
    recorded: TrustLevel,
    signer: str | None,
    verified_keys: Collection[str],
    publisher_key: str | None,
) -> TrustLevel:
    """An installed plugin's trust under today's verified_publisher_keys.

    Verified holds only while its signer is still a verified key; revoked,
    the plugin is Signed if the signer is its registry publisher's key
    (`publisher_key`, None for local plugins), else Unsigned. The other
    levels do not depend on ruvector.toml and stay as recorded.
    """
    if recorded is not TrustLevel.VERIFIED or signer in verified_keys:
        return recorded
    if publisher_key is not None and signer == publisher_key:
        return TrustLevel.SIGNED
    return TrustLevel.UNSIGNED


def _parse_signature(raw: bytes, plugin: str, where: str) -> tuple[str, bytes]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SignatureRefused(plugin, where, f"not a signature file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SignatureRefused(plugin, where, f'not a signature file of format "{FORMAT}"')
    public, signature = data.get("public_key"), data.get("signature")
    if not isinstance(public, str) or not _HEX64.match(public):
        raise SignatureRefused(plugin, where, "public_key: expected 64 lowercase hex digits")
    if not isinstance(signature, str) or not _HEX128.match(signature):
        raise SignatureRefused(plugin, where, "signature: expected 128 lowercase hex digits")
    return public, bytes.fromhex(signature)


def local_trust(bundle: Bundle, verified_keys: Collection[str]) -> TrustLevel:
    """The trust of a bundle from this machine (a dir: or file: source).

    Verified if signed by a verified publisher key; otherwise Unsigned, even
    when signed: only a registry can vouch for a publisher's own key.
    Raises SignatureRefused for a broken signature.
    """
    signer = signer_of(bundle)
    return TrustLevel.VERIFIED if signer in verified_keys else TrustLevel.UNSIGNED


def registry_trust(
    bundle: Bundle, verified_keys: Collection[str], publisher: str, publisher_key: str
) -> TrustLevel:
    """The trust of a bundle the registry lists under `publisher`.

    Verified if signed by a verified publisher key, Signed if by the key the
    registry holds for `publisher`. Raises SignatureRefused for an unsigned
    bundle (never accepted from a registry), a broken signature, or one by
    any other key (someone signing in another's namespace).
    """
    signer = signer_of(bundle)
    where = f"{bundle.origin}: {SIGNATURE_NAME}"
    name = bundle.manifest.name
    if signer is None:
        raise SignatureRefused(
            name, bundle.origin, "it is unsigned, and a registry's plugins must be signed"
        )
    if signer in verified_keys:
        return TrustLevel.VERIFIED
    if signer != publisher_key:
        raise SignatureRefused(
            name,
            where,
            f"signed by {signer}, but the registry holds {publisher_key} "
            f"for publisher '{publisher}'",
        )
    return TrustLevel.SIGNED


def default_key_path() -> Path:
    """Where `ruvector keygen` writes without --out: ~/.ruvector/keys/publisher.key."""
    return Path(os.path.expanduser("~/.ruvector/keys/publisher.key"))


def installed_trust(
    store: StateStore, p: InstalledPlugin, verified_keys: Collection[str]
) -> TrustLevel:
    """The trust an installed plugin has now: Verified only while its signer
    is still a verified key (reconciler.signature.trust_now).

    Raises SignatureRefused if its stored signature no longer verifies.
    """
    if p.trust is not TrustLevel.VERIFIED:
        return p.trust  # the cheap, common case: nothing to re-check
    directory = store.artifact_dir(p.digest)
    files = {name: (directory / name).read_bytes() for name in p.files}
    signer = signer_of_files(files, p.name, str(directory))
    publisher_key = None
    if p.source.startswith("registry:"):
        fetched = History.load(store.state_dir).of(p.name).versions.get(p.version)
        publisher_key = fetched.publisher_key if fetched else None
    return trust_now(p.trust, signer, verified_keys, publisher_key)
