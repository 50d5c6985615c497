"""Hostile DPoP proofs (RFC 9449 §11; RFC 8725): key confusion, weak or private embedded keys, oversized input,
proofs from one endpoint replayed at another, and error text that never reflects the proof. Each is refused
with ``invalid_dpop_proof`` within a bounded cost, and leaves no state behind (no token, no ``jti`` mark)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jarmor.jose import b64url_encode, generate_jwk
from jarmor.jose.testing import bounded, hmac_raw, sign_raw
from jarmor.protocol.dpop import DPoPError, verify_proof
from jarmor.protocol.dpop_replay import NAMESPACE
from tests.kit import Kit, all_tokens, ephemeral_keys
from tests.server.dpop_support import PAR_URL, TOKEN_URL, proof, token
from tests.server.support import assert_json_error

from .test_error_text import MARK, assert_safe

KEY = generate_jwk("ES256")
PUBLIC = {k: v for k, v in KEY.public_dict().items() if k in ("kty", "crv", "x", "y")}
ALGS = ("ES256", "PS256", "EdDSA")


def _claims(**kw: Any) -> dict[str, Any]:
    return {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time()), **kw}


def _weak_rsa_jwk() -> dict[str, str]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "n": b64url_encode(n), "e": "AQAB"}


def _deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = [value]
    return value


def _hostile() -> dict[str, str]:
    pub_bytes = str(PUBLIC).encode()
    return {
        # the classic confusion: an HMAC keyed with the public key the header carries
        "hs256 keyed with the jwk": hmac_raw({"typ": "dpop+jwt", "alg": "HS256", "jwk": PUBLIC}, _claims(),
                                             pub_bytes, "HS256"),
        "alg none": sign_raw({"typ": "dpop+jwt", "alg": "none", "jwk": PUBLIC}, _claims(), KEY,
                             "ES256").rsplit(".", 1)[0] + ".",
        "1024-bit RSA jwk": sign_raw({"typ": "dpop+jwt", "alg": "PS256", "jwk": _weak_rsa_jwk()}, _claims(),
                                     KEY, "ES256"),
        "jwk with jku": sign_raw({"typ": "dpop+jwt", "alg": "ES256", "jku": "https://evil.example/jwks"},
                                 _claims(), KEY, "ES256"),
        "x5c instead of jwk": sign_raw({"typ": "dpop+jwt", "alg": "ES256", "x5c": ["MIIB"]}, _claims(), KEY,
                                       "ES256"),
        "huge header": sign_raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": PUBLIC, "pad": "A" * 20000},
                                _claims(), KEY, "ES256"),
        "deep claims": sign_raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": PUBLIC},
                                _claims(x=_deep(40)),
                                KEY, "ES256"),
        "duplicate members": sign_raw(b'{"typ":"dpop+jwt","alg":"ES256","alg":"none","jwk":' +
                                      str(PUBLIC).replace("'", '"').encode() + b"}", _claims(), KEY, "ES256"),
        "hostile htu": sign_raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": PUBLIC},
                                _claims(htu=MARK + '"\r\nX: 1'), KEY, "ES256"),
        "hostile htm": sign_raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": PUBLIC}, _claims(htm=MARK + "\u202e"),
                                KEY, "ES256"),
        "jwe": "a.b.c.d.e",
    }


@pytest.mark.parametrize("name", list(_hostile()))
def test_hostile_proofs_are_refused_cheaply_without_reflecting_them(name: str) -> None:
    value = _hostile()[name]
    with pytest.raises(DPoPError) as info, bounded(0.5, 5.0):
        verify_proof(value, method="POST", url=TOKEN_URL, now=int(time.time()), allowed_algs=ALGS)
    assert info.value.error == "invalid_dpop_proof"
    assert_safe(info.value.description)


@pytest.mark.parametrize("name", ["hs256 keyed with the jwk", "hostile htu", "1024-bit RSA jwk"])
async def test_at_the_token_endpoint_nothing_is_stored(kit: Kit, name: str) -> None:
    client = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                  scope="profile")
    r = await token(kit, client, {"grant_type": "client_credentials"}, _hostile()[name])
    assert_safe(assert_json_error(r, "invalid_dpop_proof").get("error_description", ""))
    assert all_tokens(kit) == [] and ephemeral_keys(kit, NAMESPACE) == []


async def test_a_proof_for_par_cannot_be_replayed_at_the_token_endpoint(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                  scope="profile")
    assert_json_error(await token(kit, client, {"grant_type": "client_credentials"}, proof(KEY, PAR_URL)),
                      "invalid_dpop_proof")


async def test_a_refused_request_leaves_no_jti_mark(kit: Kit) -> None:
    """A proof whose request fails for another reason before the proof is checked can be sent again."""
    client = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                  scope="profile")
    p = proof(KEY)
    r = await token(kit, client, {"grant_type": "client_credentials", "scope": "openid"}, p)
    assert_json_error(r, "invalid_scope")
    assert ephemeral_keys(kit, NAMESPACE) == []
    assert (await token(kit, client, {"grant_type": "client_credentials"}, p)).status_code == 200
    assert len(ephemeral_keys(kit, NAMESPACE)) == 1
