"""Request rate limits per source address and per client, shared by every worker and node.

Each limited endpoint counts requests in fixed windows of ``rate_limit_window`` seconds with the short-lived
store's atomic ``incr`` (Redis when configured, else the database), so a limit holds across workers and
nodes. Two counters per request:

* per source address, before anything else (``rate_limit_per_address`` requests per endpoint and window);
  the address is the TCP peer, or — only when the peer is one of ``[server] trusted_proxies`` — the client
  address the proxy reports in the one header ``[server] forwarded_header`` names: ``X-Forwarded-For``
  (uvicorn's ``ProxyHeadersMiddleware``) or RFC 7239 ``Forwarded`` (``server/forwarded.py``);
* per client, with the limit of the client's *own* tier (``Tier.client_rate_limit``): the client the request
  names (HTTP Basic user, ``client_id``, or a client assertion's ``sub``). A request whose client
  authentication then fails (401) gives its unit back, so flooding requests in another client's name cannot
  spend that client's budget — they only hold units while they are being refused.

A refused request gets ``429 Too Many Requests`` with ``Retry-After`` (the end of the window) and, on the
OAuth endpoints, the OAuth error format (``temporarily_unavailable``). Probes (``/healthz``, ``/readyz``) and
``/metrics`` are never limited. ``rate_limit_window = 0`` turns limiting off (benchmarks).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from ..jose import JoseError, peek_claims
from ..protocol import errors
from ..protocol.client_auth import basic_client_id
from ..protocol.policy import PolicyError
from .http import json_error, keep_form, media_type, read_body

if TYPE_CHECKING:
    from .app import JarmorServer

Endpoint = Callable[[Request], Awaitable[Response]]
NAMESPACE = "rate"
_FORM = "application/x-www-form-urlencoded"


class TooManyRequests(errors.OAuthError):
    error = "temporarily_unavailable"
    status = 429


def _replay(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def claimed_client(authorization: str | None, form: dict[str, str]) -> str | None:
    """The client a back-channel request names (not yet authenticated)."""
    if authorization:
        return basic_client_id(authorization)
    if form.get("client_id"):
        return form["client_id"][:256]
    assertion = form.get("client_assertion")
    if assertion:
        try:
            sub = peek_claims(assertion).get("sub")
        except JoseError:
            return None
        return sub[:256] if isinstance(sub, str) else None
    return None


def limited(server: JarmorServer, name: str, endpoint: Endpoint, *, by_client: bool) -> Endpoint:
    """``endpoint`` behind the address limit and, with ``by_client``, the client's tier limit."""

    async def run(request: Request) -> Response:
        settings = server.config.settings
        window = settings.rate_limit_window
        if window <= 0 or request.method != "POST":
            return await endpoint(request)
        now = time.time()
        slot = int(now // window)
        retry_after = str(max(1, int((slot + 1) * window - now)))
        ephemeral = server.env.store.ephemeral
        address = request.client.host if request.client else "unknown"
        if await ephemeral.incr(NAMESPACE, f"{name}|a|{address}|{slot}", window) > settings.rate_limit_per_address:
            return _refused(retry_after)
        if not by_client or media_type(request.headers.get("content-type")) != _FORM:
            return await endpoint(request)
        try:
            body = await read_body(request)
        except errors.OAuthError as err:
            return json_error(err)
        request = Request(request.scope, _replay(body))
        try:
            client_id = claimed_client(request.headers.get("authorization"), keep_form(request, body))
        except errors.OAuthError:
            client_id = None  # the endpoint answers the malformed request itself
        client = await server.directory.get(client_id) if client_id else None
        if client is None:
            return await endpoint(request)
        try:
            limit = server.config.policy.tier(client.risk_tier).client_rate_limit
        except PolicyError:
            return await endpoint(request)  # the endpoint refuses a client whose tier is gone
        key = f"{name}|c|{client.client_id}|{slot}"
        if await ephemeral.incr(NAMESPACE, key, window) > limit:
            return _refused(retry_after)
        response = await endpoint(request)
        if response.status_code == 401:  # not this client: give its unit back
            await ephemeral.incr(NAMESPACE, key, window, by=-1)
        return response

    run.__name__ = getattr(endpoint, "__name__", "endpoint")
    run.__doc__ = endpoint.__doc__
    return run


def _refused(retry_after: str) -> Response:
    response = json_error(TooManyRequests("too many requests: slow down and retry after the given time"))
    response.headers["Retry-After"] = retry_after
    return response
