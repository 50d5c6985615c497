"""Strict JSON for security tokens: one meaning per document, or a refusal.

RFC 7515 §5.2 (step 4) and RFC 7519 §7.2 (step 4): a JOSE header or claims set with duplicate member names
MUST be rejected (or parsed with last-wins, which lets two parsers disagree: we refuse). RFC 8259 §6 has no
NaN or Infinity, and a number that overflows to infinity (``1e400``) is refused for the same reason
(a comparison with ``inf`` fails open). RFC 8259 §8.1: text exchanged between systems MUST be UTF-8, so
invalid UTF-8 and escaped lone surrogates (``"\\ud800"``, which no UTF-8 text can carry) are refused.
Nesting is bounded so that no caller can be made to recurse without limit.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import MalformedToken

MAX_DEPTH = 16


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise MalformedToken("duplicate JSON member name", reason="duplicate_member")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise MalformedToken(f"non-finite JSON number {name}", reason="non_finite_number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedToken("JSON number out of range", reason="non_finite_number")
    return value


_decoder = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite_float
)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedToken("JSON string holds a lone surrogate", reason="bad_utf8") from exc


def _walk(value: Any, limit: int) -> None:
    """Depth limit and lone-surrogate check in one iterative pass (no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            raise MalformedToken("JSON nested too deeply", reason="too_deep")
        if isinstance(item, dict):
            for key, member in item.items():
                _check_text(key)
                stack.append((member, depth + 1))
        else:
            stack.extend((member, depth + 1) for member in item)


def loads_object(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a JSON object strictly; anything else (array, scalar, bad UTF-8, duplicates) is refused.

    ``max_depth`` counts the top-level object as 1. Every failure is a ``MalformedToken``.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedToken("JSON text is not valid UTF-8", reason="bad_utf8") from exc
    elif isinstance(data, str):
        text = data
    else:
        raise MalformedToken("JSON text must be bytes or str")
    try:
        value = _decoder.decode(text)
    except MalformedToken:
        raise
    except (ValueError, RecursionError, OverflowError) as exc:
        raise MalformedToken("not valid JSON") from exc
    if not isinstance(value, dict):
        raise MalformedToken("JSON value is not an object")
    _walk(value, max_depth)
    return value
