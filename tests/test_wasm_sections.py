"""The pre-compile section scan agrees with wasmtime about what a module declares."""

from __future__ import annotations

import pytest
import wasmtime

from executor.wasm_sections import SectionError, count_sections
from tests.plugins import module


def test_counts_match_what_wasmtime_sees() -> None:
    wasm = module('(func (export "a")) (func (export "b")) (global i32 (i32.const 0))', ["log"])
    counts = count_sections(wasm)
    compiled = wasmtime.Module(wasmtime.Engine(), wasm)
    assert counts.get("imports") == len(compiled.imports) == 1
    assert counts.get("exports") == len(compiled.exports)
    assert counts.get("functions") == 4  # rv_abi_version, rv_alloc, a, b
    assert counts.get("memories") == 1 and counts.get("globals") == 2


@pytest.mark.parametrize(
    "data",
    [
        b"\0asm\x01\0\0\0\x01\x05\x00",  # a section longer than the file
        b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\xff\x01",  # a length of 6 LEB bytes
        b"\0asm\x01\0\0\0\x01",  # a section id and nothing after
    ],
)
def test_truncated_or_malformed_headers(data: bytes) -> None:
    with pytest.raises(SectionError):
        count_sections(data)
