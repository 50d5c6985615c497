"""Token verification: introspection with its bounded cache (RFC 7662, checklist C29) and JWT access tokens
(RFC 9068 §4, checklist S101) with JWKS refetch on an unknown ``kid``.

The authorization server's side is an ``httpx.MockTransport`` here, so every request the verifiers send is
counted exactly; the real servers (jarmor, oidc-provider) drive the same code in tests/e2e and tests/interop.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from jarmor.jose import generate_jwk, sign_jws
from jarmor.jose.testing import sign_raw
from jarmor.resource import IntrospectionVerifier, JwtAccessTokenVerifier, TokenRejected, VerifierUnavailable

ISSUER = "https://as.example"
AUDIENCE = "https://api.example"


class Clock:
    def __init__(self, now: float = 1_800_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- introspection ---------------------------------------------------------------------------------------------


class FakeAS:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.seen: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.headers.get("authorization") != "Basic " + base64.b64encode(b"rs%3A1:s%2Bcret").decode():
            return httpx.Response(401, json={"error": "invalid_client"})
        token = dict(httpx.QueryParams(request.content.decode()))["token"]
        answer = self.answers.get(token, {"active": False})
        return httpx.Response(200, content=orjson.dumps(answer), headers={"content-type": "application/json"})


def _introspection(fake: FakeAS, clock: Clock, **kw: Any) -> IntrospectionVerifier:
    kw.setdefault("client_secret", "s+cret")
    return IntrospectionVerifier(endpoint=f"{ISSUER}/introspect", client_id="rs:1", issuer=ISSUER,
                                 audience=AUDIENCE, clock=clock, cache_ttl=60, inactive_ttl=5,
                                 http=httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)), **kw)


async def test_an_active_token_is_cached_but_never_past_its_exp() -> None:
    clock = Clock()
    fake = FakeAS({"t": {"active": True, "iss": ISSUER, "sub": "alice", "exp": int(clock.now) + 20, "scope": "a b"}})
    verifier = _introspection(fake, clock)
    claims = await verifier.verify("t")
    assert claims.scopes == {"a", "b"} and claims.subject == "alice"
    clock.now += 19
    await verifier.verify("t")
    assert verifier.calls == 1  # served from the cache
    clock.now += 1  # exp reached: the cache entry is gone, the AS is asked, the token refused
    with pytest.raises(TokenRejected):
        await verifier.verify("t")
    assert verifier.calls == 2


async def test_the_cache_lifetime_bounds_long_lived_tokens() -> None:
    clock = Clock()
    fake = FakeAS({"t": {"active": True, "exp": int(clock.now) + 3600}})
    verifier = _introspection(fake, clock)
    await verifier.verify("t")
    clock.now += 61
    fake.answers.clear()  # revoked at the AS
    with pytest.raises(TokenRejected):
        await verifier.verify("t")
    assert verifier.calls == 2


async def test_inactive_results_are_cached_briefly_and_tokens_without_exp_not_at_all() -> None:
    clock = Clock()
    fake = FakeAS({"noexp": {"active": True}})
    verifier = _introspection(fake, clock)
    for _ in range(3):
        with pytest.raises(TokenRejected):
            await verifier.verify("unknown")
    assert verifier.calls == 1
    clock.now += 5
    with pytest.raises(TokenRejected):
        await verifier.verify("unknown")
    assert verifier.calls == 2
    await verifier.verify("noexp")
    await verifier.verify("noexp")
    assert verifier.calls == 4


@pytest.mark.parametrize("answer", [
    {"active": "true"},
    {"active": 1},
    {"active": True, "iss": "https://other.example"},
    {"active": True, "aud": "https://other-api.example"},
    {"active": True, "aud": ["https://other-api.example"]},
    {"active": True, "exp": 1_700_000_000},
    {"active": True, "exp": "soon"},
    {"active": True, "cnf": "jkt"},
])
async def test_introspection_answers_that_do_not_make_a_valid_token(answer: dict[str, Any]) -> None:
    verifier = _introspection(FakeAS({"t": answer}), Clock())
    with pytest.raises(TokenRejected):
        await verifier.verify("t")


async def test_a_refusal_of_the_resource_servers_credentials_is_not_an_inactive_token() -> None:
    verifier = _introspection(FakeAS({}), Clock(), client_secret="wrong")
    with pytest.raises(VerifierUnavailable):
        await verifier.verify("t")


async def test_client_credentials_are_form_encoded_before_basic_auth() -> None:
    """RFC 6749 §2.3.1 (the fake AS checks ``rs%3A1:s%2Bcret``)."""
    fake = FakeAS({"t": {"active": True, "exp": 1_800_000_100, "aud": [AUDIENCE, "x"]}})
    assert await _introspection(fake, Clock()).verify("t")
    sent = dict(httpx.QueryParams(fake.seen[0].content.decode()))
    assert sent == {"token": "t", "token_type_hint": "access_token"}


# --- JWT access tokens -----------------------------------------------------------------------------------------

KEY = generate_jwk("ES256", kid="k1")
ROTATED = generate_jwk("ES256", kid="k2")


class FakeIssuer:
    def __init__(self) -> None:
        self.keys = [KEY]
        self.jwks_fetches = 0
        self.metadata_issuer = ISSUER

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/oauth-authorization-server":
            return httpx.Response(200, json={"issuer": self.metadata_issuer, "jwks_uri": f"{ISSUER}/jwks"})
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [k.public_dict() for k in self.keys]})
        return httpx.Response(404)


def _jwt_verifier(issuer: FakeIssuer, clock: Clock) -> JwtAccessTokenVerifier:
    return JwtAccessTokenVerifier(issuer=ISSUER, audience=AUDIENCE, clock=clock, refetch_interval=30,
                                  http=httpx.AsyncClient(transport=httpx.MockTransport(issuer.handler)))


def _at(now: float, *, key: Any = KEY, typ: str = "at+jwt", **kw: Any) -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "client_id": "app", "iat": int(now),
              "exp": int(now) + 300, "jti": "j1", "scope": "orders:read", "acr": "urn:loa:2",
              "auth_time": int(now) - 5, "cnf": {"jkt": "abc"}}
    claims.update(kw)
    return sign_jws({k: v for k, v in claims.items() if v is not None}, key, "ES256", typ=typ)


async def test_a_valid_jwt_access_token() -> None:
    clock = Clock()
    claims = await _jwt_verifier(FakeIssuer(), clock).verify(_at(clock.now))
    assert (claims.subject, claims.client_id, claims.acr, claims.cnf) == ("alice", "app", "urn:loa:2", {"jkt": "abc"})
    assert await _jwt_verifier(FakeIssuer(), clock).verify(_at(clock.now, typ="application/at+JWT"))


def _bad_tokens(now: float) -> dict[str, str]:
    header = {"alg": "ES256", "kid": "k1", "typ": "at+jwt"}
    good = {"iss": ISSUER, "aud": AUDIENCE, "sub": "a", "client_id": "c", "iat": int(now), "exp": int(now) + 60,
            "jti": "j"}
    return {
        "typ JWT (an ID token)": _at(now, typ="JWT"),
        "no typ": sign_raw({"alg": "ES256", "kid": "k1"}, good, KEY, "ES256"),
        "alg none": sign_raw({**header, "alg": "none"}, good, KEY, "ES256"),
        "HS256": sign_raw({**header, "alg": "HS256"}, good, KEY, "ES256"),
        "another issuer": _at(now, iss="https://other.example"),
        "another audience": _at(now, aud="https://other-api.example"),
        "expired": _at(now, exp=int(now) - 10),
        "no exp": _at(now, exp=None),
        "iat in the future": _at(now, iat=int(now) + 60),
        "nbf in the future": _at(now, nbf=int(now) + 60),
        "no client_id": _at(now, client_id=None),
        "no sub": _at(now, sub=None),
        "no jti": _at(now, jti=None),
        "signed by a stranger": _at(now, key=generate_jwk("ES256", kid="k1")),
        "encrypted shape": "a.b.c.d.e",
        "opaque": "abc",
    }


@pytest.mark.parametrize("case", list(_bad_tokens(0)))
async def test_each_invalid_jwt_access_token_is_rejected(case: str) -> None:
    clock = Clock()
    with pytest.raises(TokenRejected):
        await _jwt_verifier(FakeIssuer(), clock).verify(_bad_tokens(clock.now)[case])


async def test_an_unknown_kid_refetches_the_jwks_once_and_refetches_are_rate_limited() -> None:
    clock, issuer = Clock(), FakeIssuer()
    verifier = _jwt_verifier(issuer, clock)
    await verifier.verify(_at(clock.now))
    assert issuer.jwks_fetches == 1
    issuer.keys = [KEY, ROTATED]  # the issuer rotates
    assert await verifier.verify(_at(clock.now, key=ROTATED))
    assert issuer.jwks_fetches == 2
    stranger = generate_jwk("ES256", kid="k-random")
    for _ in range(5):  # a flood of unknown kids right after: no further fetch within the interval
        with pytest.raises(TokenRejected):
            await verifier.verify(_at(clock.now, key=stranger))
    assert issuer.jwks_fetches == 2
    clock.now += 31
    for _ in range(5):  # next interval: one refetch for the whole flood
        with pytest.raises(TokenRejected):
            await verifier.verify(_at(clock.now, key=stranger))
    assert issuer.jwks_fetches == 3


async def test_metadata_for_another_issuer_is_refused() -> None:
    issuer = FakeIssuer()
    issuer.metadata_issuer = "https://evil.example"
    with pytest.raises(VerifierUnavailable):
        await _jwt_verifier(issuer, Clock()).verify(_at(Clock().now))


@pytest.mark.parametrize(("status", "error", "outcome"), [
    (400, "unsupported_token_type", TokenRejected),  # oidc-provider, for its JWT access tokens
    (400, "invalid_request", TokenRejected),
    (400, "invalid_client", VerifierUnavailable),
    (500, "server_error", VerifierUnavailable),
])
async def test_introspection_error_answers(status: int, error: str, outcome: type[Exception]) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json={"error": error}))
    verifier = IntrospectionVerifier(endpoint=f"{ISSUER}/introspect", client_id="rs", client_secret="s",
                                     http=httpx.AsyncClient(transport=transport))
    with pytest.raises(outcome):
        await verifier.verify("t")
