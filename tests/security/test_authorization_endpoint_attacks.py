"""Hostile input at the authorization endpoint (attack catalog group Z, A27-A41, and beyond).

Every test pins the error code, the HTTP status and the channel — a redirect only to a registered
``redirect_uri``, otherwise an HTML error page with no ``Location`` — and that nothing changed: no code,
PAR entry, replay mark or interaction was written or consumed (``assert_unchanged``). The expensive classes
(huge values, many parameters, deep JSON) also run within a time and peak-memory budget.

The server suite (tests/server/test_authorization_endpoint.py) covers the spec checklist one requirement at
a time; this file sweeps whole classes of malformed input across every channel a value can arrive by.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from jarmor.jose import JwkSet, b64url_encode, encrypt_jwe
from jarmor.jose.testing import segment
from jarmor.server.accounts import add_user
from tests.kit import ISSUER, REDIRECT, Kit, TestClient
from tests.server.support import (
    assert_error_page,
    assert_json_error,
    assert_redirect_error,
    code_from,
    plain_request,
    push,
)

from .conftest import KitFactory
from .support import FORM, assert_unchanged, bounded, form, no_outbound, raw_request, snapshot

EVIL = "https://evil.example/steal"
URN = "urn:ietf:params:oauth:request_uri:"
# one in-process ASGI round trip (measured in CPU time: see support.bounded), and 16 MiB (catalog default)
BUDGET = {"seconds": 0.5, "megabytes": 16.0}




def page_only(r: httpx.Response, error: str, status: int = 400) -> None:
    """An error page (never a redirect), whatever the status."""
    assert r.status_code == status, f"{r.status_code} {r.headers.get('location')} {r.text[:200]}"
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    if status == 400:
        assert_error_page(r, error)
    else:
        assert f'id="error-code">{error}<' in r.text


# --- A36: redirect_uri manipulation, in every channel ------------------------------------------------------

HOST = "127.0.0.1:9999"
MANIPULATED = [
    REDIRECT + "/",
    REDIRECT + "?",
    REDIRECT + "?x=1",
    REDIRECT + "#",
    REDIRECT + "#frag",
    REDIRECT + "%20",
    REDIRECT + " ",
    " " + REDIRECT,
    REDIRECT + "\t",
    REDIRECT + "\x00",
    REDIRECT + "\r\nSet-Cookie: a=1",
    REDIRECT.upper(),
    "HTTP://" + HOST + "/cb",
    "http://127.0.0.1:09999/cb",
    f"http://{HOST}/CB",
    f"http://{HOST}/cb/../cb",
    f"http://{HOST}/cb/%2e%2e/cb",
    f"http://{HOST}/cb..;/x",
    f"http://{HOST}/%63b",
    f"http://{HOST}//cb",
    f"http://{HOST}\\cb",
    f"http://{HOST}@evil.example/cb",
    f"http://evil.example@{HOST}/cb",
    "http://127.0.0.1:9999.evil.example/cb",
    f"https://evil.example/http://{HOST}/cb",
    f"javascript:alert(1)//http://{HOST}/cb",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://[::ffff:127.0.0.1]:9999/cb",
    "http://2130706433:9999/cb",
    "http://0x7f.0.0.1:9999/cb",
    "http://localhost:9999/cb",
    # Unicode confusables: each is a different string; none may be normalised into the registered one
    f"http://{HOST}/\u0441b",  # Cyrillic es
    f"http://{HOST}/cb\u200b",  # zero-width space
    f"http://{HOST}/cb\ufeff",  # byte order mark
    f"http://{HOST}/\uff43b",  # fullwidth c (NFKC folds it to "c")
    "http://\uff11\uff12\uff17.0.0.1:9999/cb",  # fullwidth digits
    "\uff48ttp://" + HOST + "/cb",
    f"http://{HOST}/cb\u202e",  # right-to-left override
    f"http://{HOST}\u2024evil.example/cb",  # one dot leader
    "https://[" + "1:" * 10000 + "]/cb",  # oauthlib CVE-2022-36087 shape (a regex DoS elsewhere)
]
IDS = [f"{i:02d}-{u[:40]!r}" for i, u in enumerate(MANIPULATED)]


@pytest.mark.parametrize("uri", MANIPULATED, ids=IDS)
async def test_redirect_uri_manipulation_never_redirects(kit: Kit, base: TestClient, uri: str) -> None:
    """A36: exact string match only; a near miss is an error page (JSON at PAR), never a redirect — whether
    it arrives in the query, a POST body, a signed request object or a pushed request."""
    ro, _ = base.request_object(redirect_uri=uri)
    plain = plain_request(base, redirect_uri=uri)[0]
    channels = [
        ("GET", "/authorize", plain),
        ("POST", "/authorize", plain),
        ("POST", "/authorize", {"client_id": base.client_id, "request": ro}),
        ("POST", "/par", {**plain, **base.auth_form()}),
    ]
    for method, path, params in channels:
        before = snapshot(kit)
        with bounded(**BUDGET):
            if method == "GET":
                r = await raw_request(kit, "GET", path, query=form(params))
            else:
                r = await raw_request(kit, "POST", path, body=form(params), headers=FORM)
        if path == "/par":
            assert_json_error(r, "invalid_request")
            assert_unchanged(kit, before, allow=("assertion-jti",))  # the client did authenticate
        else:
            page_only(r, "invalid_request")
            assert_unchanged(kit, before)


# --- A37: no error path is an open redirector ---------------------------------------------------------------


def _evil_cases(client: TestClient) -> list[tuple[str, dict[str, str], str]]:
    good, _ = plain_request(client, redirect_uri=EVIL)
    unsigned = f"{segment({'alg': 'none'})}.{segment({'redirect_uri': EVIL, 'client_id': client.client_id})}."
    return [
        ("unknown client", {**good, "client_id": "nobody"}, "invalid_request"),
        ("missing client_id", {k: v for k, v in good.items() if k != "client_id"}, "invalid_request"),
        ("bad response_type", {**good, "response_type": "bogus"}, "invalid_request"),
        ("bad scope", {**good, "scope": "admin"}, "invalid_request"),
        ("no pkce", {k: v for k, v in good.items() if k != "code_challenge"}, "invalid_request"),
        ("plain pkce", {**good, "code_challenge_method": "plain"}, "invalid_request"),
        ("bad prompt", {**good, "prompt": "bogus"}, "invalid_request"),
        ("bad response_mode", {**good, "response_mode": "web_message"}, "invalid_request"),
        ("garbage request", {"client_id": client.client_id, "redirect_uri": EVIL, "request": "x.y.z"},
         "invalid_request_object"),
        ("unsigned request object naming evil", {"client_id": client.client_id, "request": unsigned},
         "invalid_request_object"),
        ("expired request_uri", {"client_id": client.client_id, "redirect_uri": EVIL,
                                 "request_uri": URN + "expired"}, "invalid_request_uri"),
        ("hosted request_uri", {"client_id": client.client_id, "redirect_uri": EVIL,
                                "request_uri": EVIL + "/ro.jwt"}, "request_uri_not_supported"),
        ("request and request_uri", {**good, "request": "a.b.c", "request_uri": URN + "x"}, "invalid_request"),
        ("state too long", {**good, "state": "s" * 5000}, "invalid_request"),
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_no_error_redirects_to_an_unregistered_uri(kit: Kit, base: TestClient, method: str) -> None:
    """A37 (Authlib CVE-2026-41479 / -44681): with redirect_uri=evil, every failure is a page."""
    for case, params, error in _evil_cases(base):
        before = snapshot(kit)
        if method == "GET":
            r = await kit.authorize(params)
        else:
            r = await kit.http.post("/authorize", data=params)
        if "location" in r.headers:  # rule R: only the registered URI may receive it (here: the only one)
            assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT + "?"), case
            assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == [error], case
        else:
            assert r.status_code == 400, case
            assert_error_page(r, error)
        assert EVIL not in r.headers.get("location", "") and EVIL not in r.text
        assert_unchanged(kit, before)


async def test_errors_with_a_registered_uri_go_only_there(kit: Kit, base: TestClient) -> None:
    """The same failures with the registered URI are redirected — to exactly that URI, with iss (RFC 9207)."""
    for params in (
        plain_request(base, scope="admin")[0],
        plain_request(base, code_challenge_method="plain")[0],
        plain_request(base, response_type="token")[0],
    ):
        r = await kit.authorize(params)
        assert r.status_code == 303
        assert r.headers["location"].split("?", 1)[0] == REDIRECT


# --- parameter injection into the redirect ------------------------------------------------------------------

INJECTING_STATES = [
    "x&iss=https%3A%2F%2Fevil.example&code=forged",
    "x&iss=https://evil.example&code=forged#frag",
    'x"><script>alert(1)</script>',
    "x\r\nLocation: https://evil.example",
    "x%26code%3Dforged",
    "\u0000",
]


@pytest.mark.parametrize("state", INJECTING_STATES[:5], ids=range(5))
@pytest.mark.parametrize("mode", ["query", "fragment", "form_post"])
async def test_state_cannot_inject_response_parameters(kit: Kit, base: TestClient, state: str, mode: str) -> None:
    """The state is returned exactly and encoded: no second iss, code or error can be smuggled in it."""
    params, _ = plain_request(base, state=state, response_mode=mode)
    r = await kit.authorize(params)
    if mode == "form_post":
        assert r.status_code == 200
        fields = re.findall(r'<input type="hidden" name="([^"]*)"', r.text)
        assert sorted(fields) == ["code", "iss", "state"], fields
        assert "<script>alert" not in r.text
        got = code_from(kit, base, r)
    else:
        loc = r.headers["location"]
        part = urlsplit(loc).fragment if mode == "fragment" else urlsplit(loc).query
        raw = parse_qs(part, keep_blank_values=True)
        assert set(raw) == {"code", "iss", "state"}, raw
        assert all(len(v) == 1 for v in raw.values()), raw
        got = {k: v[0] for k, v in raw.items()}
    assert got["state"] == state and got["iss"] == ISSUER


async def test_state_injection_on_the_error_path(kit: Kit, base: TestClient) -> None:
    state = INJECTING_STATES[0]
    params, _ = plain_request(base, state=state, scope="admin")
    r = await kit.authorize(params)
    raw = parse_qs(urlsplit(r.headers["location"]).query, keep_blank_values=True)
    assert set(raw) <= {"error", "error_description", "iss", "state"} and all(len(v) == 1 for v in raw.values())
    assert raw["state"] == [state] and raw["iss"] == [ISSUER] and "code" not in raw


async def test_nul_state_is_refused(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, state=INJECTING_STATES[5])
    before = snapshot(kit)
    page_only(await kit.authorize(params), "invalid_request")
    assert_unchanged(kit, before)


# --- A33 and beyond: hostile query encodings ---------------------------------------------------------------


def _query(client: TestClient, extra: str) -> bytes:
    params, _ = plain_request(client)
    return ("&".join(f"{k}={quote(v, safe='')}" for k, v in params.items()) + extra).encode()


HOSTILE_QUERIES = [
    ("NUL in a value", "&nonce=%00", "invalid_request", 400),
    ("NUL in a name", "&no%00nce=x", "invalid_request", 400),
    ("invalid UTF-8", "&nonce=%ff", "invalid_request", 400),
    ("overlong UTF-8", "&nonce=%C0%AF", "invalid_request", 400),
    ("UTF-8 encoded surrogate", "&nonce=%ED%A0%80", "invalid_request", 400),
    ("repeated state", "&state=a", "invalid_request", 400),
    ("repeated client_id with another case of value", "&client_id=X", "invalid_request", 400),
    ("repeated empty value", "&response_type=", "invalid_request", 400),
    ("129 parameters", "".join(f"&p{i}=1" for i in range(121)), "invalid_request", 400),
    ("10,000 parameters", "&" * 10_000 + "x=1", "invalid_request", 400),
    ("query over 64 KiB", "&pad=" + "a" * (64 * 1024), "invalid_request", 413),
]


@pytest.mark.parametrize(("case", "extra", "error", "status"), HOSTILE_QUERIES, ids=[c[0] for c in HOSTILE_QUERIES])
async def test_hostile_query_strings(
    kit: Kit, base: TestClient, case: str, extra: str, error: str, status: int
) -> None:
    """RFC 6749 §3.1 and the parser's limits: a page (nothing is trusted yet), bounded, nothing stored."""
    before = snapshot(kit)
    with bounded(**BUDGET):
        r = await raw_request(kit, "GET", "/authorize", query=_query(base, extra))
    page_only(r, error, status)
    assert_unchanged(kit, before)


async def test_semicolons_do_not_separate_parameters(kit: Kit, base: TestClient) -> None:
    """CVE-2021-23336 (web cache poisoning): only ``&`` separates; ``a=1;client_id=x`` is one value."""
    params, _ = plain_request(base)
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if k != "client_id")
    r = await raw_request(kit, "GET", "/authorize", query=f"x=1;client_id={base.client_id}&{query}".encode())
    page_only(r, "invalid_request")


# --- request objects of hostile size and shape --------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE_PAYLOADS = [
    ("deep array", '{"a":' + _nested(20_000) + "}"),
    ("5000-digit number", '{"exp":' + "9" * 5000 + "}"),
    ("NaN", '{"exp":NaN}'),
    ("duplicate members", '{"client_id":"a","client_id":"b"}'),
    ("lone surrogate", '{"state":"\\ud800"}'),
    ("many members", "{" + ",".join(f'"k{i}":{i}' for i in range(3000)) + "}"),
    ("not an object", "[1,2,3]"),
]


@pytest.mark.parametrize(("case", "payload"), HOSTILE_PAYLOADS, ids=[c[0] for c in HOSTILE_PAYLOADS])
async def test_hostile_request_object_payloads_are_bounded(
    kit: Kit, base: TestClient, case: str, payload: str
) -> None:
    """A22-A26 at the endpoint: refused as invalid_request_object within budget, never a 500.

    The payload cannot be peeked, so the only registered URI receives the error (rule R).
    """
    token = f"{segment({'alg': 'ES256', 'kid': base.key.kid})}.{segment(payload)}.{b64url_encode(b'x' * 64)}"
    before = snapshot(kit)
    body = form({"client_id": base.client_id, "request": token})
    with bounded(**BUDGET):
        r = await raw_request(kit, "POST", "/authorize", body=body, headers=FORM)
    assert_redirect_error(kit, r, "invalid_request_object", state=None)
    assert_unchanged(kit, before)


async def test_oversized_request_parameter(kit: Kit, base: TestClient) -> None:
    """A25: a 1 MiB ``request`` is refused by size before any parsing: 413 page, bounded."""
    big = form({"client_id": base.client_id, "request": "a" * (1 << 20)})
    before = snapshot(kit)
    with bounded(**BUDGET):
        r = await raw_request(kit, "POST", "/authorize", body=big, headers=FORM)
    page_only(r, "invalid_request", 413)
    query = form({"client_id": base.client_id, "request": "a" * 60_000 + ".b.c"})
    with bounded(**BUDGET):
        r = await raw_request(kit, "GET", "/authorize", query=query)
    assert_redirect_error(kit, r, "invalid_request_object", state=None)
    assert_unchanged(kit, before)


async def test_client_assertion_presented_as_request_object(kit: Kit, base: TestClient) -> None:
    """A21(b): a genuine client assertion is not a request object (no client_id, no response_type)."""
    r = await kit.authorize({"client_id": base.client_id, "request": base.assertion()})
    assert_redirect_error(kit, r, "invalid_request_object", state=None)


async def test_doubly_encrypted_request_object(kit: Kit, base: TestClient) -> None:
    """A20(f): JWE(JWE(JWS)) is refused: the plaintext of the outer JWE must be a JWS."""
    ro, _ = base.request_object()
    jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
    key = next(k for k in jwks if k.use == "enc" and k.alg == "RSA-OAEP-256")
    inner = encrypt_jwe(ro, key, "RSA-OAEP-256", "A256GCM", cty="JWT")
    outer = encrypt_jwe(inner, key, "RSA-OAEP-256", "A256GCM", cty="JWT")
    before = snapshot(kit)
    r = await kit.authorize({"client_id": base.client_id, "request": outer})
    assert_redirect_error(kit, r, "invalid_request_object", state=None)
    assert_unchanged(kit, before)


# --- methods, content types, lengths -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405(kit: Kit, base: TestClient, method: str) -> None:
    before = snapshot(kit)
    r = await kit.http.request(method, "/authorize", params=plain_request(base)[0])
    assert r.status_code == 405 and "location" not in r.headers
    assert_unchanged(kit, before)


@pytest.mark.parametrize(
    "ctype", ["application/json", "multipart/form-data; boundary=x", "text/plain", "", "application/x-www-form"]
)
async def test_post_needs_a_form_body(kit: Kit, base: TestClient, ctype: str) -> None:
    params, _ = plain_request(base)
    body = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items()).encode()
    before = snapshot(kit)
    r = await raw_request(kit, "POST", "/authorize", body=body, headers={"content-type": ctype})
    page_only(r, "invalid_request")
    assert_unchanged(kit, before)


async def test_post_ignores_the_query_string(kit: Kit, base: TestClient) -> None:
    """A POST is read from its body only: parameters in its URL are not merged in (no mixing of sources)."""
    params, _ = plain_request(base)
    r = await kit.http.post("/authorize", params=params, data={"x": "1"})
    page_only(r, "invalid_request")
    assert "client_id is required" in r.text


@pytest.mark.parametrize(("length", "status"), [("abc", 400), ("99999999999999999999999", 413), ("1e9", 400)])
async def test_lying_content_length(kit: Kit, base: TestClient, length: str, status: int) -> None:
    body = b"client_id=" + base.client_id.encode()
    r = await raw_request(
        kit, "POST", "/authorize", body=body,
        headers={"content-type": "application/x-www-form-urlencoded", "content-length": length},
    )
    page_only(r, "invalid_request", status)


async def test_streamed_body_over_the_limit_is_cut_off(kit: Kit, base: TestClient) -> None:
    """A body without Content-Length is read in chunks and refused once it passes 64 KiB (bounded memory)."""

    async def chunks() -> Any:
        yield b"client_id=" + base.client_id.encode() + b"&pad="
        for _ in range(200):
            yield b"a" * 8192

    with bounded(seconds=2.0, megabytes=8.0):
        r = await kit.http.post(
            "/authorize", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
        )
    page_only(r, "invalid_request", 413)


# --- A42/A35 at /authorize: request_uri guessing -------------------------------------------------------------


async def test_request_uri_guessing_never_consumes_the_real_entry(kit: Kit, base: TestClient) -> None:
    """A35: near misses of a live URN are unknown (invalid_request_uri page); the entry survives them all."""
    uri, ctx = await push(kit, base)
    ref = uri.removeprefix(URN)
    guesses = [
        URN.upper() + ref,
        uri + " ",
        " " + uri,
        uri + "\x00",
        uri[:-1],
        uri + "A",
        URN + ref.swapcase(),
        URN + "../" + ref,
        URN + ref + "/..",
        URN + "x" * 10_000,
        "urn:ietf:params:oauth:request-uri:" + ref,
        URN + ref.replace("-", "+").replace("_", "/") + "=",
    ]
    before = snapshot(kit)
    for guess in guesses:
        r = await kit.authorize({"client_id": base.client_id, "request_uri": guess})
        assert r.status_code == 400 and "location" not in r.headers, guess
    assert_unchanged(kit, before)
    params = code_from(kit, base, await kit.authorize({"client_id": base.client_id, "request_uri": uri}))
    assert params["state"] == ctx["state"]


async def test_hosted_request_uri_makes_no_outbound_request(
    kit: Kit, base: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A34: with request objects by reference disabled (the default), nothing is ever fetched."""
    with no_outbound(monkeypatch):
        for uri in ("https://client.example/ro", "http://169.254.169.254/", "http://[::1]/", "gopher://x/"):
            r = await kit.authorize({"client_id": base.client_id, "request_uri": uri})
            page_only(r, "request_uri_not_supported")


# --- the interaction (login and consent) ---------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


async def _start_interaction(kit: Kit, client: TestClient) -> tuple[str, str, dict[str, str]]:
    """Start a flow; return (login action, login csrf token, cookies)."""
    r = await kit.authorize(plain_request(client)[0])
    assert r.status_code == 200, r.text[:300]
    action = re.search(r'action="([^"]+)"', r.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert action and csrf
    return action.group(1), csrf.group(1), dict(kit.http.cookies)


@pytest.fixture
async def interactive(make: KitFactory) -> Kit:
    kit = await make(auto_approve=None)
    await add_user(kit.store.users, "alice", PASSWORD)
    return kit


async def test_login_needs_the_cookie_and_the_token_of_this_interaction(interactive: Kit) -> None:
    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    action_a, csrf_a, _ = await _start_interaction(kit, client)
    action_b, csrf_b, _ = await _start_interaction(kit, client)  # the cookie now names interaction B
    form = {"username": "alice", "password": PASSWORD}
    before = snapshot(kit)
    for action, csrf in ((action_a, csrf_a), (action_b, csrf_a), (action_b, ""), (action_b, csrf_b + "x"),
                         ("/interaction/guessed-id/login", csrf_b)):
        r = await kit.http.post(action, data={**form, "csrf_token": csrf})
        page_only(r, "invalid_request")
    kit.http.cookies.clear()
    page_only(await kit.http.post(action_b, data={**form, "csrf_token": csrf_b}), "invalid_request")
    assert_unchanged(kit, before)


async def test_consent_stage_is_bound(interactive: Kit) -> None:
    """The login token cannot approve, consent needs a signed-in subject, and an approval is single use."""
    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    action, csrf, _ = await _start_interaction(kit, client)
    consent = action.replace("/login", "/consent")
    page_only(await kit.http.post(consent, data={"csrf_token": csrf, "decision": "approve"}), "invalid_request")
    r = await kit.http.post(action, data={"csrf_token": csrf, "username": "alice", "password": PASSWORD})
    assert r.status_code == 303
    r = await kit.http.get(r.headers["location"])
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert token
    r = await kit.http.post(consent, data={"csrf_token": token.group(1), "decision": "approve"})
    code_from(kit, client, r)
    before = snapshot(kit)
    r = await kit.http.post(consent, data={"csrf_token": token.group(1), "decision": "approve"})
    page_only(r, "invalid_request")
    assert_unchanged(kit, before)


async def test_password_guessing_ends_the_interaction(interactive: Kit) -> None:
    """Five wrong passwords: access_denied to the registered URI; the interaction is gone."""
    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    action, csrf, _ = await _start_interaction(kit, client)
    for _ in range(4):
        r = await kit.http.post(action, data={"csrf_token": csrf, "username": "alice", "password": "guess"})
        assert r.status_code == 401
    r = await kit.http.post(action, data={"csrf_token": csrf, "username": "alice", "password": "guess"})
    assert_redirect_error(kit, r, "access_denied")
    r = await kit.http.post(action, data={"csrf_token": csrf, "username": "alice", "password": PASSWORD})
    page_only(r, "invalid_request")


async def test_hostile_login_form(interactive: Kit) -> None:
    """Huge or malformed credentials are a wrong password (401), never a crash; NUL is refused by the parser."""
    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    action, csrf, _ = await _start_interaction(kit, client)
    for username, password in (("alice", "p" * 60_000), ("a" * 60_000, "x"), ("\u202ealice", PASSWORD)):
        with bounded(seconds=2.0, megabytes=16.0):
            r = await kit.http.post(action, data={"csrf_token": csrf, "username": username, "password": password})
        assert r.status_code == 401, r.text[:200]
    r = await kit.http.post(action, data={"csrf_token": csrf, "username": "alice\x00", "password": PASSWORD})
    page_only(r, "invalid_request")
