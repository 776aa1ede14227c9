"""Counts what a wasm binary declares, read from its section headers.

Compiling is the one step before instantiation whose cost the module
controls: a few megabytes of empty functions take wasmtime tens of seconds
and gigabytes. Reading the counts first costs microseconds and lets the
loader refuse such a module before compiling it. This reads only section
headers and the leading count of the sections that have one; wasmtime
validates everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Sections whose payload starts with a count of entries (the spec's vec).
_COUNTED = {
    2: "imports",
    3: "functions",
    4: "tables",
    5: "memories",
    6: "globals",
    7: "exports",
    11: "data",
}


class SectionError(ValueError):
    """The bytes end or encode a length wrongly before wasmtime would look."""


@dataclass(frozen=True)
class ModuleCounts:
    counts: dict[str, int] = field(default_factory=dict)
    custom_bytes: int = 0

    def get(self, what: str) -> int:
        return self.counts.get(what, 0)


def count_sections(data: bytes) -> ModuleCounts:
    """Count entries per section of a binary module (header already checked).

    Raises SectionError if a section header runs past the end.
    """
    counts: dict[str, int] = {}
    custom = 0
    pos = 8
    while pos < len(data):
        section_id = data[pos]
        size, pos = _uleb(data, pos + 1)
        end = pos + size
        if end > len(data):
            raise SectionError(f"section {section_id} runs past the end of the file")
        if section_id == 0:
            custom += size
        elif section_id in _COUNTED:
            n, _ = _uleb(data, pos)
            name = _COUNTED[section_id]
            counts[name] = counts.get(name, 0) + n
        pos = end
    return ModuleCounts(counts, custom)


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(5):  # u32: at most 5 bytes
        if pos >= len(data):
            raise SectionError("a length runs past the end of the file")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise SectionError("a length is longer than 5 bytes")
