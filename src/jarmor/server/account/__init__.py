"""The end user's own account pages (``/account``): sign-in, passkeys and TOTP, third-party access."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import enrolment, manage_views, signin_views
from .common import PREFIX, AccountEndpoint, signed_in

if TYPE_CHECKING:
    from ..app import JarmorServer


def _plain(
    server: JarmorServer, handler: Callable[[JarmorServer, Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(server, request)

    return endpoint


def account_routes(server: JarmorServer) -> list[Route]:
    def guarded(path: str, endpoint: AccountEndpoint, purpose: str = "", method: str = "POST") -> Route:
        return Route(PREFIX + path, signed_in(server, endpoint, purpose=purpose), methods=[method])

    return [
        Route(PREFIX + "/login", _plain(server, signin_views.show_login), methods=["GET"]),
        Route(PREFIX + "/login", _plain(server, signin_views.password_step), methods=["POST"]),
        Route(PREFIX + "/login/code", _plain(server, signin_views.show_code), methods=["GET"]),
        Route(PREFIX + "/login/code", _plain(server, signin_views.code_step), methods=["POST"]),
        Route(PREFIX + "/login/passkey", _plain(server, signin_views.passkey_step), methods=["POST"]),
        Route(PREFIX + "/enrol/{token}", _plain(server, enrolment.show), methods=["GET"]),
        Route(PREFIX + "/enrol/{token}", _plain(server, enrolment.complete), methods=["POST"]),
        guarded("", manage_views.show_overview, method="GET"),
        guarded("/logout", signin_views.logout, "logout"),
        guarded("/passkeys/new", manage_views.new_passkey, method="GET"),
        guarded("/passkeys", manage_views.add_passkey, "passkey-new"),
        guarded("/totp/new", manage_views.new_totp, "totp-new"),
        guarded("/totp/confirm", manage_views.confirm_totp, "totp-confirm"),
        Route(PREFIX + "/methods/{aid}/remove", _bound(server, manage_views.remove_method, "remove", "aid"),
              methods=["POST"]),
        Route(PREFIX + "/access/{grant_id}/revoke",
              _bound(server, manage_views.revoke_access, "revoke", "grant_id"), methods=["POST"]),
    ]


def _bound(server: JarmorServer, endpoint: AccountEndpoint, verb: str, param: str) -> Callable[
    [Request], Awaitable[Response]
]:
    """A guarded POST whose CSRF token is bound to the record in its path (``verb:id``)."""

    async def handler(request: Request) -> Response:
        inner = signed_in(server, endpoint, purpose=f"{verb}:{request.path_params[param]}")
        return await inner(request)

    return handler
