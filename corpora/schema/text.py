"""Checks on text as such, whatever field it is for: is it clean Unicode, and how to show a
bad value in a message."""

from __future__ import annotations

import unicodedata

# Bidirectional overrides and isolates can make a title display as something it is not.
_BIDI_CONTROLS = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def encoding_problem(text: str) -> str | None:
    """A Chinese explanation if `text` is not clean Unicode text, else None."""
    if text.isprintable() and "\ufffd" not in text:
        # Every character refused below is unprintable (controls, surrogates, bidi format
        # characters, non-characters) but U+FFFD: one C-speed pass for the common case.
        return None
    for char in text:
        code = ord(char)
        if char == "\ufffd":
            return "含有无法解码的字节或替换字符 U+FFFD（文件编码损坏？请用 UTF-8 保存）"
        if 0xD800 <= code <= 0xDFFF:
            return f"含有孤立的代理字符 U+{code:04X}，不是有效的 Unicode 文本"
        if char in _BIDI_CONTROLS:
            return f"含有双向文本控制字符 U+{code:04X}"
        if code in (0xFFFE, 0xFFFF):
            return f"含有非字符 U+{code:04X}"
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            return f"含有控制字符 U+{code:04X}"
    return None


def preview(value: object, limit: int = 30) -> str:
    """A short, printable rendering of a bad value for an error message."""
    text = str(value)
    shown = "".join(
        c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else f"\\u{ord(c):04x}"
        for c in text[:limit]
    )
    return f"「{shown}{'…' if len(text) > limit else ''}」"
