"""The admin dashboard over HTTP (in process): sign-in separate from end users, sessions, CSRF, throttling,
the pages and their actions, and the registry other features extend it through.

The same behaviour in a real browser: tests/browser/test_admin.py.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import pytest
from starlette.responses import Response

from jarmor.server.accounts import add_user
from jarmor.server.admin import (
    DASHBOARD,
    AdminContext,
    AdminView,
    ClientSection,
    Dashboard,
    admin_page,
    admin_routes,
)
from jarmor.server.admin.accounts import add_admin
from tests.kit import Clock, Kit, TestClient

ADMIN, PASSWORD = "root", "a long admin password"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with small parameters: these tests are about the dashboard, not the hash's cost."""
    from argon2 import PasswordHasher

    from jarmor.server.passwords import PASSWORDS

    monkeypatch.setattr(PASSWORDS, "hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def admin_kit(kit: Kit) -> Kit:
    await add_admin(kit.store.admins, ADMIN, PASSWORD, now=kit.env.now())
    await add_user(kit.store.users, "alice", "alice's password")
    return kit


def csrf(r: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert match, r.text[:500]
    return unescape(match.group(1))


async def sign_in(kit: Kit, username: str = ADMIN, password: str = PASSWORD) -> httpx.Response:
    form = await kit.http.get("/admin/login")
    assert form.status_code == 200
    return await kit.http.post(
        "/admin/login", data={"csrf_token": csrf(form), "username": username, "password": password}
    )


async def signed_in(kit: Kit) -> str:
    """Sign in and return the session's CSRF token (from the clients page)."""
    r = await sign_in(kit)
    assert r.status_code == 303 and r.headers["location"] == "/admin/clients", r.text
    page = await kit.http.get("/admin/clients")
    assert page.status_code == 200
    return csrf(page)


async def test_pages_need_a_session(admin_kit: Kit) -> None:
    for path in ("/admin", "/admin/clients", "/admin/client?id=x", "/admin/audit", "/admin/report"):
        r = await admin_kit.http.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/admin/login", path
    r = await admin_kit.http.post("/admin/client/offboard", data={"client_id": "x", "reason": "y"})
    assert r.status_code == 403


async def test_sign_in_sets_a_strict_session_cookie(admin_kit: Kit) -> None:
    r = await sign_in(admin_kit)
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("jarmor_admin="))
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite"} <= attrs
    assert "Path=/admin" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    sid = cookie.split(";")[0].split("=", 1)[1]
    assert len(sid) >= 43
    assert not any(sid in str(k) for k in admin_kit.store.ephemeral._data), "only a digest is stored"
    page = await admin_kit.http.get("/admin/clients")
    assert page.status_code == 200 and 'id="admin-name">root<' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp


@pytest.mark.parametrize(
    ("username", "password"),
    [(ADMIN, "wrong password!"), ("alice", "alice's password"), ("nobody", PASSWORD), ("", "")],
)
async def test_wrong_or_end_user_credentials_are_refused(admin_kit: Kit, username: str, password: str) -> None:
    r = await sign_in(admin_kit, username, password)
    assert r.status_code == 401 and "Wrong administrator name or password" in r.text
    assert (await admin_kit.http.get("/admin/clients")).status_code == 303


async def test_login_form_needs_its_csrf_token(admin_kit: Kit) -> None:
    await admin_kit.http.get("/admin/login")
    r = await admin_kit.http.post("/admin/login", data={"csrf_token": "forged", "username": ADMIN, "password": PASSWORD})
    assert r.status_code == 403
    fresh = httpx.AsyncClient(transport=admin_kit.http._transport, base_url=str(admin_kit.http.base_url))
    page = await admin_kit.http.get("/admin/login")
    r = await fresh.post("/admin/login", data={"csrf_token": csrf(page), "username": ADMIN, "password": PASSWORD})
    assert r.status_code == 403, "the token is bound to the browser's sign-in cookie"
    await fresh.aclose()


async def test_cross_origin_sign_in_is_refused(admin_kit: Kit) -> None:
    page = await admin_kit.http.get("/admin/login")
    r = await admin_kit.http.post(
        "/admin/login",
        data={"csrf_token": csrf(page), "username": ADMIN, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403


async def test_sign_in_is_throttled(admin_kit: Kit) -> None:
    for _ in range(5):
        assert (await sign_in(admin_kit, ADMIN, "wrong password!")).status_code == 401
    r = await sign_in(admin_kit)
    assert r.status_code == 429 and "Too many failed sign-in attempts" in r.text, "even the right password"


async def test_throttling_ends_after_the_window(admin_kit: Kit, clock: Clock) -> None:
    for _ in range(5):
        await sign_in(admin_kit, ADMIN, "wrong password!")
    clock.advance(15 * 60 + 1)
    assert (await sign_in(admin_kit)).status_code == 303


async def test_session_expires_when_idle(admin_kit: Kit, clock: Clock) -> None:
    await signed_in(admin_kit)
    clock.advance(29 * 60)
    assert (await admin_kit.http.get("/admin/clients")).status_code == 200, "activity keeps it alive"
    clock.advance(31 * 60)
    assert (await admin_kit.http.get("/admin/clients")).status_code == 303


async def test_session_has_an_absolute_lifetime(admin_kit: Kit, clock: Clock) -> None:
    await signed_in(admin_kit)
    for _ in range(17):
        clock.advance(29 * 60)
        await admin_kit.http.get("/admin/clients")
    assert (await admin_kit.http.get("/admin/clients")).status_code == 303


async def test_sign_out(admin_kit: Kit) -> None:
    token = await signed_in(admin_kit)
    assert (await admin_kit.http.post("/admin/logout", data={"csrf_token": "forged"})).status_code == 403
    r = await admin_kit.http.post("/admin/logout", data={"csrf_token": token})
    assert r.status_code == 303
    assert (await admin_kit.http.get("/admin/clients")).status_code == 303


async def test_disabled_admin_loses_the_session(admin_kit: Kit) -> None:
    await signed_in(admin_kit)
    record = await admin_kit.store.admins.get(ADMIN)
    assert record is not None
    record.disabled = True
    await admin_kit.store.admins.update(record)
    assert (await admin_kit.http.get("/admin/clients")).status_code == 303


async def full_flow(kit: Kit, client: TestClient) -> dict[str, Any]:
    r = (await kit.full_flow(client))["token"]
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_inventory_and_client_page(admin_kit: Kit) -> None:
    kit = admin_kit
    app = await kit.add_client(risk_tier="elevated", client_name="Payroll <b>App</b>", owner="team-hr",
                               response_modes=["jwt"])
    await full_flow(kit, app)
    await signed_in(kit)
    page = await kit.http.get("/admin/clients")
    assert "Payroll &lt;b&gt;App&lt;/b&gt;" in page.text and "<b>App</b>" not in page.text
    assert "team-hr" in page.text and "elevated" in page.text
    page = await kit.http.get("/admin/client", params={"id": app.client_id})
    assert page.status_code == 200
    text = page.text
    assert app.client_id in text and app.key.kid in text and "alice" in text
    assert 'id="offboard-button"' in text and "Recent flows" in text
    assert (await kit.http.get("/admin/client", params={"id": "nobody"})).status_code == 404


async def test_offboard_through_the_dashboard(admin_kit: Kit) -> None:
    kit = admin_kit
    app = await kit.add_client(risk_tier="baseline")
    t = await full_flow(kit, app)
    token = await signed_in(kit)
    r = await kit.http.post("/admin/client/offboard", data={"client_id": app.client_id, "reason": "breach"})
    assert r.status_code == 403, "no CSRF token"
    r = await kit.http.post(
        "/admin/client/offboard",
        data={"csrf_token": token, "client_id": app.client_id, "reason": "breach"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403, "cross-origin"
    record = await kit.store.clients.get(app.client_id)
    assert record is not None and record.disabled_at is None
    r = await kit.http.post("/admin/client/offboard", data={"csrf_token": token, "client_id": app.client_id, "reason": ""})
    assert r.status_code == 400 and "reason is required" in r.text
    r = await kit.http.post(
        "/admin/client/offboard", data={"csrf_token": token, "client_id": app.client_id, "reason": "breach"}
    )
    assert r.status_code == 303
    record = await kit.store.clients.get(app.client_id)
    assert record is not None and record.disabled_by == "admin:root" and record.disabled_reason == "breach"
    r = await kit.http.post("/introspect", data={**app.auth_form(), "token": t["access_token"]})
    assert r.status_code == 401, "the offboarded client itself can no longer authenticate (cache invalidated)"
    page = await kit.http.get("/admin/client", params={"id": app.client_id})
    assert "disabled" in page.text and "breach" in page.text and 'id="offboard-button"' not in page.text


async def test_revoke_a_grant_through_the_dashboard(admin_kit: Kit) -> None:
    kit = admin_kit
    app = await kit.add_client(risk_tier="baseline")
    t = await full_flow(kit, app)
    [grant] = await kit.store.grants.list_for_client(app.client_id)
    token = await signed_in(kit)
    r = await kit.http.post(
        "/admin/grant/revoke", data={"csrf_token": token, "grant_id": grant.grant_id, "reason": "user left"}
    )
    assert r.status_code == 303
    r = await kit.http.post("/introspect", data={**app.auth_form(), "token": t["access_token"]})
    assert r.json() == {"active": False}
    audit = await kit.http.get("/admin/audit")
    assert "grant.revoke" in audit.text and "user left" in audit.text and "admin.login" in audit.text


async def test_views_and_sections_can_be_added(admin_kit: Kit) -> None:
    """The dashboard is an explicit list other features extend: a view (with its navigation entry) and a
    client-page section added to jarmor's own list are served; a path or title listed twice is refused."""
    kit = admin_kit

    async def extra(ctx: AdminContext) -> Response:
        return admin_page(ctx, "admin/notice.html", {"message": "the real page"}, title="Extra", status=200)

    async def section(ctx: AdminContext, client: Any) -> tuple[str, dict[str, Any]]:
        return "admin/section_text.html", {"text": f"owner is {client.owner}"}

    dashboard = Dashboard(
        views=(*DASHBOARD.views, AdminView("/extra", extra, nav="Extra", nav_order=95)),
        sections=(*DASHBOARD.sections, ClientSection("Extra section", section, order=5)),
    )
    app = await kit.add_client(risk_tier="baseline", owner="team-x")
    from starlette.applications import Starlette

    kit.http._transport = httpx.ASGITransport(app=Starlette(routes=admin_routes(kit.server, dashboard)))
    await signed_in(kit)
    page = await kit.http.get("/admin/extra")
    assert page.status_code == 200 and "the real page" in page.text
    nav = re.findall(r'<a href="(/admin/[a-z]+)"( class="active")?', page.text)
    assert nav[0] == ("/admin/clients", "") and ("/admin/extra", ' class="active"') in nav
    text = (await kit.http.get("/admin/client", params={"id": app.client_id})).text
    assert "Extra section" in text and "owner is team-x" in text and "Recent flows" in text
    assert text.index("Extra section") < text.index("Recent flows")  # sections in their order
    with pytest.raises(ValueError, match="'/extra' is listed twice"):
        Dashboard(views=(*dashboard.views, AdminView("/extra", extra)))
    with pytest.raises(ValueError, match="'Recent flows' is listed twice"):
        Dashboard(views=(), sections=(*DASHBOARD.sections, *DASHBOARD.sections))
    # jarmor's own list: every page module's views, and nothing registered behind its back
    assert {v.path for v in DASHBOARD.views} == {
        "", "/clients", "/client", "/client/offboard", "/grant/revoke", "/audit", "/api/clients",
        "/flows", "/flow", "/flows/verify", "/report",
    }


async def test_the_json_inventory_api_pages_and_filters(admin_kit: Kit) -> None:
    assert (await admin_kit.http.get("/admin/api/clients")).status_code == 303  # a session is needed
    for i in range(5):
        await admin_kit.add_client(client_name=f"App {i}", risk_tier="high" if i < 2 else "baseline")
    await signed_in(admin_kit)
    r = await admin_kit.http.get("/admin/api/clients", params={"tier": "high"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["total"] == 2 and {c["risk_tier"] for c in body["clients"]} == {"high"}
    first = (await admin_kit.http.get("/admin/api/clients", params={"limit": "3"})).json()
    rest = (await admin_kit.http.get("/admin/api/clients", params={"limit": "3", "offset": "3"})).json()
    assert first["total"] == rest["total"] >= 5 and len(first["clients"]) == 3
    assert not {c["client_id"] for c in first["clients"]} & {c["client_id"] for c in rest["clients"]}
    assert (await admin_kit.http.get("/admin/api/clients", params={"q": "app 3"})).json()["total"] == 1
    for bad in ({"limit": "0"}, {"limit": "x"}, {"offset": "-1"}, {"status": "gone"}, {"stale_days": "a"}):
        r = await admin_kit.http.get("/admin/api/clients", params=bad)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", bad
