"""Strict JSON for security tokens: one meaning per document, or a refusal.

RFC 7515 §5.2 (step 4) and RFC 7519 §7.2 (step 4): a JOSE header or claims set with duplicate member names
MUST be rejected (or parsed with last-wins, which lets two parsers disagree: we refuse). RFC 8259 §6 has no
NaN or Infinity, and a number that overflows to infinity (``1e400``) is refused for the same reason
(a comparison with ``inf`` fails open). RFC 8259 §8.1: text exchanged between systems MUST be UTF-8, so
invalid UTF-8 and escaped lone surrogates (``"\\ud800"``, which no UTF-8 text can carry) are refused.
Nesting is bounded so that no caller can be made to recurse without limit.

Two paths, one answer. The *reference* path (``_loads_reference``) is the standard library's parser with a
duplicate-refusing ``object_pairs_hook`` and an iterative walk; it defines every result and every error. The
*fast* path (``_loads_fast``) parses with orjson and returns only when it can prove the reference path would
return the very same value; on any doubt it returns ``None`` and the reference path runs (so every refusal,
with its ``reason`` and message, always comes from the reference path). What it must prove, and how:

* no duplicate member, at any depth: orjson keeps the last of duplicate members silently. Outside strings a
  colon occurs in JSON only as a member separator, and inside strings a colon stays a colon when decoded
  unless it is written as the escape ``\\u003a``. So when the text has no such escape, the colons of the text
  (one per member written, plus those inside strings) equal the colons of orjson's re-serialization of the
  parsed value (one per member kept, plus those inside the strings kept) exactly when nothing was dropped: a
  duplicate drops at least one member. Names equal only after unescaping (``"a"`` and ``"\\u0061"``) are
  caught too, since the count compares decoded results, never spellings;
* the same numbers: orjson turns integers beyond 64 bits into floats where the standard library keeps an
  ``int``; a run of 19 or more digits anywhere (inside strings too) sends the text to the reference path,
  and every shorter integer fits 64 bits. Non-finite numbers, ``NaN`` and ``Infinity`` make orjson fail;
* valid UTF-8 without lone surrogates (raw or escaped), one value, no byte-order mark: orjson refuses all of
  these, and so falls back;
* the depth limit: no container can be deeper than the number of ``{`` and ``[`` in the text; only when that
  number exceeds the limit are the containers walked.

``tests/jose/test_strictjson_differential.py`` checks the two paths against each other on generated and
adversarial documents.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import orjson

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


def _loads_reference(data: object, max_depth: int) -> dict[str, Any]:
    """The reference parser: defines every accepted value and every refusal."""
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


# One pass that makes every digit "0" (for the digit-run search) and every "[" a "{" (for the container count).
_SCAN: Final = bytes.maketrans(b"123456789[", b"000000000{")
_LONG_DIGIT_RUN: Final = b"0" * 19  # 18 digits always fit 64 bits; orjson makes longer integers floats


def _deeper_than(value: Any, limit: int) -> bool:
    """True when a container sits deeper than ``limit`` (the top-level object is depth 1); iterative."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        members = item.values() if isinstance(item, dict) else item
        stack.extend((m, depth + 1) for m in members if isinstance(m, dict | list))
    return False


def _loads_fast(raw: bytes, max_depth: int) -> dict[str, Any] | None:
    """orjson, when it provably yields what ``_loads_reference`` would (see the module docstring)."""
    if b"\\" in raw and (b"\\u003a" in raw or b"\\u003A" in raw):
        return None
    scan = raw.translate(_SCAN)
    if _LONG_DIGIT_RUN in scan:
        return None
    try:
        value = orjson.loads(raw)
        if type(value) is not dict or raw.count(b":") != orjson.dumps(value).count(b":"):
            return None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    if scan.count(b"{") > max_depth and _deeper_than(value, max_depth):
        return None
    return value


def loads_object(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a JSON object strictly; anything else (array, scalar, bad UTF-8, duplicates) is refused.

    ``max_depth`` counts the top-level object as 1. Every failure is a ``MalformedToken``.
    """
    raw: bytes | None
    if type(data) is bytes:
        raw = data
    elif type(data) is str:
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the reference path names it
            raw = None
    else:
        raw = None
    if raw is not None:
        value = _loads_fast(raw, max_depth)
        if value is not None:
            return value
    return _loads_reference(data, max_depth)
