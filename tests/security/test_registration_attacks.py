"""Hostile dynamic client registration (attack catalog group R, A61-A68, and beyond).

A refusal is JSON 400 (``invalid_client_metadata`` / ``invalid_redirect_uri``; 401 ``invalid_token`` without
the initial access token, 413 for an oversized body) and stores nothing; registration never fetches
anything. Huge and deeply nested documents are refused within a CPU and peak-memory budget.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jarmor.jose import generate_jwk
from jarmor.protocol.clients import ServerCapabilities, validate_client_metadata
from jarmor.protocol.errors import InvalidClientMetadata
from jarmor.protocol.policy import Policy
from tests.kit import REDIRECT, Kit, pkce_pair
from tests.server.support import assert_json_error

from .support import assert_unchanged, bounded, no_outbound, raw_request, snapshot

TOKEN = {"authorization": "Bearer initial-token"}
JSON = {"content-type": "application/json", **TOKEN}
BUDGET = {"seconds": 0.5, "megabytes": 16.0}


def meta(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [generate_jwk("ES256").public_dict()]},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def register_raw(kit: Kit, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return await raw_request(kit, "POST", "/register", body=body, headers=JSON if headers is None else headers)


async def refused(kit: Kit, body: bytes, error: str = "invalid_client_metadata", status: int = 400) -> dict[str, Any]:
    before = snapshot(kit)
    with bounded(**BUDGET):
        r = await register_raw(kit, body)
    got = assert_json_error(r, error, status)
    assert_unchanged(kit, before)
    return got


# --- redirect URIs that could not travel in a Location header (regression) --------------------------------------

UNSENDABLE = [
    "https://c1.example/cb\r\nSet-Cookie: a=1",
    "https://c1.example/cb\n",
    "https://c1.example/cb\t",
    "https://c1.example/c\u0431",  # non-ASCII: latin-1 header encoding raised UnicodeEncodeError
    "https://c1.example/cb\u2028",
    " https://c1.example/cb",
    "https://c1.example/cb ",
    "https://c1.example/c b",
    "https://c1.example/cb\x00",
    "https://c1.example/cb\x7f",
    "https://c1.example\\@evil.example/cb",  # browsers read the host as c1.example; urlsplit as evil.example
    "https://c1.example@evil.example/cb",  # user information: the consent page would show c1.example
    "https://user:pass@c1.example/cb",
    "https://*.c1.example/cb",
    "https://c1.example:99999/cb",
    "https://c1.example:-1/cb",
    "https://[::1/cb",
    "https://[fe80::1/cb",
]


@pytest.mark.parametrize("uri", UNSENDABLE, ids=[repr(u)[:40] for u in UNSENDABLE])
async def test_unsendable_redirect_uris_are_refused(kit: Kit, uri: str) -> None:
    """Regression: these registered fine, then /authorize failed building the Location header (HTTP 500)."""
    await refused(kit, json.dumps(meta(redirect_uris=[uri])).encode(), "invalid_redirect_uri")


async def test_a_registered_redirect_uri_always_makes_a_valid_response(kit: Kit) -> None:
    """The end-to-end property behind the regression: whatever registration accepts, /authorize can send."""
    accepted = ["https://c1.example/cb?x=1&y=%20", "https://c1.example/%E2%82%AC", "http://[::1]:8080/cb",
                "com.example.app:/cb", "https://xn--80ak6aa92e.example/cb", "https://c1.example/a;b=c/*"]
    for uri in accepted:
        r = await kit.http.post("/register", json=meta(redirect_uris=[uri], token_endpoint_auth_method="none",
                                                       jwks=None), headers=TOKEN)
        assert r.status_code == 201, (uri, r.text)
        client_id = r.json()["client_id"]
        _verifier, challenge = pkce_pair()
        r = await kit.authorize({"client_id": client_id, "response_type": "code", "redirect_uri": uri,
                                 "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"})
        assert r.status_code == 303 and r.headers["location"].startswith(uri), (uri, r.status_code)


# --- A68: size, depth and encoding -------------------------------------------------------------------------------


def _deep(depth: int) -> bytes:
    return b'{"redirect_uris":' + b"[" * depth + b"]" * depth + b"}"


HOSTILE_BODIES = [
    ("deep arrays", _deep(30_000)),
    ("deep objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    ("4,500 members", ('{"grant_types":"x",' + ",".join(f'"k{i}":{i}' for i in range(4500)) + "}").encode()),
    ("10,000 redirect URIs", json.dumps(meta(redirect_uris=[f"https://c{i}.example/cb" for i in range(2000)])).encode()),
    ("5000-digit number", b'{"client_name":' + b"9" * 5000 + b"}"),
    ("NaN", b'{"client_name":NaN}'),
    ("Infinity", b'{"risk_tier":Infinity}'),
    ("lone surrogate", b'{"client_name":"\\ud800"}'),
    ("invalid UTF-8", b'{"client_name":"\xff"}'),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"redirect_uris":[]}'),
    ("UTF-16", json.dumps(meta()).encode("utf-16")),
    ("trailing garbage", json.dumps(meta()).encode() + b"x"),
    ("two documents", json.dumps(meta()).encode() * 2),
    ("duplicate member", b'{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://b.example/cb"]}'),
    ("empty", b""),
    ("null", b"null"),
    ("array", b"[]"),
]


@pytest.mark.parametrize(("case", "body"), HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES])
async def test_hostile_documents_are_refused_within_budget(kit: Kit, case: str, body: bytes) -> None:
    assert len(body) <= 64 * 1024, "the document must pass the size limit to reach the parser"
    await refused(kit, body)


async def test_oversized_document_is_413_without_buffering(kit: Kit) -> None:
    body = json.dumps(meta(client_name="x" * (1 << 20))).encode()
    await refused(kit, body, "invalid_request", 413)


@pytest.mark.parametrize(
    ("headers", "error", "status"),
    [
        ({"content-type": "application/json"}, "invalid_token", 401),
        ({**JSON, "authorization": "Bearer initial-token "}, None, 201),  # surrounding space is not the token
        ({**JSON, "authorization": "bearer initial-token"}, None, 201),
        ({**JSON, "authorization": "Bearer initial-tokenX"}, "invalid_token", 401),
        ({**JSON, "authorization": "Bearer " + "x" * 10_000}, "invalid_token", 401),
        ({**JSON, "authorization": "Basic aW5pdGlhbC10b2tlbg=="}, "invalid_token", 401),
        ({**TOKEN, "content-type": "text/json"}, "invalid_client_metadata", 400),
        ({**TOKEN, "content-type": "application/x-www-form-urlencoded"}, "invalid_client_metadata", 400),
        ({**TOKEN}, "invalid_client_metadata", 400),
    ],
    ids=["no token", "token+space", "lower-case scheme", "token+X", "huge token", "basic", "text/json", "form",
         "no type"],
)
async def test_access_token_and_content_type(kit: Kit, headers: dict[str, str], error: str | None, status: int) -> None:
    before = snapshot(kit)
    r = await register_raw(kit, json.dumps(meta()).encode(), headers)
    if error is None:
        assert r.status_code == status, r.text
        return
    assert_json_error(r, error, status)
    assert_unchanged(kit, before)


# --- A62 / A63: keys --------------------------------------------------------------------------------------------


def _jwks_cases() -> list[tuple[str, Any]]:
    ec = generate_jwk("ES256", kid="k").public_dict()
    return [
        ("33 keys", {"keys": [generate_jwk("ES256", kid=f"k{i}").public_dict() for i in range(33)]}),
        ("duplicate kid", {"keys": [ec, {**generate_jwk("ES256").public_dict(), "kid": "k"}]}),
        ("kid not a string", {"keys": [{**ec, "kid": 5}]}),
        ("kid 10 KB", {"keys": [{**ec, "kid": "k" * 10_000}]}),
        ("EC point (0, 0)", {"keys": [{**ec, "x": "A" * 43, "y": "A" * 43}]}),
        ("EC x of 33 bytes", {"keys": [{**ec, "x": "A" * 44}]}),
        ("RSA e = 1", {"keys": [{"kty": "RSA", "n": "q" * 342, "e": "AQ"}]}),
        ("private d", {"keys": [{**ec, "d": "A" * 43}]}),
        ("symmetric", {"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}),
        ("keys not a list", {"keys": {"0": ec}}),
        ("keys missing", {}),
        ("jwks a string", json.dumps({"keys": [ec]})),
    ]


@pytest.mark.parametrize(("case", "jwks"), _jwks_cases(), ids=[c[0] for c in _jwks_cases()])
async def test_hostile_key_sets(kit: Kit, case: str, jwks: Any) -> None:
    await refused(kit, json.dumps(meta(jwks=jwks)).encode())


# --- A69 (registration side) / A67: references are checked statically, never fetched -------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://client.example/jwks",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/jwks",
        "https://[fd00::1]/jwks",
        "https://[::ffff:10.0.0.1]/jwks",
        "file:///etc/passwd",
        "data:application/json,{}",
        "ftp://client.example/jwks",
        "https://user:pw@client.example/jwks",
        "https://client.example/jwks#frag",
        "https://client.example/\u0431",
        "https://" + "a" * 3000 + ".example/jwks",
    ],
)
async def test_jwks_uri_is_checked_without_fetching(kit: Kit, uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with no_outbound(monkeypatch):
        await refused(kit, json.dumps(meta(jwks=None, jwks_uri=uri)).encode())


async def test_valid_jwks_uri_is_not_fetched_at_registration(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    with no_outbound(monkeypatch):
        r = await kit.http.post("/register", json=meta(jwks=None, jwks_uri="https://client.example/jwks"),
                                headers=TOKEN)
    assert r.status_code == 201, r.text


async def test_request_uris_are_refused_when_not_supported(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    with no_outbound(monkeypatch):
        await refused(kit, json.dumps(meta(request_uris=["https://client.example/ro"])).encode())


# --- A67: identifiers and privileged members are the server's ---------------------------------------------------


async def test_client_supplied_identifiers_and_secrets_are_ignored(kit: Kit) -> None:
    victim = await kit.add_client(risk_tier="baseline")
    victim_record = await kit.store.clients.get(victim.client_id)
    supplied = {
        "client_id": victim.client_id,
        "client_secret": "chosen-secret",
        "client_secret_expires_at": 0,
        "registration_access_token": "chosen-token",
        "registration_client_uri": "https://evil.example/register",
        "client_id_issued_at": 1,
        "disabled": False,
        "software_statement": "eyJhbGciOiJub25lIn0.e30.",
        "secret_hash": "0" * 64,
    }
    r = await kit.http.post("/register", json=meta(token_endpoint_auth_method="client_secret_basic", jwks=None,
                                                   **supplied), headers=TOKEN)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["client_id"] != victim.client_id
    for name in ("client_secret", "registration_access_token", "client_id_issued_at"):
        assert body[name] != supplied[name]
    assert body["registration_client_uri"].startswith(kit.env.issuer)
    assert "software_statement" not in body and "secret_hash" not in body and "disabled" not in body
    assert await kit.store.clients.get(victim.client_id) == victim_record


# --- the protocol-level rules behind the endpoint ----------------------------------------------------------------


def test_default_signing_alg_is_one_the_server_signs_with() -> None:
    """Regression: the JARM / ID token alg defaulted to RS256 even on a server without an RS256 key, so
    stored metadata did not validate again (and a JARM response could not be signed)."""
    server = ServerCapabilities(signing_algs=("ES256", "PS256"), scopes=frozenset({"openid"}))
    body = meta(authorization_signed_response_alg=None)
    out = validate_client_metadata(body, policy=Policy(), server=server)
    assert out["authorization_signed_response_alg"] in server.signing_algs
    assert out["id_token_signed_response_alg"] in server.signing_algs
    assert validate_client_metadata(out, policy=Policy(), server=server) == out
    with pytest.raises(InvalidClientMetadata):
        validate_client_metadata(body, policy=Policy(), server=ServerCapabilities(signing_algs=(), scopes=frozenset()))


async def test_certificate_chains_in_keys_are_dropped(kit: Kit) -> None:
    """A63: ``x5c`` (here garbage) is never used to verify anything; it is not stored or published back."""
    ec = generate_jwk("ES256", kid="k").public_dict()
    r = await kit.http.post("/register", json=meta(jwks={"keys": [{**ec, "x5c": ["not base64!"]}]}), headers=TOKEN)
    assert r.status_code == 201, r.text
    assert all("x5c" not in k for k in r.json()["jwks"]["keys"])


@pytest.mark.parametrize(
    "value",
    ["https://[rp.example/logo.png", "https://rp.example/\x00.png", "https://rp.example/\x1b[31m.png",
     "https://rp.example/{x}.png", "https://rp.example/a|b.png", "https://rp.example/`x`.png"],
)
@pytest.mark.parametrize("name", ["client_uri", "logo_uri", "policy_uri", "tos_uri"])
async def test_display_urls_outside_rfc_3986_are_refused(kit: Kit, name: str, value: str) -> None:
    """Regression: an unbalanced ``[`` in a display URL's authority raised ``ValueError`` from ``urlsplit``
    (HTTP 500), and NUL, escape sequences or ``{|}`` characters were stored and shown to administrators."""
    before = snapshot(kit)
    r = await kit.http.post("/register", json=meta(**{name: value}), headers=TOKEN)
    assert_json_error(r, "invalid_client_metadata")
    assert_unchanged(kit, before)


@pytest.mark.parametrize("uri", [REDIRECT + "?x=<b>", REDIRECT + "?x={y}", REDIRECT + "?a|b", REDIRECT + '?"q"'])
async def test_redirect_uris_with_characters_rfc_3986_excludes_are_refused(kit: Kit, uri: str) -> None:
    """RFC 3986 §2: ``<>"{}|^`` and backquote never appear unencoded in a URI (they could not be sent as
    registered in a ``Location`` header without a browser re-encoding them)."""
    r = await kit.http.post("/register", json=meta(redirect_uris=[uri]), headers=TOKEN)
    assert_json_error(r, "invalid_redirect_uri")
