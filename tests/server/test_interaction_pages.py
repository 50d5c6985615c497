"""The login and consent pages' Content-Security-Policy lets their forms reach the client.

CSP ``form-action`` also governs the redirects that follow a form submission (Chromium enforces it), so a
consent page limited to ``form-action 'self'`` had the browser stop at the 303 to the client's redirect URI:
the code was issued but never delivered. Found by ``tests/browser``; this is the browser-free regression.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import pytest

from jarmor.server.accounts import add_user
from jarmor.server.pages import csp_source
from tests.kit import REDIRECT

from .conftest import KitFactory
from .support import plain_request

REDIRECT_ORIGIN = "http://127.0.0.1:9999"


def _form(html: str) -> tuple[str, str]:
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert action and token, html[:500]
    return unescape(action.group(1)), unescape(token.group(1))


def _form_action(response: object) -> str:
    csp = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    return next(d.strip() for d in csp.split(";") if d.strip().startswith("form-action"))


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("https://rp.example/cb?x=1", "https://rp.example"),
        ("http://127.0.0.1:9999/cb", "http://127.0.0.1:9999"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("com.example.app:/oauth2redirect", "com.example.app:"),
        ("https://user:pw@rp.example/cb", None),
        ("javascript:alert(1)", None),
        ("data:text/html,x", None),
        ("https://rp.example;script-src *", None),
        ("https://rp.example 'unsafe-inline'/cb", None),
    ],
)
def test_csp_source(url: str, source: str | None) -> None:
    assert csp_source(url) == source


async def test_login_and_consent_pages_allow_the_redirect_uri_origin(make: KitFactory) -> None:
    kit = await make(auto_approve=None)
    await add_user(kit.store.users, "alice", "password-123")
    client = await kit.add_client()
    params, _ = plain_request(client)
    r = await kit.authorize(params)
    assert r.status_code == 200
    assert _form_action(r) == f"form-action 'self' {REDIRECT_ORIGIN}"
    action, token = _form(r.text)

    r = await kit.http.post(action, data={"csrf_token": token, "username": "alice", "password": "wrong-one"})
    assert r.status_code == 401
    assert _form_action(r) == f"form-action 'self' {REDIRECT_ORIGIN}"
    r = await kit.http.post(
        action, data={"csrf_token": token, "username": "alice", "password": "password-123"}
    )
    assert r.status_code == 303  # post/redirect/get: the consent page is at a GET URL
    r = await kit.http.get(r.headers["location"])
    assert r.status_code == 200 and "Allow" in r.text
    assert _form_action(r) == f"form-action 'self' {REDIRECT_ORIGIN}"

    consent, token = _form(r.text)
    r = await kit.http.post(consent, data={"csrf_token": token, "decision": "approve"})
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(REDIRECT)
    assert f"{urlsplit(location).scheme}://{urlsplit(location).netloc}" == REDIRECT_ORIGIN
