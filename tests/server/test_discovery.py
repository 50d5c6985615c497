"""Authorization server metadata (RFC 8414; RFC 9101 §10.5; RFC 9126 §5; JARM §4; RFC 9207 §3) and JWKS.

Checklist S39, S40 (metadata flag), S47 and S57 (server keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jarmor.jose import Jwk, JwkSet, generate_jwk
from jarmor.jose.testing import keyring
from tests.kit import ISSUER, Kit

from .support import assert_redirect_error, code_from

JARM = {"jwt", "query.jwt", "fragment.jwt", "form_post.jwt"}


@pytest.fixture
async def md(kit: Kit) -> dict[str, Any]:
    r = await kit.http.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


async def test_both_well_known_documents_agree(kit: Kit, md: dict[str, Any]) -> None:
    other = (await kit.http.get("/.well-known/openid-configuration")).json()
    assert other == md


async def test_issuer_and_endpoints(md: dict[str, Any]) -> None:
    assert md["issuer"] == ISSUER
    for name in ("authorization_endpoint", "token_endpoint", "pushed_authorization_request_endpoint",
                 "jwks_uri", "registration_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert md[name].startswith(ISSUER + "/")
    assert "?" not in md["issuer"] and "#" not in md["issuer"]


async def test_protocol_flags(md: dict[str, Any]) -> None:
    assert md["authorization_response_iss_parameter_supported"] is True  # S40
    assert md["code_challenge_methods_supported"] == ["S256"]  # S39
    assert md["response_types_supported"] == ["code"]
    assert set(md["response_modes_supported"]) >= JARM  # S42
    assert md["request_parameter_supported"] is True
    # hosted request_uri (RFC 9101 §5.2) is off by default: only PAR URNs are resolved (S18, S21)
    assert md["request_uri_parameter_supported"] is False
    # per-tier, not server-wide: the client's registration says whether it must sign or push
    assert md["require_signed_request_object"] is False
    assert md["require_pushed_authorization_requests"] is False
    assert "private_key_jwt" in md["token_endpoint_auth_methods_supported"]
    assert md["tls_client_certificate_bound_access_tokens"] is False  # S55: not implemented


async def test_algorithm_lists_never_offer_none_or_weak_algorithms(md: dict[str, Any]) -> None:
    for name in ("request_object_signing_alg_values_supported", "authorization_signing_alg_values_supported",
                 "token_endpoint_auth_signing_alg_values_supported", "id_token_signing_alg_values_supported"):
        values = md[name]
        assert values and not any(v.lower() == "none" or v.startswith("HS") for v in values), name
        assert {"PS256", "ES256"} <= set(values)
    for name in ("request_object_encryption_alg_values_supported",
                 "authorization_encryption_alg_values_supported"):
        assert "RSA1_5" not in md[name] and "dir" not in md[name]
        assert not any(v.startswith("PBES2") for v in md[name])


async def test_jwks(kit: Kit, md: dict[str, Any]) -> None:
    """S47 / S57: public keys only, no duplicate kid, RSA >= 2048 bits, a key for every advertised alg."""
    r = await kit.http.get("/jwks")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/jwk-set+json")
    raw = r.json()
    kids = [k["kid"] for k in raw["keys"]]
    assert len(kids) == len(set(kids))
    for k in raw["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(k)
    jwks = JwkSet.from_dict(raw)
    for key in jwks:
        if key.kty == "RSA":
            assert key.modulus_bytes * 8 >= 2048
    for alg in md["authorization_signing_alg_values_supported"]:
        assert any(k.use == "sig" and k.fits_signing_alg(alg) for k in jwks), alg
    for alg in md["request_object_encryption_alg_values_supported"]:
        assert any(k.use == "enc" and k.fits_encryption_alg(alg) for k in jwks), alg


async def test_each_signing_alg_signs_with_a_key_published_for_exactly_that_alg(
    kit: Kit, md: dict[str, Any]
) -> None:
    """RFC 7517 §4.4 / RFC 8725 §3.1: the key that signs ``alg`` is published with ``"alg": alg``. Strict
    verifiers select keys by exact ``alg`` (openid-client refused ``Ed25519`` JARM signed with the key
    published as ``EdDSA``; found by tests/interop)."""
    published = {k["kid"]: k for k in (await kit.http.get("/jwks")).json()["keys"]}
    for alg in md["authorization_signing_alg_values_supported"]:
        key = kit.server.keyring.signing_key(alg)
        assert published[key.kid]["alg"] == alg, alg


_ALG_KEYS: dict[str, Callable[[], Jwk]] = {
    "ES256": lambda: generate_jwk("ES256"),
    "PS256": lambda: keyring().c1_sig,
    "RS256": lambda: keyring().c1_rsa,
    "EdDSA": lambda: keyring().c1_ed25519,
}


async def test_accepted_request_object_algs_equal_the_advertised_ones(kit: Kit, md: dict[str, Any]) -> None:
    """S47: the set of accepted algorithms is the advertised set (baseline tier, which allows them all)."""
    advertised = set(md["request_object_signing_alg_values_supported"])
    for alg, make_key in _ALG_KEYS.items():
        client = await kit.add_client(risk_tier="baseline", alg=alg, key=make_key())
        ro, ctx = client.request_object()
        r = await kit.authorize({"client_id": client.client_id, "request": ro})
        assert alg in advertised
        code_from(kit, client, r)
    for alg, key in (("ES384", keyring().c1_es384), ("ES512", keyring().c1_es512)):
        client = await kit.add_client(risk_tier="baseline", alg=alg, key=key)
        ro, ctx = client.request_object()
        r = await kit.authorize({"client_id": client.client_id, "request": ro})
        assert alg not in advertised
        assert_redirect_error(kit, r, "invalid_request_object", state=ctx["state"])


async def test_server_refuses_to_load_a_weak_rsa_key() -> None:
    """S57: RSA server keys below 2048 bits are refused when the keyring loads (the server does not start)."""
    import orjson
    from cryptography.hazmat.primitives.asymmetric import rsa

    from jarmor.jose import JoseError
    from jarmor.jose.b64 import b64url_encode
    from jarmor.server.keyprotect import KeyProtector
    from jarmor.server.keys import load_keyring
    from jarmor.store.base import ServerKeyRecord
    from jarmor.store.memory import MemoryStore

    def b64(n: int) -> str:
        return b64url_encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    priv = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_numbers()
    jwk = {"kty": "RSA", "kid": "weak", "alg": "PS256", "use": "sig", "n": b64(priv.public_numbers.n),
           "e": b64(priv.public_numbers.e), "d": b64(priv.d), "p": b64(priv.p), "q": b64(priv.q),
           "dp": b64(priv.dmp1), "dq": b64(priv.dmq1), "qi": b64(priv.iqmp)}
    store = MemoryStore()
    await store.keys.add(ServerKeyRecord(kid="weak", alg="PS256", use="sig", private_jwk=orjson.dumps(jwk).decode(),
                                         created_at=0, active_at=0))
    with pytest.raises(JoseError):
        await load_keyring(store.keys, KeyProtector(None))


async def test_jwks_lists_signing_keys_then_encryption_keys_in_preference_order(kit: Kit) -> None:
    """Peers that take "the first EC enc key" without reading its ``alg`` (the oidc-provider harness driver
    does) must get the plain ECDH-ES key: jarmor binds each key to one algorithm (RFC 8725 §3.1)."""
    keys = (await kit.http.get("/jwks")).json()["keys"]
    uses = [k["use"] for k in keys]
    assert uses == sorted(uses, key=lambda u: u != "sig")
    first_ec_enc = next(k for k in keys if k["use"] == "enc" and k["kty"] == "EC")
    assert first_ec_enc["alg"] == "ECDH-ES"
    assert [k["alg"] for k in keys if k["use"] == "sig"][:1] == ["ES256"]
