"""Request objects (RFC 9101) as pure functions: decode/verify, claim checks, tier-dependent time bounds.

Checklist S1-S16 at the unit level: every refusal is ``InvalidRequestObject`` (``invalid_request_object``).
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from jarmor.jose import JoseError, Jwk, JwkSet, encrypt_jwe, generate_jwk, sign_jws
from jarmor.jose.testing import hmac_raw, keyring, segment, sign_raw
from jarmor.protocol import errors
from jarmor.protocol.clients import Client
from jarmor.protocol.policy import DEFAULT_TIERS
from jarmor.protocol.request_object import (
    RequestObject,
    authorization_parameters,
    check_request_object_alg,
    check_request_object_claims,
    check_request_object_times,
    decode_request_object,
)

ISS = "https://as.example"
CID = "client-1"
NOW = 1_800_000_000
SERVER_ALGS = ("ES256", "PS256", "RS256", "EdDSA")
EC = generate_jwk("ES256", kid="c1-ec")


def client(keys: list[Jwk] | None = None, **meta: Any) -> Client:
    keys = keys if keys is not None else [EC, keyring().c1_sig]
    md = {"risk_tier": "baseline", "token_endpoint_auth_method": "private_key_jwt", "redirect_uris": [],
          "jwks": {"keys": [k.public_dict() for k in keys]}, **meta}
    return Client.from_metadata(CID, md)


def claims(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"iss": CID, "aud": ISS, "client_id": CID, "response_type": "code",
                            "redirect_uri": "https://c1.example/cb", "scope": "openid", "state": "s1",
                            "code_challenge": "a" * 43, "code_challenge_method": "S256",
                            "nbf": NOW, "iat": NOW, "exp": NOW + 300, "jti": "j1"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def server_keys() -> JwkSet:
    kr = keyring()
    return JwkSet((kr.enc_rsa, kr.enc_p256, kr.enc_x25519))


def decode(token: str, c: Client | None = None, **kw: Any) -> RequestObject:
    c = c or client()
    return decode_request_object(token, c, c.jwks or JwkSet(), server_decryption_keys=server_keys(),
                                 signing_algs=SERVER_ALGS, **kw)


def refused(token: str, c: Client | None = None, **kw: Any) -> errors.OAuthError:
    with pytest.raises(errors.OAuthError) as exc:
        decode(token, c, **kw)
    assert exc.value.error == "invalid_request_object"
    return exc.value


# --- decode: signature, algorithm, typ (S1-S4) ----------------------------------------------------------


def test_valid_object() -> None:
    ro = decode(sign_jws(claims(), EC, "ES256", typ="oauth-authz-req+jwt"))
    assert ro.alg == "ES256" and ro.kid == "c1-ec" and ro.claims["state"] == "s1" and ro.encrypted is None
    assert ro.evidence() == {"signed": True, "alg": "ES256", "kid": "c1-ec", "encrypted": False, "nbf": True,
                             "lifetime": 300}


@pytest.mark.parametrize("alg", ["none", "None", "NONE", " none", "none "])
def test_alg_none(alg: str) -> None:
    refused(f"{segment({'alg': alg})}.{segment(claims())}.")


def test_empty_signature_segment() -> None:
    head, body, _ = sign_jws(claims(), EC, "ES256").split(".")
    assert isinstance(refused(f"{head}.{body}.").__cause__, JoseError)


def test_hs256_with_public_key_bytes() -> None:
    rsa = keyring().c1_sig
    for secret in (orjson.dumps(rsa.public_dict()), rsa.public_dict()["n"].encode()):
        refused(hmac_raw({"alg": "HS256", "kid": rsa.kid}, claims(), secret))


def test_key_not_registered_for_the_client() -> None:
    refused(sign_jws(claims(), keyring().c2_sig, "PS256"))  # another client's key and kid
    refused(sign_jws(claims(), keyring().atk_rsa, "PS256"))  # attacker key claiming kid "c1-sig"
    refused(sign_jws(claims(), generate_jwk("ES256", kid="nope"), "ES256"))


def test_header_keys_are_never_used() -> None:
    atk = generate_jwk("ES256", kid="atk")
    for header in ({"alg": "ES256", "jwk": atk.public_dict()}, {"alg": "ES256", "kid": "atk", "jku": "https://x"},
                   {"alg": "ES256", "kid": "atk", "x5c": ["MII"]}):
        refused(sign_raw(header, claims(), atk, "ES256"))


def test_crit_header_is_refused() -> None:
    refused(sign_raw({"alg": "ES256", "kid": "c1-ec", "crit": ["exp"], "exp": 1}, claims(), EC, "ES256"))


def test_registered_request_object_alg() -> None:
    c = client(request_object_signing_alg="PS256")
    refused(sign_jws(claims(), EC, "ES256"), c)
    assert decode(sign_jws(claims(), keyring().c1_sig, "PS256"), c).alg == "PS256"


def test_key_bound_to_its_alg() -> None:
    rsa = keyring().c1_sig  # alg PS256
    refused(sign_raw({"alg": "RS256", "kid": rsa.kid}, claims(), rsa, "RS256"))
    unbound = keyring().c1_rsa  # no alg member: RS256 and PS256 both fit
    c = client([unbound])
    assert decode(sign_jws(claims(), unbound, "RS256"), c).alg == "RS256"


def test_alg_outside_the_servers_list() -> None:
    es384 = keyring().c1_es384
    refused(sign_jws(claims(), es384, "ES384"), client([es384]))


@pytest.mark.parametrize("typ", [None, "oauth-authz-req+jwt", "OAUTH-AUTHZ-REQ+JWT",
                                 "application/oauth-authz-req+jwt"])
def test_accepted_typ(typ: str | None) -> None:
    header = {"alg": "ES256", "kid": "c1-ec"} | ({"typ": typ} if typ else {})
    decode(sign_raw(header, claims(), EC, "ES256"))


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "dpop+jwt", "client-authentication+jwt",
                                 "application/jwt", "", 5])
def test_refused_typ(typ: Any) -> None:
    refused(sign_raw({"alg": "ES256", "kid": "c1-ec", "typ": typ}, claims(), EC, "ES256"))


def test_strict_typ_mode() -> None:
    refused(sign_jws(claims(), EC, "ES256"), require_typ=True)
    decode(sign_jws(claims(), EC, "ES256", typ="oauth-authz-req+jwt"), require_typ=True)


# --- decode: encrypted request objects (S5) ------------------------------------------------------------


@pytest.mark.parametrize(("key", "alg", "enc"), [("enc_rsa", "RSA-OAEP-256", "A256GCM"),
                                                 ("enc_p256", "ECDH-ES+A256KW", "A128CBC-HS256"),
                                                 ("enc_x25519", "ECDH-ES", "A128GCM")])
def test_nested_jwt_is_decrypted(key: str, alg: str, enc: str) -> None:
    inner = sign_jws(claims(), EC, "ES256", typ="oauth-authz-req+jwt")
    ro = decode(encrypt_jwe(inner, getattr(keyring(), key), alg, enc, cty="JWT"))
    assert ro.encrypted == (alg, enc) and ro.claims["state"] == "s1"


def test_encrypted_bare_claims_are_refused() -> None:
    refused(encrypt_jwe(orjson.dumps(claims()), keyring().enc_rsa, "RSA-OAEP-256", "A256GCM"))


def test_encrypted_to_an_unknown_key_is_refused() -> None:
    inner = sign_jws(claims(), EC, "ES256")
    refused(encrypt_jwe(inner, generate_jwk("RSA-OAEP-256", kid="other"), "RSA-OAEP-256", "A256GCM"))


def test_unsupported_jwe_algorithms_are_refused() -> None:
    inner = sign_jws(claims(), EC, "ES256")
    refused(encrypt_jwe(inner, keyring().enc_rsa, "RSA-OAEP-256", "A192GCM"))
    for alg, enc in (("RSA1_5", "A128GCM"), ("RSA-OAEP", "A128GCM"), ("dir", "A128GCM"),
                     ("PBES2-HS256+A128KW", "A128GCM"), ("A128KW", "A128GCM")):
        head = segment({"alg": alg, "enc": enc, "kid": "enc-rsa"})
        refused(f"{head}.AAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA")


def test_tampered_ciphertext_is_refused() -> None:
    token = encrypt_jwe(sign_jws(claims(), EC, "ES256"), keyring().enc_rsa, "RSA-OAEP-256", "A256GCM")
    parts = token.split(".")
    parts[3] = ("B" if parts[3][0] == "A" else "A") + parts[3][1:]
    refused(".".join(parts))


# --- claims (S6, S7, S11-S16) -----------------------------------------------------------------------


def ro(**overrides: Any) -> RequestObject:
    return RequestObject(claims=claims(**overrides), alg="ES256", kid="c1-ec")


def check(r: RequestObject) -> None:
    check_request_object_claims(r, client_id=CID, issuer=ISS)


BAD_CLAIMS: list[tuple[str, dict[str, Any]]] = [
    ("iss missing", {"iss": None}),
    ("iss other", {"iss": "client-2"}),
    ("aud missing", {"aud": None}),
    ("aud other", {"aud": "https://other.example"}),
    ("aud prefix", {"aud": ISS + "/par"}),
    ("aud number", {"aud": 5}),
    ("aud array without issuer", {"aud": ["https://x"]}),
    ("aud array with non-string", {"aud": [ISS, 5]}),
    ("aud array too long", {"aud": [ISS] + [f"https://{i}" for i in range(10)]}),
    ("client_id missing", {"client_id": None}),
    ("client_id other", {"client_id": "client-2"}),
    ("sub is client_id", {"sub": CID}),
    ("jti empty", {"jti": ""}),
    ("jti number", {"jti": 1}),
    ("jti too long", {"jti": "j" * 257}),
    ("request inside", {"request": "x.y.z"}),
    ("request_uri inside", {"request_uri": "urn:ietf:params:oauth:request_uri:x"}),
    ("exp string", {"exp": "1"}),
    ("exp bool", {"exp": True}),
    ("exp NaN", {"exp": math.nan}),
    ("exp huge", {"exp": 2**60}),
    ("nbf null", {"nbf": None, "_null": "nbf"}),
    ("max_age string", {"max_age": "600"}),
    ("max_age negative", {"max_age": -5}),
    ("max_age float NaN", {"max_age": math.nan}),
    ("state number", {"state": 5}),
    ("redirect_uri array", {"redirect_uri": ["https://c1.example/cb"]}),
    ("claims string", {"claims": "{}"}),
    ("authorization_details object", {"authorization_details": {}}),
]


@pytest.mark.parametrize(("case", "change"), BAD_CLAIMS, ids=[c[0] for c in BAD_CLAIMS])
def test_bad_claims(case: str, change: dict[str, Any]) -> None:
    change = dict(change)
    null = change.pop("_null", None)
    r = ro(**change)
    if null:
        r.claims[null] = None
    with pytest.raises(errors.OAuthError) as exc:
        check(r)
    assert exc.value.error == "invalid_request_object"


@pytest.mark.parametrize("change", [{"aud": [ISS, "https://other"]}, {"sub": "user-1"}, {"jti": None},
                                    {"max_age": 0}, {"claims": {"id_token": {}}},
                                    {"authorization_details": [{"type": "x"}]}])
def test_good_claims(change: dict[str, Any]) -> None:
    check(ro(**change))


def test_authorization_parameters_are_the_objects_non_jwt_claims() -> None:
    params = authorization_parameters(ro(sub="user"))
    assert "client_id" in params and params["state"] == "s1"
    assert not {"iss", "aud", "exp", "nbf", "iat", "jti", "sub"} & set(params)


# --- times and tier bounds (S8-S10) -------------------------------------------------------------------


def times(r: RequestObject, tier: str = "baseline", *, require_nbf: bool = False, now: int = NOW) -> None:
    check_request_object_times(r, DEFAULT_TIERS[tier], now=now, future_skew=10, max_age=3600,
                               require_nbf=require_nbf)


TIME_CASES: list[tuple[str, dict[str, Any], str, bool, bool]] = [
    # case, claims, tier, require_nbf, accepted
    ("exp missing", {"exp": None}, "baseline", False, False),
    ("exp within skew", {"exp": NOW - 10, "nbf": NOW - 60, "iat": NOW - 60}, "baseline", False, True),
    ("exp beyond skew", {"exp": NOW - 11, "nbf": NOW - 60, "iat": NOW - 60}, "baseline", False, False),
    ("lifetime 3600", {"exp": NOW + 3600}, "high", True, True),
    ("lifetime 3601", {"exp": NOW + 3601}, "high", True, False),
    ("no nbf/iat, exp 3600 ahead", {"exp": NOW + 3600, "nbf": None, "iat": None}, "baseline", False, True),
    ("no nbf/iat, exp 70 min ahead", {"exp": NOW + 4200, "nbf": None, "iat": None}, "baseline", False, False),
    ("nbf missing where required", {"nbf": None}, "high", True, False),
    ("nbf missing where optional", {"nbf": None}, "baseline", False, True),
    ("nbf 10 s ahead", {"nbf": NOW + 10, "iat": NOW}, "high", True, True),
    ("nbf 11 s ahead", {"nbf": NOW + 11, "iat": NOW}, "high", True, False),
    ("nbf 61 s ahead", {"nbf": NOW + 61, "iat": NOW}, "high", True, False),
    ("nbf 3599 s ago", {"nbf": NOW - 3599, "iat": NOW - 3599, "exp": NOW + 1}, "high", True, True),
    ("nbf 70 min ago", {"nbf": NOW - 4200, "iat": NOW - 4200, "exp": NOW + 60}, "high", True, False),
    ("iat 10 s ahead", {"iat": NOW + 10}, "baseline", False, True),
    ("iat 11 s ahead", {"iat": NOW + 11}, "baseline", False, False),
    ("iat 1 h old", {"iat": NOW - 3600}, "baseline", False, True),
    ("iat more than 1 h old", {"iat": NOW - 3601}, "baseline", False, False),
    ("critical lifetime 600", {"exp": NOW + 600}, "critical", True, True),
    ("critical lifetime 601", {"exp": NOW + 601}, "critical", True, False),
]


@pytest.mark.parametrize(("case", "change", "tier", "require_nbf", "accepted"), TIME_CASES,
                         ids=[c[0] for c in TIME_CASES])
def test_time_bounds(case: str, change: dict[str, Any], tier: str, require_nbf: bool, accepted: bool) -> None:
    r = ro(**change)
    if accepted:
        times(r, tier, require_nbf=require_nbf)
    else:
        with pytest.raises(errors.OAuthError) as exc:
            times(r, tier, require_nbf=require_nbf)
        assert exc.value.error == "invalid_request_object"


@pytest.mark.parametrize(("tier", "alg", "accepted"), [("baseline", "RS256", True), ("elevated", "RS256", True),
                                                       ("high", "RS256", False), ("high", "PS256", True),
                                                       ("high", "EdDSA", True), ("critical", "ES384", False)])
def test_tier_algorithm_allowlist(tier: str, alg: str, accepted: bool) -> None:
    r = RequestObject(claims=claims(), alg=alg, kid="k")
    if accepted:
        check_request_object_alg(r, DEFAULT_TIERS[tier])
    else:
        with pytest.raises(errors.OAuthError, match=alg):
            check_request_object_alg(r, DEFAULT_TIERS[tier])
