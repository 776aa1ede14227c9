"""Editing ruvector.toml in place, keeping the user's comments and layout.

The edits (`add_plugin`, `remove_plugin`, `set_value`, `approve`) change a
tomlkit document in place and return a one-line description of what they
did. They raise EditError for an edit that makes no sense on this document
(an unknown plugin, one that already exists, a refused capability); whether
the result is a valid ruvector.toml is not their concern.

`edit_file` is the gatekeeper that applies one of them to a file, in order:

1. read and parse the file;
2. apply the edit (EditError becomes a ConfigError naming the file);
3. check that the new text says what the edited document says: a layout
   tomlkit mishandles is refused, never written;
4. validate the new text with `load_desired`, from a temp file beside the
   original so relative paths resolve the same: every rule of ruvector.toml
   applies (schema, unknown keys, sources, capabilities, env vars);
5. replace the file atomically, keeping its mode.

A failure at any step raises ConfigError (file, key) and leaves the file
byte-for-byte as it was.

Layout rules: a new key goes after the last key of its table, before the
comments that introduce the next table; a new table is inline inside an
inline table, otherwise it takes the form of its sibling tables (inline
when it has none, except that a plugin is a `[plugins.installed.NAME]`
section). Removing a table also removes the comment lines directly above its
header, and keeps the comment lines at its end that introduce the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.container import Container, OutOfOrderTableProxy
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.items import (
    AoT,
    Array,
    Comment,
    InlineTable,
    Item,
    Key,
    Null,
    Table,
    Trivia,
    Whitespace,
)
from tomlkit.toml_document import TOMLDocument

from hostcalls import capabilities
from hostcalls.capabilities import Capability
from reconciler._validation import KeyPath, find_line, key_path, read_capped, size_text, suggest
from reconciler.desired import MAX_DESIRED_BYTES, load_desired
from ruvector.atomic import atomic_write
from ruvector.errors import ConfigError

Change = Callable[[TOMLDocument], str]  # edits the document, says what it did
Tableish = Table | InlineTable

_PLUGINS: KeyPath = ("plugins", "installed")
_KEY_PART = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|("(?:[^"\\\n]|\\.)*")|'([^'\n]*)')\s*""")


class EditError(ValueError):
    """An edit that cannot be made to this document: where (`at`) and why."""

    def __init__(self, at: KeyPath, message: str) -> None:
        self.at = at
        self.message = message
        super().__init__(f"{key_path(at)}: {message}" if at else message)


@dataclass(frozen=True)
class Edited:
    """What edit_file did."""

    description: str
    changed: bool  # False: the file already said so and was not rewritten


def edit_file(path: Path, change: Change) -> Edited:
    """Apply `change` to the ruvector.toml at `path`, validate, write atomically.

    Raises ConfigError (file = `path`, key = the dotted key when there is
    one): the file is unreadable or not TOML, the edit is refused, the result
    is not a valid ruvector.toml, or it cannot be written. The file is then
    unchanged.
    """
    file = str(path)
    raw = read_capped(path, MAX_DESIRED_BYTES, file, "")
    text = _decode(raw, file)
    doc = _parse(text, file)
    try:
        description = change(doc)
    except EditError as exc:
        raise ConfigError(file, key_path(exc.at), exc.message, find_line(text, exc.at)) from None
    new_text = doc.as_string()
    if new_text == text:
        return Edited(description, changed=False)
    data = new_text.encode("utf-8")
    if len(data) > MAX_DESIRED_BYTES:
        raise ConfigError(
            file, "", f"the result would be larger than {size_text(MAX_DESIRED_BYTES)}"
        )
    _check_rendering(doc, new_text, file)
    _validate(path, data)
    _replace(path, raw, data)
    return Edited(description, changed=True)


def add_plugin(
    doc: TOMLDocument,
    name: str,
    *,
    source: str | None,
    version: str | None = None,
    approve: Sequence[str] = (),
    config: Sequence[tuple[str, str]] = (),
    enabled: bool = True,
) -> str:
    """Add [plugins.installed.NAME]; `config` holds (dotted key, raw value) pairs.

    Raises EditError: the plugin exists, a refused capability, a
    malformed config key.
    """
    at = (*_PLUGINS, name)
    installed = _table_at(doc, _PLUGINS)
    if installed is not None and name in installed:
        raise EditError(at, f"already exists: change it with `ruvector set {name}.KEY VALUE`")
    caps = _unique(_capability(text, (*at, "approve")) for text in approve)
    pairs: list[tuple[str, Item]] = [("enabled", tomlkit.item(False))] if not enabled else []
    if version is not None:
        pairs.append(("version", tomlkit.item(version)))
    if source is not None:  # none: the registry's plugin of that name
        pairs.append(("source", tomlkit.item(source)))
    if caps:
        pairs.append(("approve", _string_array(text for text, _ in caps)))
    inline = _new_is_inline(_deepest(doc, _PLUGINS), default=False)
    _set_in(doc, doc, (), (*_PLUGINS, name), _table_of(pairs, inline), _section)
    for dotted, raw in config:
        rest = (*at, "config", *split_key(dotted))
        _set_in(doc, doc, (), rest, parse_value(raw), _like_siblings)
    return f"added plugin '{name}' from {source or 'the registry'}"


def remove_plugin(doc: TOMLDocument, name: str) -> str:
    """Delete [plugins.installed.NAME]. Raises EditError for an unknown plugin."""
    _plugin_table(doc, name)
    _set_in(doc, doc, (), (*_PLUGINS, name), None, _like_siblings)
    _prune(doc, _PLUGINS)
    return f"removed plugin '{name}'"


def set_value(doc: TOMLDocument, dotted: str, raw: str) -> str:
    """Set NAME.KEY (or NAME.config.KEY...) to `raw` read by parse_value.

    Missing tables on the way are created. Raises EditError: a malformed
    key, an unknown plugin, or a key below a value that is not a table.
    """
    parts = split_key(dotted)
    if len(parts) < 2:
        raise EditError((), f"'{dotted}' names no key: expected NAME.KEY, e.g. hello.max_tick_ms")
    _plugin_table(doc, parts[0])
    item = parse_value(raw)
    shown = item.as_string()
    _set_in(doc, doc, (), (*_PLUGINS, *parts), item, _like_siblings)
    return f"set {key_path((*_PLUGINS, *parts))} = {shown}"


def approve(
    doc: TOMLDocument, name: str, caps: Sequence[str] = (), revoke: Sequence[str] = ()
) -> str:
    """Add `caps` to NAME's approve list and take `revoke` out of it.

    Capabilities are compared parsed, so no approval is listed twice.
    Raises EditError: an unknown plugin, a malformed or refused capability
    (RunCommand), an `approve` that is not a list, or a revoked capability
    that is not approved (a revocation that silently did nothing would leave
    a grant the user believes is gone).
    """
    entry = _plugin_table(doc, name)[1]
    at = (*_PLUGINS, name, "approve")
    if not caps and not revoke:
        raise EditError(at, "name a capability to approve or revoke")
    adding = _unique(_capability(text, at) for text in caps)
    revoking = _unique(_capability(text, at) for text in revoke)
    current = entry.get("approve")
    if current is not None and not isinstance(current, Array):
        raise EditError(at, 'is not a list: expected e.g. approve = ["ShowNotifications"]')
    texts = [str(t) for t in current or ()]
    have = [_parsed_or_none(t) for t in texts]
    missing = [cap for _, cap in revoking if cap not in have]
    if missing:
        listed = ", ".join(texts) or "nothing"
        raise EditError(at, f"{_names(missing)} is not approved (approved: {listed})")
    gone = [i for i, cap in enumerate(have) if any(cap == r for _, r in revoking)]
    new = [(text, cap) for text, cap in adding if cap not in have]
    said = _approval_summary(name, adding, new, gone, texts)
    if not gone and not new:
        return said
    if current is None:
        items = _string_array(text for text, _ in new)
        _set_in(doc, doc, (), (*_PLUGINS, name, "approve"), items, _like_siblings)
        return said
    for i in reversed(gone):
        del current[i]
    for text, _ in new:
        current.append(text)
    return said


def split_key(dotted: str) -> tuple[str, ...]:
    """Split a TOML dotted key: `hello.config."chrome.exe"` -> hello, config, chrome.exe.

    Raises EditError when `dotted` is not a key.
    """
    parts: list[str] = []
    pos = 0
    while True:
        m = _KEY_PART.match(dotted, pos)
        if m is None or not m.group(0).strip():
            raise EditError((), f"'{dotted}' is not a key: expected e.g. hello.config.greeting")
        bare, basic, literal = m.groups()
        parts.append(
            bare if bare is not None else literal if literal is not None else _basic(basic)
        )
        pos = m.end()
        if pos == len(dotted):
            return tuple(parts)
        if dotted[pos] != ".":
            raise EditError((), f"'{dotted}' is not a key: expected e.g. hello.config.greeting")
        pos += 1


def parse_value(raw: str) -> Item:
    """`raw` as a TOML value if it is one (5, true, [1, 2], {a = 1}, "text"), else as text.

    So `env:TOKEN` and `0.2.0` stay strings, and a quoted "true" is text.
    """
    try:
        parsed = tomllib.loads(f"v = {raw}\n")
        item = tomlkit.parse(f"v = {raw}\n").item("v") if list(parsed) == ["v"] else None
    except (tomllib.TOMLDecodeError, TOMLKitError, RecursionError):
        item = None
    if not isinstance(item, Item):
        return tomlkit.item(raw)
    # A comment typed after the value is not part of it: keep the line's own.
    item.trivia.comment_ws = item.trivia.comment = ""
    return item


# -- reading and writing the file ------------------------------------------------


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            file, "", "not valid UTF-8 text", raw.count(b"\n", 0, exc.start) + 1
        ) from None


def _parse(text: str, file: str) -> TOMLDocument:
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        raise ConfigError(file, "", f"TOML syntax: {exc}", exc.line) from None
    except TOMLKitError as exc:
        raise ConfigError(file, "", f"TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(file, "", "values nest too deeply to edit") from None


def _check_rendering(doc: TOMLDocument, new_text: str, file: str) -> None:
    # tomlkit renders some layouts (out-of-order tables, dotted keys) in ways
    # that move a key to another table; writing that would corrupt the file.
    try:
        same = tomllib.loads(new_text) == doc.unwrap()
    except tomllib.TOMLDecodeError:
        same = False
    if not same:
        raise ConfigError(
            file,
            "",
            "this edit cannot be made in this file's layout without moving other keys: "
            "make it by hand",
        )


def _validate(path: Path, data: bytes) -> None:
    """load_desired on `data`, from a temp file beside `path`; errors name `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".check")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        load_desired(Path(tmp))
    except ConfigError as exc:
        # The line would be in text that was never written: leave it out.
        raise ConfigError(str(path), exc.key, exc.message) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _replace(path: Path, raw: bytes, data: bytes) -> None:
    # Through a symlink, not over it: a linked ruvector.toml stays linked.
    target = path.resolve()
    file = str(path)
    if read_capped(target, MAX_DESIRED_BYTES, file, "") != raw:
        raise ConfigError(file, "", "changed on disk during the edit; run the command again")
    try:
        atomic_write(target, data, stat.S_IMODE(target.stat().st_mode))
    except OSError as exc:
        raise ConfigError(file, "", f"cannot write {target}: {exc.strerror or exc}") from exc


# -- finding things ---------------------------------------------------------------


def _table_at(doc: TOMLDocument, at: KeyPath) -> Tableish | None:
    """The table at `at`, None when missing; EditError when a value is in the way."""
    node: TOMLDocument | Tableish = doc
    for i, part in enumerate(at):
        assert isinstance(part, str)
        if part not in node:
            return None
        child = node[part]
        if not isinstance(child, Table | InlineTable):
            raise _not_a_table(at[: i + 1], child)
        node = child
    assert not isinstance(node, TOMLDocument)
    return node


def _deepest(doc: TOMLDocument, at: KeyPath) -> TOMLDocument | Tableish:
    """The deepest table along `at` that exists."""
    node: TOMLDocument | Tableish = doc
    for part in at:
        child = node.get(part) if isinstance(part, str) else None
        if not isinstance(child, Table | InlineTable):
            break
        node = child
    return node


def _plugin_table(doc: TOMLDocument, name: str) -> tuple[Tableish, Tableish]:
    """(plugins.installed, plugins.installed.NAME); EditError with a "did you mean"."""
    installed = _table_at(doc, _PLUGINS)
    names = sorted(installed) if installed is not None else []
    if installed is None or name not in installed:
        close = suggest(name, names)
        hint = (
            f"did you mean '{close}'?"
            if close
            else f"plugins: {', '.join(names)}"
            if names
            else "there are no plugins"
        )
        raise EditError((*_PLUGINS, name), f"no such plugin ({hint})")
    entry = installed[name]
    if not isinstance(entry, Table | InlineTable):
        raise _not_a_table((*_PLUGINS, name), entry)
    return installed, entry


def _not_a_table(at: KeyPath, value: object) -> EditError:
    if isinstance(value, OutOfOrderTableProxy):
        # tomlkit cannot say where a new key of such a table would go.
        return EditError(
            at, "is written in several parts of the file: gather its [sections] to edit it here"
        )
    return EditError(at, f"is {_kind(value)}, not a table")


def _kind(value: object) -> str:
    """What a value that should have been a table is, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a date or time"  # the only other TOML value


def _capability(text: str, at: KeyPath) -> tuple[str, Capability]:
    try:
        return text.strip(), capabilities.parse(text)
    except capabilities.CapabilityError as exc:
        raise EditError(at, str(exc)) from None


def _parsed_or_none(text: str) -> Capability | None:
    try:
        return capabilities.parse(text)
    except capabilities.CapabilityError:
        return None  # load_desired will say what is wrong with it


def _unique(caps: Iterable[tuple[str, Capability]]) -> list[tuple[str, Capability]]:
    out: list[tuple[str, Capability]] = []
    for text, cap in caps:
        if all(cap != c for _, c in out):
            out.append((text, cap))
    return out


def _names(caps: Iterable[Capability]) -> str:
    return ", ".join(str(c) for c in caps)


def _approval_summary(
    name: str,
    adding: list[tuple[str, Capability]],
    new: list[tuple[str, Capability]],
    gone: list[int],
    texts: list[str],
) -> str:
    said = []
    if new:
        said.append(f"approved {', '.join(text for text, _ in new)}")
    if gone:
        said.append(f"revoked {', '.join(texts[i] for i in gone)}")
    already = [text for text, cap in adding if all(cap != c for _, c in new)]
    if already:
        said.append(f"{', '.join(already)} already approved")
    return f"{name}: {'; '.join(said)}"


def _basic(quoted: str) -> str:
    try:
        value = tomllib.loads(f"k = {quoted}")["k"]
    except tomllib.TOMLDecodeError:
        raise EditError((), f"{quoted} is not a valid quoted key") from None
    assert isinstance(value, str)
    return value


# -- changing things ----------------------------------------------------------------

NewTable = Callable[[TOMLDocument | Table], Table | InlineTable]
Slot = tuple[Container, int]  # a place in a body, as tomlkit writes them out


def _set_in(
    doc: TOMLDocument,
    node: TOMLDocument | Table,
    at: KeyPath,
    rest: KeyPath,
    item: Item | None,
    new_table: NewTable,
) -> None:
    """Set `rest` below `node` (the document or a section) to `item`; None deletes.

    Missing tables on the way are made by `new_table`.
    """
    key, *more = rest
    assert isinstance(key, str)
    if not more:
        _put(doc, node, key, item)
        return
    here = (*at, key)
    child = node.get(key)
    if child is None:
        child = new_table(node)
        if isinstance(child, Table):
            _put(doc, node, key, child)
            child = node[key]
    if isinstance(child, InlineTable):
        _put(doc, node, key, _with(child, here, tuple(more), item))
    elif isinstance(child, Table):
        _set_in(doc, child, here, tuple(more), item, new_table)
    else:
        raise _not_a_table(here, child)


def _with(table: InlineTable, at: KeyPath, rest: KeyPath, item: Item | None) -> InlineTable:
    """A copy of an inline table with `rest` set to `item` (None: deleted).

    Rebuilt from text rather than changed in place: tomlkit's own edits of
    inline tables lose their spacing ({ a = 1, b = 2}).
    """
    key, *more = rest
    assert isinstance(key, str)
    pairs: list[tuple[str, Item]] = []
    for k, v in table.value.body:
        if k is not None and k.is_dotted():
            raise EditError(
                at, "an inline table with dotted keys cannot be edited: edit it by hand"
            )
        if k is not None:
            pairs.append((k.as_string().strip(), v))
    here = (*at, key)
    current = next((v for k, v in pairs if _key_name(k) == key), None)
    if more:
        if current is not None and not isinstance(current, InlineTable):
            raise _not_a_table(here, current)
        below = current if current is not None else tomlkit.inline_table()
        item = _with(below, here, tuple(more), item)
    if item is None:
        pairs = [(k, v) for k, v in pairs if _key_name(k) != key]
    elif current is None:
        pairs.append((tomlkit.key(key).as_string(), item))
    else:
        pairs = [(k, item if _key_name(k) == key else v) for k, v in pairs]
    padded = table.as_string().startswith("{ ") or not table
    return _inline_text(((k, v.as_string()) for k, v in pairs), padded)


def _key_name(text: str) -> str:
    return str(tomllib.loads(f"{text} = 0").popitem()[0])


def _table_of(pairs: list[tuple[str, Item]], inline: bool) -> Table | InlineTable:
    if inline:
        return _inline_text(((tomlkit.key(k).as_string(), v.as_string()) for k, v in pairs), True)
    table = tomlkit.table()
    for key, value in pairs:
        table.append(key, value)
    return table


def _inline_text(pairs: Iterable[tuple[str, str]], padded: bool) -> InlineTable:
    pad = " " if padded else ""
    body = ", ".join(f"{k} = {v}" for k, v in pairs)
    item = tomlkit.parse(f"v = {{{pad}{body}{pad}}}\n" if body else "v = {}\n").item("v")
    assert isinstance(item, InlineTable)
    return item


def _string_array(texts: Iterable[str]) -> Array:
    array = tomlkit.array()
    array.extend(texts)
    return array


def _section(parent: TOMLDocument | Table) -> Table:
    """A table on the way to a new plugin: [plugins.installed.NAME] shows no header for it."""
    return tomlkit.table(is_super_table=True)


def _like_siblings(parent: TOMLDocument | Table) -> Table | InlineTable:
    return tomlkit.inline_table() if _new_is_inline(parent, default=True) else tomlkit.table()


def _new_is_inline(parent: TOMLDocument | Tableish, default: bool) -> bool:
    """Whether a new table below `parent` should be inline, like its siblings."""
    if isinstance(parent, InlineTable):
        return True
    for key, value in reversed(_body(parent)):
        if isinstance(value, InlineTable):
            return True
        if _is_section(value, key):
            return False
    return default


def _put(doc: TOMLDocument, node: TOMLDocument | Table, key: str, item: Item | None) -> None:
    """Set node[key] = item (None: delete); a new key goes after the node's last key."""
    if key in node:
        old = node.item(key)
        if item is not None and not _is_section(old) and not isinstance(item, Table):
            node[key] = item  # tomlkit keeps the line's comment and indent
            return
        _remove_entry(doc, node, key)
    if isinstance(item, Table):
        _append_table(doc, node, key, item)
    elif item is not None:
        _insert_key(node, key, item)


def _append_table(doc: TOMLDocument, node: TOMLDocument | Table, key: str, table: Table) -> None:
    node.append(key, table)
    if table.is_super_table():
        table.trivia.indent = ""  # tomlkit writes a super table's indent: a stray blank line
        return
    if "\n" in table.trivia.indent:
        return
    # tomlkit puts a blank line before a new section only within a container
    # that already holds one; the first in a new container needs it too.
    slots = _slots(doc)
    n = next(n for n, slot in enumerate(slots) if _at(slot) is table)
    before = next((_at(s) for s in reversed(slots[:n]) if not _renders_nothing(_at(s))), None)
    if before is not None and not isinstance(before, Whitespace):
        table.trivia.indent = "\n"


def _insert_key(node: TOMLDocument | Table, key: str, item: Item) -> None:
    container = node if isinstance(node, Container) else node.value
    body = container.body
    keys = [i for i, (k, v) in enumerate(body) if k is not None and not _is_section(v, k)]
    at = keys[-1] + 1 if keys else 0
    if keys:
        item.trivia.indent = body[keys[-1]][1].trivia.indent.rpartition("\n")[2]
    if at < len(body):
        # tomlkit has no public insert; appending would put the key after the
        # comments that introduce the next table.
        container._insert_at(at, key, item)
    else:
        container.append(key, item)


def _remove_entry(doc: TOMLDocument, node: TOMLDocument | Tableish, key: str) -> None:
    """Delete node[key] with the comment lines directly above it.

    The comment lines at its end stay: they introduce what follows.
    """
    item = node.item(key)
    slots = _slots(doc)
    start = next((n for n, slot in enumerate(slots) if _at(slot) is item), None)
    if start is None or not isinstance(item, Item):  # split out of order: no comment moves
        del node[key]
        return
    end = start + 1 + (len(_slots(item.value)) if isinstance(item, Table) else 0)
    blank_before = isinstance(item, Table) and "\n" in item.trivia.indent
    above = [] if blank_before else _comment_run(slots, start, 0)
    kept = "".join(_at(slot).as_string() for slot in _comment_run(slots, end, start + 1))
    for c, i in above:
        c.body[i] = (None, Null())
    after = next((slot for slot in slots[end:] if not _renders_nothing(_at(slot))), None)
    del node[key]
    if kept:
        _put_before(doc, after, kept)
    elif after is None:  # it was last: leave no blank lines at the end of the file
        for c, i in reversed(slots[:start]):
            if isinstance(c.body[i][1], Whitespace):
                c.body[i] = (None, Null())
            elif not _renders_nothing(c.body[i][1]):
                break


def _put_before(doc: TOMLDocument, slot: Slot | None, text: str) -> None:
    """Write comment lines `text` just before `slot` (None: at the end of the file)."""
    if slot is None:
        doc.add(Comment(Trivia(comment_ws="", comment=text, trail="")))
        return
    container, index = slot
    item = _at(slot)
    if isinstance(item, Whitespace):
        comment = Comment(Trivia(comment_ws="", comment=text, trail=item.s))
        container.body[index] = (None, comment)
    else:
        # Not in a body of its own: a comment inside a [a.b] super table
        # would make tomlkit write an [a] header for it.
        item.trivia.indent = text + item.trivia.indent


def _prune(doc: TOMLDocument, at: KeyPath) -> None:
    """Delete the tables along `at` left empty that had no header of their own."""
    for depth in range(len(at), 0, -1):
        table = _table_at(doc, at[:depth])
        if not (isinstance(table, Table) and table.is_super_table() and not table):
            return
        _set_in(doc, doc, (), at[:depth], None, _like_siblings)


def _slots(container: Container) -> list[Slot]:
    """Every (container, index) of the document in the order it is written."""
    out: list[Slot] = []
    for i, (_, item) in enumerate(container.body):
        out.append((container, i))
        if isinstance(item, Table):
            out.extend(_slots(item.value))
    return out


def _comment_run(slots: list[Slot], end: int, start: int) -> list[Slot]:
    """The comment lines directly before slots[end], not before slots[start]."""
    run: list[Slot] = []
    for n in range(end - 1, start - 1, -1):
        item = _at(slots[n])
        if isinstance(item, Comment):
            run.insert(0, slots[n])
        elif not _renders_nothing(item):
            break
    return run


def _at(slot: Slot) -> Item:
    container, index = slot
    return container.body[index][1]


def _renders_nothing(item: Item) -> bool:
    return isinstance(item, Null) or (isinstance(item, Table) and item.is_super_table())


def _body(node: TOMLDocument | Tableish) -> list[tuple[Key | None, Item]]:
    return node.body if isinstance(node, Container) else node.value.body


def _is_section(item: object, key: Key | None = None) -> bool:
    """Whether `item` is written as its own [section] rather than as a key's value."""
    if key is not None and key.is_dotted():
        return False
    return isinstance(item, Table | AoT)
