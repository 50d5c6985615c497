"""What every ``/account`` page shares: cookies, CSRF tokens (``server/csrf.py``), the signed-in guard, pages.

CSRF: every form carries an HMAC token (keyed with the server's secret) bound to what the form belongs to —
the signed-in session's id digest and the form's purpose, or, before sign-in, the browser's login binding
cookie — and a browser ``Origin`` naming another site is refused as well (defence in depth beside the
``SameSite=Strict`` cookies).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...protocol import errors
from ..csrf import csrf_token, csrf_valid
from ..http import NO_STORE, read_form
from ..pages import page
from . import sessions

if TYPE_CHECKING:
    from ...store.base import Store
    from ..app import JarmorServer

PREFIX = "/account"
COOKIE = "jarmor_account"
LOGIN_COOKIE = "jarmor_account_login"
POPULATION = "user"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def same_origin(request: Request, issuer: str) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    parts = urlsplit(issuer)
    return origin == f"{parts.scheme}://{parts.netloc}"


def csrf(server: JarmorServer, *bound_to: str) -> str:
    return csrf_token(server.keyring.secret(), "account", *bound_to)


def csrf_ok(server: JarmorServer, request: Request, token: str, *bound_to: str) -> bool:
    if not token or len(token) > 128 or not same_origin(request, server.env.issuer):
        return False
    return csrf_valid(server.keyring.secrets(), token, "account", *bound_to)


def when(ts: int | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def account_page(
    server: JarmorServer, template: str, context: Mapping[str, Any], *, status: int = 200
) -> Response:
    return page(template, {"issuer": server.env.issuer, "when": when, **context}, status=status)


def notice(server: JarmorServer, title: str, message: str, *, status: int = 400) -> Response:
    return account_page(server, "account/notice.html", {"title": title, "message": message}, status=status)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=NO_STORE)


def set_cookie(server: JarmorServer, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="strict",
        secure=server.env.issuer.startswith("https://"),
    )


def login_binding(request: Request) -> str:
    value = request.cookies.get(LOGIN_COOKIE, "")
    return value if 0 < len(value) <= 64 else ""


def ensure_login_binding(request: Request) -> tuple[str, bool]:
    """The browser's login binding, or a new one (``True``: it must be set as a cookie)."""
    binding = login_binding(request)
    return (binding, False) if binding else (secrets.token_urlsafe(24), True)


@dataclass(slots=True)
class AccountContext:
    """A signed-in request: the server, the session (and its cookie value) and, for POST, the checked form."""

    request: Request
    server: JarmorServer
    sid: str
    session: sessions.AccountSession
    form: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.server.store

    @property
    def username(self) -> str:
        return self.session.username

    def now(self) -> int:
        return self.server.env.now()

    def csrf(self, purpose: str) -> str:
        return csrf(self.server, sessions.digest(self.sid), purpose)


AccountEndpoint = Callable[[AccountContext], Awaitable[Response]]


def signed_in(server: JarmorServer, endpoint: AccountEndpoint, *, purpose: str = "") -> Callable[
    [Request], Awaitable[Response]
]:
    """Guard: a signed-in session (else the sign-in page); for POST, the form's CSRF token for ``purpose``."""

    async def guarded(request: Request) -> Response:
        await server.refresh_keys()
        sid = request.cookies.get(COOKIE, "")
        session = await sessions.load(server.store.ephemeral, sid, server.env.now())
        if session is None or session.stage != sessions.SIGNED_IN:
            return redirect(f"{PREFIX}/login")
        ctx = AccountContext(request, server, sid, session)
        if request.method == "POST":
            try:
                ctx.form = await read_form(request)
            except errors.OAuthError:
                return notice(server, "Refused", "This form could not be read.")
            if not csrf_ok(server, request, ctx.form.get("csrf_token", ""), sessions.digest(sid), purpose):
                return notice(
                    server, "Refused",
                    "This form was not sent from your account page (CSRF check failed). Reload and try again.",
                    status=403,
                )
        return await endpoint(ctx)

    return guarded
