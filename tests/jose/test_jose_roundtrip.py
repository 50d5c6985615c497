"""Positive paths: every supported signing algorithm and every JWE alg/enc pair round-trips.

Also the contract of ``sign_jws`` (a token it signs is one ``verify_jws`` accepts), ``typ`` handling
(RFC 8725 §3.11), ``peek_*``, ``is_jwe`` and the raw ``verify_signature`` primitive.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from jarmor.jose import (
    CONTENT_ENCRYPTION_ALGS,
    KEY_MANAGEMENT_ALGS,
    SIGNING_ALGS,
    AlgorithmNotAllowed,
    InvalidKey,
    JoseError,
    Jwk,
    JwkSet,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedHeader,
    b64url_decode,
    b64url_encode,
    decrypt_jwe,
    encrypt_jwe,
    generate_jwk,
    import_jwk,
    is_jwe,
    peek_claims,
    peek_header,
    sign_jws,
    verify_jws,
)
from jarmor.jose.testing import KeyRing, refused
from jarmor.jose.tokens import MAX_TOKEN_LENGTH, verify_signature

CLAIMS = {
    "iss": "client-1",
    "aud": "https://as.example",
    "n": 1,
    "f": 0.5,
    "u": "ünïcode",
    "l": [1, {"a": None}],
}

SIGNING_KEY_FOR = {
    "ES256": "c1_es256",
    "ES384": "c1_es384",
    "ES512": "c1_es512",
    "PS256": "c1_rsa",
    "PS384": "c1_rsa",
    "PS512": "c1_rsa",
    "RS256": "c1_rsa",
    "EdDSA": "c1_ed25519",
    "Ed25519": "c1_ed25519",
}


def test_every_signing_alg_has_a_test_key() -> None:
    assert set(SIGNING_KEY_FOR) == set(SIGNING_ALGS)


@pytest.mark.parametrize("alg", sorted(SIGNING_ALGS))
def test_sign_verify_round_trip(ring: KeyRing, alg: str) -> None:
    key: Jwk = getattr(ring, SIGNING_KEY_FOR[alg])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation noise from the JOSE library on the hot path
        token = sign_jws(CLAIMS, key, alg, typ="oauth-authz-req+jwt")
        result = verify_jws(token, ring.client1(), algorithms=[alg], typ=["oauth-authz-req+jwt"])
    assert result.claims == CLAIMS
    assert result.header == {"alg": alg, "kid": key.kid, "typ": "oauth-authz-req+jwt"}
    assert result.key.kid == key.kid and not result.key.is_private
    assert peek_header(token) == result.header and peek_claims(token) == CLAIMS


def test_eddsa_and_ed25519_names_share_one_key(ring: KeyRing) -> None:
    eddsa = ring.c1_ed25519  # alg "EdDSA"
    ed25519 = generate_jwk("Ed25519", kid="ed-new")
    keys = ring.public_set(eddsa, ed25519)
    for key in (eddsa, ed25519):
        for alg in ("EdDSA", "Ed25519"):
            token = sign_jws({"a": 1}, key, alg)
            assert verify_jws(token, keys, algorithms=[alg]).key.kid == key.kid


@pytest.mark.parametrize("alg", sorted(SIGNING_ALGS))
def test_verify_signature_primitive(ring: KeyRing, alg: str) -> None:
    key: Jwk = getattr(ring, SIGNING_KEY_FOR[alg])
    token = sign_jws({"a": 1}, key, alg)
    head, body, sig = token.split(".")
    signing_input = f"{head}.{body}".encode()
    signature = b64url_decode(sig)
    assert verify_signature(key, alg, signing_input, signature) is True
    assert verify_signature(key, alg, signing_input + b"x", signature) is False
    assert verify_signature(key, alg, signing_input, signature[:-1]) is False
    assert verify_signature(key, alg, signing_input, signature + b"\x00") is False
    assert verify_signature(key, alg, signing_input, b"") is False
    assert verify_signature(key, alg, signing_input, bytes(len(signature))) is False


def test_verify_signature_refuses_unbound_keys_and_forbidden_algs(ring: KeyRing) -> None:
    refused(KeyNotFound, verify_signature, ring.c1_es384, "ES256", b"x", bytes(64), reason="key_mismatch")
    refused(KeyNotFound, verify_signature, ring.c1_sig, "RS256", b"x", bytes(256), reason="key_mismatch")
    refused(KeyNotFound, verify_signature, ring.enc_rsa, "PS256", b"x", bytes(256), reason="key_mismatch")
    for alg in ("none", "HS256", "RS384", "ES256K", "PS256 "):
        refused(AlgorithmNotAllowed, verify_signature, ring.c1_rsa, alg, b"x", b"")


ENCRYPTION_CASES = [
    (alg, enc, crv)
    for alg in sorted(KEY_MANAGEMENT_ALGS)
    for enc in sorted(CONTENT_ENCRYPTION_ALGS)
    for crv in (["P-256", "P-384", "P-521", "X25519"] if alg.startswith("ECDH") else [None])
]


@pytest.fixture(scope="module")
def recipients() -> dict[tuple[str, str | None], Jwk]:
    rsa_key = generate_jwk("RSA-OAEP-256", kid="r")
    out: dict[tuple[str, str | None], Jwk] = {}
    for alg in KEY_MANAGEMENT_ALGS:
        if alg.startswith("RSA"):
            out[(alg, None)] = import_jwk(rsa_key.private_dict() | {"alg": alg}, allow_private=True)
        else:
            for crv in ("P-256", "P-384", "P-521", "X25519"):
                out[(alg, crv)] = generate_jwk(alg, crv=crv, kid=f"{alg}-{crv}")
    return out


def test_every_jwe_alg_enc_pair_is_covered() -> None:
    assert {(a, e) for a, e, _ in ENCRYPTION_CASES} == {
        (a, e) for a in KEY_MANAGEMENT_ALGS for e in CONTENT_ENCRYPTION_ALGS
    }


@pytest.mark.parametrize(("alg", "enc", "crv"), ENCRYPTION_CASES)
def test_encrypt_decrypt_round_trip(
    recipients: dict[tuple[str, str | None], Jwk], alg: str, enc: str, crv: str | None
) -> None:
    key = recipients[(alg, crv)]
    public = import_jwk(key.public_dict(), allow_private=False)
    plaintext = json.dumps(CLAIMS).encode()
    token = encrypt_jwe(plaintext, public, alg, enc, cty="JWT")
    assert is_jwe(token)
    header = peek_header(token)
    assert (header["alg"], header["enc"], header["kid"], header["cty"]) == (alg, enc, key.kid, "JWT")
    assert ("epk" in header) == alg.startswith("ECDH-ES")
    result = decrypt_jwe(token, JwkSet((key,)), algorithms=[alg], encryptions=[enc])
    assert result.plaintext == plaintext
    assert result.header == header and result.key is key


def test_decrypt_returns_any_plaintext_faithfully(ring: KeyRing) -> None:
    """The nested-JWS rule (RFC 9101 §5, JARM §2.3) belongs to callers: decryption hands back the bytes."""
    keys = JwkSet((ring.enc_rsa,))
    inner_jws = sign_jws(CLAIMS, ring.c1_es256, "ES256")
    for plaintext in (
        b'{"iss":"client-1"}',  # raw claims, no signature
        b"eyJhbGciOiJub25lIn0.eyJhIjoxfQ.",  # an alg:none JWS
        inner_jws.encode(),
        bytes(range(256)),  # not even UTF-8
        b"x" * 40_000,
    ):
        token = encrypt_jwe(plaintext, ring.enc_rsa, "RSA-OAEP-256", "A256GCM")
        result = decrypt_jwe(token, keys, algorithms=["RSA-OAEP-256"], encryptions=["A256GCM"])
        assert result.plaintext == plaintext
    nested = encrypt_jwe(inner_jws, ring.enc_rsa, "RSA-OAEP-256", "A256GCM", cty="JWT")
    inner = decrypt_jwe(nested, keys, algorithms=["RSA-OAEP-256"], encryptions=["A256GCM"]).plaintext.decode()
    assert verify_jws(inner, ring.client1(), algorithms=["ES256"]).claims == CLAIMS


def test_encrypt_contract(ring: KeyRing) -> None:
    refused(
        MalformedToken, encrypt_jwe, b"", ring.enc_rsa, "RSA-OAEP-256", "A256GCM", reason="empty_plaintext"
    )
    refused(TokenTooLarge, encrypt_jwe, b"x" * MAX_TOKEN_LENGTH, ring.enc_rsa, "RSA-OAEP-256", "A256GCM")
    refused(KeyNotFound, encrypt_jwe, b"x", ring.c1_sig, "RSA-OAEP-256", "A256GCM", reason="key_mismatch")
    refused(KeyNotFound, encrypt_jwe, b"x", ring.enc_p256, "ECDH-ES", "A256GCM", reason="key_mismatch")
    for alg, enc in (
        ("RSA1_5", "A128CBC-HS256"),
        ("dir", "A256GCM"),
        ("A128KW", "A128GCM"),
        ("PBES2-HS256+A128KW", "A128GCM"),
        ("RSA-OAEP-256", "A128CBC"),
        ("RSA-OAEP-256", "none"),
    ):
        refused(AlgorithmNotAllowed, encrypt_jwe, b"x", ring.enc_rsa, alg, enc)


# --- sign_jws contract -----------------------------------------------------------------------------------


def test_extra_header_members_round_trip(ring: KeyRing) -> None:
    extra = {"x5t#S256": "abc", "custom": {"nested": [1, 2]}, "cty": "JWT"}
    token = sign_jws({"a": 1}, ring.c1_es256, "ES256", extra_header=extra)
    header = verify_jws(token, ring.client1(), algorithms=["ES256"]).header
    assert header == {"alg": "ES256", "kid": "c1-es256", **extra}


@pytest.mark.parametrize("member", ["alg", "kid", "typ", "crit", "b64", "zip", "enc"])
def test_extra_header_cannot_override_or_add_processing_members(ring: KeyRing, member: str) -> None:
    value: object = {"alg": "none", "kid": "c2-sig", "typ": "JWT", "crit": ["b64"], "b64": False}.get(
        member, "DEF"
    )
    refused(
        UnsupportedHeader,
        sign_jws,
        {"a": 1},
        ring.c1_es256,
        "ES256",
        extra_header={member: value},
        reason="reserved_header",
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"nested": [{"x": -float("inf")}]},
        {"exp": 2**64},
        {"when": object()},
        {1: "non-string key"},
    ],
)
def test_sign_refuses_claims_strict_parsing_would_refuse(ring: KeyRing, claims: dict[object, object]) -> None:
    refused(MalformedToken, sign_jws, claims, ring.c1_es256, "ES256", reason="unserializable")


def test_sign_refuses_extra_header_nan(ring: KeyRing) -> None:
    refused(MalformedToken, sign_jws, {}, ring.c1_es256, "ES256", extra_header={"x": float("nan")})


def test_sign_refuses_oversized_output(ring: KeyRing) -> None:
    refused(TokenTooLarge, sign_jws, {"a": "x" * MAX_TOKEN_LENGTH}, ring.c1_es256, "ES256")
    refused(TokenTooLarge, sign_jws, {}, ring.c1_es256, "ES256", extra_header={"pad": "x" * 4000})


def test_sign_needs_a_private_key_bound_to_the_alg(ring: KeyRing) -> None:
    public = import_jwk(ring.c1_es256.public_dict(), allow_private=False)
    refused(KeyNotFound, sign_jws, {}, public, "ES256", reason="key_mismatch")
    refused(KeyNotFound, sign_jws, {}, ring.c1_es256, "ES384", reason="key_mismatch")
    refused(KeyNotFound, sign_jws, {}, ring.c1_sig, "RS256", reason="key_mismatch")
    refused(KeyNotFound, sign_jws, {}, ring.enc_rsa, "PS256", reason="key_mismatch")
    for alg in ("none", "HS256", "RS384", "ES256K", "EdDSA "):
        refused(AlgorithmNotAllowed, sign_jws, {}, ring.c1_rsa, alg)


# --- typ (RFC 8725 §3.11) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ", ["oauth-authz-req+jwt", "application/oauth-authz-req+jwt", "OAuth-Authz-Req+JWT"]
)
def test_typ_matches_case_insensitively_with_optional_prefix(ring: KeyRing, typ: str) -> None:
    token = sign_jws({}, ring.c1_es256, "ES256", typ=typ)
    for accepted in (["oauth-authz-req+jwt"], ["application/oauth-authz-req+jwt"]):
        verify_jws(token, ring.client1(), algorithms=["ES256"], typ=accepted, typ_required=True)


def test_typ_policy(ring: KeyRing) -> None:
    keys = ring.client1()
    untyped = sign_jws({}, ring.c1_es256, "ES256")
    verify_jws(untyped, keys, algorithms=["ES256"], typ=["jwt"])
    refused(
        UnsupportedHeader, verify_jws, untyped, keys, algorithms=["ES256"], typ=["jwt"], typ_required=True
    )
    for wrong in ("JWT", "client-authentication+jwt", "at+jwt", "application/jwt", "oauth-authz-req+jwt "):
        token = sign_jws({}, ring.c1_es256, "ES256", typ=wrong)
        refused(
            UnsupportedHeader,
            verify_jws,
            token,
            keys,
            algorithms=["ES256"],
            typ=["oauth-authz-req+jwt"],
            reason="typ",
        )
    with pytest.raises(TypeError):
        verify_jws(untyped, keys, algorithms=["ES256"], typ="jwt")


# --- small helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a.b.c.d.e", True), ("a.b.c", False), ("", False), (None, False), (b"a.b.c.d.e", False), (5, False)],
)
def test_is_jwe(value: object, expected: bool) -> None:
    assert is_jwe(value) is expected


def test_peek_claims_refuses_jwe(ring: KeyRing) -> None:
    token = encrypt_jwe(b"{}", ring.enc_rsa, "RSA-OAEP-256", "A256GCM")
    refused(MalformedToken, peek_claims, token, reason="unexpected_jwe")
    assert peek_header(token)["alg"] == "RSA-OAEP-256"


def test_all_errors_share_the_base_class() -> None:
    for cls in (
        AlgorithmNotAllowed,
        InvalidKey,
        KeyNotFound,
        MalformedToken,
        TokenTooLarge,
        UnsupportedHeader,
    ):
        assert issubclass(cls, JoseError)
        assert cls("x").reason and cls("x", reason="r").reason == "r"


def test_b64_helpers_are_reexported() -> None:
    assert b64url_decode(b64url_encode(b"\x00\xff")) == b"\x00\xff"


def _rsa_8192() -> RSAKey:
    """A fixed 8192-bit test key (generating one takes up to a minute; importing it through ``import_jwk``
    costs seconds of prime checking), loaded without re-validation: it is known good."""
    raw = json.loads((Path(__file__).parent / "data" / "rsa8192-test-only.jwk.json").read_text())
    ints = {k: int.from_bytes(b64url_decode(v), "big") for k, v in raw.items() if k != "kty"}
    numbers = rsa.RSAPrivateNumbers(
        p=ints["p"],
        q=ints["q"],
        d=ints["d"],
        dmp1=ints["dp"],
        dmq1=ints["dq"],
        iqmp=ints["qi"],
        public_numbers=rsa.RSAPublicNumbers(ints["e"], ints["n"]),
    )
    return RSAKey.import_key(numbers.private_key(unsafe_skip_rsa_key_validation=True))


def test_rsa_8192_keys_work_end_to_end() -> None:
    """Regression: the JOSE library caps signatures and encrypted keys at 1024 base64url characters by
    default, which silently broke RSA keys above 6144 bits (accepted at import, then every token from them
    was reported as a bad signature, and every JWE to them refused). jarmor verifies JWS itself and
    configures its own JWE limits."""
    key = _rsa_8192()
    signer = Jwk(key=key, kid="big-sig", kty="RSA", crv=None, alg="PS256", use="sig", key_ops=None)
    public = import_jwk(signer.public_dict(), allow_private=False)  # 8192 bits is within the import range
    jws = sign_jws({"a": 1}, signer, "PS256")
    assert len(jws.split(".")[2]) > 1024
    assert verify_jws(jws, JwkSet((public,)), algorithms=["PS256"]).claims == {"a": 1}
    recipient = Jwk(key=key, kid="big-enc", kty="RSA", crv=None, alg="RSA-OAEP-256", use="enc", key_ops=None)
    jwe = encrypt_jwe(b"ok", recipient, "RSA-OAEP-256", "A256GCM")
    assert len(jwe.split(".")[1]) > 1024
    keys = JwkSet((recipient,))
    assert decrypt_jwe(jwe, keys, algorithms=["RSA-OAEP-256"], encryptions=["A256GCM"]).plaintext == b"ok"
