"""What the registry tooling says when it is used wrongly: serve, pack, sign, add, list, init, info.

Through the CLI as users run it (CliRunner on `ruvector.cli.main.cli`, or
the console script in a subprocess where the command serves until Ctrl-C),
on real files and a registry served over loopback.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.bundle import SIGNATURE_NAME, bundle_from_dir, open_bundle, write_bundle
from reconciler.signature import PublisherKey, generate_key, sign_bundle, write_key
from registry.repository import LOCK_FILE, add_bundle, init_registry, list_entries
from registry.serve import serve
from ruvector.cli.main import cli
from ruvector.errors import HostFault, PluginRefused
from tests.registry_fixtures import HELLO_CAPS, registry, write_config

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello"
# hello's wasm imports show_notification: without ShowNotifications it cannot load.
UNDECLARED = (
    "plugin 'hello' refused: import ruvector.show_notification needs capability "
    "ShowNotifications, which the manifest does not declare"
)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def files_under(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` and its bytes, but the writer lock's note of its holder."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in directory.rglob("*")
        if p.is_file() and p.name != LOCK_FILE
    }


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    directory = tmp_path / "hello"
    shutil.copytree(HELLO, directory, ignore=shutil.ignore_patterns(SIGNATURE_NAME))
    return directory


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, PublisherKey]:
    key = generate_key()
    write_key(key, tmp_path / "keys" / "k")
    return tmp_path / "keys" / "k", key


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    init_registry(tmp_path / "reg")
    return tmp_path / "reg"


def without_notifications(directory: Path) -> None:
    manifest = directory / "manifest.toml"
    text = manifest.read_text()
    assert f"capabilities = {HELLO_CAPS}" in text
    manifest.write_text(
        text.replace(f"capabilities = {HELLO_CAPS}", 'capabilities = ["ReadSystemInfo"]')
    )


# ---------------------------------------------------------------------- 1. serve


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_serve_refuses_a_port_out_of_range_in_one_line(reg: Path, port: str) -> None:
    result = run("registry", "serve", reg, "--port", port)
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Invalid value for '--port'" in result.output and "0<=x<=65535" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("port", [99999, -1])
def test_serve_library_turns_a_bad_port_into_a_host_fault(tmp_path: Path, port: int) -> None:
    with (
        pytest.raises(HostFault, match=f"cannot listen on 127.0.0.1:{port}: "),
        serve(tmp_path, "127.0.0.1", port),
    ):
        pass


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")


@needs_ipv6
def test_serve_listens_on_ipv6_with_a_bracketed_url(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"over IPv6")
    with serve(tmp_path, "::1") as url:
        assert url.startswith("http://[::1]:")
        with urllib.request.urlopen(f"{url}/f", timeout=5) as response:
            assert response.read() == b"over IPv6"


@contextlib.contextmanager
def serving(reg: Path, host: str) -> Iterator[tuple[str, list[str]]]:
    """`ruvector registry serve` in a subprocess: its URL, and its output lines.

    The lines are there once the block exits: the server is stopped with
    Ctrl-C (SIGINT) first, so no read waits for a line that never comes.
    """
    command = ["registry", "serve", str(reg), "--host", host, "--port", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ruvector", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if " at " not in first:
            proc.wait(timeout=10)
            pytest.fail(f"serve did not start: {first}{proc.stderr.read() if proc.stderr else ''}")
        lines = [first.strip()]
        yield first.split(" at ")[1].split(" ")[0], lines
        proc.send_signal(signal.SIGINT)
        # Read through proc.stdout: its buffer may hold lines already.
        # communicate() would read the pipe beneath it and miss them.
        out = proc.stdout.read()
        assert proc.wait(timeout=10) == 0 and "stopped" in out
        lines.extend(line.strip() for line in out.splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_ipv6
def test_serve_cli_on_ipv6(reg: Path) -> None:
    with serving(reg, "::1") as (url, lines):
        assert url.startswith("http://[::1]:")
        with urllib.request.urlopen(f"{url}/metadata/timestamp.json", timeout=5) as response:
            assert b'"timestamp"' in response.read()
    assert f'registry_url = "{url}"' in lines


@pytest.mark.parametrize("host", ["0.0.0.0", pytest.param("::", marks=needs_ipv6)])
def test_serve_on_every_address_says_clients_need_this_machines_address(
    reg: Path, host: str
) -> None:
    with serving(reg, host) as (url, lines):
        # It does listen: on loopback, for one.
        loopback = "[::1]" if ":" in host else "127.0.0.1"
        port = url.rsplit(":", 1)[1]
        with urllib.request.urlopen(f"http://{loopback}:{port}/metadata/timestamp.json") as r:
            assert r.status == 200
    (note,) = [line for line in lines if line.startswith("note:")]
    assert note.startswith(f"note: {host} means every address of this machine")
    assert "clients must use this machine's address or name instead" in note


def test_serve_on_loopback_has_no_note(reg: Path) -> None:
    with serving(reg, "127.0.0.1") as (url, lines):
        pass
    assert f'registry_url = "{url}"' in lines
    assert not any("note:" in line for line in lines)


# ---------------------------------------------------------------------- 2. pack and signatures


def test_pack_says_unsigned(hello: Path, tmp_path: Path) -> None:
    result = run("plugin", "pack", hello, "--out", tmp_path / "h.rvp")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        "  unsigned (registries accept signed bundles only: `ruvector plugin sign`)"
    )


def test_pack_says_who_signed(
    hello: Path, tmp_path: Path, key_file: tuple[Path, PublisherKey]
) -> None:
    path, key = key_file
    assert run("plugin", "sign", hello, "--key", path).exit_code == 0
    result = run("plugin", "pack", hello, "--out", tmp_path / "h.rvp")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == f"  signed by {key.public}"


def test_pack_refuses_a_signature_the_plugin_no_longer_matches(
    hello: Path, tmp_path: Path, key_file: tuple[Path, PublisherKey]
) -> None:
    path, key = key_file
    assert run("plugin", "sign", hello, "--key", path).exit_code == 0
    manifest = hello / "manifest.toml"
    manifest.write_text(manifest.read_text().replace("Reads CPU", "Reads the CPU"))
    out = tmp_path / "h.rvp"
    result = run("plugin", "pack", hello, "--out", out)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert f"the signature by {key.public} does not match" in result.output
    assert f"re-run `ruvector plugin sign {hello}`" in result.output
    assert not out.exists()
    # Signing again is the fix.
    assert run("plugin", "sign", hello, "--key", path).exit_code == 0
    assert run("plugin", "pack", hello, "--out", out).exit_code == 0


def test_registry_add_gives_the_same_re_sign_hint(reg: Path, hello: Path, tmp_path: Path) -> None:
    signed = sign_bundle(bundle_from_dir(hello), generate_key())
    files = {**signed.files, "README.md": b"# edited after signing\n"}
    bundle = tmp_path / "edited.rvp"
    write_bundle(type(signed)(signed.manifest, files, signed.origin), bundle)
    before = files_under(reg)
    result = run("registry", "add", reg, bundle, "--publisher", "alice")
    assert result.exit_code == 1
    assert "does not match the bundle's content" in result.output
    assert f"re-run `ruvector plugin sign {bundle}`" in result.output
    assert files_under(reg) == before


# ---------------------------------------------------------------------- 3. imports vs capabilities


def test_pack_refuses_an_import_whose_capability_is_not_declared(
    hello: Path, tmp_path: Path
) -> None:
    without_notifications(hello)
    out = tmp_path / "h.rvp"
    result = run("plugin", "pack", hello, "--out", out)
    assert result.exit_code == 1
    assert result.output == f"error: {UNDECLARED}\n"
    assert not out.exists()


def test_sign_refuses_an_import_whose_capability_is_not_declared(
    hello: Path, tmp_path: Path, key_file: tuple[Path, PublisherKey]
) -> None:
    without_notifications(hello)
    result = run("plugin", "sign", hello, "--key", key_file[0])
    assert result.exit_code == 1
    assert UNDECLARED in result.output
    assert not (hello / SIGNATURE_NAME).exists()
    # A .rvp too: the check is on the bytes, wherever they come from.
    bundle = tmp_path / "h.rvp"
    write_bundle(bundle_from_dir(hello), bundle)
    before = bundle.read_bytes()
    result = run("plugin", "sign", bundle, "--key", key_file[0])
    assert result.exit_code == 1 and UNDECLARED in result.output
    assert bundle.read_bytes() == before


def test_registry_add_refuses_an_import_whose_capability_is_not_declared(
    reg: Path, hello: Path, tmp_path: Path
) -> None:
    without_notifications(hello)
    bundle = tmp_path / "h.rvp"
    write_bundle(sign_bundle(bundle_from_dir(hello), generate_key()), bundle)
    before = files_under(reg)
    result = run("registry", "add", reg, bundle, "--publisher", "alice")
    assert result.exit_code == 1
    assert result.output == f"error: {UNDECLARED}\n"
    with pytest.raises(PluginRefused, match="which the manifest does not declare"):
        add_bundle(reg, bundle, publisher="alice")
    assert files_under(reg) == before
    assert list_entries(reg).entries == ()


def test_a_plugin_whose_imports_are_declared_goes_through(
    reg: Path, hello: Path, tmp_path: Path, key_file: tuple[Path, PublisherKey]
) -> None:
    assert run("plugin", "sign", hello, "--key", key_file[0]).exit_code == 0
    bundle = tmp_path / "h.rvp"
    assert run("plugin", "pack", hello, "--out", bundle).exit_code == 0
    result = run("registry", "add", reg, bundle, "--publisher", "alice")
    assert result.exit_code == 0, result.output
    assert open_bundle(bundle).manifest.name == "hello"


# ---------------------------------------------------------------------- 4, 5. which directory


NO_REGISTRY = "no registry here (make one with `ruvector registry init`)"


def test_list_says_no_registry_here_as_add_does(tmp_path: Path, hello: Path) -> None:
    (tmp_path / "notreg").mkdir()
    listed = run("registry", "list", tmp_path / "notreg")
    assert listed.exit_code == 1
    assert listed.output == f"error: {tmp_path / 'notreg'}: {NO_REGISTRY}\n"
    added = run("registry", "add", tmp_path / "notreg", HELLO / "manifest.toml")
    assert added.output == listed.output


@pytest.mark.parametrize(
    "args",
    [
        ["init", "{dir}"],
        ["add", "{dir}", "{bundle}"],
        ["list", "{dir}"],
        ["refresh", "{dir}"],
        ["serve", "{dir}", "--port", "0"],
    ],
    ids=lambda args: args[0],
)
def test_every_command_names_the_parent_of_a_served_directory(
    reg: Path, tmp_path: Path, args: list[str]
) -> None:
    served = reg / "repository"
    before = files_under(reg)
    filled = [a.format(dir=served, bundle=HELLO / "manifest.toml") for a in args]
    result = run("registry", *filled)
    assert result.exit_code == 1
    assert result.output == (
        f"error: {served}: this is a registry's served repository/ directory: "
        f"pass its parent, {reg}\n"
    )
    assert files_under(reg) == before


def test_a_second_init_says_the_directory_already_holds_a_registry(reg: Path) -> None:
    before = files_under(reg)
    result = run("registry", "init", reg)
    assert result.exit_code == 1
    assert result.output == (
        f"error: {reg}: already holds a registry: "
        f"publish with `ruvector registry add {reg} BUNDLE`\n"
    )
    assert files_under(reg) == before


# ---------------------------------------------------------------------- 6. info


def test_info_suggests_a_name_spelled_alike(tmp_path: Path) -> None:
    with registry(tmp_path) as reg:
        reg.publish("tab-limiter", "1.0.0")
        write_config(tmp_path, reg, {})
        result = run("info", "tab-limter", "--config", tmp_path / "ruvector.toml")
    assert result.exit_code == 1
    assert "has no plugin 'tab-limter' (did you mean tab-limiter?)" in result.output


def test_info_prints_a_refused_trust_with_its_reason_below(tmp_path: Path) -> None:
    with registry(tmp_path) as reg:
        # Signed, and RegistryWrite needs Verified: this machine will not install it.
        reg.publish(
            "regedit", "1.0.0", caps='["ReadSystemInfo", "ShowNotifications", "RegistryWrite"]'
        )
        write_config(tmp_path, reg, {})
        result = run("info", "regedit", "--config", tmp_path / "ruvector.toml")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index("trust:         refused")
    reason = []
    for line in lines[at + 1 :]:
        if not line.startswith(" " * 15):
            break
        reason.append(line.strip())
    assert reason and all(len(line) <= 80 or " " not in line for line in reason)
    assert "is signed and declares RegistryWrite" in " ".join(reason)
    assert lines[at + 1 + len(reason)].startswith("registry says:")
