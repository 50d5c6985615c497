"""Text for terminals: stored values are shown, never interpreted.

Client names, owners, claimed client ids, subjects and error texts reach the command line from dynamic
registration and unauthenticated requests. Printed raw, an ESC or BEL sequence drives the operator's
terminal (title changes, cursor moves, hidden text, OSC 8 links) and a line break or U+2028 forges a table row;
bidi overrides (U+202A-202E, U+2066-2069) reorder what is shown (CVE-2021-42574, "Trojan Source"). Every
text output of the CLI goes through ``safe`` — in one line per cell — so such characters appear as visible
escapes (``\\x1b``, ``\\n``, ``\\u202e``) and a row stays a row.
"""

from __future__ import annotations

import copy
import dataclasses
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

# Unicode general categories that are never shown as-is: controls (C0, DEL, C1), format characters (bidi
# embeddings, overrides and isolates, zero-width joiners and marks), line and paragraph separators, and
# lone surrogates (which cannot even be encoded for output).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def safe(value: object) -> str:
    """``value`` as one line of inert text: every control, format or separator character becomes a visible
    escape. Printable text (any script, emoji without joiners) is unchanged."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # False for every unsafe category (and for other spaces), so the fast path is exact
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def safe_lines(text: str) -> str:
    """A multi-line text built by the program: each line made safe on its own (its line breaks are kept)."""
    return "\n".join(safe(line) for line in text.split("\n"))


def table(rows: Sequence[Sequence[object]], *, indent: str = "") -> str:
    """Left-aligned columns separated by two spaces; every cell made safe first, so no value can add a row,
    move the cursor or restyle the terminal, and the widths are those of what is shown."""
    cells = [[safe(cell) for cell in row] for row in rows]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        (indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip() for row in cells
    )


def facts(pairs: Iterable[tuple[str, object]]) -> str:
    """``key  value`` lines (a two-column table without a header)."""
    return table([(key, value) for key, value in pairs])


def scrub(value: Any) -> Any:
    """A copy of ``value`` (dataclasses, dicts, lists, tuples, sets) with every string made ``safe``: for
    text renderers that interpolate stored values into lines of their own."""
    if isinstance(value, str):
        return safe(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(scrub(v) for v in value))
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(scrub(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        clone = copy.copy(value)
        for f in dataclasses.fields(value):
            object.__setattr__(clone, f.name, scrub(getattr(value, f.name)))
        return clone
    return value
