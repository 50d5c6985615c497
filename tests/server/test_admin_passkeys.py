"""Administrators' passkeys: enrolled through a one-time link, accepted by ``/admin/login/passkey``, and with
``admin_require_passkey`` the only way in; an end user's passkey never opens the dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from jarmor.cli.soft_authenticator import SoftAuthenticator
from jarmor.config import ConfigError, load_config
from jarmor.protocol.context import Settings
from jarmor.server.account.enrolment import issue_link
from jarmor.server.admin.accounts import add_admin
from tests.kit import Kit
from tests.server.conftest import KitFactory

from .account_support import enrol_passkey, fields, new_user, password_login, soft_authenticator

ADMIN, PASSWORD = "root", "a long admin password"


async def enrol_admin(kit: Kit) -> SoftAuthenticator:
    await add_admin(kit.store.admins, ADMIN, PASSWORD, now=kit.env.now())
    link = await issue_link(kit.store.ephemeral, kit.env.settings, kit.env.issuer, "admin", ADMIN)
    path = link.removeprefix(kit.env.issuer)
    form = fields((await kit.http.get(path)).text, path)
    device = soft_authenticator()
    r = await kit.http.post(path, data={**{k: v for k, v in form.items() if k != "_options"},
                                        "credential": device.create(form["_options"])})
    assert 'href="/admin/login"' in r.text, r.text
    return device


async def admin_passkey_login(kit: Kit, device: SoftAuthenticator) -> int:
    form = fields((await kit.http.get("/admin/login")).text, "/admin/login/passkey")
    credential = device.get(form.pop("_options"), "127.0.0.1")
    r = await kit.http.post("/admin/login/passkey", data={**form, "credential": credential})
    return r.status_code


async def test_administrator_signs_in_with_a_passkey(kit: Kit) -> None:
    device = await enrol_admin(kit)
    assert await admin_passkey_login(kit, device) == 303
    assert (await kit.http.get("/admin/clients")).status_code == 200
    (event, *_) = await kit.store.audit.list(target=f"admin:{ADMIN}")
    assert event.action == "admin.login" and event.details["method"] == "passkey"


async def test_required_passkey_refuses_passwords(make: KitFactory) -> None:
    kit = await make(settings=Settings(admin_require_passkey=True))
    device = await enrol_admin(kit)
    page = await kit.http.get("/admin/login")
    assert 'name="password"' not in page.text
    r = await kit.http.post("/admin/login", data={
        "csrf_token": "x", "username": ADMIN, "password": PASSWORD,
    })
    assert r.status_code == 403
    assert (await kit.http.get("/admin/clients")).status_code in (303, 307)
    assert await admin_passkey_login(kit, device) == 303


async def test_an_end_users_passkey_does_not_open_the_dashboard(kit: Kit) -> None:
    await add_admin(kit.store.admins, "alice", PASSWORD, now=kit.env.now())  # same name, other population
    await new_user(kit)
    await password_login(kit.http)
    device = soft_authenticator()
    await enrol_passkey(kit.http, device)
    assert await admin_passkey_login(kit, device) == 401
    assert (await kit.http.get("/admin/clients")).headers.get("location") == "/admin/login"


def test_the_setting_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "jarmor.toml"
    path.write_text('[settings]\nadmin_require_passkey = "yes"\n')
    with pytest.raises(ConfigError, match="admin_require_passkey"):
        load_config(path, environ={})
    path.write_text("[settings]\nadmin_require_passkeys = true\n")
    with pytest.raises(ConfigError, match="admin_require_passkeys"):
        load_config(path, environ={})
    path.write_text("[settings]\nadmin_require_passkey = true\n")
    assert load_config(path, environ={}).settings.admin_require_passkey
