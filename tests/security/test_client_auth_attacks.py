"""Hostile client authentication at the token, PAR, revocation and introspection endpoints (group C, A55-A60).

``invalid_client`` is 401 (with ``WWW-Authenticate`` for Basic); two methods in one request, or a repeated
parameter, is ``invalid_request`` 400. A refused assertion leaves no ``jti`` mark, and nothing the request
carried (a code, a request object) is consumed by it.
"""

from __future__ import annotations

import base64
import hmac
from typing import Any

import pytest

from jarmor.jose import b64url_decode, b64url_encode, generate_jwk, sign_jws
from jarmor.jose.testing import segment, sign_raw
from jarmor.protocol import clients as client_model
from tests.kit import ASSERTION_TYPE, ISSUER, REDIRECT, Kit, TestClient
from tests.server.support import assert_json_error, code_from, plain_request, redeem

from .support import FORM, assert_unchanged, bounded, form, raw_request, snapshot

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
BUDGET = {"seconds": 0.5, "megabytes": 16.0}



def assertion_form(token: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token, **extra}


async def cc(kit: Kit, token: str) -> Any:
    """A token request whose only effect on success is minting tokens (no code involved)."""
    return await kit.http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "r" * 43,
                                               **assertion_form(token)})


# --- A21(a): a request object is never a client assertion -----------------------------------------------------


async def test_request_object_without_typ_is_not_a_client_assertion(kit: Kit, base: TestClient) -> None:
    """Regression: a request object signed without ``typ`` but with ``sub`` = client_id (it travels through
    the browser, and the server refuses it at /authorize — after the user agent has seen it) used to
    authenticate its client at /token. Now refused at every back-channel endpoint; the code survives."""
    params, verifier = plain_request(base)
    code = code_from(kit, base, await kit.authorize(params))["code"]
    _ro, ctx = base.request_object(sub=base.client_id)
    claims = {k: v for k, v in ctx.items() if k != "code_verifier"}
    stolen = sign_jws(claims, base.key, base.alg)  # no typ header
    form_ = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    before = snapshot(kit)
    r = await kit.http.post("/token", data={**form_, **assertion_form(stolen)})
    body = assert_json_error(r, "invalid_client", 401)
    assert "request object" in body["error_description"]
    for path in ("/par", "/introspect", "/revoke"):
        r = await kit.http.post(path, data={**plain_request(base)[0], "token": "t", **assertion_form(stolen)})
        assert_json_error(r, "invalid_client", 401)
    assert_unchanged(kit, before)
    assert (await redeem(kit, base, code, verifier)).status_code == 200


@pytest.mark.parametrize("claim", ["response_type", "redirect_uri", "code_challenge", "request_uri"])
async def test_assertion_carrying_authorization_request_claims_is_refused(
    kit: Kit, base: TestClient, claim: str
) -> None:
    token = base.assertion(**{claim: "x"})
    before = snapshot(kit)
    assert_json_error(await cc(kit, token), "invalid_client", 401)
    assert_unchanged(kit, before)


# --- A10 / A11: malleable twins of a used assertion -----------------------------------------------------------


def high_s_twin(token: str) -> str:
    """The other valid ECDSA signature of the same message: (r, n - s)."""
    head, body, sig = token.split(".")
    raw = b64url_decode(sig)
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    return f"{head}.{body}.{b64url_encode(r + (P256_N - s).to_bytes(32, 'big'))}"


def trailing_bits_twin(token: str) -> str:
    """The same signature bytes with non-zero padding bits in the last base64url character."""
    head, body, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    return f"{head}.{body}.{sig[:-1]}{alphabet[last | 1 if last % 2 == 0 else last & ~1]}"


async def test_malleable_twins_of_a_used_assertion_are_replays(kit: Kit, base: TestClient) -> None:
    """A11: the high-s twin verifies (ECDSA is malleable) — so replay is keyed on jti, and the twin of a used
    assertion is refused. A10: the non-canonical base64url twin is refused by the strict decoder."""
    machine = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=None)
    token = machine.assertion()
    twin = trailing_bits_twin(token)
    before = snapshot(kit)
    assert_json_error(await kit.http.post("/token", data={"grant_type": "client_credentials",
                                                         **assertion_form(twin)}), "invalid_client", 401)
    assert_unchanged(kit, before)
    r = await kit.http.post("/token", data={"grant_type": "client_credentials", **assertion_form(token)})
    assert r.status_code == 200, r.text
    r = await kit.http.post("/token", data={"grant_type": "client_credentials",
                                           **assertion_form(high_s_twin(token))})
    body = assert_json_error(r, "invalid_client", 401)
    assert "already been used" in body["error_description"]
    fresh = machine.assertion()
    r = await kit.http.post("/token", data={"grant_type": "client_credentials",
                                           **assertion_form(high_s_twin(fresh))})
    assert r.status_code == 200, "the high-s twin is a valid signature (documented malleability)"


# --- keys: only the named client's, whatever the kid says ------------------------------------------------------


async def test_kid_collision_across_clients(kit: Kit) -> None:
    """Two clients register keys with the same kid: each assertion verifies only with its iss' own key."""
    key_a, key_b = generate_jwk("ES256", kid="shared"), generate_jwk("ES256", kid="shared")
    a = await kit.add_client(risk_tier="baseline", key=key_a, grant_types=["client_credentials"], redirect_uris=None)
    await kit.add_client(risk_tier="baseline", key=key_b, grant_types=["client_credentials"], redirect_uris=None)
    before = snapshot(kit)
    forged = a.assertion(key=key_b)
    r = await kit.http.post("/token", data={"grant_type": "client_credentials", **assertion_form(forged)})
    assert_json_error(r, "invalid_client", 401)
    assert_unchanged(kit, before)


# --- hostile Authorization headers -----------------------------------------------------------------------------

BASIC_HEADERS = [
    ("Basic", "invalid_request", 400),
    ("Basic ", "invalid_request", 400),
    ("Bearer abc", "invalid_request", 400),
    ("Digest username=x", "invalid_request", 400),
    ("Basic !!!!", "invalid_client", 401),
    ("Basic " + base64.b64encode(b"no-colon").decode(), "invalid_client", 401),
    ("Basic " + base64.b64encode(b":").decode(), "invalid_client", 401),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "invalid_client", 401),
    ("Basic " + base64.b64encode(b"a" * 5000 + b":b").decode(), "invalid_client", 401),
    ("Basic " + base64.b64encode(b"%00:%00").decode(), "invalid_client", 401),
    ("Basic " + "QQ" * 20_000, "invalid_client", 401),
]


@pytest.mark.parametrize(("header", "error", "status"), BASIC_HEADERS, ids=range(len(BASIC_HEADERS)))
async def test_hostile_authorization_headers(kit: Kit, base: TestClient, header: str, error: str, status: int) -> None:
    before = snapshot(kit)
    body = form({"grant_type": "client_credentials"})
    with bounded(**BUDGET):
        r = await raw_request(kit, "POST", "/token", body=body, headers={**FORM, "authorization": header})
    assert_json_error(r, error, status)
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Basic")
    assert_unchanged(kit, before)


async def test_secret_variants_never_authenticate(kit: Kit) -> None:
    """A59: near misses of the secret fail; an empty secret counts as none; comparison is constant-time."""
    client = await kit.add_client(
        risk_tier="baseline", token_endpoint_auth_method="client_secret_post", jwks=None,
        grant_types=["client_credentials"], redirect_uris=None,
    )
    secret = client.secret or ""
    calls: list[int] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append(1)
        return real(a, b)

    before = snapshot(kit)
    original = client_model.hmac.compare_digest
    client_model.hmac.compare_digest = spy  # type: ignore[assignment]
    try:
        for guess in (secret[:-1], secret + "A", secret.upper(), " " + secret, secret + "\u200b", "x" * 10_000):
            r = await kit.http.post("/token", data={"grant_type": "client_credentials",
                                                   "client_id": client.client_id, "client_secret": guess})
            assert_json_error(r, "invalid_client", 401)
    finally:
        client_model.hmac.compare_digest = original  # type: ignore[assignment]
    assert len(calls) == 6, "every secret comparison goes through hmac.compare_digest"
    r = await kit.http.post("/token", data={"grant_type": "client_credentials", "client_id": client.client_id,
                                           "client_secret": ""})
    assert_json_error(r, "invalid_client", 401)
    assert_unchanged(kit, before)


# --- hostile assertions: size, shape, values -------------------------------------------------------------------


DEEP = '{"a":' + "[" * 10_000 + "]" * 10_000 + "}"
BIG_EXP = '{"exp":' + "9" * 5000 + "}"


def _hostile_assertions(client: TestClient) -> list[tuple[str, str]]:
    k = client.key
    head = {"alg": "ES256", "kid": k.kid}
    t = kit_now()
    good = {"iss": client.client_id, "sub": client.client_id, "aud": ISSUER, "exp": t + 60, "jti": "j"}
    return [
        ("40 KB jti", sign_raw(head, {**good, "jti": "j" * 40_000}, k, "ES256")),
        ("deep payload", f"{segment(head)}.{segment(DEEP)}.AAAA"),
        ("5000-digit exp", f"{segment(head)}.{segment(BIG_EXP)}.AAAA"),
        ("exp 1e400", sign_raw(head, f'{{"iss":"{client.client_id}","sub":"{client.client_id}",'
                               f'"aud":"{ISSUER}","exp":1e400,"jti":"j"}}', k, "ES256")),
        ("exp true", sign_raw(head, {**good, "exp": True}, k, "ES256")),
        ("exp 10**30", sign_raw(head, {**good, "exp": 10**30}, k, "ES256")),
        ("sub number", sign_raw(head, {**good, "sub": 5}, k, "ES256")),
        ("sub 10 KB", sign_raw(head, {**good, "sub": "s" * 10_000, "iss": "s" * 10_000}, k, "ES256")),
        ("aud of 1000", sign_raw(head, {**good, "aud": ["x"] * 999 + [ISSUER]}, k, "ES256")),
        ("unknown sub", sign_raw(head, {**good, "iss": "nobody", "sub": "nobody"}, k, "ES256")),
        ("array payload", sign_raw(head, "[1]", k, "ES256")),
        ("JWE", ".".join(["eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0", "a", "b", "c", "d"])),
        ("whitespace", " " + sign_raw(head, good, k, "ES256")),
    ]


def kit_now() -> int:
    import time

    return int(time.time())


async def test_hostile_assertions_are_bounded_and_leave_no_trace(kit: Kit, base: TestClient) -> None:
    for case, token in _hostile_assertions(base):
        before = snapshot(kit)
        body = form({"grant_type": "client_credentials", **assertion_form(token)})
        with bounded(**BUDGET):
            r = await raw_request(kit, "POST", "/token", body=body, headers=FORM)
        assert_json_error(r, "invalid_client", 401)
        assert_unchanged(kit, before)
        assert case


async def test_oversized_assertion_is_413(kit: Kit, base: TestClient) -> None:
    body = form({"grant_type": "client_credentials", **assertion_form("a" * 70_000 + ".b.c")})
    with bounded(**BUDGET):
        r = await raw_request(kit, "POST", "/token", body=body, headers=FORM)
    assert_json_error(r, "invalid_request", 413)
