"""`ruvector add / remove / set / approve`: edits of ruvector.toml that keep its layout.

The command tests run the real CLI on real files in tmp_path and compare the
whole file before and after, byte for byte. The layout tests are a table of
(file, edit, expected file) on the library functions alone.
"""

from __future__ import annotations

import os
import shutil
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import tomlkit
from click.testing import CliRunner, Result
from tomlkit.toml_document import TOMLDocument

from hostcalls.capabilities import CapabilityKind
from reconciler import edit
from reconciler.desired import load_desired
from ruvector.cli.main import cli
from ruvector.errors import ConfigError

HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello"
SECRET = "tok-5e1f0a9b"

CONFIG = """\
# RuVector's desired state, with the user's own notes.

[plugins]
enabled = true
max_tick_ms = 100          # per plugin call
state_dir = "state"

# The greeter.
[plugins.installed.hello]
version = "0.1.0"
source = "dir:hello"
approve = []               # nothing dangerous
config = { greeting = "hi" }

# A spare copy, kept off.
[plugins.installed.spare]
enabled = false
source = "dir:hello"
# a tighter budget
max_tick_ms = 50
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copytree(HELLO, tmp_path / "hello")
    path = tmp_path / "ruvector.toml"
    path.write_text(CONFIG)
    return path


def ruvector(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


def changed(config: Path, *args: str) -> str:
    """Run a command that must succeed; the file's new text."""
    result = ruvector(config, *args)
    assert result.exit_code == 0, result.output
    assert "ruvector plan" in result.output
    return config.read_text()


def refused(config: Path, *args: str) -> str:
    """Run a command that must fail and leave the file alone; its message."""
    before = sorted(p.name for p in config.parent.iterdir())
    result = ruvector(config, *args)
    assert result.exit_code == 1, result.output
    assert config.read_text() == CONFIG
    assert sorted(p.name for p in config.parent.iterdir()) == before  # no temp file left
    assert f"{config}:" in result.output
    return result.output


def test_set_adds_a_key_after_the_last_one_of_its_table(config: Path) -> None:
    text = changed(config, "set", "hello.max_memory_mb", "128")
    assert text == CONFIG.replace(
        'config = { greeting = "hi" }\n', 'config = { greeting = "hi" }\nmax_memory_mb = 128\n'
    )
    assert load_desired(config).plugins[0].limits.max_memory_mb == 128


def test_set_replaces_a_value_and_keeps_its_comment(config: Path) -> None:
    text = changed(config, "set", "spare.max_tick_ms", "75")
    assert text == CONFIG.replace("max_tick_ms = 50\n", "max_tick_ms = 75\n")
    text = changed(config, "set", "spare.enabled", "true")
    assert text == CONFIG.replace("max_tick_ms = 50\n", "max_tick_ms = 75\n").replace(
        "enabled = false\n", "enabled = true\n"
    )


def test_set_config_keys_in_the_inline_table(config: Path) -> None:
    changed(config, "set", "hello.config.greeting", "hello there")
    changed(config, "set", "hello.config.limits.cpu", "5")
    text = changed(config, "set", 'hello.config."chrome.exe"', "[1, 2]")
    line = 'config = { greeting = "hello there", limits = { cpu = 5 }, "chrome.exe" = [1, 2] }\n'
    assert text == CONFIG.replace('config = { greeting = "hi" }\n', line)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("5", 5),
        ("-2.5", -2.5),
        ("true", True),
        ("[1, 2]", [1, 2]),
        ("{ a = 1 }", {"a": 1}),
        ('"true"', "true"),
        ("hello world", "hello world"),
        ("0.2.0", "0.2.0"),
        ("[1,", "[1,"),
        ("1\nextra = 2", "1\nextra = 2"),
    ],
)
def test_set_reads_toml_values_and_takes_anything_else_as_text(
    config: Path, raw: str, value: object
) -> None:
    changed(config, "set", "hello.config.value", raw)
    assert tomllib.loads(config.read_text())["plugins"]["installed"]["hello"]["config"] == {
        "greeting": "hi",
        "value": value,
    }


def test_env_reference_is_stored_as_its_text(config: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOKEN", SECRET)
    result = ruvector(config, "set", "hello.config.token", "env:TOKEN")
    assert result.exit_code == 0, result.output
    assert 'token = "env:TOKEN"' in config.read_text()
    assert SECRET not in config.read_text() + result.output


def test_env_reference_to_an_unset_variable_is_refused(config: Path, monkeypatch) -> None:
    monkeypatch.delenv("TOKEN", raising=False)
    message = refused(config, "set", "hello.config.token", "env:TOKEN")
    assert "plugins.installed.hello.config.token: the environment variable TOKEN is not set" in (
        message
    )


def test_a_value_the_schema_refuses_changes_nothing(config: Path) -> None:
    message = refused(config, "set", "hello.max_memory_mb", "99999")
    assert "plugins.installed.hello.max_memory_mb: expected a memory cap in MiB" in message
    assert "got 99999" in message


def test_an_unknown_key_is_refused_with_a_suggestion(config: Path) -> None:
    message = refused(config, "set", "hello.max_memry_mb", "5")
    assert "plugins.installed.hello.max_memry_mb" in message
    assert "did you mean 'max_memory_mb'?" in message


def test_set_on_an_unknown_plugin_suggests_the_closest(config: Path) -> None:
    message = refused(config, "set", "helo.enabled", "false")
    assert "plugins.installed.helo: no such plugin (did you mean 'hello'?)" in message


def test_set_below_a_value_that_is_not_a_table(config: Path) -> None:
    message = refused(config, "set", "hello.source.path", "x")
    assert "plugins.installed.hello.source: is a string, not a table" in message


def test_set_needs_a_key_below_the_plugin(config: Path) -> None:
    assert "names no key" in refused(config, "set", "hello", "x")
    assert "is not a key" in refused(config, "set", "hello..x", "x")


def test_add_writes_a_new_section_after_the_last(config: Path) -> None:
    text = changed(
        config,
        "add",
        "world@0.1.0",
        "--source",
        "dir:hello",
        "--approve",
        "KillProcess",
        "--approve",
        "KillProcess",
        "--set",
        "greeting=hey there",
        "--set",
        "limits.cpu=5",
        "--disabled",
    )
    assert text == CONFIG + (
        "\n"
        "[plugins.installed.world]\n"
        "enabled = false\n"
        'version = "0.1.0"\n'
        'source = "dir:hello"\n'
        'approve = ["KillProcess"]\n'
        'config = { greeting = "hey there", limits = { cpu = 5 } }\n'
    )
    world = load_desired(config).plugins[2]
    assert (world.name, world.enabled, world.version) == ("world", False, "0.1.0")
    assert [c.kind for c in world.approved] == [CapabilityKind.KILL_PROCESS]


def test_add_an_existing_plugin_points_to_set(config: Path) -> None:
    message = refused(config, "add", "hello", "--source", "dir:hello")
    assert "plugins.installed.hello: already exists" in message
    assert "ruvector set hello.KEY VALUE" in message


def test_add_without_a_source_takes_the_registry_s_plugin(config: Path) -> None:
    result = CliRunner().invoke(cli, ["add", "world@^1.2", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "added plugin 'world' from the registry" in result.output
    assert "no registry is pinned" in result.output
    table = tomllib.loads(config.read_text())["plugins"]["installed"]["world"]
    assert table == {"version": "^1.2"}


def test_add_from_a_source_that_does_not_exist(config: Path) -> None:
    message = refused(config, "add", "world", "--source", "dir:nowhere")
    assert "plugins.installed.world.source:" in message
    assert "nowhere is not a directory" in message


def test_add_with_a_bad_version_or_name(config: Path) -> None:
    assert "plugins.installed.world.version: 'latest' is not a version constraint" in refused(
        config, "add", "world@latest", "--source", "dir:hello"
    )
    assert "expected a plugin name" in refused(config, "add", "World", "--source", "dir:hello")


def test_add_with_a_malformed_setting(config: Path) -> None:
    result = ruvector(config, "add", "world", "--source", "dir:hello", "--set", "greeting")
    assert result.exit_code == 1
    assert "--set: greeting: expected KEY=VALUE" in result.output
    assert config.read_text() == CONFIG


def test_remove_takes_the_comment_above_and_keeps_the_next_ones(config: Path) -> None:
    text = changed(config, "remove", "hello")
    start = CONFIG.index("# The greeter.")
    assert text == CONFIG[:start] + CONFIG[CONFIG.index("# A spare copy") :]


def test_remove_the_last_plugin_leaves_no_trailing_blank_line(config: Path) -> None:
    text = changed(config, "remove", "spare")
    assert text == CONFIG[: CONFIG.index("\n\n# A spare copy") + 1]


def test_remove_every_plugin(config: Path) -> None:
    changed(config, "remove", "spare")
    text = changed(config, "remove", "hello")
    assert text == CONFIG[: CONFIG.index("\n\n# The greeter.") + 1]
    assert load_desired(config).plugins == ()


def test_remove_an_unknown_plugin_suggests_the_closest(config: Path) -> None:
    message = refused(config, "remove", "spar")
    assert "plugins.installed.spar: no such plugin (did you mean 'spare'?)" in message
    message = refused(config, "remove", "zzz")
    assert "no such plugin (plugins: hello, spare)" in message


def test_approve_adds_to_the_list_and_keeps_its_comment(config: Path) -> None:
    text = changed(config, "approve", "hello", "KillProcess", "NetworkAccess(api.example.com)")
    line = 'approve = ["KillProcess", "NetworkAccess(api.example.com)"]               # nothing'
    assert text == CONFIG.replace("approve = []               # nothing", line)
    assert len(load_desired(config).plugins[0].approved) == 2


def test_approve_twice_lists_it_once_and_leaves_the_file_alone(config: Path) -> None:
    changed(config, "approve", "hello", "NetworkAccess(b.example, a.example)")
    before = config.stat()
    result = ruvector(config, "approve", "hello", "NetworkAccess( a.example,b.example )")
    assert result.exit_code == 0, result.output
    assert "already approved" in result.output
    assert "Nothing to change." in result.output
    assert config.stat().st_ino == before.st_ino  # not even rewritten


def test_revoke(config: Path) -> None:
    changed(config, "approve", "hello", "KillProcess", "ShowNotifications")
    text = changed(config, "approve", "hello", "--revoke", "KillProcess")
    assert 'approve = ["ShowNotifications"]               # nothing dangerous' in text
    text = changed(config, "approve", "hello", "--revoke", "ShowNotifications")
    assert text == CONFIG


def test_revoking_what_is_not_approved_is_an_error(config: Path) -> None:
    message = refused(config, "approve", "hello", "--revoke", "KillProcess")
    assert "plugins.installed.hello.approve: KillProcess is not approved (approved: nothing)" in (
        message
    )


def test_approve_refuses_run_command_and_typos(config: Path) -> None:
    message = refused(config, "approve", "hello", "RunCommand")
    assert "plugins.installed.hello.approve: RunCommand is not available" in message
    message = refused(config, "approve", "hello", "KillProces")
    assert "unknown capability 'KillProces'" in message
    message = refused(config, "add", "world", "--source", "dir:hello", "--approve", "RunCommand")
    assert "plugins.installed.world.approve: RunCommand is not available" in message


def test_approve_needs_a_capability(config: Path) -> None:
    result = ruvector(config, "approve", "hello")
    assert result.exit_code == 2
    assert "name a capability" in result.output


def test_config_from_the_environment(config: Path) -> None:
    result = CliRunner().invoke(
        cli, ["set", "hello.enabled", "false"], env={"RUVECTOR_CONFIG": str(config)}
    )
    assert result.exit_code == 0, result.output
    assert tomllib.loads(config.read_text())["plugins"]["installed"]["hello"]["enabled"] is False


def test_a_file_that_is_not_toml_is_reported_with_its_line(config: Path) -> None:
    config.write_text(CONFIG + "this is not toml\n")
    result = ruvector(config, "set", "hello.enabled", "false")
    assert result.exit_code == 1
    assert f"{config}:21: TOML syntax" in result.output
    assert config.read_text() == CONFIG + "this is not toml\n"


def test_a_missing_file(tmp_path: Path) -> None:
    result = ruvector(tmp_path / "ruvector.toml", "remove", "hello")
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_keeps_the_mode_and_writes_through_a_symlink(config: Path) -> None:
    config.chmod(0o600)
    link = config.parent / "link.toml"
    link.symlink_to(config.name)
    changed(link, "set", "hello.enabled", "false")
    assert link.is_symlink()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "enabled = false" in config.read_text()


# -- edit_file's guarantees, on the library -----------------------------------------


def test_a_file_changed_during_the_edit_is_not_overwritten(config: Path) -> None:
    other = CONFIG.replace("max_tick_ms = 100", "max_tick_ms = 200")

    def change(doc: TOMLDocument) -> str:
        config.write_text(other)  # another editor saves meanwhile
        return edit.set_value(doc, "hello.enabled", "false")

    with pytest.raises(ConfigError, match="changed on disk"):
        edit.edit_file(config, change)
    assert config.read_text() == other


def test_a_rendering_that_disagrees_with_the_edit_is_not_written(config: Path) -> None:
    def change(doc: TOMLDocument) -> str:
        said = edit.set_value(doc, "hello.enabled", "false")
        # As if tomlkit wrote the key into the next table.
        text = doc.as_string().replace("enabled = false\n", "", 1) + "enabled = false\n"
        doc.as_string = lambda: text  # type: ignore[method-assign]
        return said

    with pytest.raises(ConfigError, match="make it by hand"):
        edit.edit_file(config, change)
    assert config.read_text() == CONFIG


def test_errors_of_the_edit_itself_name_the_file_and_key(config: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        edit.edit_file(config, lambda doc: edit.approve(doc, "spare", ["RunCommand"]))
    assert (caught.value.file, caught.value.key) == (str(config), "plugins.installed.spare.approve")


# -- layout rules, on documents ---------------------------------------------------------

Edit = Callable[[TOMLDocument], str]

LAYOUTS: list[tuple[str, str, Edit, str]] = [
    (
        "a new key goes before the comments that introduce a sub-table",
        '[plugins.installed.a]\nsource = "x"\n# about its config\n[plugins.installed.a.config]\nk = 1\n',
        lambda d: edit.set_value(d, "a.enabled", "true"),
        '[plugins.installed.a]\nsource = "x"\nenabled = true\n# about its config\n[plugins.installed.a.config]\nk = 1\n',
    ),
    (
        "a key of a config written as a section goes into the section",
        '[plugins.installed.a]\nsource = "x"\n\n[plugins.installed.a.config]\nk = 1\n',
        lambda d: edit.set_value(d, "a.config.j", "2"),
        '[plugins.installed.a]\nsource = "x"\n\n[plugins.installed.a.config]\nk = 1\nj = 2\n',
    ),
    (
        "a new table beside section tables is a section",
        '[plugins.installed.a]\nsource = "x"\n\n[plugins.installed.a.config.b]\nk = 1\n',
        lambda d: edit.set_value(d, "a.config.c.k", "2"),
        '[plugins.installed.a]\nsource = "x"\n\n[plugins.installed.a.config.b]\nk = 1\n\n[plugins.installed.a.config.c]\nk = 2\n',
    ),
    (
        "indentation of the table's keys is followed",
        '[plugins.installed.a]\n  source = "x"\n',
        lambda d: edit.set_value(d, "a.max_tick_ms", "5"),
        '[plugins.installed.a]\n  source = "x"\n  max_tick_ms = 5\n',
    ),
    (
        "dotted keys stay dotted",
        '[plugins.installed.a]\nsource = "x"\nconfig.k = 1\n',
        lambda d: edit.set_value(d, "a.config.j", "2"),
        '[plugins.installed.a]\nsource = "x"\nconfig.k = 1\nconfig.j = 2\n',
    ),
    (
        "a compact inline table stays compact",
        '[plugins.installed.a]\nsource = "x"\nconfig = {k = 1}\n',
        lambda d: edit.set_value(d, "a.config.j", "2"),
        '[plugins.installed.a]\nsource = "x"\nconfig = {k = 1, j = 2}\n',
    ),
    (
        "a value typed with a comment loses the comment, the line keeps its own",
        '[plugins.installed.a]\nsource = "x"\nmax_tick_ms = 1  # budget\n',
        lambda d: edit.set_value(d, "a.max_tick_ms", "5 # five"),
        '[plugins.installed.a]\nsource = "x"\nmax_tick_ms = 5  # budget\n',
    ),
    (
        "a section replaced by a value keeps the comments after it",
        '[plugins.installed.a]\nsource = "x"\n\n[plugins.installed.a.config]\nk = 1\n\n# next\n[plugins.installed.b]\nsource = "y"\n',
        lambda d: edit.set_value(d, "a.config", "{ j = 2 }"),
        '[plugins.installed.a]\nsource = "x"\nconfig = { j = 2 }\n\n# next\n[plugins.installed.b]\nsource = "y"\n',
    ),
    (
        "plugins written inline get an inline sibling",
        '[plugins.installed]\na = { source = "x" }  # first\n',
        lambda d: edit.add_plugin(d, "b", source="y", approve=["KillProcess"]),
        '[plugins.installed]\na = { source = "x" }  # first\nb = { source = "y", approve = ["KillProcess"] }\n',
    ),
    (
        "an inline plugin is edited in place",
        '[plugins.installed]\na = { source = "x" }  # first\n',
        lambda d: edit.set_value(d, "a.config.k", "1"),
        '[plugins.installed]\na = { source = "x", config = { k = 1 } }  # first\n',
    ),
    (
        "removing an inline plugin takes the comment above it",
        '[plugins.installed]\n# about a\na = { source = "x" }\n# about b\nb = { source = "y" }\n',
        lambda d: edit.remove_plugin(d, "a"),
        '[plugins.installed]\n# about b\nb = { source = "y" }\n',
    ),
    (
        "comments at the end of a removed plugin's sub-table introduce the next plugin",
        '[plugins.installed.a]\nsource = "x"\n[plugins.installed.a.config]\nk = 1\n# about b\n[plugins.installed.b]\nsource = "y"\n',
        lambda d: edit.remove_plugin(d, "a"),
        '# about b\n[plugins.installed.b]\nsource = "y"\n',
    ),
    (
        "the first plugin of a file with a [plugins] table",
        "[plugins]\nenabled = true\n",
        lambda d: edit.add_plugin(d, "a", source="x", version="1.0.0"),
        '[plugins]\nenabled = true\n\n[plugins.installed.a]\nversion = "1.0.0"\nsource = "x"\n',
    ),
    (
        "the first plugin of a file with only a comment",
        "# mine\n",
        lambda d: edit.add_plugin(d, "a", source="x", config=[("k", "v")]),
        '# mine\n\n[plugins.installed.a]\nsource = "x"\nconfig = { k = "v" }\n',
    ),
    (
        "the first plugin of an empty file",
        "",
        lambda d: edit.add_plugin(d, "a", source="x"),
        '[plugins.installed.a]\nsource = "x"\n',
    ),
    (
        "multi-line approve lists stay multi-line",
        '[plugins.installed.a]\nsource = "x"\napprove = [\n  "KillProcess",  # stops runaways\n]\n',
        lambda d: edit.approve(d, "a", ["ShowNotifications"]),
        '[plugins.installed.a]\nsource = "x"\napprove = [\n  "KillProcess",  # stops runaways\n  "ShowNotifications",\n]\n',
    ),
]


@pytest.mark.parametrize(
    ("before", "change", "after"),
    [case[1:] for case in LAYOUTS],
    ids=[case[0] for case in LAYOUTS],
)
def test_layout(before: str, change: Edit, after: str) -> None:
    doc = tomlkit.parse(before)
    change(doc)
    assert doc.as_string() == after
    assert tomllib.loads(after) == doc.unwrap()


def test_a_table_written_in_parts_is_refused() -> None:
    doc = tomlkit.parse('[plugins.installed.a]\nsource = "x"\n[plugins]\nenabled = true\n')
    with pytest.raises(edit.EditError, match="written in several parts"):
        edit.set_value(doc, "a.enabled", "false")


@pytest.mark.parametrize(
    ("dotted", "parts"),
    [
        ("hello.config.greeting", ("hello", "config", "greeting")),
        ('hello.config."chrome.exe"', ("hello", "config", "chrome.exe")),
        ("hello . config.'a b'", ("hello", "config", "a b")),
        ('hello."\\u00e9"', ("hello", "é")),
    ],
)
def test_split_key(dotted: str, parts: tuple[str, ...]) -> None:
    assert edit.split_key(dotted) == parts


@pytest.mark.parametrize("dotted", ["", "hello.", ".x", "a b", "hello.config = 1", 'a."x'])
def test_split_key_refuses(dotted: str) -> None:
    with pytest.raises(edit.EditError, match="is not a key"):
        edit.split_key(dotted)


def test_no_temp_file_is_left_after_a_successful_edit(config: Path) -> None:
    changed(config, "set", "hello.enabled", "false")
    assert sorted(os.listdir(config.parent)) == ["hello", "ruvector.toml"]
