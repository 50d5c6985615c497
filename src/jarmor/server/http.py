"""Small HTTP helpers shared by the endpoints: bounded body reading, JSON and redirect responses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..protocol import errors
from ..protocol.dpop import DPoPError
from ..protocol.params import parse_parameters
from ..protocol.responses import AuthorizationResponse, FormPost, Redirect
from .pages import form_post_page

MAX_FORM_BODY = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_KEY = "jarmor.form"  # the request's parsed form body, in its ASGI scope


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def json_error(err: errors.OAuthError) -> Response:
    headers = {"WWW-Authenticate": err.www_authenticate} if err.www_authenticate else {}
    if isinstance(err, DPoPError) and err.nonce:
        headers["DPoP-Nonce"] = err.nonce  # RFC 9449 §8: with use_dpop_nonce, exactly one
    return json_response(err.as_dict(), err.status, headers)


def dpop_nonce_header(nonce: str | None) -> dict[str, str]:
    """RFC 9449 §8.2: the next nonce with a successful response (which is ``no-store`` already)."""
    return {"DPoP-Nonce": nonce} if nonce else {}


async def read_body(request: Request, limit: int = MAX_FORM_BODY) -> bytes:
    """Read at most ``limit`` bytes; larger bodies are refused with 413 without buffering them."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise errors.PayloadTooLarge("request body too large")
        except ValueError as exc:
            raise errors.InvalidRequest("invalid Content-Length") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge("request body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(value: str | None) -> str:
    """The media type of a ``Content-Type`` value, without parameters, lower-case (RFC 9110 §8.3.1: the type
    and subtype are case-insensitive). The one place jarmor reads it, for requests and fetched documents."""
    return (value or "").split(";", 1)[0].strip().lower()


async def read_form(request: Request) -> dict[str, str]:
    """RFC 6749 §3.2 / RFC 9126 §2: POST bodies are ``application/x-www-form-urlencoded``. A body the rate
    limiter already parsed (``FORM_KEY``, ``keep_form``) is not parsed again."""
    if request.method != "POST":
        raise errors.MethodNotAllowed("use POST")
    ctype = media_type(request.headers.get("content-type"))
    if ctype != "application/x-www-form-urlencoded":
        raise errors.InvalidRequest("content type must be application/x-www-form-urlencoded")
    parsed = request.scope.get(FORM_KEY)
    if parsed is not None:
        return dict(parsed)
    return parse_parameters(await read_body(request))


def keep_form(request: Request, body: bytes) -> dict[str, str]:
    """Parse a form body read before the endpoint (``ratelimit``) and keep it for the endpoint's ``read_form``."""
    form = parse_parameters(body)
    request.scope[FORM_KEY] = form
    return form


def authorization_http_response(resp: AuthorizationResponse) -> Response:
    if isinstance(resp, Redirect):
        # FAPI 2.0 §5.3.2.2: 303 See Other for redirects from the authorization endpoint (never 307).
        return Response(status_code=303, headers={"Location": resp.location, **NO_STORE})
    assert isinstance(resp, FormPost)
    return form_post_page(resp.action, resp.fields)
