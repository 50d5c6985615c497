"""A small relying-party web application built on ``jarmor.client``, for the browser tests.

``GET /login?mode=<response_mode>`` starts a flow (PAR + signed request object by default; ``par=0`` passes
the request object by value; encrypted too when the client is configured with a request object encryption
algorithm; ``acr_values`` and ``max_age`` are passed on, and the client library then checks ``acr`` and
``auth_time`` in the ID token), keeps ``state`` in a cookie and redirects the browser to the authorization
server. The response comes back to ``/cb``:

- ``query``, ``jwt``, ``query.jwt``: ``GET /cb?...``;
- ``form_post``, ``form_post.jwt``: ``POST /cb`` (jarmor's form_post page submits itself);
- ``fragment``, ``fragment.jwt``: ``GET /cb`` (no query) serves a page whose script reads ``location.hash``
  and POSTs it to ``/cb/fragment``.

Every callback is validated with ``handle_callback`` against the state in the cookie, the code is exchanged,
and a result page reports what the client library verified (or the error) in elements with ids the tests read.
"""

from __future__ import annotations

import contextlib
import html
import secrets
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from jarmor.client import (
    AsyncOAuthClient,
    AuthorizationServerError,
    ClientConfig,
    ClientError,
    UnverifiedErrorResponse,
)

STATE_COOKIE = "rp_state"
JARM_MODES = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")

_events: ContextVar[list[str] | None] = ContextVar("_events", default=None)


def _trace(hop: str, details: Mapping[str, Any]) -> None:
    events = _events.get()
    if events is not None:
        checks = "; ".join(str(c) for c in details.get("checks") or ())
        events.append(f"{hop}: {details.get('summary', '')}" + (f" — {checks}" if checks else ""))


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    nonce = secrets.token_urlsafe(12)
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style nonce="{nonce}">
 body {{ font: 15px/1.45 system-ui, sans-serif; margin: 32px auto; max-width: 760px; color: #1d2433; }}
 dt {{ font-weight: 600; margin-top: 8px; }} dd {{ margin: 2px 0 0 0; word-break: break-all; }}
 .ok {{ color: #1b7f3b; }} .bad {{ color: #b3261e; }}
 ol {{ font-size: 13px; color: #3a4252; }}
</style></head><body>{body.replace("__NONCE__", nonce)}</body></html>"""
    return HTMLResponse(
        doc,
        status_code=status,
        headers={
            "Content-Security-Policy": f"default-src 'none'; style-src 'nonce-{nonce}'; "
            f"script-src 'nonce-{nonce}'; form-action 'self'",
            "Cache-Control": "no-store",
        },
    )


def _dl(items: Mapping[str, object]) -> str:
    return "".join(
        f'<dt>{html.escape(k)}</dt><dd id="{html.escape(k)}">{html.escape(str(v))}</dd>'
        for k, v in items.items()
    )


@dataclass
class ClientApp:
    """The application: one registered client of ``config.issuer``; ``results`` records each outcome."""

    config: ClientConfig
    scope: str = "openid profile"
    results: list[dict[str, object]] = field(default_factory=list)
    _client: AsyncOAuthClient | None = None

    @property
    def client(self) -> AsyncOAuthClient:
        assert self._client is not None
        return self._client

    # -- routes ------------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        mode = request.query_params.get("mode", "jwt")
        use_par = request.query_params.get("par", "1") != "0"
        max_age = request.query_params.get("max_age")
        start = await self.client.start_authorization(
            scope=self.scope,
            response_mode=mode,  # type: ignore[arg-type]
            use_par=use_par,
            encrypt_request=self.config.request_object_encryption_alg is not None,
            acr_values=request.query_params.get("acr_values"),
            max_age=int(max_age) if max_age is not None else None,
        )
        response = RedirectResponse(start.url, status_code=303)
        response.set_cookie(STATE_COOKIE, start.state, httponly=True, samesite="lax", path="/")
        return response

    async def callback_get(self, request: Request) -> Response:
        if not request.url.query:
            return self._fragment_relay()
        return await self._finish(request, str(request.url), "query")

    async def callback_post(self, request: Request) -> Response:
        # the urlencoded body as it came: handle_callback parses it (duplicates and size refused there)
        return await self._finish(request, (await request.body()).decode(), "form_post")

    async def callback_fragment(self, request: Request) -> Response:
        fragment = dict(parse_qsl((await request.body()).decode())).get("fragment")
        if not isinstance(fragment, str) or not fragment.startswith("#"):
            return self._result({"outcome": "error", "error": "no fragment"}, status=400)
        return await self._finish(request, fragment, "fragment")

    async def attacker_form(self, request: Request) -> Response:
        """A cross-site page that auto-submits a form to ``action`` (the tests' CSRF attacker)."""
        action = request.query_params["action"]
        fields = {k: v for k, v in request.query_params.items() if k != "action"}
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in fields.items()
        )
        body = (
            f'<form id="f" method="post" action="{html.escape(action)}">{inputs}</form>'
            '<script nonce="__NONCE__">document.getElementById("f").submit();</script>'
        )
        response = _page("attacker", body)
        response.headers["Content-Security-Policy"] = response.headers["Content-Security-Policy"].replace(
            "form-action 'self'", "form-action *"
        )
        return response

    async def frame(self, request: Request) -> Response:
        """A page framing ``src`` (jarmor's pages must refuse to be framed)."""
        src = html.escape(request.query_params["src"])
        response = _page(
            "framer", f'<h1>framer</h1><iframe id="framed" src="{src}" width="600" height="400"></iframe>'
        )
        response.headers["Content-Security-Policy"] += "; frame-src *"
        return response

    # -- helpers -------------------------------------------------------------------------------------

    def _fragment_relay(self) -> Response:
        """The response is in the fragment, which never reaches a server: read it and POST it here."""
        body = (
            '<p id="relay">Reading the authorization response…</p>'
            '<form id="f" method="post" action="/cb/fragment"><input type="hidden" name="fragment" id="fragment">'
            "</form>"
            '<script nonce="__NONCE__">'
            'document.getElementById("fragment").value = location.hash;'
            'history.replaceState(null, "", location.pathname);'
            'document.getElementById("f").submit();'
            "</script>"
        )
        return _page("callback", body)

    async def _finish(self, request: Request, callback: Mapping[str, str] | str, channel: str) -> Response:
        state = request.cookies.get(STATE_COOKIE)
        events: list[str] = []
        token_var = _events.set(events)
        result: dict[str, object] = {"channel": channel}
        try:
            if not state:
                result.update(outcome="error", error="no_state_cookie")
                return self._result(result, status=400)
            try:
                authz = await self.client.handle_callback(callback, expected_state=state)
            except AuthorizationServerError as exc:  # a verified (JARM) error response
                result.update(
                    outcome="server-error",
                    verified="jarm",
                    error=exc.error,
                    error_description=exc.description or "",
                )
                return self._result(result, events=events)
            except UnverifiedErrorResponse as exc:
                result.update(
                    outcome="unverified-error",
                    verified="none",
                    error=exc.error,
                    error_description=exc.description or "",
                )
                return self._result(result, events=events)
            except ClientError as exc:
                result.update(
                    outcome="rejected",
                    error=type(exc).__name__,
                    reason=exc.reason or "",
                    error_description=str(exc),
                )
                return self._result(result, status=400, events=events)
            if authz.claims:
                result.update(
                    verified="jarm",
                    iss=authz.claims.get("iss"),
                    aud=authz.claims.get("aud"),
                    exp_in=int(authz.claims["exp"]) - int(time.time()),
                )
            else:
                result.update(verified="rfc9207-iss", iss=_param(callback, "iss"))
            result.update(response_mode=authz.response_mode)
            try:
                tokens = await self.client.exchange_code(authz)
            except ClientError as exc:
                result.update(outcome="token-error", error=type(exc).__name__, error_description=str(exc))
                return self._result(result, status=400, events=events)
            result.update(
                outcome="ok",
                token_type=tokens.token_type,
                access_token_length=len(tokens.access_token),
                scope=tokens.scope or "",
                subject=(tokens.id_token_claims or {}).get("sub", ""),
                acr=(tokens.id_token_claims or {}).get("acr", ""),
                amr=" ".join((tokens.id_token_claims or {}).get("amr") or []),
                auth_time=(tokens.id_token_claims or {}).get("auth_time", ""),
                refresh_token="yes" if tokens.refresh_token else "no",
            )
            return self._result(result, events=events)
        finally:
            _events.reset(token_var)

    def _result(
        self, result: dict[str, object], *, status: int = 200, events: list[str] | None = None
    ) -> Response:
        self.results.append(dict(result, events=list(events or [])))
        ok = result.get("outcome") == "ok"
        heading = "Signed in" if ok else "Sign-in did not complete"
        trace = "".join(f"<li>{html.escape(e)}</li>" for e in events or [])
        body = (
            f'<h1 class="{"ok" if ok else "bad"}">{heading}</h1>'
            f"<p>Client application {html.escape(self.config.client_id)} — what jarmor.client verified:</p>"
            f'<dl>{_dl(result)}</dl><h2>Trace</h2><ol id="trace">{trace}</ol>'
        )
        response = _page("result", body, status=status)
        response.delete_cookie(STATE_COOKIE, path="/")
        return response

    # -- the ASGI app ---------------------------------------------------------------------------------

    def asgi(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self._client = AsyncOAuthClient(self.config, trace=_trace)
            try:
                yield
            finally:
                await self._client.aclose()

        return Starlette(
            routes=[
                Route("/login", self.login, methods=["GET"]),
                Route("/cb", self.callback_get, methods=["GET"]),
                Route("/cb", self.callback_post, methods=["POST"]),
                Route("/cb/fragment", self.callback_fragment, methods=["POST"]),
                Route("/attacker", self.attacker_form, methods=["GET"]),
                Route("/frame", self.frame, methods=["GET"]),
            ],
            lifespan=lifespan,
        )


def _param(callback: Mapping[str, str] | str, name: str) -> str | None:
    if isinstance(callback, Mapping):
        return callback.get(name)
    if callback.startswith(("http://", "https://", "#")):
        parts = urlsplit(callback)
        callback = parts.fragment or parts.query
    return dict(parse_qsl(callback)).get(name)


class RunningApp:
    """The app served by uvicorn on loopback in a background thread."""

    def __init__(self, app: ClientApp, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app.asgi(), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"client-app-{port}", daemon=True)

    def start(self) -> RunningApp:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the client app did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
