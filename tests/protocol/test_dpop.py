"""RFC 9449 §4.3: each of the twelve checks refuses its mutation of one valid proof (checklist S83/S84, the
conformance suite's ``FAPI2SPFinalDpopNegativeTests``), and the suite's positive edge cases are accepted."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from jarmor.jose import b64url_encode, generate_jwk, jwk_thumbprint, sign_jws_embedded_jwk
from jarmor.jose.testing import hmac_raw, sign_raw
from jarmor.protocol.binding import TokenBinding, binding_from_cnf, cnf
from jarmor.protocol.dpop import (
    DPoPError,
    NonceService,
    access_token_hash,
    normalise_htu,
    single_header,
    verify_proof,
)

NOW = 1_800_000_000
URL = "https://as.example/token"
ALGS = ("ES256", "PS256", "EdDSA")
KEY = generate_jwk("ES256")
PUBLIC = {k: v for k, v in KEY.public_dict().items() if k in ("kty", "crv", "x", "y")}


def _claims(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"jti": "j-" + hashlib.sha256(repr(kw).encode()).hexdigest()[:22], "htm": "POST",
                            "htu": URL, "iat": NOW}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def _header(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": PUBLIC}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def _proof(header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
    return sign_raw(header or _header(), claims or _claims(), KEY, "ES256")


def _verify(proof: str, **kw: Any) -> Any:
    args: dict[str, Any] = {"method": "POST", "url": URL, "now": NOW, "allowed_algs": ALGS}
    args.update(kw)
    return verify_proof(proof, **args)


def test_a_valid_proof_yields_the_rfc7638_thumbprint_of_its_key() -> None:
    proof = sign_jws_embedded_jwk(_claims(), KEY, "ES256", typ="dpop+jwt")
    got = _verify(proof)
    assert got.jkt == KEY.thumbprint() == jwk_thumbprint(PUBLIC)
    assert (got.htm, got.htu, got.iat, got.alg, got.nonce, got.ath) == ("POST", URL, NOW, "ES256", None, None)


def test_rfc7638_thumbprint_matches_the_rfc_example() -> None:
    # RFC 7638 §3.1
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV"
                "4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9"
                "c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls"
                "1jF44-csFCur-kEgU8awapJzKnqDKgw"}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _mutations() -> dict[str, Callable[[], str]]:
    hs = lambda: hmac_raw(_header(alg="HS256"), _claims(), b"k" * 32, "HS256")  # noqa: E731
    private = {**PUBLIC, "d": KEY.private_dict()["d"]}
    other = generate_jwk("ES256")
    return {
        "typ missing": lambda: _proof(_header(typ=None)),
        "typ JWT": lambda: _proof(_header(typ="JWT")),
        "typ dpop+jwt+x": lambda: _proof(_header(typ="dpop+jwt+x")),
        "typ application/dpop+jwt": lambda: _proof(_header(typ="application/dpop+jwt")),
        "alg missing": lambda: _proof(_header(alg=None)),
        "alg none": lambda: sign_raw(_header(alg="none"), _claims(), KEY, "ES256").rsplit(".", 1)[0] + ".",
        "alg HS256": hs,
        "alg not advertised": lambda: sign_raw(_header(alg="ES384", jwk={k: v for k, v in generate_jwk(
            "ES384").public_dict().items() if k in ("kty", "crv", "x", "y")}), _claims(), KEY, "ES256"),
        "alg does not fit the key": lambda: _proof(_header(alg="PS256")),
        "jwk missing": lambda: _proof(_header(jwk=None)),
        "jwk private": lambda: _proof(_header(jwk=private)),
        "jwk symmetric": lambda: _proof(_header(jwk={"kty": "oct", "k": "c2VjcmV0c2VjcmV0"})),
        "jwk not an object": lambda: _proof(_header(jwk="key")),
        "bad signature": lambda: sign_raw(_header(), _claims(), other, "ES256"),
        "jti missing": lambda: _proof(claims=_claims(jti=None)),
        "jti empty": lambda: _proof(claims=_claims(jti="")),
        "jti too long": lambda: _proof(claims=_claims(jti="j" * 257)),
        "htm missing": lambda: _proof(claims=_claims(htm=None)),
        "htm PUT": lambda: _proof(claims=_claims(htm="PUT")),
        "htm lower case": lambda: _proof(claims=_claims(htm="post")),
        "htu missing": lambda: _proof(claims=_claims(htu=None)),
        "htu other path": lambda: _proof(claims=_claims(htu="https://as.example/par")),
        "htu other host": lambda: _proof(claims=_claims(htu="https://rs.example/token")),
        "htu http": lambda: _proof(claims=_claims(htu="http://as.example/token")),
        "htu other port": lambda: _proof(claims=_claims(htu="https://as.example:8443/token")),
        "htu relative": lambda: _proof(claims=_claims(htu="/token")),
        "htu number": lambda: _proof(claims=_claims(htu=5)),
        "iat missing": lambda: _proof(claims=_claims(iat=None)),
        "iat string": lambda: _proof(claims=_claims(iat=str(NOW))),
        "iat an hour ago": lambda: _proof(claims=_claims(iat=NOW - 3600)),
        "iat in an hour": lambda: _proof(claims=_claims(iat=NOW + 3600)),
        "iat just too old": lambda: _proof(claims=_claims(iat=NOW - 301)),
        "two dots only": lambda: _proof().rsplit(".", 1)[0],
        "four dots": lambda: _proof() + ".x.y",
        "bad base64": lambda: "!" + _proof(),
        "non-JSON header": lambda: b64url_encode(b"not json") + "." + _proof().split(".", 1)[1],
        "empty": lambda: "",
        "crit header": lambda: _proof(_header(crit=["exp"], exp=1)),
        "nonce not a string": lambda: _proof(claims=_claims(nonce=5)),
        "ath not a string": lambda: _proof(claims=_claims(ath=5)),
    }


@pytest.mark.parametrize("name", list(_mutations()))
def test_each_mutation_is_refused_as_invalid_dpop_proof(name: str) -> None:
    proof = _mutations()[name]()
    with pytest.raises(DPoPError) as info:
        _verify(proof)
    assert info.value.error == "invalid_dpop_proof"
    assert info.value.status == 400
    assert "as.example" not in info.value.description and '"' not in info.value.description


@pytest.mark.parametrize(
    ("name", "claims", "header"),
    [
        ("iat 10 s in the future", {"iat": NOW + 10}, {}),
        ("iat 10 s in the past", {"iat": NOW - 10}, {}),
        ("iat at the edge", {"iat": NOW - 300}, {}),
        ("htu with a query", {"htu": URL + "?a=b"}, {}),
        ("htu with a fragment", {"htu": URL + "#frag"}, {}),
        ("upper-case scheme and host", {"htu": "HTTPS://AS.EXAMPLE/token"}, {}),
        ("explicit default port", {"htu": "https://as.example:443/token"}, {}),
        ("extra claims nbf exp", {"nbf": NOW - 1, "exp": NOW + 60, "foo": {"bar": 1}}, {}),
        ("extra header", {}, {"kid": "k1", "x-extra": "1"}),
        ("iat a float", {"iat": NOW + 0.5}, {}),
    ],
)
def test_positive_edge_cases_are_accepted(name: str, claims: dict[str, Any], header: dict[str, Any]) -> None:
    assert _verify(_proof(_header(**header), _claims(**claims))).jkt == KEY.thumbprint()


def test_request_url_side_is_normalised_too_and_its_query_ignored() -> None:
    assert _verify(_proof(), url="https://AS.example:443/token?x=1").htu == URL


@pytest.mark.parametrize("alg", ["PS256", "EdDSA", "ES256"])
def test_every_advertised_algorithm_verifies(alg: str) -> None:
    key = generate_jwk(alg)
    assert _verify(sign_jws_embedded_jwk(_claims(), key, alg, typ="dpop+jwt")).alg == alg


def test_an_algorithm_outside_the_allowlist_is_refused_even_if_valid() -> None:
    key = generate_jwk("EdDSA")
    with pytest.raises(DPoPError):
        _verify(sign_jws_embedded_jwk(_claims(), key, "EdDSA", typ="dpop+jwt"), allowed_algs=("ES256",))


def test_more_than_one_header_is_refused() -> None:
    assert single_header([]) is None
    assert single_header(["a"]) == "a"
    with pytest.raises(DPoPError) as info:
        single_header(["a", "a"])
    assert info.value.error == "invalid_dpop_proof"


def test_ath_at_a_resource_server() -> None:
    token = "tok-123"
    ath = access_token_hash(token)
    assert ath == b64url_encode(hashlib.sha256(b"tok-123").digest())
    assert _verify(_proof(claims=_claims(ath=ath)), access_token=token).ath == ath
    for claims in (_claims(), _claims(ath=access_token_hash("other"))):
        with pytest.raises(DPoPError) as info:
            _verify(_proof(claims=claims), access_token=token)
        assert info.value.error == "invalid_dpop_proof"


def test_nonces_rotate_and_are_checked_last() -> None:
    nonces = NonceService([b"s" * 32], window=60)
    nonce = nonces.issue(NOW)
    assert len(nonce) == 43 and nonces.check(nonce, NOW) and nonces.check(nonce, NOW + 60)
    assert not nonces.check(nonce, NOW + 180)
    assert not nonces.check(None, NOW) and not nonces.check("x" + nonce[1:], NOW) and not nonces.check("a b", NOW)
    assert _verify(_proof(claims=_claims(nonce=nonce)), nonce_ok=nonces.checker(NOW)).nonce == nonce
    for claims in (_claims(), _claims(nonce="stale")):
        with pytest.raises(DPoPError) as info:
            _verify(_proof(claims=claims), nonce_ok=nonces.checker(NOW))
        assert info.value.error == "use_dpop_nonce"
    with pytest.raises(DPoPError) as bad:  # a broken proof is invalid_dpop_proof even without a nonce
        _verify(_proof(_header(typ="JWT")), nonce_ok=nonces.checker(NOW))
    assert bad.value.error == "invalid_dpop_proof"


def test_nonces_survive_secret_rotation_and_are_server_specific() -> None:
    old = NonceService([b"old" * 11]).issue(NOW)
    assert NonceService([b"new" * 11, b"old" * 11]).check(old, NOW)
    assert not NonceService([b"new" * 11]).check(old, NOW)
    assert not NonceService([b"old" * 11], label="rs").check(old, NOW)


def test_normalise_htu() -> None:
    assert normalise_htu("HTTPS://Example.COM:443/a%2fb?q#f") == "https://example.com/a%2Fb"
    assert normalise_htu("http://example.com") == "http://example.com/"
    assert normalise_htu("http://example.com:8080/x") == "http://example.com:8080/x"
    for bad in ("ftp://x/", "/rel", "https://", "https://u:p@x/", "https://x:99999/", "https://x/ a"):
        with pytest.raises(ValueError):
            normalise_htu(bad)


def test_binding_cnf() -> None:
    assert cnf(TokenBinding("dpop", "abc")) == {"jkt": "abc"}
    assert cnf(TokenBinding("mtls", "xyz")) == {"x5t#S256": "xyz"}
    assert binding_from_cnf({"jkt": "abc"}) == TokenBinding("dpop", "abc")
    assert binding_from_cnf({"x5t#S256": "xyz"}) == TokenBinding("mtls", "xyz")
    assert binding_from_cnf(None) is None and binding_from_cnf({}) is None
