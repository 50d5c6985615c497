"""The interactive flow in real Chromium, as a person does it, in every response mode.

The browser opens the client application, is sent to jarmor, signs in by typing, allows on the consent page,
and lands on the client's callback, where ``jarmor.client`` validates the response (JARM, or RFC 9207 ``iss``
on a plain response) and exchanges the code.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from jarmor.server.signin import unlock_user
from jarmor.store import open_store

from ..e2e.conftest import RunningServer
from .conftest import ALL_MODES, USERNAME, Rp, Watched
from .support import expect, on_consent_page, on_login_page, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser

JARM = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")


def _start(tab: Watched, rp: Rp, mode: str, *, par: bool = True) -> None:
    page = tab.page
    page.goto(f"{rp.url}/login?mode={mode}{'' if par else '&par=0'}")
    expect(page).to_have_url(re.compile(re.escape(f"{rp.issuer}/authorize?")))
    on_login_page(page)


def _delivery(tab: Watched, rp: Rp, mode: str) -> None:
    """The response reached the client over the channel its mode prescribes, and only that one."""
    cb = f"{rp.url}/cb"
    if mode in ("query", "jwt", "query.jwt"):
        key = "response=" if mode in JARM else "code="
        assert any(r.startswith(f"GET {cb}?{key}") for r in tab.requests), tab.requests
    elif mode in ("fragment", "fragment.jwt"):
        key = "response=" if mode in JARM else "code="
        assert any(n.startswith(f"{cb}#{key}") for n in tab.navigations), tab.navigations
        assert f"GET {cb}" in tab.requests  # the fragment itself never reached a server
        assert f"POST {cb}/fragment" in tab.requests
    else:
        assert f"POST {cb}" in tab.requests, tab.requests
        assert not any(r.startswith(f"GET {cb}") for r in tab.requests)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_sign_in_and_allow(rp: Rp, tab: Watched, mode: str) -> None:
    page = tab.page
    _start(tab, rp, mode)
    expect(page.locator("#client-name")).to_have_text("Browser Test App")
    if mode == "jwt":
        shot(page, "login")
    sign_in(page)

    on_consent_page(page)
    expect(page.locator("#client-name")).to_have_text("Browser Test App")
    expect(page.get_by_text(f"Signed in as {USERNAME}")).to_be_visible()
    if mode == "jwt":
        shot(page, "consent")
    page.get_by_role("button", name="Allow").click()

    expect(page.locator("#outcome")).to_have_text("ok")
    assert page.url.startswith(f"{rp.url}/cb")
    expect(page.locator("#response_mode")).to_have_text(mode)
    expect(page.locator("#iss")).to_have_text(rp.issuer)
    if mode in JARM:
        expect(page.locator("#verified")).to_have_text("jarm")
        expect(page.locator("#aud")).to_have_text(rp.client_id)
        expect(page.locator("#trace")).to_contain_text("signature ES256")
        expect(page.locator("#trace")).to_contain_text("state matches stored flow")
    else:
        expect(page.locator("#verified")).to_have_text("rfc9207-iss")
        expect(page.locator("#trace")).to_contain_text("iss == issuer")
    expect(page.locator("#token_type")).to_have_text("Bearer")
    expect(page.locator("#subject")).to_have_text(USERNAME)
    expect(page.locator("#refresh_token")).to_have_text("yes")
    _delivery(tab, rp, mode)
    assert not tab.dialogs
    assert not tab.csp_violations(), tab.csp_violations()
    shot(page, f"result-{mode}")


def test_request_object_by_value(rp: Rp, tab: Watched) -> None:
    """Without PAR the signed request object travels in the URL the browser follows; same outcome."""
    _start(tab, rp, "query.jwt", par=False)
    assert "request=" in tab.page.url and "request_uri=" not in tab.page.url
    sign_in(tab.page)
    tab.page.get_by_role("button", name="Allow").click()
    expect(tab.page.locator("#outcome")).to_have_text("ok")
    expect(tab.page.locator("#verified")).to_have_text("jarm")


def test_wrong_password_stays_on_login_page(rp: Rp, tab: Watched) -> None:
    page = tab.page
    _start(tab, rp, "jwt")
    with page.expect_response(re.compile(r"/interaction/[^/]+/login$")) as info:
        sign_in(page, password="not the password")
    assert info.value.status == 401
    on_login_page(page)
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value(USERNAME)
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_label("Password")).to_be_focused()
    assert page.url.startswith(rp.issuer)
    assert not any(
        r.startswith(f"GET {rp.url}/cb") or r.startswith(f"POST {rp.url}/cb") for r in tab.requests
    )
    shot(page, "login-error")
    # the same page still works with the right password
    sign_in(page)
    on_consent_page(page)


def _unlock(server: RunningServer) -> bool:
    """Clear the test user's sign-in lockout on the shared server (what ``jarmor users unlock`` does)."""

    async def run() -> bool:
        store = open_store(server.database)
        try:
            return await unlock_user(store.ephemeral, USERNAME)
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:  # outside Playwright's event loop
        return pool.submit(asyncio.run, run()).result()


@pytest.mark.parametrize("mode", ["jwt", "form_post.jwt"])
def test_too_many_wrong_passwords_end_the_flow_with_a_verified_error(
    rp: Rp, tab: Watched, mode: str, jarmor: RunningServer
) -> None:
    """The fifth failure answers the login form with the error for the client: a redirect (which the login
    page's CSP must let the browser follow) or a form_post page. The five failures also lock the account
    (server/signin.py); it is unlocked afterwards, for the other tests on this server."""
    page = tab.page
    _start(tab, rp, mode)
    for _ in range(4):
        sign_in(page, password="nope")
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    sign_in(page, password="nope")
    expect(page.locator("#outcome")).to_have_text("server-error")
    expect(page.locator("#verified")).to_have_text("jarm")
    expect(page.locator("#error")).to_have_text("access_denied")
    assert _unlock(jarmor), "five failures locked the account"


@pytest.mark.parametrize("mode", ["jwt", "form_post.jwt", "fragment.jwt"])
def test_deny_is_a_verified_access_denied(rp: Rp, tab: Watched, mode: str) -> None:
    page = tab.page
    _start(tab, rp, mode)
    sign_in(page)
    on_consent_page(page)
    page.get_by_role("button", name="Deny").click()
    expect(page.locator("#outcome")).to_have_text("server-error")
    expect(page.locator("#verified")).to_have_text("jarm")
    expect(page.locator("#error")).to_have_text("access_denied")
    expect(page.locator("#trace")).to_contain_text("verified error response")
    _delivery(tab, rp, mode)
    if mode == "jwt":
        shot(page, "result-denied")


def test_deny_in_a_plain_mode_is_reported_unverified(rp: Rp, tab: Watched) -> None:
    """A plain error response carries no signature: the client reports it but marks it unverified."""
    page = tab.page
    _start(tab, rp, "query")
    sign_in(page)
    page.get_by_role("button", name="Deny").click()
    expect(page.locator("#outcome")).to_have_text("unverified-error")
    expect(page.locator("#error")).to_have_text("access_denied")


def test_login_page_fits_a_phone(rp: Rp, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"{rp.url}/login?mode=jwt")
        on_login_page(page)
        expect(page.get_by_label("Username")).to_be_focused()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shot(page, "login-phone")
    finally:
        context.close()
