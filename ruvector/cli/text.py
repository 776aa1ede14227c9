"""Text from others (plugins, registries) on our terminal."""

from __future__ import annotations


def printable(text: str) -> str:
    """Keep control characters (terminal escapes among them) out of `text`."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
