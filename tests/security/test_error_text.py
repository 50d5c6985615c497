"""Error text never reflects request values (issue 10 item 4; RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2).

``error_description`` is restricted to %x20-21 / %x23-5B / %x5D-7E: no quote, no backslash, nothing outside
printable ASCII (so no CR/LF, NUL, right-to-left override U+202E or any other non-ASCII character). jarmor
enforces this twice:

* every description passes one sanitiser at the boundary (``protocol.errors.OAuthError``): disallowed
  characters are replaced and the length is bounded, whatever a message was built from;
* no message interpolates a value from the request: it describes the problem instead ("unknown scope",
  "unsupported grant_type"), naming only values the server itself configured.

Each hostile value below carries the marker ``zq9``; a description must fullmatch the RFC set, stay within
the bound and contain no trace of the marker — on every channel an error leaves by: the redirect (query,
fragment, form_post and JARM), the HTML error page, and the JSON of PAR, token, registration, the client
configuration endpoint (RFC 7592), revocation and introspection.
"""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import httpx
import pytest

from jarmor.jose import generate_jwk, sign_jws
from jarmor.protocol import errors
from tests.kit import ASSERTION_TYPE, REDIRECT, Kit, TestClient, response_params
from tests.server.support import plain_request, verify_jarm
from tests.server.test_admin import admin_kit, cheap_hashing, signed_in  # noqa: F401  (fixtures)

from .support import FORM, raw_request

MARK = "zq9"
RFC6749_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
MAX_DESCRIPTION = 256

HOSTILE = [
    pytest.param(MARK + 'café"\\\u202egpj.exe', id="quote-backslash-nonascii-rlo"),
    pytest.param(MARK + "\r\nX-Injected: 1", id="crlf"),
    pytest.param(MARK + "\x00nul", id="nul"),
    pytest.param(MARK + "\t\x7f\x1b[31m", id="controls"),
    pytest.param(MARK + "W" * 3000, id="long"),
    pytest.param(MARK + "<script>alert(1)</script>", id="markup"),
]


def assert_safe(description: Any) -> None:
    assert isinstance(description, str)
    assert RFC6749_DESCRIPTION.fullmatch(description), f"outside the RFC 6749 set: {description!r}"
    assert len(description) <= MAX_DESCRIPTION, len(description)
    assert MARK not in description, f"reflects the request: {description!r}"


def json_description(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/json"), r.text[:200]
    assert 400 <= r.status_code < 500, r.text[:200]
    body = r.json()
    assert "error" in body, body
    return str(body.get("error_description", ""))


def page_description(r: httpx.Response) -> str:
    assert r.status_code in (400, 405, 413) and "location" not in r.headers, r.text[:200]
    found = re.search(r'id="error-description">([^<]*)<', r.text)
    return unescape(found.group(1)) if found else ""


def authorization_description(kit: Kit, client: TestClient, r: httpx.Response) -> str:
    """The description of an authorization error on whatever channel it took (unwrapping JARM)."""
    if r.status_code in (302, 303) or (r.status_code == 200 and "<form" in r.text):
        params: dict[str, Any] = response_params(r)
        if "response" in params:
            params = verify_jarm(kit, client, params["response"])
        assert "error" in params and "code" not in params, params
        return str(params.get("error_description", ""))
    return page_description(r)


# --- layer (a): one sanitiser for every description ----------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_every_oauth_error_description_is_within_the_rfc_set(text: str) -> None:
    """Whatever a message was built from, what leaves is in the RFC 6749 set and bounded (defence in depth)."""
    for cls in (errors.InvalidRequest, errors.InvalidScope, errors.InvalidClientMetadata, errors.InvalidClient):
        err = cls(f"bad value {text!r} and {text}")
        desc = err.as_dict()["error_description"]
        assert RFC6749_DESCRIPTION.fullmatch(desc) and len(desc) <= MAX_DESCRIPTION, desc
        assert err.description == desc and str(err) == desc
    err = errors.InvalidRequest("x")
    err.description = text
    assert RFC6749_DESCRIPTION.fullmatch(err.description) and len(err.description) <= MAX_DESCRIPTION


def test_sanitiser_keeps_plain_descriptions_and_spells_out_section_signs() -> None:
    assert errors.InvalidRequest("code_challenge is required (PKCE)").description == "code_challenge is required (PKCE)"
    assert errors.InvalidRequest("see RFC 6749 §3.1").description == "see RFC 6749 section 3.1"
    assert errors.InvalidRequest("").as_dict() == {"error": "invalid_request"}


def test_sanitiser_keeps_exactly_the_rfc_set_and_the_length_bound() -> None:
    """Every character up to U+2FFF alone, and plain text at and just over the bound (the sanitiser answers
    the all-allowed case with one regex match: it must agree with the character-by-character path)."""
    for code in range(0x3000):
        ch = chr(code)
        kept = errors.safe_description(ch) == ch
        assert kept == bool(RFC6749_DESCRIPTION.fullmatch(ch)), hex(code)
    assert errors.safe_description("a" * MAX_DESCRIPTION) == "a" * MAX_DESCRIPTION
    over = errors.safe_description("a" * (MAX_DESCRIPTION + 1))
    assert len(over) <= MAX_DESCRIPTION and over.endswith("...")


# --- the authorization endpoint: redirect in every response mode, and the error page ---------------------


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


@pytest.mark.parametrize("mode", ["query", "fragment", "form_post", "query.jwt", "fragment.jwt", "form_post.jwt"])
@pytest.mark.parametrize("text", HOSTILE)
async def test_authorization_scope_in_every_response_mode(kit: Kit, base: TestClient, mode: str, text: str) -> None:
    """The issue's example: ``scope=openid café"\\‮gpj.exe`` redirected to the client in every mode."""
    params, _ = plain_request(base, response_mode=mode, scope="openid " + text)
    r = await kit.authorize(params)
    if "\x00" not in text and len(text) < 1000:
        assert r.status_code in (200, 303), r.text[:200]  # delivered to the client, not a page
    assert_safe(authorization_description(kit, base, r))


@pytest.mark.parametrize("text", HOSTILE)
async def test_authorization_response_mode(kit: Kit, base: TestClient, text: str) -> None:
    params, _ = plain_request(base, response_mode=text)
    assert_safe(authorization_description(kit, base, await kit.authorize(params)))


@pytest.mark.parametrize("text", HOSTILE)
async def test_authorization_request_object_scope_and_mode(kit: Kit, base: TestClient, text: str) -> None:
    for claims in ({"scope": "openid " + text}, {"response_mode": text}, {"max_age": text}, {"prompt": text}):
        ro, _ = base.request_object(**claims)
        r = await kit.authorize({"client_id": base.client_id, "request": ro})
        assert_safe(authorization_description(kit, base, r))


@pytest.mark.parametrize("text", HOSTILE)
async def test_error_page_repeated_and_long_parameters(kit: Kit, base: TestClient, text: str) -> None:
    """Parameter parsing fails before any client is known: an error page, still without the value."""
    name = httpx.QueryParams({text: "1"}).__str__().split("=")[0]
    r = await raw_request(kit, "GET", "/authorize", query=f"{name}=1&{name}=2".encode())
    assert_safe(page_description(r))
    r = await raw_request(kit, "GET", "/authorize", query=f"{name}={'v' * 20000}".encode())
    assert_safe(page_description(r))


@pytest.mark.parametrize("text", HOSTILE)
async def test_request_object_header_values(kit: Kit, base: TestClient, text: str) -> None:
    """JOSE refusals (unknown kid, unexpected typ) do not repeat the header values of the token."""
    printable = "".join(c for c in text[:200] if c.isprintable())  # a kid holds no control characters
    ro, _ = base.request_object(key=generate_jwk("ES256", kid=printable))
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert json_description(r) and r.json()["error"] == "invalid_request_object"
    assert_safe(json_description(r))
    now = kit.env.now()
    claims = {"iss": base.client_id, "aud": kit.env.issuer, "client_id": base.client_id, "response_type": "code",
              "redirect_uri": REDIRECT, "scope": "openid", "iat": now, "exp": now + 60, "nbf": now}
    ro = sign_jws(claims, base.key, base.alg, typ=text[:200])
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert r.json()["error"] == "invalid_request_object"
    assert_safe(json_description(r))


# --- back-channel JSON: PAR, token, revocation, introspection -------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
async def test_par_json(kit: Kit, base: TestClient, text: str) -> None:
    for change in ({"scope": "openid " + text}, {"response_mode": text}, {"code_challenge_method": text}):
        params, _ = plain_request(base, **change)
        r = await kit.par(base, params)
        assert_safe(json_description(r))


@pytest.mark.parametrize("text", HOSTILE)
async def test_token_json(kit: Kit, base: TestClient, text: str) -> None:
    """The issue's example: ``POST /token grant_type=café"\\``; and the client assertion's kid."""
    r = await kit.token(base, {"grant_type": text})
    assert_safe(json_description(r))
    machine = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[])
    r = await kit.token(machine, {"grant_type": "client_credentials", "scope": "openid " + text})
    assert r.json()["error"] in ("invalid_scope", "invalid_request")  # NUL: refused while parsing
    assert_safe(json_description(r))
    stranger = generate_jwk("ES256", kid="".join(c for c in text[:200] if c.isprintable()))
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": base.assertion(key=stranger),
            "grant_type": "client_credentials"}
    r = await kit.http.post("/token", data=form)
    assert r.json()["error"] == "invalid_client"
    assert_safe(json_description(r))


@pytest.mark.parametrize("text", HOSTILE)
async def test_revocation_and_introspection_json(kit: Kit, base: TestClient, text: str) -> None:
    r = await kit.http.post("/revoke", data={**base.auth_form(), "token": "t", "token_type_hint": text})
    assert_safe(json_description(r))
    name = str(httpx.QueryParams({text: "1"})).split("=")[0]
    for path in ("/revoke", "/introspect", "/token", "/par"):
        r = await raw_request(kit, "POST", path, body=f"{name}=1&{name}=2".encode(), headers=FORM)
        assert_safe(json_description(r))


# --- registration (RFC 7591) and the client configuration endpoint (RFC 7592) ----------------------------


def _registration_cases(text: str) -> list[dict[str, Any]]:
    key = generate_jwk("ES256").public_dict()
    return [
        {"risk_tier": text},
        {"grant_types": [text]},
        {"token_endpoint_auth_method": text},
        {"response_modes": [text]},
        {"scope": "openid " + text},
        {"client_kind": text},
        {"redirect_uris": [text]},
        {"redirect_uris": ["https://" + text]},
        {"redirect_uris": ["https://rp.example/cb?" + text]},
        {"jwks_uri": "https://" + text},
        {"logo_uri": "https://" + text},
        {"contacts": [text]},
        {"request_object_signing_alg": text},
        {"authorization_signed_response_alg": text},
        {"authorization_encrypted_response_alg": text},
        {"authorization_encrypted_response_alg": "ECDH-ES", "authorization_encrypted_response_enc": text},
        {"jwks": {"keys": [{**key, "kty": text}]}},
        {"jwks": {"keys": [{**key, "crv": text}]}},
        {"jwks": {"keys": [{**key, "alg": text}]}},
        {"jwks": {"keys": [{**key, "use": text}]}},
        {"jwks": {"keys": [{**key, "x": text}]}},
        {"jwks": {"keys": [key, {**generate_jwk("ES256").public_dict(), "kid": key["kid"]}]}},
    ]


def _metadata(**changes: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [generate_jwk("ES256").public_dict()]},
    }
    meta.update(changes)
    return meta


@pytest.mark.parametrize("text", HOSTILE)
async def test_registration_json(kit: Kit, text: str) -> None:
    headers = {"Authorization": "Bearer initial-token"}
    for change in _registration_cases(text):
        r = await kit.http.post("/register", json=_metadata(**change), headers=headers)
        assert r.status_code == 400, (change, r.text[:200])
        assert_safe(json_description(r))
    duplicate = json.dumps({"a": 1, text: 1, **{text: 2}}).replace('"a": 1', json.dumps(text) + ": 0")
    r = await kit.http.post("/register", content=duplicate, headers={**headers, "content-type": "application/json"})
    assert_safe(json_description(r))


@pytest.mark.parametrize("text", HOSTILE)
async def test_client_configuration_endpoint_json(kit: Kit, text: str) -> None:
    client = await kit.add_client(risk_tier="baseline")
    uri, token = client.metadata["registration_client_uri"], client.metadata["registration_access_token"]
    current = {k: v for k, v in client.metadata.items() if k not in (
        "registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at",
    )}
    for change in [*_registration_cases(text), {"owner": text}]:
        r = await kit.http.put(uri, json={**current, **change}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 400, (change, r.text[:200])
        assert_safe(json_description(r))



# --- the admin dashboard: refusals on its pages do not repeat what was sent either ---------------------------


@pytest.mark.parametrize("text", HOSTILE)
async def test_admin_pages(admin_kit: Kit, text: str) -> None:  # noqa: F811
    kit = admin_kit
    token = await signed_in(kit)
    r = await kit.http.get("/admin/flows", params={"since": text})
    assert r.status_code == 400 and MARK not in r.text, r.text[:300]
    for action in ("/admin/client/offboard", "/admin/grant/revoke"):
        form = {"csrf_token": token, "client_id": text, "grant_id": text, "reason": "breach"}
        r = await kit.http.post(action, data=form, headers={"origin": kit.env.issuer})
        assert r.status_code in (400, 404) and MARK not in r.text, r.text[:300]
