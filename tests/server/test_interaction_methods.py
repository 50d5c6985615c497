"""TOTP and passkeys as sign-in methods of the authorization interaction (``server/interaction_methods.py``):
the sign-in page offers what the request's requirement can be reached with, a further factor is asked of an
identified user, and an assertion or a code is used once."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

import httpx
import pytest

from jarmor.cli.soft_authenticator import SoftAuthenticator
from jarmor.jose import JwkSet, verify_jws
from jarmor.protocol.interaction import lifecycle
from jarmor.protocol.interaction.authentication import Level, Requirement
from jarmor.protocol.policy import DEFAULT_TIERS, Control, Policy, TierAuthentication
from tests.kit import Kit, TestClient
from tests.server.conftest import KitFactory
from tests.server.support import plain_request, redeem, split_location

from .account_support import (
    PASSWORD,
    browser,
    enrol_passkey,
    enrol_totp,
    new_user,
    password_login,
    soft_authenticator,
)


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


def _assured(acr: str) -> Policy:
    base = DEFAULT_TIERS["baseline"]
    strong = replace(base, name="strong", rank=5, controls=base.controls | {Control.AUTHENTICATION_ASSURANCE},
                     authentication=TierAuthentication(acr, None))
    return Policy(tiers={**DEFAULT_TIERS, "strong": strong})


async def _code_and_id_token(kit: Kit, client: TestClient, r: httpx.Response, verifier: str) -> dict[str, object]:
    consent = form_of_consent(r)
    r = await kit.http.post(consent["_action"], data={"decision": "approve", "csrf_token": consent["csrf_token"]})
    _, _, got = split_location(r)
    t = await redeem(kit, client, got["code"], verifier)
    assert t.status_code == 200, t.text
    keys = JwkSet.from_dict(kit.server.keyring.public_jwks())
    return dict(verify_jws(t.json()["id_token"], keys, algorithms=["ES256"]).claims)


def form_of_consent(r: httpx.Response) -> dict[str, str]:
    action = re.search(r'action="([^"]+/consent)"', r.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert action and csrf, r.text[:500]
    return {"_action": unescape(action.group(1)), "csrf_token": unescape(csrf.group(1))}


async def test_a_tier_requiring_aal2_signs_in_with_password_and_totp(make: KitFactory) -> None:
    kit = await make(auto_approve=None, policy=_assured("aal2"))
    await new_user(kit)
    async with browser(kit) as b:
        await password_login(b)
        totp = await enrol_totp(b, kit.env.now())
    client = await kit.add_client(risk_tier="strong")
    params, verifier = plain_request(client)
    page = await kit.http.get("/authorize", params=params)
    r = await post(kit.http, form_of(page, None), username="alice", password=PASSWORD)
    assert offered(r) == {"totp"}
    r = await post(kit.http, form_of(r, "totp"), code=totp.at(kit.env.now() + 30))
    claims = await _code_and_id_token(kit, client, r, verifier)
    assert claims["acr"] == "aal2" and claims["amr"] == ["pwd", "otp", "mfa"] and isinstance(claims["auth_time"], int)


async def test_a_tier_requiring_aal3_signs_in_with_a_device_bound_passkey(make: KitFactory) -> None:
    kit = await make(auto_approve=None, policy=_assured("aal3"))
    device = await with_passkey(kit)
    client = await kit.add_client(risk_tier="strong")
    params, verifier = plain_request(client)
    page = await kit.http.get("/authorize", params=params)
    assert offered(page) == {"passkey-device"}
    form = form_of(page, "passkey")
    r = await post(kit.http, form, credential=device.get(form["_options"], "127.0.0.1"))
    claims = await _code_and_id_token(kit, client, r, verifier)
    assert claims["acr"] == "aal3" and claims["amr"] == ["hwk", "user", "mfa"]
