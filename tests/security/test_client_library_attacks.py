"""Hostile authorization servers and responses against the client library (attack catalog groups L and F:
A70-A85), driven through the sans-I/O ``ClientCore`` so every example is cheap and every request it would
send is visible.

The properties: a mutated JARM response, plain response, token response or discovery document only ever
raises the library's own ``ClientError``; a rejected callback makes no request but the (rate-limited) JWKS
refetch — never one to a token endpoint — and consumes its stored flow (A76); oversized and hostile
encrypted inputs are refused within budget (A79, A85).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from jarmor.client.config import ClientConfig
from jarmor.client.core import ClientCore
from jarmor.client.errors import ClientError
from jarmor.client.exchange import HttpRequest, HttpResponse, Steps
from jarmor.client.metadata import parse_metadata
from jarmor.client.models import AuthorizationResult, FlowState
from jarmor.client.store import MemoryFlowStateStore
from jarmor.jose import JwkSet, b64url_encode, encrypt_jwe, peek_claims, sign_jws
from jarmor.jose.testing import encrypt_raw, segment
from tests.client.fake_server import CLIENT_ID, EVIL_ISSUER, ISSUER, NOW, REDIRECT_URI, FakeAS, Keys, public

from .strategies import JSON_LEAF, JSON_VALUE, structural_mutations
from .support import bounded

KEYS = Keys()
# Reasons only a response verified as the server's answer to this very flow can produce: it consumed the flow.
AUTHENTIC_FAILURES = frozenset({"code_missing", "code_invalid", "unexpected_claim", "authorization_error"})
MODES = ("query.jwt", "fragment.jwt", "form_post.jwt", "query", "fragment", "form_post")


class Clock:
    def __call__(self) -> float:
        return float(NOW)


class Harness:
    """A client with cached discovery and keys, one pending flow per response mode, and a request log."""

    def __init__(self, *, encrypted: bool = False) -> None:
        self.fake = FakeAS(ISSUER, KEYS, Clock())  # type: ignore[arg-type]
        config = ClientConfig(
            issuer=ISSUER, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, signing_key=KEYS.client_sig,
            signing_alg="ES256", authorization_signed_response_alg="ES256", id_token_signed_response_alg="ES256",
            authorization_encrypted_response_alg="ECDH-ES+A128KW" if encrypted else None,
            decryption_keys=JwkSet((KEYS.client_enc,)) if encrypted else None,
        )
        self.core = ClientCore(config, store=MemoryFlowStateStore(), clock=Clock())
        self.core.metadata = parse_metadata(json.dumps(self.fake.metadata).encode(), expected_issuer=ISSUER,
                                            allow_insecure_http=False)
        self.core._jwks = JwkSet((public(KEYS.as_sig),))
        self.core._jwks_fetched_at = NOW
        self.requests: list[HttpRequest] = []
        for mode in MODES:
            self.core.store.put(FlowState(
                issuer=ISSUER, client_id=CLIENT_ID, state=f"s-{mode}", nonce=None, code_verifier="v" * 43,
                redirect_uri=REDIRECT_URI, response_mode=mode, scope="accounts", created_at=NOW,
                expires_at=NOW + 600,
            ))

    def drive(self, steps: Steps[Any], answer: HttpResponse | None = None) -> Any:
        """Run a core operation, answering every request it makes with ``answer`` (the JWKS by default)."""
        jwks = HttpResponse(200, {"content-type": "application/json"},
                            json.dumps({"keys": [KEYS.as_sig.public_dict()]}).encode())
        try:
            request = next(steps)
            while True:
                self.requests.append(request)
                request = steps.send(answer or jwks)
        except StopIteration as done:
            return done.value

    def claims(self, mode: str, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {"iss": ISSUER, "aud": CLIENT_ID, "iat": NOW, "exp": NOW + 300, "code": "c-1",
                                  "state": f"s-{mode}"}
        claims.update(overrides)
        return claims

    def callback(self, mode: str, params: dict[str, str]) -> str | dict[str, str]:
        if mode.startswith("form_post"):
            return params
        sep = "#" if mode.startswith("fragment") else "?"
        return f"{REDIRECT_URI}{sep}{urlencode(params)}"

    def rejects(self, callback: str | dict[str, str], state: str) -> ClientError:
        """Expect a ``ClientError``. ``state``: the application's session state, passed as ``expected_state``
        (how the library learns which flow the browser session belongs to). The flow stays pending unless
        the response proved authentic for it (server signature and its state) and failed only after that."""
        with pytest.raises(ClientError) as info:
            self.drive(self.core.handle_callback(callback, expected_state=state))
        assert all(r.hop == "jwks" for r in self.requests), [r.hop for r in self.requests]
        pending = self.core.store.get(state, NOW) is not None
        assert pending == (info.value.reason not in AUTHENTIC_FAILURES), (info.value, pending)
        return info.value


def test_harness_accepts_the_unmutated_responses() -> None:
    h = Harness()
    for mode in MODES:
        if mode.endswith("jwt"):
            params = {"response": sign_jws(h.claims(mode), KEYS.as_sig, "ES256")}
        else:
            params = {"code": "c-1", "state": f"s-{mode}", "iss": ISSUER}
        result = h.drive(h.core.handle_callback(h.callback(mode, params), expected_state=f"s-{mode}"))
        assert isinstance(result, AuthorizationResult) and result.code == "c-1"
    assert h.requests == []


# --- A72-A76, A81: JARM mutations --------------------------------------------------------------------------------

JARM_MODES = MODES[:3]
BREAKING_JARM_CLAIMS: dict[str, st.SearchStrategy[Any]] = {
    "iss": JSON_VALUE.filter(lambda v: v != ISSUER),
    "aud": JSON_VALUE.filter(lambda v: v != CLIENT_ID and v != [CLIENT_ID]),
    "exp": st.one_of(st.integers(-(2**63), NOW - 31), st.integers(NOW + 631, 2**63 - 1), st.text(),
                     st.booleans(), st.floats(allow_nan=False, allow_infinity=False, max_value=NOW - 31)),
    "iat": st.one_of(st.integers(NOW + 31, 2**63 - 1), st.text(min_size=1), st.booleans()),
    "nbf": st.one_of(st.integers(NOW + 31, 2**63 - 1), st.text(min_size=1), st.booleans()),
    "code": JSON_VALUE.filter(lambda v: not (isinstance(v, str) and 0 < len(v) <= 4096)),
    "state": JSON_VALUE,  # any other state: another (or no) flow
    "response": JSON_LEAF.filter(lambda v: v is not None),
}


@given(st.data())
def test_jarm_mutations_are_rejected(data: st.DataObject) -> None:
    h = Harness()
    mode = data.draw(st.sampled_from(JARM_MODES))
    valid = sign_jws(h.claims(mode), KEYS.as_sig, "ES256")
    kind = data.draw(st.sampled_from(["structure", "claim", "outer", "channel", "key"]))
    params: dict[str, str] = {"response": valid}
    if kind == "structure":
        params["response"] = data.draw(structural_mutations(valid))
    elif kind == "claim":
        name = data.draw(st.sampled_from(sorted(BREAKING_JARM_CLAIMS)))
        value = data.draw(BREAKING_JARM_CLAIMS[name])
        assume(not (name == "state" and value in (f"s-{m}" for m in JARM_MODES)))
        claims = h.claims(mode, **{name: value})
        if value is None:
            del claims[name]
        params["response"] = sign_jws(claims, KEYS.as_sig, "ES256")
    elif kind == "outer":  # C1: nothing but response may travel outside the JWT
        name = data.draw(st.sampled_from(["code", "state", "iss", "error", "id_token", "access_token"]))
        params[name] = data.draw(st.text(max_size=20))
    elif kind == "channel":  # A71: the right JWT on the wrong channel (of a URL: a mapping's is unknowable)
        other = data.draw(st.sampled_from([m for m in ("query.jwt", "fragment.jwt") if m != mode]))
        h.rejects(h.callback(other, params), state=f"s-{mode}")
        return
    else:  # A72/A73: signed by a key the client does not trust for this issuer
        key = data.draw(st.sampled_from([KEYS.attacker, KEYS.evil_sig, KEYS.as_sig_2, KEYS.client_sig]))
        params["response"] = sign_jws(h.claims(mode), key, "ES256")
    h.rejects(h.callback(mode, params), state=f"s-{mode}")


@given(st.data())
def test_plain_response_mutations_are_rejected(data: st.DataObject) -> None:
    """RFC 9207 (A78) and state (A76) on plain responses: any iss other than the issuer, any other state."""
    h = Harness()
    mode = data.draw(st.sampled_from(MODES[3:]))
    params = {"code": "c-1", "state": f"s-{mode}", "iss": ISSUER}
    name = data.draw(st.sampled_from(["iss", "state", "code", "response"]))
    value = data.draw(st.text(max_size=40))
    if name == "iss":
        assume(value != ISSUER)
    if name == "state":
        assume(value != params["state"])
    if name == "code":
        assume(value == "" or len(value) > 4096)
    params[name] = value
    h.rejects(h.callback(mode, params), state=f"s-{mode}")


def test_mix_up_responses_from_another_server() -> None:
    """A73/A78: responses signed by (or naming) another configured server never complete this flow."""
    h = Harness()
    evil = FakeAS(EVIL_ISSUER, KEYS, Clock())  # type: ignore[arg-type]
    token = evil.sign(h.claims("query.jwt", iss=EVIL_ISSUER))
    h.rejects(h.callback("query.jwt", {"response": token}), state="s-query.jwt")
    h.rejects(h.callback("query", {"code": "c", "state": "s-query", "iss": EVIL_ISSUER}), state="s-query")


# --- A85: resource safety of the callback handler -----------------------------------------------------------------


def _big_inputs() -> Iterator[tuple[str, Any]]:
    yield "1 MiB URL", f"{REDIRECT_URI}?response=" + "a" * (1 << 20)
    yield "10 MiB response", {"response": "a" * (10 << 20)}
    yield "1000 dots", {"response": "." * 1000}
    yield "100,000 parameters", f"{REDIRECT_URI}?" + "&".join(f"p{i}=1" for i in range(100_000))
    yield "100,000 fields", {f"p{i}": "1" for i in range(100_000)}
    yield "deep JWT payload", {"response": f"{segment({'alg': 'ES256'})}.{segment('[' * 20_000 + ']' * 20_000)}.AA"}
    yield "5 segments of junk", {"response": ".".join(["A" * 10_000] * 5)}


@pytest.mark.parametrize(("case", "callback"), list(_big_inputs()), ids=[c for c, _ in _big_inputs()])
def test_oversized_and_degenerate_callbacks_are_bounded(case: str, callback: Any) -> None:
    h = Harness()
    with bounded(seconds=0.1, megabytes=16.0):
        with pytest.raises(ClientError):
            h.drive(h.core.handle_callback(callback, expected_state="s-query.jwt"))
    assert h.requests == []


# --- A79: hostile encrypted JARM ----------------------------------------------------------------------------------


def _hostile_jwes(h: Harness) -> Iterator[tuple[str, str]]:
    inner = sign_jws(h.claims("query.jwt"), KEYS.as_sig, "ES256")
    enc_key = KEYS.client_enc
    epk = {"kty": "EC", "crv": "P-256", "x": b64url_encode(bytes(32)), "y": b64url_encode(bytes(32))}
    yield "zip bomb header", encrypt_raw({"alg": "ECDH-ES+A128KW", "enc": "A128CBC-HS256", "zip": "DEF"},
                                         b"\x00" * 1000, enc_key)
    yield "PBES2 p2c 2^31", encrypt_raw({"alg": "PBES2-HS256+A128KW", "enc": "A128CBC-HS256",
                                         "p2s": b64url_encode(bytes(16)), "p2c": 2**31 - 1}, inner.encode())
    yield "RSA1_5", encrypt_raw({"alg": "RSA1_5", "enc": "A128CBC-HS256"}, inner.encode())
    yield "dir", encrypt_raw({"alg": "dir", "enc": "A128CBC-HS256"}, inner.encode())
    yield "off-curve epk", encrypt_raw({"alg": "ECDH-ES+A128KW", "enc": "A128CBC-HS256", "epk": epk},
                                       inner.encode(), enc_key)
    yield "epk with d", encrypt_raw({"alg": "ECDH-ES+A128KW", "enc": "A128CBC-HS256",
                                     "epk": {**enc_key.private_dict(), "kid": None}}, inner.encode(), enc_key)
    good = encrypt_jwe(inner, public(enc_key), "ECDH-ES+A128KW", "A128CBC-HS256", cty="JWT")
    parts = good.split(".")
    yield "tag truncated", ".".join([*parts[:4], parts[4][:-6]])
    yield "empty ciphertext", ".".join([*parts[:3], "", parts[4]])
    yield "bare claims", encrypt_jwe(json.dumps(h.claims("query.jwt")), public(enc_key), "ECDH-ES+A128KW",
                                     "A128CBC-HS256")
    yield "attacker inner signature", encrypt_jwe(sign_jws(h.claims("query.jwt"), KEYS.attacker, "ES256"),
                                                  public(enc_key), "ECDH-ES+A128KW", "A128CBC-HS256")
    yield "double encryption", encrypt_jwe(good, public(enc_key), "ECDH-ES+A128KW", "A128CBC-HS256")


@pytest.mark.parametrize("case", [c for c, _ in _hostile_jwes(Harness(encrypted=True))])
def test_hostile_encrypted_responses(case: str) -> None:
    h = Harness(encrypted=True)
    token = dict(_hostile_jwes(h))[case]
    with bounded(seconds=0.2, megabytes=16.0):
        h.rejects(h.callback("query.jwt", {"response": token}), state="s-query.jwt")


# --- token responses, discovery documents, server JWKS (A70, A69 client side) --------------------------------------


def _result(h: Harness) -> AuthorizationResult:
    flow = h.core.store.take("s-query", NOW)
    assert flow is not None
    return AuthorizationResult(code="c-1", flow=flow, response_mode="query")


@given(st.one_of(JSON_VALUE.map(lambda v: json.dumps(v).encode()), st.binary(max_size=300)),
       st.sampled_from([200, 201, 400, 401, 500, 302]))
def test_hostile_token_responses(body: bytes, status: int) -> None:
    h = Harness()
    answer = HttpResponse(status, {"content-type": "application/json"}, body)
    try:
        tokens = h.drive(h.core.exchange_code(_result(h)), answer)
    except ClientError:
        return
    assert isinstance(tokens.access_token, str) and tokens.access_token
    assert tokens.token_type.lower() == "bearer"
    assert [r.hop for r in h.requests] == ["token"]


@given(JSON_VALUE, st.sampled_from(["issuer", "jwks_uri", "token_endpoint", "authorization_endpoint",
                                    "pushed_authorization_request_endpoint", "response_modes_supported",
                                    "authorization_signing_alg_values_supported"]))
def test_hostile_discovery_documents(value: Any, member: str) -> None:
    doc = {**FakeAS(ISSUER, KEYS, Clock()).metadata, member: value}  # type: ignore[arg-type]
    try:
        md = parse_metadata(json.dumps(doc).encode(), expected_issuer=ISSUER, allow_insecure_http=False)
    except ClientError:
        return
    assert md.issuer == ISSUER
    for url in (md.jwks_uri, md.token_endpoint, md.authorization_endpoint):
        assert url.startswith("https://")


def test_assertion_audience_is_the_issuer_even_for_foreign_endpoints() -> None:
    """A84 (CVE-2025-27370/27371): the token and PAR endpoints on another host; aud stays the issuer string."""
    h = Harness()
    doc = {**h.fake.metadata, "token_endpoint": "https://other-as.example/token",
           "pushed_authorization_request_endpoint": "https://other-as.example/par"}
    md = parse_metadata(json.dumps(doc).encode(), expected_issuer=ISSUER, allow_insecure_http=False)
    auths = [h.core._client_auth(md)[0]["client_assertion"] for _ in range(20)]
    claims = [peek_claims(a) for a in auths]
    assert all(c["aud"] == ISSUER for c in claims)
    assert len({c["jti"] for c in claims}) == 20
    assert all(0 < c["exp"] - NOW <= 60 for c in claims)


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=30))
def test_unknown_kids_refetch_the_server_jwks_at_most_once(kids: list[str]) -> None:
    """A69 (client side): a flood of responses naming unknown kids costs at most one JWKS fetch per interval."""
    h = Harness()
    for i, kid in enumerate(kids):
        mode = JARM_MODES[i % 3]
        h.core.store.put(FlowState(issuer=ISSUER, client_id=CLIENT_ID, state=f"k{i}", nonce=None,
                                   code_verifier="v" * 43, redirect_uri=REDIRECT_URI, response_mode=mode,
                                   scope="a", created_at=NOW, expires_at=NOW + 600))
        token = sign_jws(h.claims(mode, state=f"k{i}"), KEYS.attacker, "ES256", extra_header={"x-kid": kid})
        _head, body, sig = token.split(".")
        forged = f"{segment({'alg': 'ES256', 'kid': kid})}.{body}.{sig}"
        with pytest.raises(ClientError):
            h.drive(h.core.handle_callback(h.callback(mode, {"response": forged}), expected_state=f"k{i}"))
    assert len(h.requests) <= 1 and all(r.hop == "jwks" for r in h.requests)
