"""registry_read and registry_write: Windows registry values, as JSON.

A key is written as text, hive first, value name last::

    HKLM\\SOFTWARE\\Vendor\\Product\\ValueName
    HKEY_CURRENT_USER\\Software\\Vendor\\       (trailing \\: the default value)

Values travel as ``{"type": "REG_DWORD", "value": 1}``. A plugin may write
REG_SZ, REG_EXPAND_SZ (str), REG_MULTI_SZ (list of str), REG_DWORD and
REG_QWORD (unsigned int); it may read any type, binary ones as hex text.

Parsing and the JSON forms are plain Python and tested on every platform.
Only the two calls into winreg are Windows-only; elsewhere both functions
return UNSUPPORTED without looking at their arguments. The 64-bit registry
view is used even from a 32-bit Python, so a plugin sees the keys the
user's tools show.
"""

from __future__ import annotations

import enum
import json
import sys
from dataclasses import dataclass

from hostcalls.abi import Status

# Registry limits (Microsoft "Registry element size limits").
MAX_KEY_NAME_CHARS = 255
MAX_VALUE_NAME_CHARS = 16383


class Hive(enum.Enum):
    """The root keys, named as winreg names their handles."""

    HKEY_CLASSES_ROOT = "HKCR"
    HKEY_CURRENT_USER = "HKCU"
    HKEY_LOCAL_MACHINE = "HKLM"
    HKEY_USERS = "HKU"
    HKEY_CURRENT_CONFIG = "HKCC"


_HIVES = {name: hive for hive in Hive for name in (hive.name, hive.value)}


class RegType(enum.IntEnum):
    """Registry value types; the numbers are winreg's REG_* constants."""

    REG_NONE = 0
    REG_SZ = 1
    REG_EXPAND_SZ = 2
    REG_BINARY = 3
    REG_DWORD = 4
    REG_DWORD_BIG_ENDIAN = 5
    REG_LINK = 6
    REG_MULTI_SZ = 7
    REG_RESOURCE_LIST = 8
    REG_FULL_RESOURCE_DESCRIPTOR = 9
    REG_RESOURCE_REQUIREMENTS_LIST = 10
    REG_QWORD = 11


WRITABLE = frozenset(
    {
        RegType.REG_SZ,
        RegType.REG_EXPAND_SZ,
        RegType.REG_MULTI_SZ,
        RegType.REG_DWORD,
        RegType.REG_QWORD,
    }
)
_UINT_BITS = {RegType.REG_DWORD: 32, RegType.REG_QWORD: 64}

RegValue = str | int | list[str] | bytes | None


@dataclass(frozen=True)
class RegistryKey:
    """A parsed key text: the hive, the subkey path under it, the value name."""

    hive: Hive
    subkey: str  # "" for a value directly under the hive
    value_name: str  # "" for the key's default value


def parse_key(text: str) -> RegistryKey | Status:
    """Parse "HIVE\\sub\\key\\ValueName"; INVALID_ARGUMENT if malformed.

    The hive is matched case-insensitively, abbreviated or in full. Empty or
    over-long key names and NUL characters are refused.
    """
    if "\x00" in text:
        return Status.INVALID_ARGUMENT
    parts = text.split("\\")
    hive = _HIVES.get(parts[0].upper())
    if hive is None or len(parts) < 2:
        return Status.INVALID_ARGUMENT
    keys, value_name = parts[1:-1], parts[-1]
    if any(not k or len(k) > MAX_KEY_NAME_CHARS for k in keys):
        return Status.INVALID_ARGUMENT
    if len(value_name) > MAX_VALUE_NAME_CHARS:
        return Status.INVALID_ARGUMENT
    return RegistryKey(hive, "\\".join(keys), value_name)


def parse_value(value_json: bytes) -> tuple[RegType, str | int | list[str]] | Status:
    """Parse a value to write; INVALID_ARGUMENT unless well-formed and writable.

    Strings may not hold NUL (the registry ends them there); REG_MULTI_SZ
    items may not be empty (an empty item ends the list); integers must fit
    the type unsigned.
    """
    try:
        doc = json.loads(value_json)
    except (ValueError, RecursionError):
        return Status.INVALID_ARGUMENT
    if not isinstance(doc, dict) or set(doc) != {"type", "value"}:
        return Status.INVALID_ARGUMENT
    type_name, value = doc["type"], doc["value"]
    kind = RegType.__members__.get(type_name) if isinstance(type_name, str) else None
    if kind is None or kind not in WRITABLE:
        return Status.INVALID_ARGUMENT
    return (kind, value) if _valid(kind, value) else Status.INVALID_ARGUMENT


def _valid(kind: RegType, value: object) -> bool:
    if kind in _UINT_BITS:
        # bool is an int to Python, not to a plugin author
        return type(value) is int and 0 <= value < 2 ** _UINT_BITS[kind]
    if kind is RegType.REG_MULTI_SZ:
        return isinstance(value, list) and all(
            isinstance(item, str) and item and "\x00" not in item for item in value
        )
    return isinstance(value, str) and "\x00" not in value


def encode_value(kind: int, value: RegValue) -> bytes:
    """The JSON a plugin reads for a value winreg returned.

    Text and integer types keep their JSON form; binary and unusual types
    become lower-case hex; an unknown type number is reported as such.
    """
    try:
        name: str = RegType(kind).name
    except ValueError:
        name = f"REG_UNKNOWN_{kind}"
    shown = value.hex() if isinstance(value, bytes) else value
    return json.dumps(
        {"type": name, "value": shown}, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


if sys.platform == "win32":
    import winreg

    # KEY_WOW64_64KEY: without it a 32-bit host is silently redirected to
    # WOW6432Node and would read other values than regedit shows.
    _VIEW = winreg.KEY_WOW64_64KEY

    def registry_read(key: str) -> bytes | Status:
        """Read one value as JSON {"type", "value"}.

        Returns INVALID_ARGUMENT (malformed key), NOT_FOUND (no such key or
        value) or IO_ERROR (access refused, other OS failure).
        """
        parsed = parse_key(key)
        if isinstance(parsed, Status):
            return parsed
        root = getattr(winreg, parsed.hive.name)
        try:
            with winreg.OpenKey(root, parsed.subkey, 0, winreg.KEY_READ | _VIEW) as handle:
                value, kind = winreg.QueryValueEx(handle, parsed.value_name)
        except FileNotFoundError:
            return Status.NOT_FOUND
        except OSError:
            return Status.IO_ERROR
        return encode_value(kind, value)

    def registry_write(key: str, value_json: bytes) -> Status:
        """Set one value, creating its key if needed.

        Returns OK, INVALID_ARGUMENT (malformed key or value) or IO_ERROR
        (access refused, other OS failure).
        """
        parsed = parse_key(key)
        value = parse_value(value_json)
        if isinstance(parsed, Status) or isinstance(value, Status):
            return Status.INVALID_ARGUMENT
        root = getattr(winreg, parsed.hive.name)
        try:
            with winreg.CreateKeyEx(root, parsed.subkey, 0, winreg.KEY_SET_VALUE | _VIEW) as handle:
                winreg.SetValueEx(handle, parsed.value_name, 0, value[0], value[1])
        except OSError:
            return Status.IO_ERROR
        return Status.OK

else:

    def registry_read(key: str) -> bytes | Status:
        """No registry on this platform: always UNSUPPORTED."""
        return Status.UNSUPPORTED

    def registry_write(key: str, value_json: bytes) -> Status:
        """No registry on this platform: always UNSUPPORTED."""
        return Status.UNSUPPORTED
