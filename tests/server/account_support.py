"""Driving the ``/account`` pages in-process: read a page's forms, sign in with a password, a code or a passkey."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pyotp

from jarmor.cli.soft_authenticator import SoftAuthenticator
from jarmor.server.accounts import add_user
from tests.kit import ISSUER, Kit

PASSWORD = "correct horse battery staple"


def fields(html: str, form_action: str) -> dict[str, str]:
    """The hidden fields (and ``data-options``) of the form posting to ``form_action`` on ``html``."""
    for match in re.finditer(r"<form\b([^>]*)>(.*?)</form>", html, re.S):
        attrs, body = match.groups()
        if f'action="{form_action}"' not in attrs:
            continue
        out = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]*)" value="([^"]*)"', body)}
        options = re.search(r'data-options="([^"]*)"', attrs)
        if options:
            out["_options"] = unescape(options.group(1))
        return out
    raise AssertionError(f"no form posting to {form_action}: {html[:400]}")


async def new_user(kit: Kit, name: str = "alice") -> None:
    await add_user(kit.store.users, name, PASSWORD)


async def password_login(http: httpx.AsyncClient, name: str = "alice", password: str = PASSWORD) -> httpx.Response:
    page = await http.get("/account/login")
    form = fields(page.text, "/account/login")
    return await http.post("/account/login", data={**form, "username": name, "password": password})


async def code_step(http: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await http.get("/account/login/code")
    return await http.post("/account/login/code", data={**fields(page.text, "/account/login/code"), "code": code})


async def enrol_totp(http: httpx.AsyncClient, now: float) -> pyotp.TOTP:
    overview = await http.get("/account")
    page = await http.post("/account/totp/new", data=fields(overview.text, "/account/totp/new"))
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret, page.text
    totp = pyotp.TOTP(secret.group(1))
    form = fields(page.text, "/account/totp/confirm")
    done = await http.post("/account/totp/confirm", data={**form, "code": totp.at(now)})
    assert "Authenticator app added" in done.text, done.text
    return totp


def soft_authenticator(**kw: object) -> SoftAuthenticator:
    return SoftAuthenticator(origin=ISSUER, **kw)  # type: ignore[arg-type]


async def enrol_passkey(http: httpx.AsyncClient, device: SoftAuthenticator) -> httpx.Response:
    page = await http.get("/account/passkeys/new")
    form = fields(page.text, "/account/passkeys")
    return await http.post("/account/passkeys", data={
        **{k: v for k, v in form.items() if k != "_options"}, "credential": device.create(form["_options"]),
    })


async def passkey_login(http: httpx.AsyncClient, device: SoftAuthenticator, *, bump: bool = True) -> httpx.Response:
    page = await http.get("/account/login")
    form = fields(page.text, "/account/login/passkey")
    credential = device.get(form.pop("_options"), "127.0.0.1", bump=bump)
    return await http.post("/account/login/passkey", data={**form, "credential": credential})


def browser(kit: Kit) -> httpx.AsyncClient:
    """Another browser (its own cookie jar) on the same server."""
    return httpx.AsyncClient(transport=kit.http._transport, base_url=ISSUER)
