"""Registry key/value parsing everywhere; the registry itself on Windows only."""

from __future__ import annotations

import json
import sys
import uuid

import pytest

from hostcalls.abi import Status
from hostcalls.winregistry import (
    Hive,
    RegistryKey,
    RegType,
    encode_value,
    parse_key,
    parse_value,
    registry_read,
    registry_write,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "HKLM\\SOFTWARE\\Vendor\\Product\\ValueName",
            RegistryKey(Hive.HKEY_LOCAL_MACHINE, "SOFTWARE\\Vendor\\Product", "ValueName"),
        ),
        (
            "HKEY_CURRENT_USER\\Software\\V\\",
            RegistryKey(Hive.HKEY_CURRENT_USER, "Software\\V", ""),
        ),
        ("hkcu\\Software\\x", RegistryKey(Hive.HKEY_CURRENT_USER, "Software", "x")),
        ("HKCR\\.txt\\", RegistryKey(Hive.HKEY_CLASSES_ROOT, ".txt", "")),
        ("HKU\\S-1-5-18\\v", RegistryKey(Hive.HKEY_USERS, "S-1-5-18", "v")),
        ("HKCC\\System\\a b/c", RegistryKey(Hive.HKEY_CURRENT_CONFIG, "System", "a b/c")),
        ("HKCU\\TopLevelValue", RegistryKey(Hive.HKEY_CURRENT_USER, "", "TopLevelValue")),
    ],
)
def test_parse_key(text: str, expected: RegistryKey) -> None:
    assert parse_key(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "HKLM",
        "HKXX\\Software\\v",
        "Software\\v",
        "HKLM\\Software\\\\v",  # empty key name
        "HKLM\\Soft\x00ware\\v",
        "HKLM\\" + "k" * 256 + "\\v",
        "HKLM\\Software\\" + "v" * 16384,
    ],
)
def test_parse_key_rejects(text: str) -> None:
    assert parse_key(text) == Status.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"type": "REG_SZ", "value": "text"}, (RegType.REG_SZ, "text")),
        ({"type": "REG_EXPAND_SZ", "value": "%TEMP%"}, (RegType.REG_EXPAND_SZ, "%TEMP%")),
        ({"type": "REG_MULTI_SZ", "value": ["a", "b"]}, (RegType.REG_MULTI_SZ, ["a", "b"])),
        ({"type": "REG_MULTI_SZ", "value": []}, (RegType.REG_MULTI_SZ, [])),
        ({"type": "REG_DWORD", "value": 0xFFFFFFFF}, (RegType.REG_DWORD, 0xFFFFFFFF)),
        ({"type": "REG_QWORD", "value": 2**64 - 1}, (RegType.REG_QWORD, 2**64 - 1)),
    ],
)
def test_parse_value(doc: object, expected: tuple[RegType, object]) -> None:
    assert parse_value(json.dumps(doc).encode()) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[" * 100_000,
        json.dumps({"type": "REG_SZ"}).encode(),
        json.dumps({"type": "REG_SZ", "value": "x", "extra": 1}).encode(),
        json.dumps({"type": "REG_BINARY", "value": "00ff"}).encode(),  # readable, not writable
        json.dumps({"type": "reg_sz", "value": "x"}).encode(),
        json.dumps({"type": ["REG_SZ"], "value": "x"}).encode(),
        json.dumps({"type": "REG_SZ", "value": 1}).encode(),
        json.dumps({"type": "REG_SZ", "value": "a\x00b"}).encode(),
        json.dumps({"type": "REG_MULTI_SZ", "value": ["a", ""]}).encode(),
        json.dumps({"type": "REG_MULTI_SZ", "value": "a"}).encode(),
        json.dumps({"type": "REG_DWORD", "value": -1}).encode(),
        json.dumps({"type": "REG_DWORD", "value": 2**32}).encode(),
        json.dumps({"type": "REG_DWORD", "value": True}).encode(),
        json.dumps({"type": "REG_DWORD", "value": 1.0}).encode(),
        json.dumps({"type": "REG_QWORD", "value": 2**64}).encode(),
    ],
)
def test_parse_value_rejects(raw: bytes) -> None:
    assert parse_value(raw) == Status.INVALID_ARGUMENT


def test_encode_value() -> None:
    assert json.loads(encode_value(1, "x")) == {"type": "REG_SZ", "value": "x"}
    assert json.loads(encode_value(4, 7)) == {"type": "REG_DWORD", "value": 7}
    assert json.loads(encode_value(7, ["a"])) == {"type": "REG_MULTI_SZ", "value": ["a"]}
    assert json.loads(encode_value(3, b"\x00\xff")) == {"type": "REG_BINARY", "value": "00ff"}
    assert json.loads(encode_value(0, None)) == {"type": "REG_NONE", "value": None}
    assert json.loads(encode_value(99, b"\x01")) == {"type": "REG_UNKNOWN_99", "value": "01"}


@pytest.mark.skipif(sys.platform == "win32", reason="the registry exists here")
def test_unsupported_off_windows() -> None:
    assert registry_read("HKCU\\Software\\x") == Status.UNSUPPORTED
    assert registry_write("HKCU\\Software\\x", b'{"type":"REG_SZ","value":"v"}') == (
        Status.UNSUPPORTED
    )
    # not even parsed: the answer does not depend on the arguments
    assert registry_read("garbage") == Status.UNSUPPORTED
    assert registry_write("garbage", b"garbage") == Status.UNSUPPORTED


def test_round_trip_on_windows() -> None:
    if sys.platform != "win32":  # written so, mypy checks the rest for win32 only
        pytest.skip("needs the Windows registry")
    import winreg

    sub = f"Software\\RuVectorTest-{uuid.uuid4().hex}"
    key = f"HKCU\\{sub}\\Value"
    try:
        assert registry_read(key) == Status.NOT_FOUND
        for doc in (
            {"type": "REG_SZ", "value": "text"},
            {"type": "REG_DWORD", "value": 42},
            {"type": "REG_QWORD", "value": 2**40},
            {"type": "REG_MULTI_SZ", "value": ["a", "b"]},
        ):
            assert registry_write(key, json.dumps(doc).encode()) == Status.OK
            result = registry_read(key)
            assert isinstance(result, bytes) and json.loads(result) == doc
        assert registry_write(key, b"{}") == Status.INVALID_ARGUMENT
    finally:
        winreg.DeleteKey(winreg.HKEY_CURRENT_USER, sub)
