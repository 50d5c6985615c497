"""Property-based attacks (Hypothesis) on parameter parsing, client metadata and every endpoint in-process.

The properties, for arbitrary bytes, strings, parameter sets and token mutations:

* no input produces an HTTP 5xx or an exception escaping the ASGI app (httpx re-raises app exceptions);
* no redirect goes anywhere but a registered redirect URI;
* no invalid input succeeds: requests are built from a valid one plus mutations labelled *breaking* or
  *neutral*, and a code (or a ``request_uri``) is issued exactly when no breaking mutation was applied;
* a failure changes nothing: no code, PAR entry or replay mark appears (``assert_unchanged``).

Example counts come from the Hypothesis profile (tests/conftest.py): ``ci`` by default, ``HYPOTHESIS_PROFILE=long``
for the long pass recorded in docs/security.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import string
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote_from_bytes, urlencode, urlsplit

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from jarmor.jose import sign_jws
from jarmor.protocol import errors
from jarmor.protocol.clients import Client, ServerCapabilities, validate_client_metadata
from jarmor.protocol.params import MAX_PARAMETERS, parse_parameters
from jarmor.protocol.policy import Policy
from jarmor.protocol.vocabulary import RESPONSE_MODES
from tests.kit import ASSERTION_TYPE, ISSUER, REDIRECT, Kit, TestClient, make_kit, pkce_pair

from .strategies import JSON_LEAF, JSON_VALUE, structural_mutations
from .support import assert_unchanged, snapshot

T = TypeVar("T")
KNOWN_SCOPES = {"openid", "profile", "email", "offline_access"}
OK_STATUSES = {200, 201, 303, 400, 401, 403, 404, 405, 413}
AUTH_NAMESPACES = ("assertion-jti",)


# --- the world: one in-process server for the whole module, driven by one event loop ------------------------


@dataclass
class World:
    runner: asyncio.Runner
    kit: Kit
    client: TestClient  # baseline, private_key_jwt, one redirect URI, every response mode
    machine: TestClient  # client_credentials only

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    runner = asyncio.Runner()
    kit = runner.run(make_kit(reuse_server_keys=True))
    client = runner.run(kit.add_client(risk_tier="baseline"))
    machine = runner.run(kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=None))
    try:
        yield World(runner, kit, client, machine)
    finally:
        runner.run(kit.http.aclose())
        runner.close()


def no_server_error(r: httpx.Response) -> None:
    assert r.status_code in OK_STATUSES, f"{r.status_code} {r.text[:300]}"
    location = r.headers.get("location")
    if location is not None:
        assert location.startswith((REDIRECT + "?", REDIRECT + "#")), location


def issued_code(world: World, r: httpx.Response) -> str | None:
    """The code an authorization response delivers (query, fragment, form_post, or inside JARM), if any."""
    params: dict[str, str] = {}
    if r.status_code == 303:
        parts = urlsplit(r.headers["location"])
        params = dict(parse_qsl(parts.fragment or parts.query))
    elif r.status_code == 200 and "<form" in r.text:
        params = dict(re.findall(r'name="([^"]*)" value="([^"]*)"', r.text))
    if "response" in params:
        params = world.kit.jarm(world.client, params["response"])
    code = params.get("code")
    return code if isinstance(code, str) else None


# --- parameter parsing ---------------------------------------------------------------------------------------


@given(st.binary(max_size=2048))
def test_parse_parameters_never_crashes_on_bytes(raw: bytes) -> None:
    try:
        out = parse_parameters(raw)
    except errors.OAuthError as err:
        assert err.status in (400, 413)
        return
    assert all(isinstance(k, str) and isinstance(v, str) and v and "\x00" not in k + v for k, v in out.items())


@given(st.text(max_size=2048))
def test_parse_parameters_never_crashes_on_text(raw: str) -> None:
    try:
        parse_parameters(raw)
    except errors.OAuthError as err:
        assert err.status in (400, 413)


NAME = st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s)
VALUE = st.text(min_size=1, max_size=100).filter(lambda s: "\x00" not in s)


@given(st.dictionaries(NAME, VALUE, max_size=MAX_PARAMETERS))
def test_parse_parameters_round_trips(params: dict[str, str]) -> None:
    assert parse_parameters(urlencode(params)) == params
    assert parse_parameters(urlencode(params).encode()) == params


@given(st.dictionaries(NAME, VALUE, min_size=1, max_size=20), st.data())
def test_repeated_parameters_are_always_refused(params: dict[str, str], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(params)))
    pairs = [*params.items(), (name, data.draw(st.text(max_size=10)))]
    pairs = data.draw(st.permutations(pairs))
    with pytest.raises(errors.InvalidRequest):
        parse_parameters(urlencode(pairs))


# --- client metadata -----------------------------------------------------------------------------------------

META_NAMES = [
    "redirect_uris", "token_endpoint_auth_method", "jwks", "jwks_uri", "grant_types", "response_types",
    "response_modes", "scope", "risk_tier", "client_name", "contacts", "request_object_signing_alg",
    "authorization_signed_response_alg", "id_token_signed_response_alg", "token_endpoint_auth_signing_alg",
    "require_signed_request_object", "require_pushed_authorization_requests", "client_kind",
    "request_object_encryption_alg", "authorization_encrypted_response_alg", "request_uris", "client_id",
]
METADATA = st.dictionaries(st.one_of(st.sampled_from(META_NAMES), st.text(max_size=12)), JSON_VALUE, max_size=10)
SERVER = ServerCapabilities(signing_algs=("ES256", "PS256", "RS256", "EdDSA"), scopes=frozenset(KNOWN_SCOPES))


@given(METADATA)
def test_metadata_validation_is_total_and_idempotent(meta: dict[str, Any]) -> None:
    """Only the two registration errors; accepted metadata validates again to itself and loads as a client;
    every accepted redirect URI can travel in a Location header (ASCII, printable, no spaces)."""
    try:
        out = validate_client_metadata(meta, policy=Policy(), server=SERVER)
    except (errors.InvalidClientMetadata, errors.InvalidRedirectUri):
        return
    assert validate_client_metadata(out, policy=Policy(), server=SERVER) == out
    Client.from_metadata("c", out)
    for uri in out.get("redirect_uris", []):
        assert uri.isascii() and uri.isprintable() and " " not in uri


# --- /authorize and /par: a valid request plus labelled mutations --------------------------------------------

JUNK = st.text(max_size=60)
NONEMPTY_JUNK = st.text(min_size=1, max_size=60)
NO_NUL = st.text(min_size=1, max_size=60).filter(lambda s: "\x00" not in s)
PKCE = re.compile(r"[A-Za-z0-9_-]{43}")
PROMPTS = ("none", "login", "consent", "select_account")


def _valid_prompt(v: str) -> bool:
    parts = v.split()
    return all(p in PROMPTS for p in parts) and not ("none" in parts and len(parts) > 1)


# name -> strategy of a value that makes the request invalid (None: the parameter is removed)
BREAKING: dict[str, st.SearchStrategy[str | None]] = {
    "client_id": st.one_of(st.none(), NONEMPTY_JUNK),
    "response_type": st.one_of(st.none(), NONEMPTY_JUNK.filter(lambda v: v != "code")),
    "redirect_uri": NONEMPTY_JUNK.filter(lambda v: v != REDIRECT),
    "scope": st.one_of(st.none(), NONEMPTY_JUNK.filter(lambda v: not v.split() or not set(v.split()) <= KNOWN_SCOPES
                                                       or len(v) > 1000)),
    "code_challenge": st.one_of(st.none(), NONEMPTY_JUNK.filter(lambda v: not PKCE.fullmatch(v))),
    "code_challenge_method": st.one_of(st.none(), NONEMPTY_JUNK.filter(lambda v: v != "S256")),
    "response_mode": NONEMPTY_JUNK.filter(lambda v: v not in RESPONSE_MODES),
    "prompt": NONEMPTY_JUNK.filter(lambda v: not _valid_prompt(v)),
    "max_age": NONEMPTY_JUNK.filter(lambda v: not re.fullmatch(r"[0-9]{1,9}", v)),
    "request": NONEMPTY_JUNK,
    "request_uri": NONEMPTY_JUNK,
    "state": st.text(min_size=2049, max_size=2060).filter(lambda s: "\x00" not in s),
    "nonce": st.text(min_size=513, max_size=520).filter(lambda s: "\x00" not in s),
}
NEUTRAL: dict[str, st.SearchStrategy[str | None]] = {
    "state": st.text(min_size=1, max_size=300).filter(lambda s: "\x00" not in s),
    "nonce": st.text(min_size=1, max_size=300).filter(lambda s: "\x00" not in s),
    "redirect_uri": st.none(),  # the only registered URI is used
    "response_mode": st.sampled_from(RESPONSE_MODES),
    "prompt": st.sampled_from(["login", "consent", "login consent", "select_account", "none"]),
    "max_age": st.from_regex(r"\A[0-9]{1,9}\Z"),
    "login_hint": NO_NUL,
}
UNKNOWN_NAME = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12).filter(
    lambda n: n not in BREAKING and n not in NEUTRAL and n not in ("client_assertion", "client_assertion_type",
                                                                    "client_secret", "ui_locales", "acr_values",
                                                                    "display", "id_token_hint", "resource",
                                                                    "claims", "authorization_details"))


@st.composite
def authorization_requests(draw: st.DrawFn, client_id: str) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """(pairs, broken): a valid plain request, mutated; ``broken`` names the breaking mutations applied
    (parameter -> new value, ``None`` for a removed one; ``"<repeated>"`` for a repeated parameter)."""
    _, challenge = pkce_pair()
    params: dict[str, str | None] = {
        "client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256",
    }
    for name in draw(st.lists(st.sampled_from(sorted(NEUTRAL)), max_size=3, unique=True)):
        params[name] = draw(NEUTRAL[name])
    for _ in range(draw(st.integers(0, 2))):
        params[draw(UNKNOWN_NAME)] = draw(NO_NUL)
    broken: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(sorted(BREAKING)), max_size=2, unique=True)):
        params[name] = broken[name] = draw(BREAKING[name])
    pairs = [(k, v) for k, v in params.items() if v is not None]
    if draw(st.integers(0, 9)) == 0:
        pairs.append(draw(st.sampled_from(pairs)))
        broken["<repeated>"] = True
    return draw(st.permutations(pairs)), broken


def _encode(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()


@given(st.data())
def test_authorize_succeeds_exactly_for_valid_requests(world: World, data: st.DataObject) -> None:
    pairs, broken = data.draw(authorization_requests(world.client.client_id))
    post = data.draw(st.booleans())
    before = snapshot(world.kit)
    if post:
        r = world.run(world.kit.http.post("/authorize", content=_encode(pairs),
                                          headers={"content-type": "application/x-www-form-urlencoded"}))
    else:
        r = world.run(world.kit.http.get("/authorize", params=pairs))
    no_server_error(r)
    code = issued_code(world, r)
    assert (code is not None) == (not broken), (pairs, broken, r.status_code, r.headers.get("location"), r.text[:200])
    if code is None:
        assert_unchanged(world.kit, before)


@given(st.data())
def test_par_succeeds_exactly_for_valid_requests(world: World, data: st.DataObject) -> None:
    """As at /authorize, except that the authenticated client need not repeat its client_id (RFC 9126 §2)."""
    pairs, broken = data.draw(authorization_requests(world.client.client_id))
    if broken.get("client_id", "") is None:
        del broken["client_id"]
    auth = list(world.client.auth_form().items())
    before = snapshot(world.kit)
    r = world.run(world.kit.http.post("/par", content=_encode(pairs + auth),
                                      headers={"content-type": "application/x-www-form-urlencoded"}))
    no_server_error(r)
    assert "location" not in r.headers
    assert (r.status_code == 201) == (not broken), (pairs, broken, r.text)
    if r.status_code != 201:
        assert r.headers["content-type"].startswith("application/json")
        assert_unchanged(world.kit, before, allow=AUTH_NAMESPACES)


@given(st.binary(max_size=1024), st.sampled_from(["GET", "POST"]),
       st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", ""]))
def test_authorize_with_arbitrary_bytes(world: World, raw: bytes, method: str, ctype: str) -> None:
    before = snapshot(world.kit)
    if method == "GET":
        r = world.run(world.kit.http.get("/authorize?" + quote_from_bytes(raw, safe="=&")))
    else:
        r = world.run(world.kit.http.post("/authorize", content=raw, headers={"content-type": ctype}))
    no_server_error(r)
    assert issued_code(world, r) is None
    assert_unchanged(world.kit, before)


# --- every other endpoint, arbitrary bytes and forms ---------------------------------------------------------

POST_ENDPOINTS = ["/par", "/token", "/revoke", "/introspect", "/register", "/interaction/x/login",
                  "/interaction/x/consent"]
FORM_NAMES = ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id",
              "client_secret", "client_assertion", "client_assertion_type", "token", "token_type_hint",
              "request", "request_uri", "csrf_token", "username", "password", "decision"]
FORM = st.lists(st.tuples(st.one_of(st.sampled_from(FORM_NAMES), JUNK), JUNK), max_size=8)


@given(st.sampled_from(POST_ENDPOINTS), st.binary(max_size=2048),
       st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain",
                        "multipart/form-data; boundary=x", ""]))
def test_post_endpoints_with_arbitrary_bodies(world: World, path: str, body: bytes, ctype: str) -> None:
    before = snapshot(world.kit)
    headers = {"content-type": ctype, "authorization": "Bearer initial-token"} if ctype else {}
    r = world.run(world.kit.http.post(path, content=body, headers=headers))
    no_server_error(r)
    assert r.status_code not in (200, 201) or path in ("/revoke", "/introspect") or (
        path == "/register" and r.status_code == 201), r.text[:200]
    if path != "/register":
        assert_unchanged(world.kit, before)


@given(st.sampled_from(["/par", "/token", "/revoke", "/introspect"]), FORM, st.booleans())
def test_back_channel_forms_never_succeed_without_credentials_and_grants(
    world: World, path: str, pairs: list[tuple[str, str]], authenticate: bool
) -> None:
    """Random forms (optionally with a valid client assertion) never yield tokens or a request_uri."""
    if authenticate:
        names = {k for k, _ in pairs}
        pairs = [p for p in pairs if p[0] not in ("client_assertion", "client_assertion_type", "client_secret")]
        assume("client_id" not in names)
        pairs += list(world.client.auth_form().items())
    before = snapshot(world.kit)
    r = world.run(world.kit.http.post(path, content=_encode(pairs),
                                      headers={"content-type": "application/x-www-form-urlencoded"}))
    no_server_error(r)
    if path == "/introspect" and r.status_code == 200:
        assert r.json() == {"active": False}
    elif path == "/revoke":
        assert r.status_code in (200, 400, 401)
    else:
        assert r.status_code in (400, 401, 405, 413), r.text
        assert r.json()["error"] in {"invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type",
                                     "unauthorized_client", "invalid_scope", "invalid_request_object",
                                     "invalid_request_uri", "unsupported_response_type"}
    assert_unchanged(world.kit, before, allow=AUTH_NAMESPACES if authenticate else ())


@given(JSON_VALUE)
def test_register_accepts_only_what_it_would_accept_again(world: World, body: Any) -> None:
    doc = body if not isinstance(body, dict) else {**body}
    r = world.run(world.kit.http.post("/register", content=json.dumps(doc).encode(),
                                      headers={"content-type": "application/json",
                                               "authorization": "Bearer initial-token"}))
    no_server_error(r)
    if r.status_code == 201:
        stored = world.run(world.kit.store.clients.get(r.json()["client_id"]))
        assert stored is not None
        caps = world.kit.env.capabilities()
        assert validate_client_metadata(stored.metadata, policy=world.kit.env.policy, server=caps) == stored.metadata
    else:
        assert r.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")


@given(st.text(min_size=1, max_size=40), FORM, st.sampled_from(["login", "consent"]))
def test_interaction_endpoints(world: World, ia_id: str, pairs: list[tuple[str, str]], stage: str) -> None:
    path = "/interaction/" + quote_from_bytes(ia_id.encode(), safe="") + "/" + stage
    before = snapshot(world.kit)
    r = world.run(world.kit.http.post(path, content=_encode(pairs),
                                      headers={"content-type": "application/x-www-form-urlencoded"}))
    no_server_error(r)
    assert r.status_code in (400, 404), r.text[:200]
    assert_unchanged(world.kit, before)


@given(st.sampled_from(["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/jwks"]),
       st.binary(max_size=200), st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_discovery_and_jwks(world: World, path: str, raw: bytes, method: str) -> None:
    r = world.run(world.kit.http.request(method, path + "?" + quote_from_bytes(raw, safe="=&")))
    no_server_error(r)
    if method == "GET":
        assert r.status_code == 200 and isinstance(r.json(), dict)
    else:
        assert r.status_code == 405


# --- token mutations: bit flips, segment surgery, claim edits -----------------------------------------------------


BREAKING_CLAIMS: dict[str, st.SearchStrategy[Any]] = {
    "iss": JSON_LEAF.filter(lambda v: v != "<client>"),
    "aud": JSON_VALUE.filter(lambda v: v != ISSUER and not (isinstance(v, list) and ISSUER in v)),
    "client_id": JSON_LEAF,
    "exp": st.one_of(st.integers(-(2**63), 0), st.integers(10**10, 2**63 - 1), st.text(), st.booleans(),
                     st.floats(allow_nan=False, allow_infinity=False, max_value=1e9)),
    "jti": st.one_of(st.integers(-(2**63), 2**63 - 1), st.just(""), st.text(min_size=257, max_size=300),
                     st.lists(st.text())),
    "response_type": JSON_LEAF.filter(lambda v: v != "code"),
    "code_challenge_method": JSON_LEAF.filter(lambda v: v != "S256"),
    "redirect_uri": JSON_LEAF.filter(lambda v: v != REDIRECT and v is not None),
    "request_uri": JSON_LEAF,
    "request": JSON_LEAF,
    "sub": st.just("<client>"),
}


@given(st.data())
def test_request_object_mutations_never_yield_a_code(world: World, data: st.DataObject) -> None:
    client = world.client
    ro, ctx = client.request_object()
    if data.draw(st.booleans()):
        token = data.draw(structural_mutations(ro))
    else:  # a validly signed object with one breaking claim
        claims = {k: v for k, v in ctx.items() if k != "code_verifier"}
        name = data.draw(st.sampled_from(sorted(BREAKING_CLAIMS)))
        value = data.draw(BREAKING_CLAIMS[name])
        claims[name] = client.client_id if value == "<client>" else value
        if name == "client_id":
            assume(value != client.client_id)
        if name == "iss":
            assume(value != client.client_id)
        token = sign_jws(claims, client.key, client.alg, typ="oauth-authz-req+jwt")
    before = snapshot(world.kit)
    r = world.run(world.kit.http.get("/authorize", params={"client_id": client.client_id, "request": token}))
    no_server_error(r)
    assert issued_code(world, r) is None, token
    assert_unchanged(world.kit, before)


BREAKING_ASSERTION_CLAIMS: dict[str, st.SearchStrategy[Any]] = {
    "iss": JSON_LEAF,
    "sub": JSON_LEAF,
    "aud": JSON_VALUE.filter(lambda v: v not in (ISSUER, ISSUER + "/token") and not (
        isinstance(v, list) and (ISSUER in v or ISSUER + "/token" in v))),
    "exp": st.one_of(st.integers(-(2**63), 0), st.integers(10**10, 2**63 - 1), st.text(), st.booleans()),
    "jti": st.one_of(st.integers(-(2**63), 2**63 - 1), st.just(""), st.text(min_size=257, max_size=300), st.none()),
    "iat": st.one_of(st.integers(10**10, 2**63 - 1), st.text(min_size=1), st.booleans()),
    "response_type": JSON_LEAF.filter(lambda v: v is not None),  # None would mean "omitted": valid
}


@given(st.data())
def test_client_assertion_mutations_never_authenticate(world: World, data: st.DataObject) -> None:
    machine = world.machine
    token = machine.assertion()
    if data.draw(st.booleans()):
        token = data.draw(structural_mutations(token))
    else:
        name = data.draw(st.sampled_from(sorted(BREAKING_ASSERTION_CLAIMS)))
        value = data.draw(BREAKING_ASSERTION_CLAIMS[name])
        assume(not (name in ("iss", "sub") and value == machine.client_id))
        token = machine.assertion(**{name: value}) if value is not None else machine.assertion(omit=(name,))
    before = snapshot(world.kit)
    r = world.run(world.kit.http.post("/token", data={"grant_type": "client_credentials",
                                                      "client_assertion_type": ASSERTION_TYPE,
                                                      "client_assertion": token}))
    no_server_error(r)
    assert r.status_code in (400, 401, 413), r.text
    assert_unchanged(world.kit, before)
