"""Hypothesis strategies shared by the attack suites: JSON values and structural mutations of compact JWS."""

from __future__ import annotations

import json
import string

from hypothesis import assume
from hypothesis import strategies as st

from jarmor.jose import b64url_decode, b64url_encode

JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["none", "RS256", "ES256", "PS256", "HS256", "code", "jwt", "query", "baseline", "high",
                     "elevated", "private_key_jwt", "none", "client_credentials", "authorization_code",
                     "https://c1.example/cb", "http://127.0.0.1:9/cb", "javascript:alert(1)", "openid profile"]),
)
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)


def _flip(token: str, index: int, bit: int) -> str:
    index %= len(token)
    if token[index] == ".":
        return token
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    pos = alphabet.index(token[index])
    return token[:index] + alphabet[pos ^ (1 << (bit % 6))] + token[index + 1:]


@st.composite
def structural_mutations(draw: st.DrawFn, token: str) -> str:
    out = draw(_structural(token))
    assume(out != token)
    return out


@st.composite
def _structural(draw: st.DrawFn, token: str) -> str:
    head, body, sig = token.split(".")
    kind = draw(st.sampled_from(["flip", "swap", "drop", "duplicate", "truncate", "pad", "reencode"]))
    if kind == "flip":
        out = token
        for _ in range(draw(st.integers(1, 3))):
            out = _flip(out, draw(st.integers(0, len(token) - 1)), draw(st.integers(0, 5)))
        return out
    if kind == "swap":
        return ".".join(draw(st.permutations([head, body, sig]).filter(lambda p: p != [head, body, sig])))
    if kind == "drop":
        return ".".join(p for i, p in enumerate((head, body, sig)) if i != draw(st.integers(0, 2)))
    if kind == "duplicate":
        parts = [head, body, sig]
        parts.insert(draw(st.integers(0, 3)), parts[draw(st.integers(0, 2))])
        return ".".join(parts)
    if kind == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    if kind == "pad":
        return token + draw(st.sampled_from(["=", "==", ".", " ", "\n", "A"]))
    # re-encode the payload with other JSON bytes meaning the same (whitespace): the signature no longer fits
    claims = json.loads(b64url_decode(body))
    return f"{head}.{b64url_encode(json.dumps(claims, indent=1).encode())}.{sig}"
