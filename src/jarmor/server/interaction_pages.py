"""The interaction's pages as HTTP: the sign-in and consent pages, the cookie that binds an interaction to
the browser that started it, and the CSRF tokens of their forms. Nothing here decides a step of the
interaction (``protocol/interaction``): it renders what the lifecycle returns and checks what a form brings.
"""

from __future__ import annotations

import hmac
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from ..protocol.clients import Client
from ..protocol.context import Environment
from ..protocol.interaction.lifecycle import Lifecycle, ShowSignIn
from ..protocol.interaction.machine import State
from ..protocol.interaction.methods import PASSKEY_METHODS
from ..protocol.interaction.record import Interaction
from .consent import ClientDisplay, describe_scopes, destination
from .csrf import csrf_token, csrf_valid
from .http import read_form
from .interaction_methods import bound_ceremony
from .keys import Keyring
from .pages import csp_source, page
from .problems import InteractionProblem

INTERACTION_COOKIE = "jarmor_interaction"
_INTERACTION_GONE = "this sign-in request has expired or was already completed"
NOT_THIS_BROWSER = "this sign-in page was not opened in this browser"
REOPENED = "This sign-in is still open: enter your username and password to continue."
# a failed sign-in (lifecycle.ShowSignIn.failure): what the page says, and its status
SIGN_IN_FAILURES = {
    "failed": ("Wrong username or password.", 401),
    "throttled": ("Too many failed sign-in attempts. Try again later.", 429),
}



class _Server(Protocol):
    @property
    def env(self) -> Environment: ...

    @property
    def keyring(self) -> Keyring: ...

    lifecycle: Lifecycle


class InteractionPages:
    def __init__(self, server: _Server) -> None:
        self.server = server

    def csrf(self, ia_id: str, bind: str, stage: str) -> str:
        return csrf_token(self.server.keyring.secret(), ia_id, bind, stage)

    def csrf_ok(self, ia_id: str, bind: str, stage: str, token: str) -> bool:
        """Any live secret verifies: a page made before a secret rotation still submits."""
        return csrf_valid(self.server.keyring.secrets(), token, ia_id, bind, stage)

    def set_cookie(self, response: Response, ia_id: str, bind: str) -> None:
        response.set_cookie(
            INTERACTION_COOKIE,
            f"{ia_id}.{bind}",
            max_age=self.server.env.settings.interaction_lifetime,
            path="/interaction",
            httponly=True,
            samesite="lax",
            secure=self.server.env.issuer.startswith("https://"),
        )

    def login_page(self, shown: ShowSignIn) -> Response:
        ia_id, ia = shown.ia_id, shown.interaction
        error, status = SIGN_IN_FAILURES.get(shown.failure or "", ("", 200))
        return page(
            "login.html",
            {
                "issuer": self.server.env.issuer,
                "client_name": shown.client_name,
                "action": f"/interaction/{ia_id}/login",
                "csrf_token": self.csrf(ia_id, ia.bind, "login"),
                "error": error,
                "username": shown.username,
                "notice": REOPENED if shown.failure == "reopened" else "",
                "methods": [m.name for m in shown.methods],
                # a further factor of someone already identified (step-up), not a second try at the first
                "subject": ia.subject if ia.state is State.SIGNING_IN else None,
                **self._passkey(shown),
            },
            status=status,
            form_action=csp_source(ia.request.redirect_uri),  # too many failures redirect to the client
        )

    def _passkey(self, shown: ShowSignIn) -> dict[str, object]:
        """The passkey button's method and ceremony, when a passkey method is offered."""
        offered = [m.name for m in shown.methods if m.name in PASSKEY_METHODS]
        if not offered:
            return {}
        return {"passkey_method": offered[0], "ceremony": bound_ceremony(self.server.env, shown.interaction)}

    def consent_page(self, ia_id: str, ia: Interaction, client: Client | None) -> Response:
        """Written for the person deciding (``server/consent.py``): who asks, what each scope allows, whether
        the application is a third party's; the logo's origin, and only it, joins the CSP as ``img-src``."""
        req = ia.request
        display = ClientDisplay.of(client, req.client_id)
        return page(
            "consent.html",
            {
                "issuer": self.server.env.issuer,
                "client": display,
                "subject": ia.subject,
                "scopes": describe_scopes(req.scope, self.server.env.settings.scope_descriptions),
                "destination": destination(req.redirect_uri),
                "action": f"/interaction/{ia_id}/consent",
                "csrf_token": self.csrf(ia_id, ia.bind, "consent"),
            },
            form_action=csp_source(req.redirect_uri),  # the decision redirects to the client
            img_src=display.logo_source,
        )

    async def load(self, request: Request) -> tuple[str, Interaction, str]:
        """The interaction named in the path if the cookie names it: (id, interaction, the cookie's bind)."""
        ia_id = request.path_params["ia_id"]
        # existence first, so Back after the decision (the cookie is gone by then) reads "finished"; ids are
        # 192-bit random, so this tells a browser without the cookie nothing it could use
        ia = await self.server.lifecycle.load(ia_id)
        if ia is None:
            raise InteractionProblem(_INTERACTION_GONE, problem="finished")
        cookie = request.cookies.get(INTERACTION_COOKIE, "")
        cookie_id, _, bind = cookie.partition(".")
        if not hmac.compare_digest(cookie_id.encode(), ia_id.encode()) or not bind:
            raise InteractionProblem(NOT_THIS_BROWSER, problem="other-browser")
        return ia_id, ia, bind

    async def posted(self, request: Request, stage: str) -> tuple[str, Interaction, dict[str, str]]:
        """Load the interaction named in the path and check the cookie binding and the CSRF token."""
        form = await read_form(request)
        ia_id, ia, bind = await self.load(request)
        if not hmac.compare_digest(bind.encode(), ia.bind.encode()) or not self.csrf_ok(
            ia_id, ia.bind, stage, form.get("csrf_token", "")
        ):
            raise InteractionProblem("invalid CSRF token", problem="form")
        return ia_id, ia, form
