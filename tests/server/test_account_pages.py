"""The account page: sign-in with a password, a password and a TOTP code, or a passkey; enrolling and
removing them; third-party access listed and revoked (audit-logged)."""

from __future__ import annotations

import re

from tests.kit import Kit

from .account_support import (
    browser,
    code_step,
    enrol_passkey,
    enrol_totp,
    fields,
    new_user,
    passkey_login,
    password_login,
    soft_authenticator,
)


async def test_password_sign_in_rotates_the_session_and_signs_out(kit: Kit) -> None:
    await new_user(kit)
    kit.http.cookies.set("jarmor_account", "planted-by-an-attacker", domain="127.0.0.1", path="/account")
    r = await password_login(kit.http)
    assert r.status_code == 303 and r.headers["location"] == "/account"
    sid = r.cookies["jarmor_account"]
    assert sid != "planted-by-an-attacker"
    page = await kit.http.get("/account")
    assert 'id="account-name">alice<' in page.text and 'id="signed-in-with">password<' in page.text
    r = await kit.http.post("/account/logout", data=fields(page.text, "/account/logout"))
    assert r.status_code == 303
    async with browser(kit) as other:
        other.cookies.set("jarmor_account", sid, domain="127.0.0.1", path="/account")
        assert (await other.get("/account")).headers["location"] == "/account/login"


async def test_totp_enrolment_then_sign_in_needs_the_code_once(kit: Kit) -> None:
    await new_user(kit)
    await password_login(kit.http)
    totp = await enrol_totp(kit.http, kit.env.now())
    async with browser(kit) as b:
        r = await password_login(b)
        assert r.headers["location"] == "/account/login/code"
        assert (await b.get("/account")).headers["location"] == "/account/login", "half signed in is not signed in"
        code = totp.at(kit.env.now() + 30)  # the next step: the enrolment used the current one
        r = await code_step(b, code)
        assert r.headers["location"] == "/account"
        assert 'id="signed-in-with">password+totp<' in (await b.get("/account")).text
    async with browser(kit) as c:
        await password_login(c)
        r = await code_step(c, code)
        assert r.status_code == 401 and "Wrong or already used code." in r.text


async def test_passkey_enrolment_and_sign_in(kit: Kit) -> None:
    await new_user(kit)
    await password_login(kit.http)
    device = soft_authenticator()
    r = await enrol_passkey(kit.http, device)
    assert "Passkey added." in r.text and 'data-kind="passkey"' in r.text and "device-bound passkey" in r.text
    (record,) = await kit.store.accounts.list_for("user", "alice")
    assert record.user_verified and not record.backup_eligible and record.transports == ("internal",)
    async with browser(kit) as b:
        r = await passkey_login(b, device)
        assert r.status_code == 303 and r.headers["location"] == "/account", r.text
        assert 'id="signed-in-with">passkey<' in (await b.get("/account")).text
    async with browser(kit) as c:
        r = await passkey_login(c, device, bump=False)  # the counter did not grow: a cloned authenticator
        assert r.status_code == 401 and "This passkey could not be used" in r.text


async def test_passkey_without_user_verification_is_refused(kit: Kit) -> None:
    await new_user(kit)
    await password_login(kit.http)
    r = await enrol_passkey(kit.http, soft_authenticator(user_verified=False))
    assert "Passkey not added" in r.text
    assert await kit.store.accounts.list_for("user", "alice") == []


async def test_remove_a_method(kit: Kit) -> None:
    await new_user(kit)
    await password_login(kit.http)
    await enrol_totp(kit.http, kit.env.now())
    page = await kit.http.get("/account")
    (aid,) = re.findall(r'action="/account/methods/([^/"]+)/remove"', page.text)
    r = await kit.http.post(f"/account/methods/{aid}/remove", data=fields(page.text, f"/account/methods/{aid}/remove"))
    assert "Sign-in method removed." in r.text
    assert await kit.store.accounts.list_for("user", "alice") == []
    events = await kit.store.audit.list(target="user:alice")
    assert [e.action for e in events][:2] == ["user.authenticator_remove", "user.totp_add"]


async def test_third_party_access_listed_and_revoked(kit: Kit) -> None:
    await new_user(kit)
    client = await kit.add_client(client_name="Photo Printer", owner="Printing Ltd", scope="openid email")
    flow = await kit.full_flow(client, scope="openid email")
    assert flow["token"].status_code == 200
    await password_login(kit.http)
    page = await kit.http.get("/account")
    assert 'class="app-name">Photo Printer<' in page.text and "by Printing Ltd" in page.text
    assert "third party" in page.text and "See your email address" in page.text
    (grant_id,) = re.findall(r'data-grant="([^"]+)"', page.text)
    action = f"/account/access/{grant_id}/revoke"
    r = await kit.http.post(action, data=fields(page.text, action))
    assert "Access revoked." in r.text and 'id="no-access"' in r.text
    grant = await kit.store.grants.get(grant_id)
    assert grant is not None and grant.revoked_at is not None
    tokens = [t for t in kit.store.tokens._data.values() if t.grant_id == grant_id]
    assert tokens and all(t.revoked_at is not None for t in tokens)
    (event,) = [e for e in await kit.store.audit.list() if e.action == "grant.revoke"]
    assert event.actor == "user:alice" and event.target == f"client:{client.client_id}"


async def test_another_users_grant_cannot_be_revoked(kit: Kit) -> None:
    await new_user(kit)
    await new_user(kit, "bob")
    client = await kit.add_client()
    await kit.full_flow(client)  # auto-approved as alice
    (use,) = await kit.store.accounts.grants_of("alice")
    await password_login(kit.http, "bob")
    page = await kit.http.get("/account")
    token = fields(page.text, "/account/logout")["csrf_token"]  # bob's real token, for another form
    r = await kit.http.post(f"/account/access/{use.grant.grant_id}/revoke", data={"csrf_token": token})
    assert r.status_code == 403
    grant = await kit.store.grants.get(use.grant.grant_id)
    assert grant is not None and grant.revoked_at is None


async def test_the_methods_each_account_can_sign_in_with(kit: Kit) -> None:
    from jarmor.server import authn
    from jarmor.server.account_lifecycle import add_passkey_only_user

    await new_user(kit)
    assert await authn.methods_of(kit.store, "alice") == {"password"}
    await password_login(kit.http)
    await enrol_totp(kit.http, kit.env.now())
    synced = soft_authenticator(backup_eligible=True)
    await enrol_passkey(kit.http, synced)
    assert await authn.methods_of(kit.store, "alice") == {"password+totp", "passkey"}
    await add_passkey_only_user(kit.store, "bob", by="test")
    assert await authn.methods_of(kit.store, "bob") == set()
    assert await authn.methods_of(kit.store, "nobody") == set()
    (passkey,) = [m for m in await kit.store.accounts.list_for("user", "alice") if m.kind == "passkey"]
    assert passkey.backup_eligible
    async with browser(kit) as b:
        assert (await passkey_login(b, soft_authenticator())).status_code == 401  # a key never enrolled
        assert (await passkey_login(b, synced)).status_code == 303
        assert "synced passkey" in (await b.get("/account")).text
