"""Recorded text printed as text: control characters made visible, nothing parsed as markup.

Error messages, flow and step ids and log lines come from the programs rundossier watches, so a
message can hold `[bold]` or `[/]` (Rich markup) or `ESC ]8;;...` / `ESC [2J` (terminal escape
sequences: hyperlinks, clearing the screen, retitling the window). The CLI's consoles never parse
markup; `visible` turns every control character into its escape (`\\x1b`, `\\u202e`), so the
terminal shows the bytes instead of obeying them. Bidirectional overrides count as control
characters here: they make a terminal show text in another order than it is stored.
"""

from __future__ import annotations

import re

_BIDI = "\u202a-\u202e\u2066-\u2069"
_LINE_BREAKS = "\u2028\u2029"
#: one line (a table cell): every control character, tabs and newlines included
_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}{_LINE_BREAKS}]")
#: a block of lines (a trace, the dossier): newlines and tabs stay
_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}{_LINE_BREAKS}]")
#: what JSON output may still carry raw (json.dumps escapes only U+0000-U+001F)
_JSON_RAW = re.compile(f"[\x7f-\x9f{_BIDI}{_LINE_BREAKS}]")


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, *, lines: bool = False) -> str:
    """`text` with its control characters shown as escapes; `lines=True` keeps newlines and tabs."""
    return (_LINES if lines else _ONE_LINE).sub(_escape, str(text))


def json_safe(dumped: str) -> str:
    """JSON text with the control characters `json.dumps` leaves raw written as `\\uXXXX` escapes
    (the same JSON value: outside strings, JSON text is ASCII)."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


__all__ = ["visible", "json_safe"]
