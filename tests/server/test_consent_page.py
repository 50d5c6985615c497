"""The consent page speaks to the person deciding, and every sign-in URL answers a GET with a page that says
where things stand (``server/consent.py``, ``server/problems.py``).

Before: the consent page listed raw scope tokens and "<tier> tier", showed nothing of the client but its name,
and a reload of ``/interaction/{id}/login`` (or Back after Allow) answered Starlette's plain-text
"Method Not Allowed"; unknown paths answered a plain-text "Not Found".
"""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape
from typing import Any

import httpx
import pytest

from jarmor.protocol.context import Settings
from jarmor.server.accounts import add_user
from jarmor.server.consent import BUILT_IN_SCOPE_DESCRIPTIONS, describe_scopes, destination
from tests.kit import Kit

from .conftest import KitFactory
from .support import plain_request

PASSWORD = "correct horse battery staple"
LOGO = "https://cdn.vendor.example:8443/img/logo.png?v=2"
DISPLAY = {
    "client_name": "Vendor <b>Portal</b>",
    "owner": "Vendor & Sons <script>",
    "client_kind": "third-party",
    "logo_uri": LOGO,
    "policy_uri": "https://vendor.example/privacy",
    "tos_uri": "https://vendor.example/terms",
    "client_uri": "https://vendor.example/",
}


def _form(html: str) -> tuple[str, str]:
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert action and token, html[:500]
    return unescape(action.group(1)), unescape(token.group(1))


def _csp(r: httpx.Response) -> dict[str, str]:
    out = {}
    for directive in r.headers["content-security-policy"].split(";"):
        name, _, value = directive.strip().partition(" ")
        out[name] = value
    return out


async def _interactive(make: KitFactory, **settings: Any) -> Kit:
    kit = await make(auto_approve=None, settings=replace(Settings(), **settings))
    await add_user(kit.store.users, "alice", PASSWORD)
    return kit


async def _consent(kit: Kit, scope: str = "openid", **metadata: Any) -> tuple[httpx.Response, str]:
    """Sign in; return the consent page and its login URL."""
    client = await kit.add_client(scope="openid profile email offline_access", **metadata)
    r = await kit.authorize(plain_request(client, scope=scope)[0])
    assert r.status_code == 200, r.text[:300]
    action, token = _form(r.text)
    r = await kit.http.post(action, data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == action.replace("/login", "/consent")
    consent = await kit.http.get(r.headers["location"])
    assert consent.status_code == 200, consent.text[:300]
    return consent, action


# -- what the page says -----------------------------------------------------------------------------------------


def test_scope_descriptions_configured_then_built_in_then_plain() -> None:
    lines = describe_scopes(
        ["openid", "payments", "email", "openid", "ledger"], {"payments": "Make payments from your accounts"}
    )
    assert [(line.scope, line.text) for line in lines] == [
        ("openid", BUILT_IN_SCOPE_DESCRIPTIONS["openid"]),
        ("payments", "Make payments from your accounts"),
        ("email", BUILT_IN_SCOPE_DESCRIPTIONS["email"]),
        ("ledger", "Access to “ledger”"),
    ]


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://app.example/cb?x=1", "app.example"),
        ("http://127.0.0.1:9999/cb", "127.0.0.1:9999"),
        ("https://user@app.example/cb", "app.example"),
        ("com.example.app:/oauth2redirect", "com.example.app:"),
    ],
)
def test_destination_is_what_a_person_recognises(uri: str, shown: str) -> None:
    assert destination(uri) == shown


async def test_consent_page_content_for_a_third_party(make: KitFactory) -> None:
    kit = await _interactive(make, scope_descriptions={"profile": "See your name & <photo>"})
    r, _ = await _consent(kit, scope="openid profile offline_access", **DISPLAY)
    html = r.text
    # the client, escaped: name, owner, third-party mark, links
    assert '<span id="client-name">Vendor &lt;b&gt;Portal&lt;/b&gt;</span>' in html
    assert "Provided by <strong>Vendor &amp; Sons &lt;script&gt;</strong>" in html
    assert 'id="third-party"' in html and "Third-party application." in html
    for link_id, url in (("policy-link", DISPLAY["policy_uri"]), ("terms-link", DISPLAY["tos_uri"]),
                         ("website-link", DISPLAY["client_uri"])):
        assert re.search(rf'<a href="{re.escape(url)}" target="_blank" rel="noopener noreferrer" id="{link_id}">', html)
    # each scope a sentence: configured wording (escaped), then the built-in ones; no protocol vocabulary
    items = re.findall(r'<li data-scope="([^"]+)">([^<]*)</li>', html)
    assert items == [
        ("openid", BUILT_IN_SCOPE_DESCRIPTIONS["openid"]),
        ("profile", "See your name &amp; &lt;photo&gt;"),
        ("offline_access", BUILT_IN_SCOPE_DESCRIPTIONS["offline_access"]),
    ]
    visible = re.sub(r"<[^>]+>", " ", html.split("<body>", 1)[1])
    for jargon in ("tier", "elevated", "scope", "redirect", "offline_access", "openid", "client_id"):
        assert jargon not in visible.lower(), jargon
    assert '<strong id="destination">127.0.0.1:9999</strong>' in html
    # the logo, and its origin as the only image source
    assert f'<img class="logo" id="client-logo" src="{unescape(LOGO).replace("&", "&amp;")}"' in html
    assert _csp(r)["img-src"] == "https://cdn.vendor.example:8443"
    assert _csp(r)["default-src"] == "'none'"


async def test_first_party_client_without_logo_or_links(make: KitFactory) -> None:
    kit = await _interactive(make)
    r, _ = await _consent(kit, client_name="Intranet", owner="IT department", client_kind="first-party")
    assert 'id="third-party"' not in r.text
    assert "Provided by <strong>IT department</strong>" in r.text
    assert "<img" not in r.text and "img-src" not in r.headers["content-security-policy"]
    assert 'id="client-links"' not in r.text


async def test_third_party_without_owner_or_policy_says_so(make: KitFactory) -> None:
    kit = await _interactive(make)
    r, _ = await _consent(kit, client_name="Anon")
    assert 'id="third-party"' in r.text and "Allow it only if you trust its provider." in r.text
    assert "did not give its name" in r.text
    assert "has not published a privacy policy or terms of service" in r.text


async def test_a_logo_stored_before_validation_is_not_shown(make: KitFactory) -> None:
    """Records stored before registration checked ``logo_uri``: only an https URL becomes an image."""
    kit = await _interactive(make)
    client = await kit.add_client(client_name="Old")
    record = await kit.store.clients.get(client.client_id)
    assert record is not None
    for bad in ("http://cdn.example/logo.png", "javascript:alert(1)", "data:image/png;base64,AAAA"):
        meta = {**record.metadata, "logo_uri": bad, "policy_uri": bad}
        await kit.store.clients.update(replace(record, metadata=meta))
        kit.server.directory.invalidate(client.client_id)
        r = await kit.authorize(plain_request(client)[0])
        action, token = _form(r.text)
        r = await kit.http.post(action, data={"csrf_token": token, "username": "alice", "password": PASSWORD})
        r = await kit.http.get(r.headers["location"])
        assert "<img" not in r.text and bad not in r.text
        assert "img-src" not in r.headers["content-security-policy"]


# -- sign-in URLs opened with GET (reload, Back, a copied link) -----------------------------------------------


async def test_reloading_the_login_url_shows_the_current_step(make: KitFactory) -> None:
    kit = await _interactive(make)
    client = await kit.add_client()
    r = await kit.authorize(plain_request(client)[0])
    action, token = _form(r.text)
    assert (await kit.http.post(action, data={"csrf_token": token, "username": "alice", "password": "x"})).status_code == 401
    again = await kit.http.get(action)  # a reload of the sign-in URL after a wrong password
    assert again.status_code == 200 and 'id="password"' in again.text
    assert 'id="login-notice">This sign-in is still open' in again.text
    assert _form(again.text) == (action, token)
    r = await kit.http.post(action, data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    consent_url = r.headers["location"]
    for url in (action, consent_url):  # signed in: both URLs show the consent step
        page = await kit.http.get(url)
        assert page.status_code == 200 and 'id="approve"' in page.text
    consent_action, consent_token = _form(page.text)
    r = await kit.http.post(consent_action, data={"csrf_token": consent_token, "decision": "approve"})
    assert r.status_code == 303
    for url in (consent_url, action):  # Back after Allow
        back = await kit.http.get(url)
        assert back.status_code == 400 and "location" not in back.headers
        assert '<h1 id="problem">This sign-in page is no longer active</h1>' in back.text
        assert "start signing in again" in back.text and "<form" not in back.text
        assert 'id="error-code">invalid_request<' in back.text


async def test_a_sign_in_url_from_another_browser_shows_no_form(make: KitFactory) -> None:
    kit = await _interactive(make)
    client = await kit.add_client()
    r = await kit.authorize(plain_request(client)[0])
    action, _ = _form(r.text)
    kit.http.cookies.clear()
    for url in (action, action.replace("/login", "/consent")):
        r = await kit.http.get(url)
        assert r.status_code == 400 and "<form" not in r.text and "csrf_token" not in r.text
        assert "belongs to another browser" in r.text
    r = await kit.http.get("/interaction/guessed/login")
    assert r.status_code == 400 and "<form" not in r.text and "no longer active" in r.text


async def test_a_stale_form_is_explained(make: KitFactory) -> None:
    """Posting the consent form again (Back, then resubmit) explains instead of blaming the application."""
    kit = await _interactive(make)
    client = await kit.add_client()
    r = await kit.authorize(plain_request(client)[0])
    action, token = _form(r.text)
    r = await kit.http.post(action, data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    consent_action, consent_token = _form((await kit.http.get(r.headers["location"])).text)
    assert (await kit.http.post(consent_action, data={"csrf_token": consent_token, "decision": "deny"})).status_code == 303
    again = await kit.http.post(consent_action, data={"csrf_token": consent_token, "decision": "approve"})
    assert again.status_code == 400 and "This sign-in page is no longer active" in again.text
    stale = await kit.http.post(action, data={"csrf_token": "forged", "username": "alice", "password": PASSWORD})
    assert stale.status_code == 400 and "no longer active" in stale.text


# -- 404 and 405: pages for browsers, JSON for JSON endpoints ---------------------------------------------------


@pytest.mark.parametrize("path", ["/nothing-here", "/admin/nothing-here", "/interaction/x", "/authorize/x"])
async def test_unknown_pages_are_styled(kit: Kit, path: str) -> None:
    r = await kit.http.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert '<h1 id="problem">Page not found</h1>' in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"] and "no-store" in r.headers["cache-control"]
    assert ('href="/admin/clients"' in r.text) == path.startswith("/admin")


@pytest.mark.parametrize("path", ["/token/x", "/.well-known/nope", "/jwks/x", "/par/x"])
async def test_unknown_json_paths_stay_json(kit: Kit, path: str) -> None:
    r = await kit.http.get(path)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("GET", "/admin/logout", "POST"), ("PUT", "/authorize", "GET, HEAD, POST"), ("DELETE", "/admin/login", None)],
)
async def test_wrong_method_on_a_page_is_styled(kit: Kit, method: str, path: str, allow: str | None) -> None:
    r = await kit.http.request(method, path)
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")
    assert "cannot be opened directly" in r.text and "Method Not Allowed" not in r.text
    if allow:
        assert r.headers["allow"] == allow


@pytest.mark.parametrize(("method", "path"), [("GET", "/token"), ("GET", "/par"), ("PUT", "/revoke"), ("POST", "/jwks")])
async def test_wrong_method_on_a_json_endpoint_stays_json(kit: Kit, method: str, path: str) -> None:
    r = await kit.http.request(method, path)
    assert r.status_code == 405 and r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "invalid_request" and r.headers["allow"]


async def test_an_unexpected_failure_is_a_plain_500_in_the_right_format() -> None:
    """The last-resort handler: no traceback or detail reaches the browser or the API client."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from jarmor.server.problems import exception_handlers

    async def boom(request: Request) -> Response:
        raise RuntimeError("secret detail")

    app = Starlette(routes=[Route("/authorize", boom), Route("/token", boom)], exception_handlers=exception_handlers())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        page = await http.get("/authorize")
        api = await http.get("/token")
    assert page.status_code == 500 and "Something went wrong" in page.text and "secret" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert api.status_code == 500 and api.json() == {"error": "server_error", "error_description": "internal error"}
