"""The fast strict-JSON path (orjson) against the reference path (the standard library with hooks).

``loads_object`` must give exactly what ``_loads_reference`` gives, value for value (types included: an
``int`` is not a ``float``, ``-0.0`` is not ``0.0``) and refusal for refusal (class, ``reason``, message),
on every input; and the fast path must be the one that answers for ordinary documents, or it is dead code.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jarmor.jose import MalformedToken, strictjson
from jarmor.jose.strictjson import _loads_fast, _loads_reference, loads_object


def canon(value: Any) -> Any:
    """A form that compares types and float bits too (``1 == 1.0 == True`` in Python)."""
    if isinstance(value, dict):
        return ("d", [(k, canon(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("l", [canon(v) for v in value])
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, float):
        return ("f", struct.pack(">d", value))
    if isinstance(value, int):
        return ("i", value)
    return (type(value).__name__, value)


def outcome(fn: Any, data: Any, max_depth: int) -> Any:
    try:
        return ("ok", canon(fn(data, max_depth=max_depth) if fn is loads_object else fn(data, max_depth)))
    except MalformedToken as exc:
        return ("refused", type(exc).__name__, exc.reason, str(exc))


def assert_same(data: bytes | str, max_depth: int = strictjson.MAX_DEPTH) -> None:
    assert outcome(loads_object, data, max_depth) == outcome(_loads_reference, data, max_depth)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    fast = _loads_fast(raw, max_depth)
    if fast is not None:  # when the fast path answers, it answers what the reference would
        assert ("ok", canon(fast)) == outcome(_loads_reference, data, max_depth)


# --- a generator of JSON *texts*: valid ones in many spellings, and near-misses --------------------------

KEYS = st.sampled_from(["a", "b", "alg", "kid", "typ", ":", "a:b", "", "ü", "\U0001f600", "\\", '"'])
GOOD_CHARS = [*"ab:\"\\/ü\t\n\x00\x1f\x7f\u2028", "\U0001f600", "\ufeff", "\uffff"]
BAD_CHARS = ["\ud800", "\udc00"]  # lone surrogates: refused raw or escaped
INTS = st.one_of(
    st.integers(-(10**20), 10**20),
    st.sampled_from([0, -1, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**18, 10**19]),
)
GOOD_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.17e}"),
    st.sampled_from(["-0.0", "0e0", "-0", "1E5", "1e-400", "-1e-400", "1.5e308", "1.7976931348623157e308",
                     "2.2250738585072011e-308", "4.9e-324", "123456789.123456789", "0.1", "1E+2", "1e-2"]),
    st.from_regex(r"-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
)
BAD_FLOATS = st.sampled_from(["1.7976931348623159e308", "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "01",
                              "1.", ".5", "+1", "0x10", "1e", "-", "1e+"])


@st.composite
def json_string(draw: st.DrawFn, chars: st.SearchStrategy[str], bad: bool) -> str:
    """A JSON string literal; each character raw or escaped (``\\u0061`` for ``a``, ``\\u003a`` for ``:``)."""
    text = draw(st.lists(chars, max_size=8))
    out = ['"']
    for ch in "".join(text):
        how = draw(st.integers(0, 3))
        if ch == '"' or ch == "\\" or (ord(ch) < 0x20 and not (bad and how == 3)):
            out.append(json.dumps(ch)[1:-1])
        elif how == 0 and ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04{draw(st.sampled_from('xX'))}}")
        elif how == 1 and ord(ch) >= 0x10000:
            high, low = json.dumps(ch)[1:-1].split("\\")[1:]
            out.append(f"\\{high}\\{low}")
        else:
            out.append(ch)  # raw (a raw control character makes the text invalid, on purpose)
    out.append('"')
    return "".join(out)


def ws(bad: bool) -> st.SearchStrategy[str]:
    return st.sampled_from(["", "", "", " ", "\n\t", "\r"] + (["\x0c", "\xa0"] if bad else []))


@st.composite
def json_text(draw: st.DrawFn, depth: int, bad: bool) -> str:
    """Any JSON value; with ``bad``, near-misses (invalid literals, numbers, whitespace, trailing commas) too."""
    kind = draw(st.integers(0, 9)) if depth < 5 else draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.sampled_from(["true", "false", "null"] + (["tru", "nul"] if bad else [])))
    if kind in (1, 2):
        return str(draw(INTS))
    if kind == 3:
        return draw(st.one_of(GOOD_FLOATS, BAD_FLOATS) if bad else GOOD_FLOATS)
    if kind in (4, 5):
        chars = st.sampled_from(GOOD_CHARS + BAD_CHARS if bad else GOOD_CHARS)
        return draw(json_string(chars, bad))
    close = draw(st.sampled_from(["", "", ","] if bad else [""]))
    if kind == 6:
        items = [draw(ws(bad)) + draw(json_text(depth + 1, bad)) + draw(ws(bad))
                 for _ in range(draw(st.integers(0, 3)))]
        return "[" + ",".join(items) + (close if items else "") + "]"
    names = draw(st.lists(json_string(KEYS, bad), max_size=4))
    members = [f"{name}{draw(ws(bad))}:{draw(ws(bad))}{draw(json_text(depth + 1, bad))}" for name in names]
    return "{" + ",".join(members) + (close if members else "") + "}"


@st.composite
def documents(draw: st.DrawFn) -> bytes | str:
    bad = draw(st.integers(0, 3)) == 0
    if bad and draw(st.booleans()):
        body = draw(json_text(0, bad))  # maybe not an object at all
    else:
        names = draw(st.lists(json_string(KEYS, bad), min_size=1, max_size=5))
        body = "{" + ",".join(f"{n}:{draw(json_text(1, bad))}" for n in names) + "}"
    body = draw(ws(bad)) + body + draw(st.sampled_from(["", " ", "\n"] + ([" x", "{}", "\x00"] if bad else [])))
    if draw(st.booleans()):
        return body
    raw = body.encode("utf-8", "surrogatepass")  # raw surrogates become (invalid) CESU-8 bytes
    if bad and raw and draw(st.booleans()):  # one corrupted byte
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1 :]
    return raw


@settings(max_examples=1500)
@given(documents(), st.sampled_from([1, 2, 4, 16]))
@example(b'{"a":1,"a":"\\u003a"}', 16)  # a dropped member hidden by an escaped colon in the kept value
@example(b'{"a":1,"\\u0061":2}', 16)
@example(b'{"a":{"b":[{"c":1,"c":1}]}}', 16)
@example(b'{"a":18446744073709551616}', 16)
@example(b'{"a":-9223372036854775809}', 16)
@example(b'{"a":"\\ud800"}', 16)
@example(b'{"a":[[[[1]]]]}', 4)
def test_fast_path_agrees_with_reference(data: bytes | str, max_depth: int) -> None:
    assert_same(data, max_depth)


@settings(max_examples=500)
@given(st.dictionaries(st.text(max_size=12), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=20),
              st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=10)))
def test_encoder_output_agrees(doc: dict[str, Any]) -> None:
    """Documents as real encoders write them (compact, ASCII-escaped, indented)."""
    for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False), json.dumps(doc, indent=1)):
        assert_same(text)
        assert_same(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',
        '{"a":1,"b":{"c":1,"c":1}}',
        '{"a":1,"\\u0061":2}',
        '{"a":"x:y","a":"x"}',
        '{"a":1,"a":"\\u003a"}',
        '{"a":1,"a":"\\u003A"}',
        '{"a:":1,"a:":2}',
        '{"x":[{"k":1,"k":1}]}',
        '{"a":{"b":1},"a":{"b":1}}',
        '{"\\ud83d\\ude00":1,"\U0001f600":2}',
    ],
)
def test_duplicates_refused_on_both_paths(text: str) -> None:
    assert_same(text)
    assert _loads_fast(text.encode(), 16) is None
    with pytest.raises(MalformedToken) as info:
        loads_object(text)
    assert info.value.reason == "duplicate_member"


@pytest.mark.parametrize(
    "doc",
    [
        {"alg": "ES256", "kid": "k1", "typ": "oauth-authz-req+jwt"},
        {"iss": "https://c.example", "aud": ["a", "b"], "exp": 1765130300, "n": 2.5, "neg": -3, "t": True,
         "z": None, "nested": {"claims": {"id_token": {"acr": {"values": ["urn:x:aal2"]}}}}},
        {"jwk": {"kty": "EC", "crv": "P-256", "x": "abc", "y": "def"}, "alg": "ES256"},
        {"big": 2**63 - 1, "u": 2**64 - 1, "url": "https://x.example/a:b?c=d:e"},
    ],
)
def test_fast_path_answers_ordinary_documents(doc: dict[str, Any]) -> None:
    """Not dead code: compact encoder output without long digit runs is parsed by orjson alone."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    if b"0000000000000000000" in text.translate(bytes.maketrans(b"123456789", b"000000000")):
        assert _loads_fast(text, 16) is None  # 19+ digits: the reference path decides
    else:
        assert canon(_loads_fast(text, 16)) == canon(doc)
    assert canon(loads_object(text)) == canon(doc)


def test_big_integers_stay_integers() -> None:
    for n in (2**64, -(2**63) - 1, 10**30):
        value = loads_object(f'{{"n":{n}}}')["n"]
        assert type(value) is int and value == n


def test_depth_limit_on_fast_path() -> None:
    doc = b'{"a":{"b":{"c":1}}}'
    assert _loads_fast(doc, 3) is not None
    assert _loads_fast(doc, 2) is None
    with pytest.raises(MalformedToken) as info:
        loads_object(doc, max_depth=2)
    assert info.value.reason == "too_deep"
    brackets_in_strings = b'{"a":"[[[[{{{{","b":[1]}'  # many brackets, all in a string: still fast
    assert _loads_fast(brackets_in_strings, 2) == {"a": "[[[[{{{{", "b": [1]}
