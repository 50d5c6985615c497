"""Response encoding (responses.py) and token helpers (tokens.py) as functions.

RFC 9207 §2 (iss on plain responses), JARM §2.1-§2.3 (only ``response`` outside the JWT), RFC 7636 §4.1/§4.6
(verifier syntax, S256 comparison), FAPI 2.0 §5.4.1-4 (at least 128 bits of entropy).
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qsl, urlsplit

import pytest

from jarmor.jose import JwkSet, verify_jws
from jarmor.protocol import errors
from jarmor.protocol.clients import Client
from jarmor.protocol.errors import RedirectTarget
from jarmor.protocol.policy import DEFAULT_TIERS
from jarmor.protocol.responses import FormPost, Redirect, error_response, render
from jarmor.protocol.tokens import _pkce_ok, new_token, token_hash
from tests.kit import ISSUER, REDIRECT, Kit

BASE = DEFAULT_TIERS["baseline"]


async def client_record(kit: Kit) -> Client:
    tc = await kit.add_client(risk_tier="baseline")
    client = await kit.env.clients.get(tc.client_id)
    assert isinstance(client, Client)
    return client


@pytest.mark.parametrize(("mode", "part"), [("query", "query"), ("fragment", "fragment")])
async def test_plain_modes_carry_iss(kit: Kit, mode: str, part: str) -> None:
    client = await client_record(kit)
    target = RedirectTarget(REDIRECT, mode, "st", "c")
    resp, evidence = await render(kit.env, client, target, {"code": "abc"}, tier=BASE)
    assert isinstance(resp, Redirect)
    params = dict(parse_qsl(getattr(urlsplit(resp.location), part)))
    assert params == {"code": "abc", "state": "st", "iss": ISSUER}
    assert evidence == {"iss_emitted": "parameter"}


async def test_query_is_appended_to_an_existing_query(kit: Kit) -> None:
    client = await client_record(kit)
    target = RedirectTarget(REDIRECT + "?tenant=1", "query", None, "c")
    resp, _ = await render(kit.env, client, target, {"code": "abc"}, tier=BASE)
    assert isinstance(resp, Redirect)
    assert resp.location.startswith(REDIRECT + "?tenant=1&code=abc")


async def test_form_post(kit: Kit) -> None:
    client = await client_record(kit)
    resp, _ = await render(kit.env, client, RedirectTarget(REDIRECT, "form_post", "st", "c"),
                           {"code": "abc"}, tier=BASE)
    assert isinstance(resp, FormPost)
    assert resp.action == REDIRECT and dict(resp.fields) == {"code": "abc", "state": "st", "iss": ISSUER}


async def test_jarm_modes_carry_only_response(kit: Kit) -> None:
    client = await client_record(kit)
    for mode in ("query.jwt", "fragment.jwt", "form_post.jwt"):
        resp, evidence = await render(kit.env, client,
                                      RedirectTarget(REDIRECT, mode, "st", "c"), {"code": "abc"}, tier=BASE)
        fields = dict(resp.fields) if isinstance(resp, FormPost) else dict(
            parse_qsl(urlsplit(resp.location).query or urlsplit(resp.location).fragment))
        assert set(fields) == {"response"}
        assert evidence["iss_emitted"] == "jwt" and evidence["jarm"]["signed"] is True
        jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
        claims = verify_jws(fields["response"], jwks, algorithms=["ES256"]).claims
        assert claims["iss"] == ISSUER and claims["code"] == "abc" and claims["state"] == "st"
        assert 10 <= claims["exp"] - claims["iat"] <= 600


async def test_error_response_channels(kit: Kit) -> None:
    client = await client_record(kit)
    err = errors.InvalidScope("nope")
    assert await error_response(kit.env, client, err, tier=BASE) is None  # no target: a page
    err.with_target(RedirectTarget(REDIRECT, "query.jwt", "st", "c"))
    assert await error_response(kit.env, None, err, tier=BASE) is None  # JARM needs the client record
    out = await error_response(kit.env, client, err, tier=BASE)
    assert out is not None and isinstance(out[0], Redirect) and "response=" in out[0].location


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize(("verifier", "ok"), [
    ("a" * 43, True), ("A-._~" * 20 + "abc", True), ("a" * 128, True),
    ("a" * 42, False), ("a" * 129, False), ("a" * 42 + "+", False), ("a" * 42 + " ", False),
    ("a" * 42 + "é", False), (None, False),
])
def test_pkce_verifier(verifier: str | None, ok: bool) -> None:
    ch = challenge(verifier if verifier else "a" * 43)
    assert _pkce_ok(verifier, ch) is ok
    if ok:
        assert verifier is not None
        assert not _pkce_ok(verifier, challenge(verifier + "x"))
        assert not _pkce_ok(ch, ch)


def test_tokens_have_at_least_256_bits() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 43 for t in tokens)
    assert token_hash("x") == hashlib.sha256(b"x").hexdigest()
