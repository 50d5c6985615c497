"""Attacks on the account page's sign-in and forms (server/account/, server/totp.py, server/passkeys.py).

* TOTP replay: a code accepted once is refused, also when two sign-ins submit it at the same moment (the
  time step is used with one atomic compare-and-set in the store: memory, SQLite, PostgreSQL, Redis-fronted).
* Throttling: codes are counted per second-factor session, per account (a right password does not reset
  that count) and per address; passkey assertions per address — all before anything is checked.
* Enumeration: unknown, wrong-password, disabled, removed and passkey-only accounts get the same answer for
  the same work: exactly one Argon2 verification each (counted, not timed).
* Enrolment links: single use, also under concurrent registrations; refused once their lifetime is over.
* CSRF: every form of the account pages is refused without its token, or with a token made for another form.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from jarmor.protocol.context import Settings
from jarmor.server import passwords
from jarmor.server.account.enrolment import issue_link
from jarmor.server.account_lifecycle import add_passkey_only_user, remove_user, set_user_disabled
from tests.kit import Clock, Kit
from tests.security.test_concurrency_attacks import KINDS, Race, open_race
from tests.server.account_support import (
    PASSWORD,
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
from tests.server.conftest import KitFactory


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords.PASSWORDS, "hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(params=KINDS)
async def race(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Race]:
    async with open_race(request.param, tmp_path) as r:
        yield r


async def test_a_totp_code_submitted_twice_at_once_signs_in_once(race: Race) -> None:
    kit = race.kit
    await new_user(kit)
    await password_login(kit.http)
    totp = await enrol_totp(kit.http, kit.env.now())
    code = totp.at(kit.env.now() + 30)
    sessions = [browser(kit) for _ in range(5)]  # within the account's limit of 5 counted codes
    try:
        for b in sessions:
            assert (await password_login(b)).headers["location"] == "/account/login/code"
        forms = [fields((await b.get("/account/login/code")).text, "/account/login/code") for b in sessions]
        results = await asyncio.gather(*(
            b.post("/account/login/code", data={**f, "code": code}) for b, f in zip(sessions, forms, strict=True)
        ))
    finally:
        for b in sessions:
            await b.aclose()
    assert sorted(r.status_code for r in results) == [303] + [401] * 4, [r.status_code for r in results]


async def test_totp_guesses_are_limited_per_session_and_per_account(make: KitFactory) -> None:
    kit = await make(settings=Settings(login_max_failures=5, login_max_failures_per_address=1000))
    await new_user(kit)
    await password_login(kit.http)
    totp = await enrol_totp(kit.http, kit.env.now())
    async with browser(kit) as b:
        await password_login(b)
        for _ in range(4):
            assert (await code_step(b, "000000")).status_code == 401
        # the right password again: a new second-factor session, but the account's code count goes on
        await password_login(b)
        assert (await code_step(b, "000000")).status_code == 401
        r = await code_step(b, totp.at(kit.env.now() + 30))
        assert r.status_code == 429 and "Too many failed" in r.text, "the right code after the limit is refused"
    kit2 = await make(settings=Settings(login_max_failures=100, login_max_failures_per_address=1000))
    await new_user(kit2)
    await password_login(kit2.http)
    await enrol_totp(kit2.http, kit2.env.now())
    async with browser(kit2) as b:
        await password_login(b)
        for _ in range(5):
            assert (await code_step(b, "000000")).status_code == 401
        r = await code_step(b, "000000")  # the session's sixth code: the session ends
        assert r.status_code in (303, 429)
        assert (await b.get("/account/login/code")).headers["location"] == "/account/login"


async def test_passkey_failures_are_limited_per_address(make: KitFactory) -> None:
    kit = await make(settings=Settings(login_max_failures_per_address=3))
    await new_user(kit)
    await password_login(kit.http)
    device = soft_authenticator()
    await enrol_passkey(kit.http, device)
    async with browser(kit) as b:
        assert (await passkey_login(b, device)).status_code == 303  # the counter is 1 now
    async with browser(kit) as b:
        for _ in range(3):
            assert (await passkey_login(b, device, bump=False)).status_code == 401
        r = await passkey_login(b, device)  # a good assertion after the limit
        assert r.status_code == 429


async def test_no_enumeration_same_answer_same_work(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    verified: list[str] = []
    lock = threading.Lock()
    real = passwords._verify

    def counting(hasher: PasswordHasher, stored: str, password: str) -> bool:
        with lock:
            verified.append(stored)
        return real(hasher, stored, password)

    monkeypatch.setattr(passwords, "_verify", counting)
    await new_user(kit)
    for name in ("disabled", "removed"):
        await new_user(kit, name)
    await set_user_disabled(kit.store, "disabled", True, by="test", now=kit.env.now())
    await remove_user(kit.store, "removed", by="test", now=kit.env.now())
    await add_passkey_only_user(kit.store, "passkeyonly", by="test")
    answers = {}
    for name, password in [("alice", "wrong password"), ("nobody", PASSWORD), ("disabled", PASSWORD),
                           ("removed", PASSWORD), ("passkeyonly", PASSWORD), ("passkeyonly", "!passkey-only")]:
        before = len(verified)
        async with browser(kit) as b:
            r = await password_login(b, name, password)
        assert len(verified) - before == 1, f"{name}: {len(verified) - before} verifications"
        text = re.sub(r'value="[^"]*"', "", r.text)
        answers[name] = (r.status_code, re.search(r'id="login-error">([^<]*)<', text).group(1))  # type: ignore[union-attr]
    assert set(answers.values()) == {(401, "Wrong username or password.")}, answers


async def test_enrolment_link_is_single_use_under_concurrency(race: Race) -> None:
    kit = race.kit
    await add_passkey_only_user(kit.store, "bob", by="test")
    link = await issue_link(kit.store.ephemeral, kit.env.settings, kit.env.issuer, "user", "bob")
    path = link.removeprefix(kit.env.issuer)
    devices = [soft_authenticator() for _ in range(5)]
    pages = [await kit.http.get(path) for _ in devices]
    forms = [fields(p.text, path) for p in pages]
    results = await asyncio.gather(*(
        kit.http.post(path, data={**{k: v for k, v in f.items() if k != "_options"},
                                  "credential": d.create(f["_options"])})
        for f, d in zip(forms, devices, strict=True)
    ))
    assert sorted(r.status_code for r in results) == [200] + [410] * 4
    assert len(await kit.store.accounts.list_for("user", "bob")) == 1
    assert (await kit.http.get(path)).status_code == 410
    winner = devices[[r.status_code for r in results].index(200)]
    async with browser(kit) as b:
        assert (await passkey_login(b, winner)).headers["location"] == "/account"


async def test_an_expired_enrolment_link_is_refused(make: KitFactory, clock: Clock) -> None:
    """``[settings] enrolment_link_lifetime``: the link opens until then; a registration after it is refused
    with the "Link expired" page (410) and adds no passkey, even from a page opened while the link was valid."""
    kit = await make(settings=Settings(enrolment_link_lifetime=300))
    await add_passkey_only_user(kit.store, "bob", by="test")
    path = (await issue_link(kit.store.ephemeral, kit.env.settings, kit.env.issuer, "user", "bob")).removeprefix(
        kit.env.issuer
    )
    clock.advance(299)
    page = await kit.http.get(path)
    assert page.status_code == 200
    form = fields(page.text, path)
    clock.advance(2)
    device = soft_authenticator()
    r = await kit.http.post(path, data={**{k: v for k, v in form.items() if k != "_options"},
                                        "credential": device.create(form["_options"])})
    assert r.status_code == 410 and 'id="notice-title">Link expired<' in r.text
    assert await kit.store.accounts.list_for("user", "bob") == []
    assert (await kit.http.get(path)).status_code == 410


async def test_csrf_on_every_account_form(kit: Kit) -> None:
    await new_user(kit)
    client = await kit.add_client()
    await kit.full_flow(client)
    await password_login(kit.http)
    await enrol_totp(kit.http, kit.env.now())
    overview = await kit.http.get("/account")
    actions = sorted(set(re.findall(r'<form[^>]*method="post" action="([^"]+)"', overview.text)))
    assert {"/account/logout", "/account/totp/new"} <= set(actions) or "/account/logout" in actions
    assert any(a.startswith("/account/access/") for a in actions) and any(a.startswith("/account/methods/") for a in actions)
    other = fields(overview.text, "/account/logout")["csrf_token"]  # a real token, for another form
    extra = ["/account/passkeys", "/account/totp/new", "/account/totp/confirm"]
    for action in [*actions, *extra]:
        for token in ("", "forged", other if action != "/account/logout" else "forged"):
            r = await kit.http.post(action, data={"csrf_token": token, "code": "123456"})
            assert r.status_code == 403, (action, token, r.status_code)
    # the sign-in forms: bound to this browser's login binding, and to their own purpose
    async with browser(kit) as a, browser(kit) as b:
        login = await a.get("/account/login")
        password_token = fields(login.text, "/account/login")["csrf_token"]
        assert (await a.post("/account/login/passkey", data={"csrf_token": password_token})).status_code == 403
        credentials = {"csrf_token": password_token, "username": "alice", "password": PASSWORD}
        await b.get("/account/login")
        assert (await b.post("/account/login", data=credentials)).status_code == 403  # another browser
        r = await a.post("/account/login", data=credentials, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        assert (await a.post("/account/login", data=credentials)).status_code == 303  # the real thing works
        # the code form (second-factor session): its own token only
        for token in ("", password_token):
            assert (await a.post("/account/login/code", data={"csrf_token": token, "code": "123456"})).status_code == 403
    # nothing changed: the grant and the authenticator are still there
    assert len(await kit.store.accounts.grants_of("alice")) == 1
    assert len(await kit.store.accounts.list_for("user", "alice")) == 1


async def test_disabled_user_cannot_use_a_passkey(kit: Kit) -> None:
    await new_user(kit)
    await password_login(kit.http)
    device = soft_authenticator()
    await enrol_passkey(kit.http, device)
    await set_user_disabled(kit.store, "alice", True, by="test", now=kit.env.now())
    async with browser(kit) as b:
        assert (await passkey_login(b, device)).status_code == 401


