"""The admin dashboard in real Chromium against a real ``jarmor serve``: administrator sign-in (separate from
end users), the inventory, a client's page, offboarding through the button, CSRF refusals, no access without
a session. Screenshots: test-artifacts/browser/admin-*.png.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx
import pytest

from jarmor.client import ClientConfig, OAuthClient
from jarmor.jose import generate_jwk
from tests.e2e.conftest import RunningServer, start_server, stop_server

from .conftest import Watched
from .support import expect, shot

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

ADMIN, ADMIN_PASSWORD = "ops-admin", "correct horse battery staple admin"
USER, USER_PASSWORD = "alice", "alice's own password"
REDIRECT = "http://127.0.0.1:9999/cb"
ATTACKER = "http://attacker.invalid"


def _cli(server: RunningServer, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", *args, "--database", server.database],
        input=stdin, capture_output=True, text=True, check=True, timeout=120, cwd=server.workdir,
    )
    return out.stdout


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``jarmor serve`` (auto-approving flows as alice) with one administrator and one end user."""
    workdir = tmp_path_factory.mktemp("jarmor-admin")
    server = start_server(workdir)
    try:
        _cli(server, "admins", "add", ADMIN, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
        _cli(server, "users", "add", USER, "--password-stdin", stdin=USER_PASSWORD + "\n")
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def resource_server(admin_server: RunningServer) -> dict[str, Any]:
    path = Path(admin_server.workdir) / "rs.json"
    path.write_text(json.dumps({
        "client_name": "Payments API", "grant_types": ["client_credentials"], "redirect_uris": [],
        "token_endpoint_auth_method": "client_secret_post", "scope": "profile", "resource_server": True,
        "owner": "team-payments", "contacts": ["payments@corp.example"],
    }))
    return dict(json.loads(_cli(admin_server, "clients", "add", "--metadata", str(path))))


def _register_app(
    server: RunningServer, name: str, *, by_admin: bool = False, **extra: Any
) -> tuple[str, OAuthClient]:
    """Dynamic registration, or ``jarmor clients add`` when ``by_admin`` (a ``client_kind`` other than the
    rule's is an administrator's decision)."""
    key = generate_jwk("ES256", kid=f"{name.split()[0].lower()}-2025")
    metadata = {
        "client_name": name, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]}, "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256", "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email", **extra,
    }
    if by_admin:
        path = Path(server.workdir) / f"{name.split()[0].lower()}.json"
        path.write_text(json.dumps(metadata))
        body = json.loads(_cli(server, "clients", "add", "--metadata", str(path)))
    else:
        body = server.register(metadata)
    client_id = str(body["client_id"])
    return client_id, OAuthClient(ClientConfig(
        issuer=server.issuer, client_id=client_id, redirect_uri=REDIRECT, signing_key=key, allow_insecure_http=True,
    ))


def _tokens(oauth: OAuthClient, scope: str) -> Any:
    start = oauth.start_authorization(scope=scope, response_mode="query.jwt", use_par=True)
    url = start.url
    with httpx.Client() as ua:
        while not url.startswith(REDIRECT):
            r = ua.get(url)
            assert r.status_code == 303, r.text[:300]
            url = urljoin(url, r.headers["location"])
    return oauth.exchange_code(oauth.handle_callback(url, expected_state=start.state))


@pytest.fixture(scope="module")
def vendor(admin_server: RunningServer, resource_server: dict[str, Any]) -> dict[str, Any]:
    """A third-party app with two live grants (and a first-party one beside it, for the inventory)."""
    client_id, oauth = _register_app(admin_server, "Vendor Portal", owner="team-vendors",
                                     contacts=["vendor-support@vendor.example"], client_kind="third-party")
    with oauth:
        first, second = _tokens(oauth, "openid profile"), _tokens(oauth, "openid email")
    other_id, other = _register_app(
        admin_server, "Intranet", by_admin=True, owner="team-it", client_kind="first-party"
    )
    with other:
        _tokens(other, "openid")
    return {"client_id": client_id, "tokens": [first, second], "other": other_id}


def _introspect(server: RunningServer, rs: dict[str, Any], token: str) -> dict[str, Any]:
    r = httpx.post(f"{server.issuer}/introspect",
                   data={"client_id": rs["client_id"], "client_secret": rs["client_secret"], "token": token})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _sign_in(page: Page, server: RunningServer, username: str, password: str) -> None:
    page.goto(f"{server.issuer}/admin")
    expect(page.get_by_role("heading", name="Administrator sign-in")).to_be_visible()
    page.get_by_label("Administrator name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _signed_in(page: Page, server: RunningServer) -> None:
    _sign_in(page, server, ADMIN, ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Clients")).to_be_visible()
    expect(page.locator("#admin-name")).to_have_text(ADMIN)


def test_no_access_without_a_session(admin_server: RunningServer, tab: Watched) -> None:
    page = tab.page
    page.goto(f"{admin_server.issuer}/admin/clients")
    assert page.url == f"{admin_server.issuer}/admin/login"
    expect(page.get_by_role("heading", name="Administrator sign-in")).to_be_visible()
    r = page.request.post(f"{admin_server.issuer}/admin/client/offboard",
                          form={"client_id": "x", "reason": "y", "csrf_token": "z"})
    assert r.status == 403
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "jarmor_admin" not in cookies
    login = cookies["jarmor_admin_login"]
    assert login["httpOnly"] and login["sameSite"] == "Strict" and login["path"] == "/admin"
    shot(page, "admin-login")
    assert tab.csp_violations() == [] and tab.dialogs == []


def test_wrong_password_is_refused(admin_server: RunningServer, tab: Watched) -> None:
    page = tab.page
    _sign_in(page, admin_server, ADMIN, "not the password")
    expect(page.locator("#login-error")).to_have_text("Wrong administrator name or password.")
    expect(page.get_by_label("Administrator name")).to_have_value(ADMIN)
    shot(page, "admin-login-refused")
    page.goto(f"{admin_server.issuer}/admin/clients")
    assert page.url.endswith("/admin/login")


def test_end_user_credentials_are_refused(admin_server: RunningServer, tab: Watched) -> None:
    """An end user's valid password does not open the dashboard: administrators are a separate population."""
    page = tab.page
    _sign_in(page, admin_server, USER, USER_PASSWORD)
    expect(page.locator("#login-error")).to_have_text("Wrong administrator name or password.")
    assert "jarmor_admin" not in {c["name"] for c in page.context.cookies()}


def test_inventory_shows_the_clients(
    admin_server: RunningServer, vendor: dict[str, Any], resource_server: dict[str, Any], tab: Watched
) -> None:
    page = tab.page
    page.set_viewport_size({"width": 1360, "height": 800})
    _signed_in(page, admin_server)
    session = {c["name"]: c for c in page.context.cookies()}["jarmor_admin"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/admin"
    rows = page.locator("#clients tbody tr")
    expect(rows).to_have_count(3)
    row = page.locator(f"tr[data-client-id='{vendor['client_id']}']")
    expect(row).to_contain_text("Vendor Portal")
    expect(row).to_contain_text("team-vendors")
    expect(row).to_contain_text("baseline")
    expect(row).to_contain_text("third-party")
    expect(row).to_contain_text("active")
    expect(page.locator(f"tr[data-client-id='{resource_server['client_id']}']")).to_contain_text("resource server")
    expect(page.locator(f"tr[data-client-id='{vendor['other']}']")).to_contain_text("first-party")
    shot(page, "admin-inventory")
    assert tab.csp_violations() == []


def test_client_page_shows_metadata_keys_and_grants(
    admin_server: RunningServer, vendor: dict[str, Any], tab: Watched
) -> None:
    page = tab.page
    page.set_viewport_size({"width": 1360, "height": 900})
    _signed_in(page, admin_server)
    page.get_by_role("link", name="Vendor Portal").click()
    expect(page.locator("#client-title")).to_have_text("Vendor Portal")
    expect(page.locator("#client-id")).to_have_text(vendor["client_id"])
    expect(page.locator("#metadata")).to_contain_text("team-vendors")
    expect(page.locator("#metadata")).to_contain_text("vendor-support@vendor.example")
    expect(page.locator("#metadata")).to_contain_text("private_key_jwt")
    expect(page.locator("#keys")).to_contain_text("vendor-2025")
    expect(page.locator("#keys")).to_contain_text("current")
    grants = page.locator("#grants tbody tr")
    expect(grants).to_have_count(2)
    expect(grants.first).to_contain_text("alice")
    expect(page.locator("#grants")).to_contain_text("profile")
    expect(page.locator("#grants")).to_contain_text("email")
    expect(page.locator("#history")).to_contain_text("client.register")
    expect(page.get_by_role("heading", name="Recent flows")).to_be_visible()  # a section from flow records
    expect(page.locator("#offboard-button")).to_be_visible()
    shot(page, "admin-client")
    assert tab.csp_violations() == []


def _fits(page: Page, width: int) -> None:
    """Nothing sticks out of a ``width`` px screen: the page never scrolls sideways (wide tables scroll inside
    their card) and every navigation link is on screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for link in page.locator("nav.main a").all():
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, link.inner_text()


def test_dashboard_on_a_phone(
    admin_server: RunningServer, vendor: dict[str, Any], resource_server: dict[str, Any], tab: Watched
) -> None:
    page = tab.page
    page.set_viewport_size({"width": 390, "height": 844})
    _signed_in(page, admin_server)
    _fits(page, 390)
    expect(page.locator("#clients tbody tr")).to_have_count(3)
    shot(page, "admin-clients-390")
    # search and filters, kept in the form
    page.get_by_label("Search").fill("vendor")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#clients tbody tr")).to_have_count(1)
    expect(page.locator(f"tr[data-client-id='{vendor['client_id']}']")).to_be_visible()
    expect(page.get_by_label("Search")).to_have_value("vendor")
    expect(page.locator("#filter-count")).to_have_text("1 of 3 clients match.")
    page.get_by_label("Search").fill("")
    page.get_by_label("Kind").select_option("first-party")
    page.get_by_label("Status").select_option("no")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#clients tbody tr")).to_have_count(1)
    expect(page.locator(f"tr[data-client-id='{vendor['other']}']")).to_contain_text("Intranet")
    expect(page.get_by_label("Kind")).to_have_value("first-party")
    _fits(page, 390)
    shot(page, "admin-clients-filtered-390")
    page.get_by_label("Owner").select_option("team-payments")
    page.get_by_label("Kind").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#clients tbody tr")).to_have_count(1)
    expect(page.locator(f"tr[data-client-id='{resource_server['client_id']}']")).to_contain_text("Payments API")
    # tier badges carry their tier's colour class
    expect(page.locator("#clients .badge.tier").first).to_have_class(re.compile(r"\btier-0\b"))
    # flow records name the client
    page.get_by_role("link", name="Flow records").click()
    expect(page.locator("#flows")).to_contain_text("Vendor Portal")
    _fits(page, 390)
    shot(page, "admin-flows-390")
    page.locator("#flows a", has_text="Vendor Portal").first.click()
    expect(page.locator("#client-title")).to_have_text("Vendor Portal")
    _fits(page, 390)
    shot(page, "admin-client-390")
    page.get_by_role("link", name="Report").click()
    _fits(page, 390)
    shot(page, "admin-report-390")
    assert tab.csp_violations() == []


def test_csrf_refusals(admin_server: RunningServer, vendor: dict[str, Any], tab: Watched) -> None:
    page = tab.page
    _signed_in(page, admin_server)
    page.goto(f"{admin_server.issuer}/admin/client?id={vendor['client_id']}")
    # a forged token in our own form
    page.locator("#offboard input[name=csrf_token]").evaluate("e => { e.value = 'forged' }")
    page.get_by_label("Reason", exact=True).fill("forged request")
    with page.expect_response(re.compile(r"/admin/client/offboard$")) as info:
        page.locator("#offboard-button").click()
    assert info.value.status == 403
    expect(page.locator("#notice")).to_contain_text("CSRF check failed")
    shot(page, "admin-csrf-refused")

    # a cross-site page posting to the dashboard: the SameSite=Strict session cookie is not sent
    attack = (
        f"<form id=f method=post action='{admin_server.issuer}/admin/client/offboard'>"
        f"<input name=client_id value='{vendor['client_id']}'><input name=reason value=pwned>"
        "<input name=csrf_token value=guess></form><script>document.getElementById('f').submit()</script>"
    )

    def serve(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=attack)

    page.route(f"{ATTACKER}/**", serve)
    with page.expect_response(re.compile(r"/admin/client/offboard$")) as info:
        page.goto(f"{ATTACKER}/csrf")
    assert info.value.status == 403
    record = json.loads(_cli(admin_server, "clients", "show", vendor["client_id"], "--format", "json"))
    assert record["status"] == "active", "neither request offboarded the client"


def test_offboarding_through_the_button(
    admin_server: RunningServer, vendor: dict[str, Any], resource_server: dict[str, Any], tab: Watched
) -> None:
    page = tab.page
    page.set_viewport_size({"width": 1360, "height": 900})
    tokens = vendor["tokens"]
    for t in tokens:
        assert _introspect(admin_server, resource_server, t.access_token)["active"] is True
    _signed_in(page, admin_server)
    page.get_by_role("link", name="Vendor Portal").click()
    page.get_by_label("Reason", exact=True).fill("Vendor contract ended (ticket SEC-142)")
    page.locator("#offboard-button").click()
    expect(page.locator("#done")).to_contain_text("offboarded")
    expect(page.locator("#client-status")).to_have_text("disabled")
    expect(page.locator("#disabled-notice")).to_contain_text(f"admin:{ADMIN}")
    expect(page.locator("#disabled-notice")).to_contain_text("Vendor contract ended (ticket SEC-142)")
    expect(page.locator("#offboard-button")).to_have_count(0)
    expect(page.locator("#history")).to_contain_text("client.offboard")
    expect(page.locator("#active-tokens")).to_have_text("0")
    shot(page, "admin-offboarded")
    for t in tokens:
        assert _introspect(admin_server, resource_server, t.access_token) == {"active": False}
        assert _introspect(admin_server, resource_server, t.refresh_token) == {"active": False}
    page.get_by_role("link", name="Clients").click()
    expect(page.locator(f"tr[data-client-id='{vendor['client_id']}']")).to_contain_text("disabled")
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#audit")).to_contain_text("client.offboard")
    shot(page, "admin-audit")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Administrator sign-in")).to_be_visible()
    page.goto(f"{admin_server.issuer}/admin/clients")
    assert page.url.endswith("/admin/login")
    assert tab.csp_violations() == []
