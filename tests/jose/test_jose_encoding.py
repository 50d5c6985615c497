"""Strict base64url (RFC 7515 §2) and strict JSON (RFC 7515 §5.2, RFC 8259) — catalog A10, A22, A23, A25."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jarmor.jose import MalformedToken, b64url_decode, b64url_encode, loads_object
from jarmor.jose.testing import bounded, refused

# --- base64url -----------------------------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_b64url_round_trip(data: bytes) -> None:
    assert b64url_decode(b64url_encode(data)) == data


@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .\n", max_size=40)
)
def test_b64url_accepts_exactly_one_spelling(text: str) -> None:
    """Whatever decodes, re-encodes to the very same text: no aliasing, padding, or stray bits."""
    try:
        decoded = b64url_decode(text)
    except MalformedToken:
        return
    assert b64url_encode(decoded) == text


@pytest.mark.parametrize(
    "segment",
    [
        "QQ==",  # padding
        "QQ=",
        "a+b/",  # standard alphabet
        "ab/c",
        "ab+c",
        "QR",  # non-zero trailing bits: "QQ" is the canonical spelling of b"A"
        "QUJ",  # "QUI" is canonical for b"AB"
        "Q",  # length 1 mod 4 is impossible
        "QUJDR",
        " QQ",
        "QQ ",
        "QQ\n",  # a trailing newline must not slip past a `$` anchor
        "\nQQ",
        "Q\tQ",
        "QQ\x00",
        "QQé",  # non-ASCII str
        "\uff31\uff31",  # fullwidth letters
        "QQ.",
    ],
)
def test_b64url_refuses_non_canonical(segment: str) -> None:
    refused(MalformedToken, b64url_decode, segment)
    refused(MalformedToken, b64url_decode, segment.encode("utf-8"))


@pytest.mark.parametrize("value", [None, 12, 1.5, ["QQ"], bytearray(b"QQ"), memoryview(b"QQ")])
def test_b64url_refuses_other_types(value: object) -> None:
    refused(MalformedToken, b64url_decode, value)


def test_b64url_non_canonical_reason() -> None:
    assert refused(MalformedToken, b64url_decode, "QR").reason == "non_canonical"


def test_b64url_empty_is_empty() -> None:
    assert b64url_decode("") == b""


def _reference_b64url_decode(raw: bytes) -> bytes | None:
    """The definition, spelled with the standard library: the alphabet only, no padding, and the one
    spelling that re-encodes to itself. ``None`` for a refusal."""
    if re.fullmatch(rb"[A-Za-z0-9_-]*", raw) is None or len(raw) % 4 == 1:
        return None
    decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    return decoded if base64.urlsafe_b64encode(decoded).rstrip(b"=") == raw else None


@given(st.one_of(
    st.binary(max_size=24),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=24).map(str.encode),
    st.text(alphabet="AQgwEI048_-+/=!. \n\x00\xff", max_size=9).map(lambda t: t.encode("latin-1")),
))
def test_b64url_matches_its_reference_definition(raw: bytes) -> None:
    try:
        got: bytes | None = b64url_decode(raw)
    except MalformedToken:
        got = None
    assert got == _reference_b64url_decode(raw)


# --- strict JSON ---------------------------------------------------------------------------------------


def test_loads_object_accepts_plain_object() -> None:
    doc = {"iss": "c1", "n": [1, 2.5, -3, True, None, {"x": "ü"}], "e": ""}
    assert loads_object(json.dumps(doc)) == doc
    assert loads_object(json.dumps(doc).encode()) == doc


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',
        '{"a":1,"b":{"c":1,"c":1}}',
        '{"a":1,"\\u0061":2}',  # the same name after unescaping
        '{"alg":"none","alg":"PS256"}',
        '{"x":[{"k":1,"k":1}]}',
    ],
)
def test_duplicate_member_names_refused(text: str) -> None:
    refused(MalformedToken, loads_object, text, reason="duplicate_member")


@pytest.mark.parametrize(
    "text",
    [
        '{"exp":NaN}',
        '{"exp":Infinity}',
        '{"exp":-Infinity}',
        '{"exp":1e400}',
        '{"exp":-1e400}',
        '{"exp":[1,{"a":1E999}]}',
    ],
)
def test_non_finite_numbers_refused(text: str) -> None:
    refused(MalformedToken, loads_object, text, reason="non_finite_number")


def test_huge_integer_refused_cheaply() -> None:
    refused(MalformedToken, loads_object, '{"exp":' + "9" * 5000 + "}")


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":"\xff"}',
        b'{"a":"\xc0\xaf"}',  # overlong "/"
        b'{"a":"\xed\xa0\x80"}',  # UTF-8-encoded surrogate
        b'{"a":"\xe2\x82"}',  # truncated sequence
        b'\xef\xbb\xbf{"a":1}',  # BOM
    ],
)
def test_bad_utf8_refused(data: bytes) -> None:
    refused(MalformedToken, loads_object, data)


@pytest.mark.parametrize("text", ['{"a":"\\ud800"}', '{"\\udfff":1}', '{"a":["x\\udc00y"]}'])
def test_lone_surrogates_refused(text: str) -> None:
    refused(MalformedToken, loads_object, text, reason="bad_utf8")


@pytest.mark.parametrize(
    "text",
    ["[]", '"a"', "1", "null", "true", "", " ", "{", '{"a":1} x', '{"a":1}{"b":2}', "{'a':1}", '{"a":01}'],
)
def test_not_a_single_object_refused(text: str) -> None:
    refused(MalformedToken, loads_object, text)


@pytest.mark.parametrize("value", [None, 1, {"a": 1}, ["{}"]])
def test_loads_object_refuses_other_types(value: object) -> None:
    refused(MalformedToken, loads_object, value)


def test_depth_limit() -> None:
    def nested(depth: int) -> str:
        return '{"a":' * depth + "1" + "}" * depth

    assert loads_object(nested(16))
    refused(MalformedToken, loads_object, nested(17), reason="too_deep")
    assert loads_object(nested(3), max_depth=3)
    refused(MalformedToken, loads_object, nested(4), max_depth=3, reason="too_deep")
    refused(MalformedToken, loads_object, '{"a":' + "[" * 20 + "]" * 20 + "}", reason="too_deep")


@pytest.mark.parametrize("depth", [1000, 30000])
def test_deep_nesting_is_bounded(depth: int) -> None:
    """CPython's parser raises RecursionError near depth 1000; it must surface as MalformedToken."""
    text = '{"a":' + "[" * depth + "]" * depth + "}"
    refused(MalformedToken, loads_object, text)


def test_large_flat_document_is_bounded() -> None:
    text = json.dumps({f"k{i}": "v" * 8 for i in range(4000)})  # ~70 KB, above any token limit
    with bounded(seconds=0.5, megabytes=5):
        assert len(loads_object(text)) == 4000


def test_b64_standard_decoder_would_have_aliased() -> None:
    """Documents why the strict decoder exists: the stdlib accepts all of these as b"A"."""
    for alias in (b"QQ==", b"QR==", b"Q Q=="):
        assert base64.urlsafe_b64decode(alias) == b"A"
        refused(MalformedToken, b64url_decode, alias)
