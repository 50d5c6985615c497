"""Strict JSON for security tokens: duplicate member names, non-finite numbers and deep nesting are refused.

RFC 7515 §5.2 (step 4) and RFC 7519 §7.2 (step 4): a JOSE header or claims set with duplicate member names
MUST be rejected (or parsed with last-wins, which lets two parsers disagree: we refuse).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import MalformedToken

MAX_DEPTH = 16


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise MalformedToken(f"duplicate JSON member name {key!r}", reason="duplicate_member")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise MalformedToken(f"non-finite JSON number {name}")


_decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _depth(value: Any, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise MalformedToken("JSON nested too deeply", reason="too_deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))


def loads_object(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a JSON object strictly; anything else (array, scalar, bad UTF-8, duplicates) is refused."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = _decoder.decode(text)
    except MalformedToken:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedToken("not valid JSON") from exc
    if not isinstance(value, dict):
        raise MalformedToken("JSON value is not an object")
    _depth(value, max_depth)
    return value
