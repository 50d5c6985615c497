"""jarmor's own pages under a real browser: CSRF binding, escaping, unverified redirect URIs, headers."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest

from jarmor.client.pkce import new_pkce
from jarmor.server.consent import BUILT_IN_SCOPE_DESCRIPTIONS
from tests.e2e.conftest import RunningServer

from .conftest import PASSWORD, USERNAME, XSS_NAME, Rp, Watched, start_rp, watch
from .support import expect, on_consent_page, on_error_page, on_login_page, on_problem_page, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

ATTACKER = "http://attacker.invalid"


def _open_login(tab: Watched, rp: Rp, mode: str = "jwt") -> tuple[str, str]:
    """Start a flow and return the login form's action URL and CSRF token."""
    page = tab.page
    page.goto(f"{rp.url}/login?mode={mode}")
    on_login_page(page)
    form = page.locator("form").first  # the password form (the passkey form follows it)
    action = page.evaluate("document.querySelector('form').action")
    token = form.locator("input[name=csrf_token]").get_attribute("value") or ""
    assert action.startswith(f"{rp.issuer}/interaction/") and token
    return action, token


def _no_callback(tab: Watched, rp: Rp) -> None:
    assert not [r for r in tab.requests if f"{rp.url}/cb" in r], tab.requests


# -- CSRF -------------------------------------------------------------------------------------------------


def test_login_without_csrf_token_is_refused(rp: Rp, tab: Watched) -> None:
    page = tab.page
    _open_login(tab, rp)
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    with page.expect_response(re.compile(r"/interaction/[^/]+/login$")) as info:
        sign_in(page)
    assert info.value.status == 400
    on_problem_page(page, "This form could not be used", "invalid_request", "invalid CSRF token")
    expect(page.get_by_text("start signing in again")).to_be_visible()
    expect(page.get_by_role("button", name="Allow")).to_have_count(0)
    _no_callback(tab, rp)
    shot(page, "error-csrf")


def test_login_with_a_wrong_csrf_token_is_refused(rp: Rp, tab: Watched) -> None:
    page = tab.page
    _, token = _open_login(tab, rp)
    forged = ("A" if token[0] != "A" else "B") + token[1:]
    page.evaluate("t => { document.querySelector('input[name=csrf_token]').value = t }", forged)
    sign_in(page)
    on_problem_page(page, "This form could not be used", "invalid_request", "invalid CSRF token")
    expect(page.get_by_role("button", name="Allow")).to_have_count(0)
    _no_callback(tab, rp)


def test_login_posted_from_another_browser_is_refused(rp: Rp, tab: Watched, browser: Browser) -> None:
    """A cross-site form in a browser that never opened the sign-in page, even with the right CSRF token
    and password: the interaction is bound to the cookie set where the flow started."""
    action, token = _open_login(tab, rp)
    other_context = browser.new_context()
    try:
        other = watch(other_context.new_page())
        query = urlencode({"action": action, "csrf_token": token, "username": USERNAME, "password": PASSWORD})
        other.page.goto(f"{rp.url}/attacker?{query}")
        on_problem_page(other.page, "This sign-in page belongs to another browser", "invalid_request",
                        "this sign-in page was not opened in this browser")
        expect(other.page.get_by_role("button", name="Allow")).to_have_count(0)
        assert not other_context.cookies(rp.issuer)
    finally:
        other_context.close()
    # the attempt neither signed anyone in nor spent the interaction: the real user continues normally
    sign_in(tab.page)
    on_consent_page(tab.page)
    tab.page.get_by_role("button", name="Allow").click()
    expect(tab.page.locator("#outcome")).to_have_text("ok")


def test_login_token_cannot_approve_consent(rp: Rp, tab: Watched) -> None:
    """A same-site attacker page submitting "approve" with the login-stage token is refused: tokens are
    bound to their stage."""
    action, login_token = _open_login(tab, rp)
    sign_in(tab.page)
    on_consent_page(tab.page)
    consent_action = action.rsplit("/", 1)[0] + "/consent"
    query = urlencode({"action": consent_action, "csrf_token": login_token, "decision": "approve"})
    tab.page.goto(f"{rp.url}/attacker?{query}")
    on_problem_page(tab.page, "This form could not be used", "invalid_request", "invalid CSRF token")
    _no_callback(tab, rp)


# -- escaping ---------------------------------------------------------------------------------------------


def test_client_name_is_shown_as_text(xss_rp: Rp, tab: Watched) -> None:
    page = tab.page
    page.goto(f"{xss_rp.url}/login?mode=jwt")
    on_login_page(page)
    for stage in ("login", "consent"):
        expect(page.locator("#client-name")).to_have_text(XSS_NAME)
        assert page.locator("main img").count() == 0
        assert page.locator("main script").count() == 0
        assert page.evaluate("document.querySelectorAll('img[src=x], [onerror]').length") == 0
        if stage == "login":
            sign_in(page)
            on_consent_page(page)
    shot(page, "consent-xss")
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#outcome")).to_have_text("ok")
    page.wait_for_timeout(200)
    assert not tab.dialogs, tab.dialogs
    assert not [r for r in tab.requests if r.endswith("/x")], tab.requests


# -- unverified redirect URIs -----------------------------------------------------------------------------


def _authorize_url(rp: Rp, **params: str) -> str:
    pkce = new_pkce()
    base = {
        "client_id": rp.client_id,
        "response_type": "code",
        "scope": "openid",
        "state": secrets.token_urlsafe(8),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    base.update(params)
    return f"{rp.issuer}/authorize?{urlencode({k: v for k, v in base.items() if v})}"


@pytest.mark.parametrize(
    ("case", "redirect_uri", "extra"),
    [
        ("unregistered-host", f"{ATTACKER}/cb", {}),
        ("unregistered-path", "{rp}/evil", {}),
        ("unregistered-form-post", f"{ATTACKER}/cb", {"response_mode": "form_post"}),
        ("unknown-client", f"{ATTACKER}/cb", {"client_id": "no-such-client"}),
    ],
)
def test_unverified_redirect_uri_stays_on_the_error_page(
    rp: Rp, tab: Watched, case: str, redirect_uri: str, extra: dict[str, str]
) -> None:
    page = tab.page
    attacker_hits: list[str] = []

    def record(route: Route) -> None:
        attacker_hits.append(route.request.url)
        route.abort()

    page.route(f"{ATTACKER}/**", record)
    uri = redirect_uri.replace("{rp}", rp.url)
    start = _authorize_url(rp, redirect_uri=uri, **extra)
    response = page.goto(start)
    assert response is not None and response.status == 400
    expect(page.locator("#error-code")).to_be_visible()
    page.wait_for_timeout(300)  # give any script, refresh or form time to act
    on_error_page(page, page.locator("#error-code").inner_text())
    expect(page.get_by_text("You have not been redirected.")).to_be_visible()
    assert page.url == start
    assert not attacker_hits
    assert not [r for r in tab.requests if r.split(" ", 1)[1].startswith((ATTACKER, f"{rp.url}/"))], (
        tab.requests
    )
    assert tab.navigations == [start], tab.navigations
    if case == "unregistered-host":
        shot(page, "error-redirect-uri")


def test_unverified_request_object_never_reaches_the_outer_redirect_uri(rp: Rp, tab: Watched) -> None:
    """An unverifiable request object (``alg=none``) with the attacker's ``redirect_uri`` outside it: the
    outer parameter is never used (RFC 9101 §5); at most the error goes to the client's only registered
    redirect URI."""
    page = tab.page
    attacker_hits: list[str] = []
    page.route(f"{ATTACKER}/**", lambda route: (attacker_hits.append(route.request.url), route.abort()))
    page.goto(_authorize_url(rp, redirect_uri=f"{ATTACKER}/cb", request="eyJhbGciOiJub25lIn0.e30."))
    page.wait_for_timeout(300)
    assert not attacker_hits
    assert not [n for n in tab.navigations if n.startswith(ATTACKER)], tab.navigations
    assert page.url.startswith((f"{rp.url}/cb", f"{rp.issuer}/authorize")), page.url


# -- headers and framing --------------------------------------------------------------------------------


def _assert_page_headers(headers: dict[str, str], what: str) -> None:
    csp = headers.get("content-security-policy", "")
    for directive in (
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "script-src 'nonce-",
    ):
        assert directive in csp, (what, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (what, csp)
    assert headers.get("x-frame-options") == "DENY", what
    assert "no-store" in headers.get("cache-control", ""), what
    assert headers.get("referrer-policy") == "no-referrer", what
    assert headers.get("x-content-type-options") == "nosniff", what


def test_pages_send_csp_no_framing_no_store(rp: Rp, tab: Watched) -> None:
    page = tab.page
    login = page.goto(f"{rp.url}/login?mode=form_post.jwt")
    assert login is not None
    _assert_page_headers(login.headers, "login")
    with page.expect_response(lambda r: r.url.endswith("/consent") and r.request.method == "GET") as consent:
        sign_in(page)  # the sign-in answers 303 to the consent page's own GET URL
    _assert_page_headers(consent.value.headers, "consent")
    # the decision redirects (or posts) to the client: its origin, and only it, joins form-action
    assert f"form-action 'self' {rp.url};" in consent.value.headers["content-security-policy"]
    with page.expect_response(lambda r: r.url.endswith("/consent") and r.request.method == "POST") as form_post:
        page.get_by_role("button", name="Allow").click()
    _assert_page_headers(form_post.value.headers, "form_post")
    assert f"form-action 'self' {rp.url};" in form_post.value.headers["content-security-policy"]
    expect(page.locator("#outcome")).to_have_text("ok")
    error = page.goto(_authorize_url(rp, redirect_uri=f"{ATTACKER}/cb"))
    assert error is not None
    _assert_page_headers(error.headers, "error")
    assert not tab.csp_violations(), tab.csp_violations()


def test_login_page_refuses_to_be_framed(rp: Rp, tab: Watched) -> None:
    page = tab.page
    target = _authorize_url(rp, redirect_uri=f"{rp.url}/cb")
    page.goto(f"{rp.url}/frame?src={urlencode({'': target})[1:]}")
    expect(page.get_by_role("heading", name="framer")).to_be_visible()
    page.wait_for_timeout(500)
    assert [f.url for f in page.frames[1:]] == ["chrome-error://chromewebdata/"]
    assert any("frame-ancestors 'none'" in m for m in tab.console), tab.console


# -- what the person deciding sees --------------------------------------------------------------------------

LOGO_ORIGIN = "https://logo.vendor.example"
LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
    '<rect width="64" height="64" rx="14" fill="#2a7d5f"/><circle cx="32" cy="32" r="14" fill="#fff"/></svg>'
)
DISPLAY = {
    "owner": "Vendor & Sons Ltd",
    "client_kind": "third-party",
    "logo_uri": f"{LOGO_ORIGIN}/logo.svg",
    "policy_uri": "https://vendor.example/privacy",
    "tos_uri": "https://vendor.example/terms",
}


@pytest.fixture(scope="module")
def vendor_rp(jarmor: RunningServer) -> Iterator[Rp]:
    app = start_rp(jarmor, client_name="Vendor Portal", modes=("jwt",), **DISPLAY)
    app.app.scope = "openid profile email offline_access"
    try:
        yield app
    finally:
        app.running.stop()


def test_consent_page_speaks_to_the_user(vendor_rp: Rp, tab: Watched) -> None:
    page = tab.page
    page.set_viewport_size({"width": 390, "height": 844})
    logo_requests: list[str] = []

    def logo(route: Route) -> None:
        logo_requests.append(route.request.url)
        route.fulfill(status=200, content_type="image/svg+xml", body=LOGO_SVG)

    page.route(f"{LOGO_ORIGIN}/**", logo)
    page.route("https://vendor.example/**", lambda route: route.abort())
    page.goto(f"{vendor_rp.url}/login?mode=jwt")
    sign_in(page)
    on_consent_page(page)
    expect(page.get_by_role("heading")).to_have_text("Allow Vendor Portal to access your account?")
    expect(page.locator("#client-owner")).to_have_text("Provided by Vendor & Sons Ltd")
    expect(page.locator("#third-party")).to_contain_text("Third-party application.")
    expect(page.locator("#third-party")).to_contain_text("Allow it only if you trust Vendor & Sons Ltd.")
    expect(page.locator("#scopes li")).to_have_text([
        BUILT_IN_SCOPE_DESCRIPTIONS[s] for s in ("openid", "profile", "email", "offline_access")
    ])
    expect(page.locator("#policy-link")).to_have_attribute("href", DISPLAY["policy_uri"])
    expect(page.locator("#terms-link")).to_have_attribute("href", DISPLAY["tos_uri"])
    expect(page.locator("#destination")).to_have_text(vendor_rp.url.split("://", 1)[1])
    text = page.locator("main").inner_text().lower()
    for jargon in ("tier", "elevated", "baseline", "scope", "redirect", "openid", "offline_access", "client_id"):
        assert jargon not in text, jargon
    # the logo loads (the CSP allows its origin) and nothing else was fetched for it
    expect(page.locator("#client-logo")).to_be_visible()
    assert page.evaluate("document.getElementById('client-logo').naturalWidth") > 0
    assert logo_requests == [DISPLAY["logo_uri"]]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert not tab.csp_violations(), tab.csp_violations()
    shot(page, "consent-third-party-390")
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#outcome")).to_have_text("ok")


# -- stale sign-in URLs -------------------------------------------------------------------------------------


def test_opening_the_sign_in_url_again_after_a_wrong_password(rp: Rp, tab: Watched) -> None:
    """The address bar shows /interaction/{id}/login after a wrong password; opening it again (Enter in the
    address bar, a bookmark) shows the sign-in form, not "Method Not Allowed"."""
    page = tab.page
    page.goto(f"{rp.url}/login?mode=jwt")
    sign_in(page, password="not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    url = page.url
    assert re.search(r"/interaction/[^/]+/login$", url)
    response = page.goto(url)
    assert response is not None and response.status == 200
    on_login_page(page)
    expect(page.locator("#login-notice")).to_have_text(
        "This sign-in is still open: enter your username and password to continue."
    )
    expect(page.get_by_text("Method Not Allowed")).to_have_count(0)
    shot(page, "login-reopened")
    sign_in(page)
    on_consent_page(page)
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#outcome")).to_have_text("ok")


@pytest.mark.parametrize("mode", ["jwt", "form_post.jwt"])
def test_back_after_allow_explains(rp: Rp, tab: Watched, mode: str) -> None:
    page = tab.page
    page.goto(f"{rp.url}/login?mode={mode}")
    sign_in(page)
    on_consent_page(page)
    consent_url = page.url
    assert re.search(r"/interaction/[^/]+/consent$", consent_url), consent_url
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#outcome")).to_have_text("ok")
    callbacks = [r for r in tab.requests if f"{rp.url}/cb" in r]
    page.go_back()
    expect(page).to_have_url(re.compile(r"/interaction/[^/]+/(consent|login)$"))
    on_problem_page(page, "This sign-in page is no longer active", "invalid_request")
    expect(page.get_by_text("start signing in again")).to_be_visible()
    expect(page.get_by_text("Method Not Allowed")).to_have_count(0)
    page.reload()
    on_problem_page(page, "This sign-in page is no longer active")
    assert [r for r in tab.requests if f"{rp.url}/cb" in r] == callbacks, "nothing was sent to the client again"
    if mode == "jwt":
        shot(page, "back-after-allow")
    # once more: the authorization request itself, whose pushed request was used up
    page.go_back()
    expect(page).to_have_url(re.compile(re.escape(f"{rp.issuer}/authorize?")))
    expect(page.locator("#error-advice")).to_contain_text("start signing in again")
    assert [r for r in tab.requests if f"{rp.url}/cb" in r] == callbacks
    if mode == "jwt":
        shot(page, "back-twice-after-allow")


def test_unknown_pages_are_styled(rp: Rp, tab: Watched) -> None:
    page = tab.page
    response = page.goto(f"{rp.issuer}/no/such/page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("link", name="Go to the dashboard")).to_have_count(0)
    _assert_page_headers(response.headers, "404")
    shot(page, "not-found")
    response = page.goto(f"{rp.issuer}/admin/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("link", name="Go to the dashboard")).to_be_visible()
    response = page.goto(f"{rp.issuer}/admin/logout")  # a form target opened directly
    assert response is not None and response.status == 405
    expect(page.get_by_role("heading", name="This address cannot be opened directly")).to_be_visible()
    shot(page, "method-not-allowed")
    api = page.request.get(f"{rp.issuer}/token")
    assert api.status == 405 and api.headers["content-type"] == "application/json"
    assert api.json()["error"] == "invalid_request"
    assert not tab.csp_violations(), tab.csp_violations()
