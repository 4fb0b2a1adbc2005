"""Text that is safe to echo on a terminal: control characters shown as escapes, never obeyed.

A group label, a level, a path or a value comes from the user's files; printed
raw, an ESC sequence in it could recolour, retitle or rewrite the terminal and
a carriage return could overwrite the line before it. Every such character is
shown the way Python writes it in a string literal (`\\x1b`, `\\r`, `\\u202e`).
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls (U+0080-U+009F: 0x9B is a one-byte CSI), the Unicode line
# and paragraph separators, and the bidirectional overrides that can reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: object, keep_newlines: bool = False) -> str:
    """`text` with every control character escaped; newlines kept when `keep_newlines`.

    Messages of several lines keep their newlines; a table cell or a label does not.
    """
    text = str(text)
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escape, text) if pattern.search(text) else text
