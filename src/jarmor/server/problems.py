"""Pages for when a person lands somewhere that cannot serve them: a stale sign-in URL, an unknown address, a
form URL opened directly. They say what happened and how to start again; JSON endpoints keep answering JSON.

* ``InteractionProblem``: the sign-in or consent step cannot go on (finished, expired, opened in another
  browser, a form from an older page). It is still an ``invalid_request`` for the records and tests, but the
  person is told it in words, with the code only as a detail for support.
* ``exception_handlers``: Starlette's 404 and 405 (and the 500 of an unexpected failure) as styled pages on
  browser routes, as OAuth-style JSON errors on the JSON endpoints (with ``Allow`` on a 405, RFC 9110
  §15.5.6).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..protocol import errors
from .http import json_error, json_response
from .pages import page

if TYPE_CHECKING:
    from starlette.types import ExceptionHandler

log = logging.getLogger("jarmor.server")

START_AGAIN = "To continue, go back to the application and start signing in again."

# problem -> (heading, explanation); fixed texts, never built from the request
INTERACTION_PROBLEMS: Mapping[str, tuple[str, str]] = {
    "finished": (
        "This sign-in page is no longer active",
        "Signing in here was already finished (for example, you went back or reloaded the page after choosing "
        "Allow or Deny), or the page was left open too long. Nothing more will happen on this page.",
    ),
    "other-browser": (
        "This sign-in page belongs to another browser",
        "For your safety, a sign-in page only works in the browser where the application opened it, and only "
        "for the most recent sign-in started there. Nothing was done.",
    ),
    "form": (
        "This form could not be used",
        "The form was sent from an older copy of this page, was changed, or came from another site. "
        "Nothing was done.",
    ),
    "not-signed-in": (
        "Sign in first",
        "This step needs you to sign in first. Nothing was done.",
    ),
}

# JSON (and monitoring) endpoints, paths and their subtrees; every other path is a page a browser may show
JSON_PATHS = (
    "/.well-known", "/jwks", "/par", "/token", "/register", "/revoke", "/introspect", "/healthz", "/readyz", "/metrics",
)
ADMIN_PREFIX = "/admin"


class InteractionProblem(errors.OAuthError):
    """The interaction cannot continue; ``problem`` is a key of ``INTERACTION_PROBLEMS``."""

    error = "invalid_request"

    def __init__(self, description: str, *, problem: str) -> None:
        super().__init__(description)
        self.problem = problem if problem in INTERACTION_PROBLEMS else "form"


def problem_page(
    issuer: str,
    heading: str,
    paragraphs: list[str],
    *,
    status: int,
    error: str | None = None,
    description: str | None = None,
    link: dict[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return page(
        "problem.html",
        {
            "issuer": issuer,
            "heading": heading,
            "paragraphs": paragraphs,
            "error": error,
            "description": description,
            "link": link,
        },
        status=status,
        headers=headers,
    )


def interaction_problem_page(issuer: str, err: errors.OAuthError) -> Response:
    """Any refusal of a sign-in or consent step, explained; ``invalid_request`` pages stay 400."""
    heading, text = INTERACTION_PROBLEMS[getattr(err, "problem", "form")]
    status = err.status if err.status in (400, 405, 413) else 400
    return problem_page(
        issuer, heading, [text, START_AGAIN], status=status, error=err.error, description=err.description
    )


def is_json_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in JSON_PATHS)


def _issuer(request: Request) -> str:
    server: Any = getattr(request.app.state, "jarmor", None)
    try:
        return str(server.env.issuer)
    except (AttributeError, RuntimeError):
        return ""


def _dashboard_link(path: str) -> dict[str, str] | None:
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return {"href": ADMIN_PREFIX + "/clients", "text": "Go to the dashboard"}
    return None


async def not_found(request: Request, exc: Exception) -> Response:
    path = request.url.path
    if is_json_path(path):
        return json_response({"error": "invalid_request", "error_description": "there is no endpoint here"}, 404)
    link = _dashboard_link(path)
    where = "go to the dashboard" if link else "go back to the application you came from"
    return problem_page(
        _issuer(request),
        "Page not found",
        [f"There is no page at this address. Check the address, or {where}."],
        status=404,
        link=link,
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    allow = (exc.headers or {}).get("Allow", "") if isinstance(exc, HTTPException) else ""
    allow = ", ".join(sorted(m.strip() for m in allow.split(",") if m.strip()))  # Starlette's comes from a set
    headers = {"Allow": allow} if allow else {}
    path = request.url.path
    if is_json_path(path):
        response = json_error(errors.MethodNotAllowed(f"use {allow}" if allow else "method not allowed"))
        response.headers.update(headers)
        return response
    link = _dashboard_link(path)
    return problem_page(
        _issuer(request),
        "This address cannot be opened directly",
        [
            "This address only takes a form sent from one of this server's pages, so there is nothing to "
            "show here. Nothing was done.",
            "Go back to the page you came from" + ("." if link else ", or start again from the application."),
        ],
        status=405,
        link=link,
        headers=headers,
    )


async def server_error(request: Request, exc: Exception) -> Response:
    """The last resort (Starlette logs the exception): no traceback, no detail, the right format."""
    if is_json_path(request.url.path):
        return json_response({"error": "server_error", "error_description": "internal error"}, 500)
    return problem_page(
        _issuer(request),
        "Something went wrong",
        ["This server could not complete your request. Please try again later."],
        status=500,
    )


def exception_handlers() -> Mapping[Any, ExceptionHandler]:
    return {404: not_found, 405: method_not_allowed, 500: server_error}
