"""The demo's user at a browser (``jarmor demo``, and the end-to-end tests that sign in the same way): a
``DemoUser`` with a password, a TOTP app (codes from ``pyotp``) and a passkey on a software authenticator
(``soft_authenticator``), enrolled through the account pages (``enrol_factors``), and a ``Browser`` that
follows the front channel — redirects, cookies, the sign-in page (the method ``sign_in_plan`` picks for the
tier) and the consent page — to the client's redirect URI."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pyotp

from ..protocol.interaction.authentication import LEVEL_OF_ACR, Level
from ..protocol.policy import Control, Tier
from .soft_authenticator import SoftAuthenticator

REDIRECT_URI = "http://127.0.0.1:9999/cb"  # never dereferenced: the demo's browser stops here


class DemoRefused(Exception):
    """The demo would have to change something it did not create, the server is not the one it set up, or one
    of its pages is not what the demo expects."""


class _Forms(HTMLParser):
    """Collects the forms of a page: action, method and input values (the demo's browser)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {},
                               "options": a.get("data-options")})
        elif tag in ("input", "button") and self.forms and a.get("name") and (tag == "input" or a.get("value")):
            self.forms[-1]["fields"].setdefault(a["name"], a.get("value", ""))


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


TOTP_STEP = 30  # RFC 6238 time step the server uses (server/totp.py)


@dataclass
class DemoUser:
    """The demo's user and what it signs in with: its password, a TOTP app and a passkey (``_enrol``)."""

    username: str
    password: str
    totp: pyotp.TOTP | None = None
    device: SoftAuthenticator | None = None
    last_step: int = 0  # the newest TOTP step used: the server accepts each code once (RFC 6238 §5.2)

    def _fresh_step(self) -> int | None:
        now = int(time.time()) // TOTP_STEP
        step = max(now - 1, self.last_step + 1)  # the server accepts one step of drift either side
        return step if self.totp is not None and step <= now + 1 else None

    def can_give_code(self) -> bool:
        return self._fresh_step() is not None

    def code(self) -> str:
        step = self._fresh_step()
        if step is None or self.totp is None:
            raise RuntimeError("no unused TOTP code in this time step")
        self.last_step = step
        return self.totp.at(step * TOTP_STEP)


PASSWORD, PASSWORD_TOTP, PASSKEY = "password", "password + TOTP code", "passkey"


def sign_in_plan(tier: Tier | None, user: DemoUser) -> str:
    """How the demo's user signs in for a flow of ``tier``: as the tier's authentication assurance needs."""
    if tier is None or not tier.requires(Control.AUTHENTICATION_ASSURANCE) or not tier.authentication.acr:
        return PASSWORD
    level = LEVEL_OF_ACR[tier.authentication.acr]
    if level >= Level.AAL3 or (level >= Level.AAL2 and not user.can_give_code()):
        return PASSKEY
    return PASSWORD_TOTP if level >= Level.AAL2 else PASSWORD


@dataclass
class Browser:
    """Follows the front channel like a user agent: redirects, cookies, the sign-in and consent forms.
    ``plan``: how the user signs in (``sign_in_plan``)."""

    http: httpx.AsyncClient
    user: DemoUser
    say: Any
    plan: str = PASSWORD
    hops: list[str] = field(default_factory=list)

    async def run(self, url: str) -> Mapping[str, str] | str:
        for _ in range(10):
            r = await self.http.get(url)
            self.say(f"  browser: GET {short(url)} -> {r.status_code}")
            url, done = await self._next(url, r)
            if done is not None:
                return done
        raise RuntimeError("too many hops")

    async def _next(self, url: str, r: httpx.Response) -> tuple[str, Mapping[str, str] | str | None]:
        while True:
            if r.status_code in (302, 303):
                location = urljoin(url, r.headers["location"])
                if location.startswith(REDIRECT_URI):
                    parts = urlsplit(location)
                    where = "fragment" if parts.fragment else "query"
                    self.say(f"  browser: redirected to the client callback (response in the {where})")
                    return location, location
                return location, None
            page = forms(r.text) if r.status_code in (200, 401) else []
            if not page:
                raise RuntimeError(f"unexpected {r.status_code}: {_page_text(r)}")
            if urljoin(url, page[0]["action"]).startswith(REDIRECT_URI):
                self.say("  browser: auto-submitting form_post page carries the response to the callback")
                return urljoin(url, page[0]["action"]), dict(page[0]["fields"])
            form, fields = self._fill(page, r.status_code)
            action = urljoin(url, form["action"])
            r = await self.http.post(action, data=fields)
            self.say(f"  browser: POST {short(action)} -> {r.status_code}")
            url = action

    def _fill(self, page: list[dict[str, Any]], status: int) -> tuple[dict[str, Any], dict[str, str]]:
        """The form of ``page`` the user submits, filled in: the consent page's Allow, or the sign-in method
        the plan uses that the page offers."""
        if status == 401:
            raise RuntimeError("the sign-in was refused")
        offered = {str(f["fields"].get("method", "")): f for f in page if f["fields"].get("method")}
        passkey = next((f for name, f in offered.items() if name.startswith("passkey")), None)
        if not offered:
            form = page[0]
            self.say("  browser: consent page -> Allow")
            return form, {**form["fields"], "decision": "approve"}
        if "totp" in offered:
            self.say("  browser: a second factor is asked -> TOTP code from the authenticator app")
            return offered["totp"], {**offered["totp"]["fields"], "code": self.user.code()}
        if passkey is not None and (self.plan == PASSKEY or "password" not in offered):
            if self.user.device is None or not passkey["options"]:
                raise RuntimeError("the sign-in page asks for a passkey the demo user does not have")
            self.say(f"  browser: sign-in page -> passkey of {self.user.username} (software authenticator)")
            return passkey, {**passkey["fields"], "credential": self.user.device.get(passkey["options"])}
        if "password" in offered:
            self.say(f"  browser: sign-in page (CSRF token present) -> password of {self.user.username}")
            return offered["password"], {**offered["password"]["fields"], "username": self.user.username,
                                         "password": self.user.password}
        raise RuntimeError(f"the sign-in page offers no method the demo user has ({', '.join(offered)})")


def _page_text(r: httpx.Response) -> str:
    """What an error page says, as one short line (its text, not its markup)."""
    if "html" not in r.headers.get("content-type", ""):
        return " ".join(r.text.split())[:200]
    parser = _Text()
    parser.feed(r.text)
    return " ".join(" ".join(parser.parts).split())[:200] or "(empty page)"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "script", "title", "head")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script", "title", "head") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def short(url: str) -> str:
    """``url`` shortened for a trace line: its path and the start of its query."""
    parts = urlsplit(url)
    query = f"?{parts.query[:40]}..." if len(parts.query) > 40 else (f"?{parts.query}" if parts.query else "")
    return f"{parts.path}{query}"


async def enrol_factors(
    transport: httpx.AsyncBaseTransport | None, issuer: str, username: str, password: str
) -> DemoUser:
    """Sign ``username`` in to the account pages with ``password`` and enrol, as a person would, a TOTP app
    and a passkey on a software authenticator (``DemoRefused`` when a page is not as expected)."""
    user = DemoUser(username, password, device=SoftAuthenticator(origin=issuer))
    async with httpx.AsyncClient(transport=transport, base_url=issuer, timeout=10) as http:
        r = await http.get("/account/login")
        [login] = [f for f in forms(r.text) if f["action"] == "/account/login"]
        r = await http.post("/account/login", data={**login["fields"], "username": username, "password": password})
        if r.status_code != 303:
            raise DemoRefused(f"the demo user could not sign in to the account pages ({r.status_code})")
        r = await http.get("/account")
        [start] = [f for f in forms(r.text) if f["action"] == "/account/totp/new"]
        r = await http.post("/account/totp/new", data=start["fields"])
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', r.text)
        [confirm] = [f for f in forms(r.text) if f["action"] == "/account/totp/confirm"]
        if secret is None:
            raise DemoRefused("the account page showed no TOTP secret")
        user.totp = pyotp.TOTP(secret.group(1))
        r = await http.post("/account/totp/confirm", data={**confirm["fields"], "code": user.code()})
        if r.status_code != 200 or "Authenticator app added" not in r.text:
            raise DemoRefused(f"the account page did not add the TOTP app ({r.status_code})")
        r = await http.get("/account/passkeys/new")
        [create] = [f for f in forms(r.text) if f["options"]]
        credential = user.device.create(create["options"]) if user.device else ""
        r = await http.post(urljoin(issuer, create["action"]), data={**create["fields"], "credential": credential})
        if r.status_code != 200 or "Passkey added" not in r.text:
            raise DemoRefused(f"the account page did not add the passkey ({r.status_code})")
    return user
