"""Attack catalog, Group J, signed tokens: A1-A9, A11-A13, A19 (JWS side), A21 (typ), A25 (JWS).

Every hostile input must be refused by ``verify_jws`` with a ``JoseError`` subclass (never ``ValueError``,
``IndexError``, ``RecursionError`` ...), with the stated ``reason`` where one is pinned, and within the
BOUNDED budget of ``jarmor.jose.testing.refused`` (0.5 s wall clock, 5 MiB peak traced memory).
"""

from __future__ import annotations

import base64
import builtins
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from jarmor.jose import (
    AlgorithmNotAllowed,
    BadSignature,
    InvalidKey,
    Jwk,
    JwkSet,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedHeader,
    b64url_decode,
    b64url_encode,
    encrypt_jwe,
    generate_jwk,
    import_jwk,
    sign_jws,
    verify_jws,
)
from jarmor.jose.testing import KeyRing, hmac_raw, keyring, refused, segment, sign_raw

NOW = 1_700_000_000
CA = {
    "iss": "client-1",
    "sub": "client-1",
    "aud": "https://as.example",
    "iat": NOW,
    "exp": NOW + 60,
    "jti": "j",
}
EVERY_ALG = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "EdDSA", "Ed25519"]
N_P256 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return keyring()


@pytest.fixture(scope="module")
def c1(ring: KeyRing) -> JwkSet:
    return ring.client1()


def _verify(token: object, keys: JwkSet, algorithms: list[str] | None = None, **kw: Any) -> object:
    return verify_jws(token, keys, algorithms=algorithms or ["PS256"], **kw)


# --- A1: alg none ------------------------------------------------------------------------------------------

NONE_HEADERS: list[dict[str, Any]] = [
    {"alg": "none"},
    {"alg": "None"},
    {"alg": "NONE"},
    {"alg": "nOnE"},
    {"alg": "none "},
    {"alg": " none"},
    {"alg": "none\u0000"},
    {"alg": ""},
    {},
    {"alg": None},
    {"alg": ["none"]},
    {"alg": {"none": True}},
    {"alg": 0},
    {"alg": False},
    {"typ": "JWT"},
    {"alg": "none", "kid": "c1-sig"},
]


@pytest.mark.parametrize("header", NONE_HEADERS, ids=lambda h: json.dumps(h))
@pytest.mark.parametrize("signature", ["", "AAAA", "c2lnbmF0dXJl"])
@pytest.mark.parametrize("allow", [["PS256"], ["PS256", "none", "None", "NONE", ""]])
def test_a1_alg_none_refused(c1: JwkSet, header: dict[str, Any], signature: str, allow: list[str]) -> None:
    token = f"{segment(header)}.{segment(CA)}.{signature}"
    refused(AlgorithmNotAllowed, _verify, token, c1, allow)


@pytest.mark.parametrize("header", NONE_HEADERS, ids=lambda h: json.dumps(h))
def test_a1_alg_none_two_segments_refused(c1: JwkSet, header: dict[str, Any]) -> None:
    refused(MalformedToken, _verify, f"{segment(header)}.{segment(CA)}", c1)


def test_a1_no_key_value_makes_none_acceptable(ring: KeyRing) -> None:
    for keys in (JwkSet(), ring.client1(), JwkSet((ring.c1_sig,))):
        refused(AlgorithmNotAllowed, _verify, f"{segment({'alg': 'none'})}.{segment(CA)}.", keys, ["none"])


# --- A2: algorithm substitution -----------------------------------------------------------------------------


def test_a2_rs256_when_only_ps256_allowed(ring: KeyRing, c1: JwkSet) -> None:
    token = sign_jws(CA, ring.c1_rsa, "RS256")  # valid RS256 from a registered RSA key
    verify_jws(token, c1, algorithms=["RS256"])  # control
    refused(AlgorithmNotAllowed, _verify, token, c1, ["PS256"])
    refused(AlgorithmNotAllowed, _verify, token, c1, ["PS256", "PS384", "PS512"])


@pytest.mark.parametrize("alg", EVERY_ALG)
def test_a2_every_alg_outside_the_allowlist_refused(ring: KeyRing, c1: JwkSet, alg: str) -> None:
    key = {
        "ES256": ring.c1_es256,
        "ES384": ring.c1_es384,
        "ES512": ring.c1_es512,
        "EdDSA": ring.c1_ed25519,
        "Ed25519": ring.c1_ed25519,
    }.get(alg, ring.c1_rsa)
    token = sign_jws(CA, key, alg)
    for allowed in EVERY_ALG:
        if allowed != alg and {allowed, alg} != {"EdDSA", "Ed25519"}:
            refused(AlgorithmNotAllowed, _verify, token, c1, [allowed])


def test_a2_key_alg_binding_rs256_token_for_ps256_key(ring: KeyRing, c1: JwkSet) -> None:
    """C1_SIG is registered with alg PS256: an RS256 token naming it fails even if RS256 is allowed."""
    token = sign_raw({"alg": "RS256", "kid": "c1-sig"}, CA, ring.c1_sig, "RS256")
    refused(KeyNotFound, _verify, token, c1, ["RS256", "PS256"], reason="key_mismatch")


@pytest.mark.parametrize(
    "alg",
    [
        "CUSTOM",
        "RS1",
        "HS256 ",
        "ps256",
        "PS256 ",
        " PS256",
        "ES256K",
        "RS384",
        "RS512",
        "PS256\u0000",
        "ＰＳ256",
    ],
)
def test_a2_unknown_or_odd_alg_values_refused(ring: KeyRing, c1: JwkSet, alg: str) -> None:
    token = f"{segment({'alg': alg, 'kid': 'c1-sig'})}.{segment(CA)}.{b64url_encode(bytes(256))}"
    refused(AlgorithmNotAllowed, _verify, token, c1, ["PS256", alg])


@pytest.mark.parametrize("alg", [["RS256"], 123, 1.5, True, None, {"alg": "PS256"}])
def test_a2_non_string_alg_refused(c1: JwkSet, alg: object) -> None:
    token = f"{segment({'alg': alg, 'kid': 'c1-sig'})}.{segment(CA)}.{b64url_encode(bytes(256))}"
    refused(AlgorithmNotAllowed, _verify, token, c1)


@pytest.mark.parametrize("allowlist", ["PS256", b"PS256", "PS256,RS256"])
def test_a2_allowlist_must_be_a_collection(ring: KeyRing, c1: JwkSet, allowlist: Any) -> None:
    token = sign_jws(CA, ring.c1_sig, "PS256")
    with pytest.raises(TypeError):
        verify_jws(token, c1, algorithms=allowlist)


# --- A3: HMAC keyed with public-key bytes -------------------------------------------------------------------


def _secrets_for(key: Jwk) -> dict[str, bytes]:
    raw = key.key.raw_value
    public = raw.public_key() if hasattr(raw, "private_bytes") else raw
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ssh = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    jwk = key.public_dict()
    out = {
        "pem": pem,
        "pem-no-newline": pem.rstrip(b"\n"),
        "der": der,
        "jwk-compact": json.dumps(jwk, separators=(",", ":")).encode(),
        "jwk-spaced": json.dumps(jwk).encode(),
        "openssh": ssh,
    }
    if key.kty == "EC":
        out["ec-point"] = b"\x04" + b64url_decode(jwk["x"]) + b64url_decode(jwk["y"])
    if key.kty == "RSA":
        out["rsa-n"] = b64url_decode(jwk["n"])
    if key.kty == "OKP":
        out["okp-raw"] = b64url_decode(jwk["x"])
    return out


@pytest.mark.parametrize("which", ["c1_sig", "c1_es256", "c1_ed25519"])
@pytest.mark.parametrize("hs", ["HS256", "HS384", "HS512"])
def test_a3_hmac_keyed_with_public_key_bytes(
    ring: KeyRing, c1: JwkSet, monkeypatch: pytest.MonkeyPatch, which: str, hs: str
) -> None:
    from joserfc.jws import JWSRegistry

    def no_mac(*args: object, **kwargs: object) -> bool:
        raise AssertionError("an HMAC was computed")

    for name in ("HS256", "HS384", "HS512"):
        monkeypatch.setattr(JWSRegistry.algorithms[name], "verify", no_mac)
    key: Jwk = getattr(ring, which)
    for label, secret in _secrets_for(key).items():
        token = hmac_raw({"alg": hs, "kid": key.kid}, CA, secret, hs)
        # even a caller that (wrongly) allows HS* gets no HMAC check: HS* is forbidden outright
        error = refused(AlgorithmNotAllowed, _verify, token, c1, [hs, "PS256", "ES256", "EdDSA"])
        assert label and error.reason == "alg_not_allowed"


def test_a3_symmetric_keys_cannot_enter_a_key_set() -> None:
    for alg in ("HS256", None):
        data = {"kty": "oct", "k": b64url_encode(b"s" * 32), "kid": "c1-sig"} | ({"alg": alg} if alg else {})
        refused(InvalidKey, JwkSet.from_dict, {"keys": [data]})
        refused(InvalidKey, JwkSet.from_dict, {"keys": [data]}, allow_private=True)


# --- A4: keys named or embedded in the header ---------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    attempts: list[str] = []

    def deny(name: str) -> Callable[..., Any]:
        def blocked(*args: object, **kwargs: object) -> Any:
            attempts.append(name)
            raise AssertionError(f"network access attempted via {name}")

        return blocked

    monkeypatch.setattr(socket, "getaddrinfo", deny("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", deny("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", deny("connect"))
    yield attempts
    assert attempts == []


def _attacker_jwk(ring: KeyRing) -> dict[str, Any]:
    return ring.atk_es256.public_dict()


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"jku": "https://attacker.example/jwks"},
        {"x5u": "https://attacker.example/c.pem"},
        {"x5c": ["MIIBszCCAVmgAwIBAgIUXw=="]},
        {"jku": "http://169.254.169.254/latest", "x5u": "file:///etc/passwd"},
        {"jwk": "not-an-object"},
    ],
    ids=["jwk", "jwk+jku", "jwk+x5u", "jwk+x5c", "jwk+jku+x5u", "bad-jwk"],
)
def test_a4_embedded_or_referenced_keys_never_used(
    ring: KeyRing, c1: JwkSet, no_network: list[str], extra: dict[str, Any]
) -> None:
    header = {"alg": "ES256", "kid": "c1-es256", "jwk": _attacker_jwk(ring), **extra}
    token = sign_raw(header, CA, ring.atk_es256, "ES256")
    refused(BadSignature, _verify, token, c1, ["ES256"])


def test_a4_embedded_legit_public_key_does_not_help(ring: KeyRing, c1: JwkSet, no_network: list[str]) -> None:
    header = {"alg": "ES256", "kid": "c1-es256", "jwk": ring.c1_es256.public_dict()}
    refused(BadSignature, _verify, sign_raw(header, CA, ring.atk_es256, "ES256"), c1, ["ES256"])


def test_a4_unknown_kid_with_embedded_jwk(ring: KeyRing, c1: JwkSet, no_network: list[str]) -> None:
    header = {"alg": "ES256", "kid": ring.atk_es256.thumbprint(), "jwk": _attacker_jwk(ring)}
    token = sign_raw(header, CA, ring.atk_es256, "ES256")
    refused(KeyNotFound, _verify, token, c1, ["ES256"], reason="unknown_kid")


def test_a4_no_kid_with_embedded_jwk_and_one_registered_key(ring: KeyRing, no_network: list[str]) -> None:
    keys = ring.public_set(ring.c1_es256)
    token = sign_raw({"alg": "ES256", "jwk": _attacker_jwk(ring)}, CA, ring.atk_es256, "ES256")
    refused(BadSignature, _verify, token, keys, ["ES256"])
    refused(KeyNotFound, _verify, token, JwkSet(), ["ES256"])  # an empty set never falls back to the header


def test_a4_header_keys_are_ignored_when_the_signature_is_genuine(ring: KeyRing, c1: JwkSet) -> None:
    """Honest tokens carrying x5c/x5t or a jku are not refused for it: the members are simply unused."""
    header = {"alg": "ES256", "kid": "c1-es256", "x5c": ["AAAA"], "jku": "https://c1.example/jwks"}
    result = verify_jws(sign_raw(header, CA, ring.c1_es256, "ES256"), c1, algorithms=["ES256"])
    assert result.key.kid == "c1-es256" and result.key.thumbprint() == ring.c1_es256.thumbprint()


# --- A5: kid injection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../dev/null",
        "/dev/null",
        "' OR '1'='1",
        'x"; --',
        "http://169.254.169.254/",
        "c2-sig",  # another client's key
        "C1-SIG",
        "c1-sig\u200b",
        "*",
        "%",
    ],
)
def test_a5_kid_is_an_exact_lookup_only(
    ring: KeyRing, c1: JwkSet, no_network: list[str], monkeypatch: pytest.MonkeyPatch, kid: str
) -> None:
    def no_files(*args: object, **kwargs: object) -> Any:
        raise AssertionError("file access attempted")

    token = sign_raw({"alg": "PS256", "kid": kid}, CA, ring.atk_rsa, "PS256")
    monkeypatch.setattr(builtins, "open", no_files)
    refused(KeyNotFound, _verify, token, c1, reason="unknown_kid")


@pytest.mark.parametrize("kid", [123, None, {"a": 1}, ["c1-sig"], True, 0, "", "a\u0000b", "a\nb", "k" * 257])
def test_a5_malformed_kid_refused_as_malformed_header(ring: KeyRing, c1: JwkSet, kid: object) -> None:
    token = sign_raw({"alg": "PS256", "kid": kid}, CA, ring.c1_sig, "PS256")
    refused(MalformedToken, _verify, token, c1, reason="bad_kid")


def test_a5_huge_kid_refused_before_parsing(ring: KeyRing, c1: JwkSet) -> None:
    big = f"{segment({'alg': 'PS256', 'kid': 'k' * 100_000})}.{segment(CA)}.AAAA"
    refused(TokenTooLarge, _verify, big, c1)
    header_too_big = f"{segment({'alg': 'PS256', 'kid': 'k' * 3500})}.{segment(CA)}.AAAA"
    refused(TokenTooLarge, _verify, header_too_big, c1)


def test_a5_token_of_client_2_against_client_1(ring: KeyRing, c1: JwkSet) -> None:
    genuine_c2 = sign_jws(CA, ring.c2_sig, "PS256")
    refused(KeyNotFound, _verify, genuine_c2, c1, reason="unknown_kid")
    forged_kid = sign_raw({"alg": "PS256", "kid": "c1-sig"}, CA, ring.c2_sig, "PS256")
    refused(BadSignature, _verify, forged_kid, c1)


# --- A6 / A7: crit and b64 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp2"], "exp2": 1},
        {"crit": []},
        {"crit": ["alg"]},
        {"crit": ["b64"]},
        {"crit": "exp2", "exp2": 1},
        {"crit": ["x", "x"], "x": 1},
        {"crit": None},
        {"crit": [1]},
        {"crit": ["b64"], "b64": True},
    ],
)
def test_a6_crit_always_refused(ring: KeyRing, c1: JwkSet, extra: dict[str, Any]) -> None:
    token = sign_raw({"alg": "PS256", "kid": "c1-sig", **extra}, CA, ring.c1_sig, "PS256")
    refused(UnsupportedHeader, _verify, token, c1, reason="header_crit")


@pytest.mark.parametrize("b64", [False, True, "false", 0, None])
def test_a7_b64_refused(ring: KeyRing, c1: JwkSet, b64: object) -> None:
    token = sign_raw({"alg": "PS256", "kid": "c1-sig", "b64": b64}, CA, ring.c1_sig, "PS256")
    refused(UnsupportedHeader, _verify, token, c1, reason="header_b64")


def test_a7_unencoded_payload_refused(ring: KeyRing, c1: JwkSet) -> None:
    header = {"alg": "PS256", "kid": "c1-sig", "b64": False, "crit": ["b64"]}
    head = segment(header)
    raw_payload = json.dumps(CA, separators=(",", ":"))
    from jarmor.jose.tokens import SIGNERS

    signature = SIGNERS["PS256"].sign(f"{head}.{raw_payload}".encode(), ring.c1_sig.key)
    token = f"{head}.{raw_payload}.{b64url_encode(signature)}"
    refused(MalformedToken, _verify, token, c1)  # the raw JSON is not base64url: refused before any parse
    detached = f"{head}..{b64url_encode(signature)}"
    refused(UnsupportedHeader, _verify, detached, c1)


# --- A8: non-compact serializations ----------------------------------------------------------------------------


def _valid(ring: KeyRing) -> str:
    return sign_jws(CA, ring.c1_sig, "PS256")


def _json_forms(ring: KeyRing) -> list[str]:
    head, payload, sig = _valid(ring).split(".")
    forged = segment(CA | {"sub": "admin"})
    return [
        json.dumps(
            {
                "payload": payload,
                "signatures": [{"protected": head, "header": {"kid": "c1-sig"}, "signature": sig}],
            }
        ),
        json.dumps({"payload": payload, "protected": head, "header": {"alg": "none"}, "signature": sig}),
        json.dumps({"payload": payload, "protected": head, "header": {"crit": ["exp2"]}, "signature": sig}),
        json.dumps({f"{head}.{forged}.": "", "protected": head, "payload": payload, "signature": sig}),
        json.dumps([head, payload, sig]),
    ]


def test_a8_json_serializations_refused_before_any_json_parse(
    ring: KeyRing, c1: JwkSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jarmor.jose.tokens as tokens

    def no_parse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("JSON parsed")

    forms = _json_forms(ring)
    monkeypatch.setattr(tokens, "loads_object", no_parse)
    for form in forms:
        refused(MalformedToken, _verify, form, c1)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: " " + t,
        lambda t: t + " ",
        lambda t: t + "\n",
        lambda t: "\n" + t,
        lambda t: t + "\r\n",
        lambda t: "\t" + t,
        lambda t: t + "\u00a0",
        lambda t: "\ufeff" + t,
        lambda t: t.replace(".", ". ", 1),
        lambda t: t.replace(".", "\u2024", 1),  # one-dot leader
        lambda t: t[:10] + "\u200b" + t[10:],
        lambda t: '"' + t + '"',
        lambda t: "Bearer " + t,
    ],
)
def test_a8_whitespace_and_lookalikes_refused(
    ring: KeyRing, c1: JwkSet, mangle: Callable[[str], str]
) -> None:
    refused(MalformedToken, _verify, mangle(_valid(ring)), c1)


@pytest.mark.parametrize(
    "wrap", [str.encode, lambda t: bytearray(t.encode()), lambda t: memoryview(t.encode())]
)
def test_a8_bytes_instead_of_str_refused(ring: KeyRing, c1: JwkSet, wrap: Callable[[str], object]) -> None:
    refused(MalformedToken, _verify, wrap(_valid(ring)), c1)
    for form in _json_forms(ring):
        refused(MalformedToken, _verify, wrap(form), c1)


@pytest.mark.parametrize("value", [None, 0, 1.5, ["a", "b", "c"], {"a": 1}, object()])
def test_a8_non_string_tokens_refused(c1: JwkSet, value: object) -> None:
    refused(MalformedToken, _verify, value, c1)


# --- A9: structural truncation and non-canonical segments -------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "error"),
    [
        ("{h}.{p}.", BadSignature),
        ("{h}.{p}", MalformedToken),
        (".{p}.{s}", MalformedToken),
        ("{h}..{s}", MalformedToken),
        ("{h}.{p}.{s}.", MalformedToken),
        ("{h}.{p}.{s}.Zm9v", MalformedToken),
        ("", MalformedToken),
        (".", MalformedToken),
        ("..", MalformedToken),
        ("....", MalformedToken),
        ("{h}", MalformedToken),
        ("{h}.{p}.{s}.ZQ.dA.eA", MalformedToken),
        ("{h}.{p}.{s}..", MalformedToken),
        ("{p}.{s}", MalformedToken),
        ("{h}.{s}", MalformedToken),
    ],
)
def test_a9_structural_truncation(ring: KeyRing, c1: JwkSet, shape: str, error: type[Exception]) -> None:
    head, payload, sig = _valid(ring).split(".")
    token = shape.format(h=head, p=payload, s=sig)
    refused(error, _verify, token, c1)  # type: ignore[arg-type]


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize("part", [0, 1, 2])
@pytest.mark.parametrize("how", ["pad", "standard-alphabet", "slash", "percent", "space", "dot-pad"])
def test_a9_non_canonical_base64_in_any_segment(ring: KeyRing, c1: JwkSet, part: int, how: str) -> None:
    parts = _valid(ring).split(".")
    seg = parts[part]
    raw = b64url_decode(seg)
    if how == "pad":
        seg = base64.urlsafe_b64encode(raw).decode()
        seg += "" if "=" in seg else "=="
    elif how == "standard-alphabet":
        seg = base64.b64encode(raw).decode().rstrip("=") + "+/"
    elif how == "slash":
        seg = "/" + seg[1:]
    elif how == "percent":
        seg = seg[:5] + "%41" + seg[5:]
    elif how == "space":
        seg = seg[:5] + " " + seg[5:]
    elif how == "dot-pad":
        seg = seg + "="
    parts[part] = seg
    refused(MalformedToken, _verify, ".".join(parts), c1)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a9_stray_bits_refused_before_verification(ring: KeyRing, c1: JwkSet, part: int) -> None:
    """Each segment has spare bits in its last character; flipping one must not alias the same bytes."""
    header = {"alg": "PS256", "kid": "c1-sig", "p": "x"}
    claims = CA | {"p": "xx"}
    token = sign_raw(header, claims, ring.c1_sig, "PS256")
    parts = token.split(".")
    assert all(len(p) % 4 for p in parts), [len(p) % 4 for p in parts]
    verify_jws(token, c1, algorithms=["PS256"])
    seg = parts[part]
    parts[part] = seg[:-1] + ALPHABET[ALPHABET.index(seg[-1]) ^ 1]
    assert base64.urlsafe_b64decode(parts[part] + "==") == base64.urlsafe_b64decode(seg + "==")
    refused(MalformedToken, _verify, ".".join(parts), c1, reason="non_canonical")


# --- A11: ECDSA signature encoding and psychic signatures -------------------------------------------------------

ORDERS = {
    "ES256": N_P256,
    "ES384": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    "ES512": int(
        "01FF"
        + "FFFFFFFF" * 7
        + "FFFFFFFA"
        + "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}
WIDTH = {"ES256": 32, "ES384": 48, "ES512": 66}


def _es_key(ring: KeyRing, alg: str) -> Jwk:
    return {"ES256": ring.c1_es256, "ES384": ring.c1_es384, "ES512": ring.c1_es512}[alg]


def _with_signature(token: str, signature: bytes) -> str:
    head, payload, _ = token.split(".")
    return f"{head}.{payload}.{b64url_encode(signature)}"


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_a11_psychic_and_malformed_ecdsa_signatures(ring: KeyRing, c1: JwkSet, alg: str) -> None:
    n, w = ORDERS[alg], WIDTH[alg]
    token = sign_jws(CA, _es_key(ring, alg), alg)
    good = b64url_decode(token.split(".")[2])
    r, s = int.from_bytes(good[:w], "big"), int.from_bytes(good[w:], "big")

    def rs(a: int, b: int) -> bytes:
        return a.to_bytes(w, "big") + b.to_bytes(w, "big")

    hostile = {
        "zeros": bytes(2 * w),
        "r=0,s=1": rs(0, 1),
        "r=1,s=0": rs(1, 0),
        "r=0,s=s": rs(0, s),
        "r=r,s=0": rs(r, 0),
        "r=s=n": rs(n, n),
        "r=n,s": rs(n, s),
        "r+n,s": rs(r + n, s) if (r + n).bit_length() <= 8 * w else rs(n + 1, s),
        "r,s+n": rs(r, s + n) if (s + n).bit_length() <= 8 * w else rs(r, n + 1),
        "r=s=n-1": rs(n - 1, n - 1),
        "ones": b"\xff" * (2 * w),
        "der": encode_dss_signature(r, s),
        "short": good[:-1],
        "long": good + b"\x00",
        "leading-zero": b"\x00" + good,
        "half": good[:w],
        "empty-after-decode": b"\x00",
        "swapped": good[w:] + good[:w],
    }
    for label, sig in hostile.items():
        error = refused(BadSignature, _verify, _with_signature(token, sig), c1, [alg])
        assert label and error.reason == "bad_signature"
    # control: the high-s twin is a valid ECDSA signature (malleability); replay defences must key on jti
    twin = rs(r, n - s)
    assert verify_jws(_with_signature(token, twin), c1, algorithms=[alg]).claims == CA


def test_a11_eddsa_malformed_signatures(ring: KeyRing, c1: JwkSet) -> None:
    token = sign_jws(CA, ring.c1_ed25519, "EdDSA")
    good = b64url_decode(token.split(".")[2])
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(good[32:], "little")
    for sig in (
        bytes(64),
        good[:32] + (s + order).to_bytes(32, "little"),  # non-canonical S (RFC 8032 §5.1.7)
        good[:63],
        good + b"\x00",
        b"\xff" * 64,
    ):
        refused(BadSignature, _verify, _with_signature(token, sig), c1, ["EdDSA"])


def test_a11_rsa_malformed_signatures(ring: KeyRing, c1: JwkSet) -> None:
    token = sign_jws(CA, ring.c1_sig, "PS256")
    good = b64url_decode(token.split(".")[2])
    n = int(b64url_decode(ring.c1_sig.public_dict()["n"]).hex(), 16)
    size = len(good)
    for value in (0, 1, n - 1, n, n + 1):
        sig = value.to_bytes(size + 1, "big")[-size:] if value.bit_length() <= 8 * size else b"\xff" * size
        refused(BadSignature, _verify, _with_signature(token, sig), c1)
    for sig in (good[:-1], b"\x00" + good, good + b"\x00", b""):
        refused((BadSignature, MalformedToken), _verify, _with_signature(token, sig), c1)  # type: ignore[arg-type]


# --- A12: key, algorithm and curve binding ----------------------------------------------------------------------


def test_a12_binding(ring: KeyRing) -> None:
    keys = ring.public_set(ring.c1_es256, ring.c1_es384, ring.c1_sig, ring.c1_rsa, ring.enc_x25519)
    cases = [
        ({"alg": "ES256", "kid": "c1-es384"}, ring.c1_es256, "ES256"),  # ES256 header, kid -> P-384 key
        ({"alg": "ES512", "kid": "c1-es256"}, ring.c1_es512, "ES512"),
        ({"alg": "PS256", "kid": "c1-es256"}, ring.c1_sig, "PS256"),
        ({"alg": "RS256", "kid": "c1-sig"}, ring.c1_sig, "RS256"),  # JWK alg PS256
        ({"alg": "EdDSA", "kid": "enc-x25519"}, ring.c1_ed25519, "EdDSA"),  # X25519 key
    ]
    for header, signer, alg in cases:
        token = sign_raw(header, CA, signer, alg)
        refused(KeyNotFound, _verify, token, keys, [alg], reason="key_mismatch")


def test_a12_use_enc_and_key_ops_encrypt_keys_never_verify(ring: KeyRing) -> None:
    for changes in (
        {"use": "enc", "alg": None},
        {"use": None, "key_ops": ["encrypt"]},
        {"key_ops": ["sign"]},
    ):
        data = {k: v for k, v in (ring.c1_rsa.public_dict() | changes).items() if v is not None}
        keys = JwkSet.from_dict({"keys": [data]})
        token = sign_jws(CA, ring.c1_rsa, "PS256")
        if changes.get("key_ops") == ["sign"]:
            verify_jws(token, keys, algorithms=["PS256"])  # "sign" still names the signature family
            continue
        refused(KeyNotFound, _verify, token, keys, reason="key_mismatch")


# --- A13: weak keys -----------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Key size should be")
@pytest.mark.parametrize("bits", [1024, 2040])
def test_a13_weak_rsa_keys_never_reach_verification(bits: int) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

    raw = RSAKey.import_key(rsa.generate_private_key(65537, bits))
    refused(InvalidKey, import_jwk, raw.as_dict(private=False) | {"kid": "weak"}, allow_private=False)
    refused(InvalidKey, Jwk, key=raw, kid="weak", kty="RSA", crv=None, alg=None, use=None, key_ops=None)


# --- A19: a JWE where a JWS is expected ----------------------------------------------------------------------------


def test_a19_jwe_refused_by_verify(ring: KeyRing, c1: JwkSet) -> None:
    for alg, key in (
        ("RSA-OAEP-256", ring.enc_rsa),
        ("ECDH-ES+A256KW", ring.enc_p256),
        ("ECDH-ES", ring.enc_x25519),
    ):
        token = encrypt_jwe(json.dumps(CA).encode(), key, alg, "A256GCM")
        refused(MalformedToken, _verify, token, c1, reason="unexpected_jwe")
        both = JwkSet((*c1.keys, key))
        refused(MalformedToken, _verify, token, both, ["PS256", alg], reason="unexpected_jwe")


# --- A21 (JOSE part): typ confusion ---------------------------------------------------------------------------------


def test_a21_typ_confusion(ring: KeyRing, c1: JwkSet) -> None:
    request_object = sign_jws(CA, ring.c1_sig, "PS256", typ="oauth-authz-req+jwt")
    assertion_typs = ["client-authentication+jwt"]
    refused(UnsupportedHeader, _verify, request_object, c1, typ=assertion_typs, reason="typ")
    for bad in (5, ["jwt"], {"t": 1}, True):
        token = sign_raw({"alg": "PS256", "kid": "c1-sig", "typ": bad}, CA, ring.c1_sig, "PS256")
        refused(UnsupportedHeader, _verify, token, c1, typ=assertion_typs, reason="typ")


# --- A22/A23 at the token level: parser differentials in header and claims ------------------------------------------


@pytest.mark.parametrize(
    "claims_text",
    [
        '{"iss":"client-1","iss":"admin"}',
        '{"exp":NaN}',
        '{"exp":Infinity}',
        '{"exp":-Infinity}',
        '{"exp":1e400}',
        '{"exp":' + "9" * 5000 + "}",
        '{"sub":"\\ud800"}',
        '["not","an","object"]',
        "null",
    ],
)
def test_a22_hostile_claims_in_a_validly_signed_token(ring: KeyRing, c1: JwkSet, claims_text: str) -> None:
    token = sign_raw({"alg": "PS256", "kid": "c1-sig"}, claims_text.encode(), ring.c1_sig, "PS256")
    refused(MalformedToken, _verify, token, c1)


@pytest.mark.parametrize(
    "header_text",
    [
        '{"alg":"none","alg":"PS256","kid":"c1-sig"}',
        '{"alg":"PS256","kid":"c2-sig","kid":"c1-sig"}',
        '{"alg":"PS256","kid":"c1-sig","x":NaN}',
        '{"alg":"PS256","kid":"c1-sig","x":1e999}',
        '{"alg":"PS256","kid":"c1-sig","x":{"a":{"b":{"c":{"d":1}}}}}',
        '{"alg":"PS256","kid":"c1-sig"} ',
        '{"alg":"PS256","kid":"c1-\\udc00"}',
    ],
)
def test_a22_hostile_headers(ring: KeyRing, c1: JwkSet, header_text: str) -> None:
    token = sign_raw(header_text.encode(), CA, ring.c1_sig, "PS256")
    if header_text.endswith(" "):
        verify_jws(token, c1, algorithms=["PS256"])  # whitespace around JSON is legal JSON
        return
    refused(MalformedToken, _verify, token, c1)


@pytest.mark.parametrize(
    "raw", [b'{"alg":"PS256","kid":"c1-\xff"}', b'\xef\xbb\xbf{"alg":"PS256"}', b"\x00" * 8]
)
def test_a22_bad_utf8_in_header_and_claims(ring: KeyRing, c1: JwkSet, raw: bytes) -> None:
    refused(MalformedToken, _verify, f"{b64url_encode(raw)}.{segment(CA)}.AAAA", c1)
    token = sign_raw({"alg": "PS256", "kid": "c1-sig"}, raw, ring.c1_sig, "PS256")
    refused(MalformedToken, _verify, token, c1)


# --- A25: oversized tokens ---------------------------------------------------------------------------------------------

MIB = 1024 * 1024


@pytest.mark.parametrize(
    "build",
    [
        lambda h, p, s: "e" * (10 * MIB) + f".{p}.{s}",  # 10 MiB header segment
        lambda h, p, s: f"{h}.{p}." + "A" * (10 * MIB),  # 10 MiB signature
        lambda h, p, s: f"{h}." + "A" * MIB + f".{s}",  # 1 MiB payload
        lambda h, p, s: "." * MIB,
        lambda h, p, s: f"{h}.{p}.{s}" + "." * (64 * 1024),
    ],
)
def test_a25_oversized_tokens_refused_on_size_first(
    ring: KeyRing, c1: JwkSet, build: Callable[..., str]
) -> None:
    token = build(*_valid(ring).split("."))
    refused(TokenTooLarge, _verify, token, c1, seconds=0.2, megabytes=1)


def test_a25_header_limit_and_caller_limit(ring: KeyRing, c1: JwkSet) -> None:
    head = segment({"alg": "PS256", "kid": "c1-sig", "pad": "x" * 3200})
    assert len(head) > 4096
    refused(TokenTooLarge, _verify, f"{head}.{segment(CA)}.AAAA", c1)
    token = _valid(ring)
    refused(TokenTooLarge, verify_jws, token, c1, algorithms=["PS256"], max_length=len(token) - 1)
    assert verify_jws(token, c1, algorithms=["PS256"], max_length=len(token)).claims == CA


@pytest.mark.parametrize("depth", [17, 1000, 20_000])
def test_a25_deeply_nested_claims(ring: KeyRing, c1: JwkSet, depth: int) -> None:
    claims = ('{"a":' + "[" * depth + "]" * depth + "}").encode()
    token = sign_raw({"alg": "PS256", "kid": "c1-sig"}, claims, ring.c1_sig, "PS256")
    refused(MalformedToken, _verify, token, c1)


def test_a25_maximal_honest_token_is_cheap(ring: KeyRing, c1: JwkSet) -> None:
    claims = {f"k{i}": "v" * 16 for i in range(1800)}
    token = sign_jws(claims, ring.c1_sig, "PS256")
    assert 40_000 < len(token) <= 64 * 1024
    from jarmor.jose.testing import bounded

    with bounded(seconds=0.5, megabytes=5):
        assert verify_jws(token, c1, algorithms=["PS256"]).claims == claims


def test_generated_attacker_key_is_not_registered(ring: KeyRing, c1: JwkSet) -> None:
    """Sanity check for the cast: ATK's keys share kids with C1 but are different keys."""
    assert ring.atk_rsa.kid == ring.c1_sig.kid and ring.atk_rsa.thumbprint() != ring.c1_sig.thumbprint()
    assert generate_jwk("ES256").thumbprint() not in {k.thumbprint() for k in c1}
