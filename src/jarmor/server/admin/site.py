"""The admin dashboard's frame: the view and section types, the session guard, CSRF, the layout and sign-in.

The pages are data: an ``AdminView`` (a path below ``/admin``, its endpoint, methods and navigation entry)
or a ``ClientSection`` (a block on a client's page). A ``Dashboard`` is the explicit list of them that
``dashboard_routes`` serves; ``server/admin/__init__.py`` assembles jarmor's own (``DASHBOARD``) from the
``VIEWS`` / ``SECTIONS`` tuples each page module declares. Extending the dashboard takes one module::

    from jarmor.server.admin.site import AdminContext, AdminView, ClientSection, admin_page

    async def flows(ctx: AdminContext) -> Response:
        return admin_page(ctx, "admin/flows.html", {"rows": ...}, title="Flow records")

    async def recent_flows(ctx: AdminContext, client: ClientSummary) -> tuple[str, dict[str, Any]]:
        return "admin/client_flows.html", {"flows": ...}   # rendered with ``section`` = that dict

    VIEWS = (AdminView("/flows", flows, nav="Flow records", nav_order=20),)
    SECTIONS = (ClientSection("Recent flows", recent_flows, order=40),)

and its tuples in the list in ``server/admin/__init__.py``. Every view is served under ``/admin`` behind an
administrator session; a ``POST`` view gets its form in ``ctx.form`` only after the session's CSRF token
(and the ``Origin`` header, when the browser sends one) checked out. Templates extend ``admin/layout.html``
(navigation, signed-in name, sign-out form, CSP nonce) and get ``when(ts)`` / ``ago(ts)`` for times.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...governance.inventory import ClientSummary
from ...governance.lifecycle import GovernanceError
from ...protocol import errors
from ...store.base import AdminEvent
from .. import signin
from ..csrf import csrf_token, csrf_valid
from ..http import read_form
from ..pages import page
from . import passkey_login, sessions
from .accounts import authenticate_admin

if TYPE_CHECKING:
    from ...protocol.context import Environment
    from ...protocol.policy import Policy
    from ...store.base import Store
    from ..app import JarmorServer

PREFIX = "/admin"
SESSION_COOKIE = "jarmor_admin"
LOGIN_COOKIE = "jarmor_admin_login"

AdminEndpoint = Callable[["AdminContext"], Awaitable[Response]]
SectionRenderer = Callable[["AdminContext", ClientSummary], Awaitable[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class AdminView:
    path: str  # below /admin, e.g. "/clients"; "" is /admin itself
    endpoint: AdminEndpoint
    methods: tuple[str, ...] = ("GET",)
    nav: str | None = None  # label in the navigation bar
    nav_order: int = 100


@dataclass(frozen=True, slots=True)
class ClientSection:
    title: str
    render: SectionRenderer
    order: int = 100


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The pages served under ``/admin``: every view, and the sections of a client's page."""

    views: tuple[AdminView, ...]
    sections: tuple[ClientSection, ...] = ()

    def __post_init__(self) -> None:
        for kind, names in (("view path", [v.path for v in self.views]), ("section", [s.title for s in self.sections])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"admin dashboard: {kind} {twice[0]!r} is listed twice")

    def ordered_sections(self) -> list[ClientSection]:
        return sorted(self.sections, key=lambda s: (s.order, s.title))

    def navigation(self, current: str) -> list[dict[str, Any]]:
        items = sorted((v for v in self.views if v.nav), key=lambda v: (v.nav_order, v.path))
        return [
            {"label": v.nav, "href": PREFIX + v.path, "active": current == v.path or current.startswith(v.path + "/")}
            for v in items
        ]


@dataclass(slots=True)
class AdminContext:
    """What a view gets: the request, the server, the dashboard it belongs to, the signed-in administrator and
    (POST) the checked form."""

    request: Request
    server: JarmorServer
    dashboard: Dashboard
    admin: str
    session: sessions.AdminSession
    form: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> Environment:
        return self.server.env

    @property
    def store(self) -> Store:
        return self.server.store

    def now(self) -> int:
        return self.server.env.now()

    @property
    def actor(self) -> str:
        """How this administrator appears in audit records and ``disabled_by``."""
        return f"admin:{self.admin}"


# -- formatting helpers for templates ---------------------------------------------------------------------


def when(ts: int | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(seconds: int) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _ago(now: int) -> Callable[[int | None], str]:
    def ago(ts: int | None) -> str:
        if ts is None:
            return "never"
        return "just now" if now - ts < 5 else f"{age(now - ts)} ago"

    return ago


TIER_LEVELS = 4  # colour steps in admin/layout.html: .tier-0 (lowest) .. .tier-3 (strictest)


def tier_classes(policy: Policy) -> Callable[[str | None], str]:
    """``tier_class(name)`` for templates: the badge colour of a tier by its rank among the configured tiers
    (any number of them spread over the colour steps); an unknown tier is grey."""
    ranked = sorted(policy.tiers.values(), key=lambda t: (t.rank, t.name))
    top = max(len(ranked) - 1, 1)
    levels = {t.name: round(i * (TIER_LEVELS - 1) / top) for i, t in enumerate(ranked)}

    def tier_class(name: str | None) -> str:
        level = levels.get(name or "")
        return "tier grey" if level is None else f"tier tier-{level}"

    return tier_class


def admin_page(
    ctx: AdminContext,
    template: str,
    context: Mapping[str, Any],
    *,
    title: str,
    status: int = 200,
    nav_path: str | None = None,
) -> Response:
    """Render ``template`` (which extends ``admin/layout.html``) with the dashboard frame.

    ``nav_path``: the navigation entry to mark as current (default: the request's own path)."""
    path = ctx.request.url.path[len(PREFIX):] if ctx.request.url.path.startswith(PREFIX) else ""
    path = nav_path if nav_path is not None else path
    return page(
        template,
        {
            "title": title,
            "issuer": ctx.env.issuer,
            "admin": ctx.admin,
            "csrf_token": ctx.session.csrf,
            "nav": ctx.dashboard.navigation(path or "/"),
            "when": when,
            "ago": _ago(ctx.now()),
            "age": age,
            "tier_class": tier_classes(ctx.env.policy),
            **context,
        },
        status=status,
    )


def notice_page(ctx: AdminContext, title: str, message: str, *, status: int = 400) -> Response:
    return admin_page(ctx, "admin/notice.html", {"message": message}, title=title, status=status)


# -- CSRF and the session guard -----------------------------------------------------------------------------


def _same_origin(request: Request, issuer: str) -> bool:
    """Browsers send ``Origin`` on POST; when it names an origin, it must be the issuer's (defence in depth
    beside the CSRF token and the SameSite=Strict cookie). ``null`` carries no information: the pages'
    ``Referrer-Policy: no-referrer`` makes Chromium send it for their own forms."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    parts = urlsplit(issuer)
    return origin == f"{parts.scheme}://{parts.netloc}"


def _refusal(message: str, status: int) -> Response:
    return page(
        "admin/refused.html",
        {"title": "Refused", "message": message, "login": PREFIX + "/login"},
        status=status,
    )


def _cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="strict", secure=secure
    )


def _endpoint(
    server: JarmorServer, dashboard: Dashboard, view: AdminView
) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        env = server.env
        now = env.now()
        sid = request.cookies.get(SESSION_COOKIE, "")
        session = await sessions.load_session(env.store.ephemeral, sid, now)
        if session is not None:
            admin = await env.store.admins.get(session.username)
            if admin is None or admin.disabled:
                await sessions.end_session(env.store.ephemeral, sid)
                session = None
        if session is None:
            if request.method == "GET":
                return RedirectResponse(PREFIX + "/login", status_code=303)
            return _refusal("Sign in to the admin dashboard first.", 403)
        ctx = AdminContext(
            request=request, server=server, dashboard=dashboard, admin=session.username, session=session
        )
        if request.method == "POST":
            try:
                ctx.form = await read_form(request)
            except errors.OAuthError as err:
                return notice_page(ctx, "Bad request", err.description, status=err.status)
            token = ctx.form.get("csrf_token", "")
            if not _same_origin(request, env.issuer) or not hmac.compare_digest(
                token.encode(), session.csrf.encode()
            ):
                return notice_page(
                    ctx,
                    "Refused",
                    "This form was not sent from this dashboard session (CSRF check failed). "
                    "Reload the page and try again.",
                    status=403,
                )
        try:
            return await view.endpoint(ctx)
        except GovernanceError as exc:
            return notice_page(ctx, "Not done", str(exc))

    return handle


# -- sign-in and sign-out ----------------------------------------------------------------------------------


async def _login_page(
    server: JarmorServer, binding: str, *, error: str = "", username: str = "", status: int = 200
) -> Response:
    response = page(
        "admin/login.html",
        {
            **await passkey_login.passkey_form(server, binding),
            "title": "Administrator sign-in",
            "issuer": server.env.issuer,
            "action": PREFIX + "/login",
            "csrf_token": csrf_token(server.keyring.secret(), "admin-login", binding),
            "error": error,
            "username": username,
        },
        status=status,
    )
    _cookie(response, LOGIN_COOKIE, binding, secure=_secure(server), max_age=sessions.IDLE)
    return response


def _secure(server: JarmorServer) -> bool:
    return server.env.issuer.startswith("https://")


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_AUDIT_NAME = 128  # characters of a typed-in name kept in the audit log


async def _audit_sign_in(
    store: Store, now: int, action: str, username: str, address: str, attempt: signin.Attempt
) -> None:
    """Record a failed or refused sign-in: the name typed in (never the password), from where and when."""
    if attempt.refused is None:
        reason = "wrong name or password"
    elif attempt.refused.per is signin.Per.ADDRESS:
        reason = "too many failed sign-ins from this address"
    else:
        reason = "too many failed sign-ins for this name"
    await store.audit.append(
        AdminEvent(
            at=now,
            actor=f"address:{address}",
            action=action,
            target=f"admin:{username[:_AUDIT_NAME]}",
            reason=reason,
            details={"address": address, "attempt": attempt.count(signin.Per.ACCOUNT)},
        )
    )


def login_routes(server: JarmorServer) -> list[Route]:
    async def login_form(request: Request) -> Response:
        binding = request.cookies.get(LOGIN_COOKIE, "")
        if not binding or len(binding) > 64:
            binding = secrets.token_urlsafe(24)
        return await _login_page(server, binding)

    async def login(request: Request) -> Response:
        env = server.env
        try:
            form = await read_form(request)
        except errors.OAuthError as err:
            return _refusal(err.description, err.status)
        binding = request.cookies.get(LOGIN_COOKIE, "")
        token = form.get("csrf_token", "")
        valid = bool(binding) and len(binding) <= 64 and _same_origin(request, env.issuer)
        ok = csrf_valid(server.keyring.secrets(), token, "admin-login", binding)
        if not (valid and ok):
            return _refusal("The sign-in form has expired or was not sent from this site. Open it again.", 403)
        if env.settings.admin_require_passkey:
            return await _login_page(server, binding, status=403, error="This dashboard requires a passkey.")
        username = form.get("username", "").strip()
        password = form.get("password", "")
        address = _client_address(request)
        ephemeral = env.store.ephemeral
        # counted before the password is checked: at most ADMIN_MAX_ATTEMPTS checks per name, however many
        # requests arrive at once on however many workers
        attempt = await signin.reserve(ephemeral, [(signin.ADMIN_ADDRESS, address), (signin.ADMIN_ACCOUNT, username)])
        if attempt.refused is not None:
            if attempt.first_refusal:  # once per lockout: a refused attempt costs no durable write after that
                await _audit_sign_in(env.store, env.now(), "admin.login_locked", username, address, attempt)
            return await _login_page(
                server, binding, username=username, status=429,
                error="Too many failed sign-in attempts. Try again in 15 minutes.",
            )
        admin = await authenticate_admin(env.store.admins, username, password)
        if admin is None:
            await _audit_sign_in(env.store, env.now(), "admin.login_failed", username, address, attempt)
            return await _login_page(
                server, binding, username=username, status=401, error="Wrong administrator name or password."
            )
        await signin.succeeded(ephemeral, attempt)
        return await _session_started(admin.username, address, "password")

    async def _session_started(username: str, address: str, method: str) -> Response:
        sid, response = await passkey_login.signed_in(server, username, address, method)
        _cookie(response, SESSION_COOKIE, sid, secure=_secure(server), max_age=sessions.LIFETIME)
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    async def login_passkey(request: Request) -> Response:
        binding = request.cookies.get(LOGIN_COOKIE, "")
        if not _same_origin(request, server.env.issuer) or len(binding) > 64:
            return _refusal("The sign-in form was not sent from this site. Open it again.", 403)
        outcome = await passkey_login.passkey_sign_in(server, request, binding)
        if isinstance(outcome, tuple):
            return _refusal(*outcome)
        return await _session_started(outcome, _client_address(request), "passkey")

    async def logout(request: Request) -> Response:
        env = server.env
        sid = request.cookies.get(SESSION_COOKIE, "")
        session = await sessions.load_session(env.store.ephemeral, sid, env.now())
        try:
            form = await read_form(request)
        except errors.OAuthError as err:
            return _refusal(err.description, err.status)
        if session is None or not hmac.compare_digest(form.get("csrf_token", "").encode(), session.csrf.encode()):
            return _refusal("Sign-out refused (CSRF check failed).", 403)
        await sessions.end_session(env.store.ephemeral, sid)
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    return [
        Route(PREFIX + "/login", login_form, methods=["GET"]),
        Route(PREFIX + "/login", login, methods=["POST"]),
        Route(PREFIX + "/login/passkey", login_passkey, methods=["POST"]),
        Route(PREFIX + "/logout", logout, methods=["POST"]),
    ]


def dashboard_routes(server: JarmorServer, dashboard: Dashboard) -> list[Route]:
    """Starlette routes for the sign-in pages and every view of ``dashboard``."""
    routes = login_routes(server)
    for view in dashboard.views:
        routes.append(Route(PREFIX + view.path, _endpoint(server, dashboard, view), methods=list(view.methods)))
    return routes
