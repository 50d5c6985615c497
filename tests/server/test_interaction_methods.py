"""TOTP and passkeys as sign-in methods of the authorization interaction (``server/interaction_methods.py``):
the sign-in page offers what the request's requirement can be reached with, a further factor is asked of an
identified user, and an assertion or a code is used once."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

from jarmor.protocol.interaction import lifecycle
from jarmor.protocol.interaction.authentication import Level, Requirement
from tests.kit import Kit
from tests.server.conftest import KitFactory
from tests.server.support import plain_request

from .account_support import (
    PASSWORD,
    browser,
    enrol_passkey,
    enrol_totp,
    new_user,
    password_login,
    soft_authenticator,
)
from .softauthn import SoftAuthenticator


def need(monkeypatch: pytest.MonkeyPatch, level: Level) -> None:
    """What the assurance policy will say per tier; here every request needs ``level``."""
    monkeypatch.setattr(lifecycle, "requirement", lambda req: Requirement(level))


async def start(kit: Kit, http: httpx.AsyncClient) -> httpx.Response:
    client = await kit.add_client()
    r = await http.get("/authorize", params=plain_request(client)[0])
    assert r.status_code == 200, r.text[:300]
    return r


def form_of(page: httpx.Response, method: str | None) -> dict[str, str]:
    """The sign-in page's form for ``method`` (``None``: the password form), with its fields."""
    method = method or "password"
    for attrs, body in re.findall(r"<form\b([^>]*)>(.*?)</form>", page.text, re.S):
        named = re.search(r'name="method" value="([^"]+)"', body)
        if (named.group(1) if named else None) == method or (method == "passkey" and named and "passkey" in named.group(1)):
            out = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]*)" value="([^"]*)"', body)}
            out["_action"] = unescape(re.search(r'action="([^"]+)"', attrs).group(1))  # type: ignore[union-attr]
            options = re.search(r'data-options="([^"]*)"', attrs)
            if options:
                out["_options"] = unescape(options.group(1))
            return out
    raise AssertionError(f"no {method} form on {page.text[:600]}")


def offered(page: httpx.Response) -> set[str]:
    return set(re.findall(r'name="method" value="([^"]+)"', page.text))


async def post(http: httpx.AsyncClient, form: dict[str, str], **fields: str) -> httpx.Response:
    data = {k: v for k, v in form.items() if not k.startswith("_")} | fields
    r = await http.post(form["_action"], data=data)
    if r.status_code == 303 and "/interaction/" in r.headers["location"]:
        r = await http.get(r.headers["location"])
    return r


async def with_passkey(kit: Kit, **kw: object) -> SoftAuthenticator:
    await new_user(kit)
    device = soft_authenticator(**kw)
    async with browser(kit) as b:
        await password_login(b)
        await enrol_passkey(b, device)
    return device


async def test_a_passkey_signs_in_to_an_interaction(make: KitFactory) -> None:
    kit = await make(auto_approve=None)
    device = await with_passkey(kit)
    page = await start(kit, kit.http)
    assert {"password", "passkey-device", } <= offered(page)
    form = form_of(page, "passkey")
    credential = device.get(form["_options"], "127.0.0.1")
    r = await post(kit.http, form, credential=credential)
    assert "Allow" in r.text and "alice" in r.text, r.text[:500]
    # the same assertion again (a replayed challenge) on a new interaction's page is refused
    page2 = await start(kit, kit.http)
    r2 = await post(kit.http, form_of(page2, "passkey"), credential=credential)
    assert r2.status_code == 401


async def test_high_requirement_asks_an_identified_user_for_a_code(
    make: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    need(monkeypatch, Level.AAL2)
    kit = await make(auto_approve=None)
    await new_user(kit)
    async with browser(kit) as b:
        await password_login(b)
        totp = await enrol_totp(b, kit.env.now())
    page = await start(kit, kit.http)
    r = await post(kit.http, form_of(page, None), username="alice", password=PASSWORD)
    assert 'id="step-up-notice"' in r.text and offered(r) == {"totp"}, r.text[:800]
    code = totp.at(kit.env.now() + 30)
    r = await post(kit.http, form_of(r, "totp"), code="000000")
    assert r.status_code == 401 and offered(r) == {"totp"}
    r = await post(kit.http, form_of(r, "totp"), code=code)
    assert "Allow" in r.text, r.text[:500]


async def test_high_requirement_without_a_second_factor_is_refused(
    make: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    need(monkeypatch, Level.AAL2)
    kit = await make(auto_approve=None)
    await new_user(kit)
    page = await start(kit, kit.http)
    r = await post(kit.http, form_of(page, None), username="alice", password=PASSWORD)
    assert r.status_code == 303 and "error=access_denied" in r.headers["location"]


async def test_phishing_resistant_requirement_offers_only_a_device_bound_passkey(
    make: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    need(monkeypatch, Level.AAL3)
    kit = await make(auto_approve=None)
    device = await with_passkey(kit)
    page = await start(kit, kit.http)
    assert offered(page) == {"passkey-device"} and 'name="password"' not in page.text
    r = await post(kit.http, form_of(page, "passkey"), credential=device.get(form_of(page, "passkey")["_options"], "127.0.0.1"))
    assert "Allow" in r.text, r.text[:500]


async def test_a_synced_passkey_does_not_reach_aal3(make: KitFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    need(monkeypatch, Level.AAL3)
    kit = await make(auto_approve=None)
    synced = await with_passkey(kit, backup_eligible=True)
    page = await start(kit, kit.http)
    form = form_of(page, "passkey")
    r = await kit.http.post(form["_action"], data={
        **{k: v for k, v in form.items() if not k.startswith("_")}, "credential": synced.get(form["_options"], "127.0.0.1"),
    })
    assert r.status_code == 303 and "error=access_denied" in r.headers["location"]
