"""Which route a request belongs to, found once, and the thin dispatch of the endpoints every flow hits.

Starlette finds a request's route by trying each route's regular expression in order, and the server did that
twice per request: ``RequestMetrics`` for the route label, then the router. ``RouteTable`` answers both
questions — which route template (the metrics label) and which route object — with one dictionary lookup for
a path without parameters (``/par``, ``/token`` ...), and with Starlette's own matching, in route order, for
every other path. A literal path is looked up directly only when no route *before* it also matches it, so
the answer is always the route Starlette's router would pick.

``HotPaths`` serves the hot endpoints (``HOT_PATHS``: PAR, authorization, token) without the router: it is the
router's own middleware (``create_app``), so it runs inside everything the application stack does for every
request — ``ServerErrorMiddleware`` (a crash is the same ``server_error`` 500, logged, no traceback in the
answer), the client-certificate reader, the proxy-header reader, the metrics with their access log, and
``ExceptionMiddleware`` (the handlers of ``problems.exception_handlers``). For a request to one of those exact
paths with a method its route takes, it calls the route's endpoint (the handler behind the outage guard and
the rate limits, with its body size limits and content-type checks) with a ``Request`` and sends the
response: what it skips is the route search and Starlette's per-route wrapper (a second exception-handling
layer with the same handlers). Any other request (another path, a trailing slash, a method the route does
not take — 405 with ``Allow`` — or a mounted app's ``root_path``) goes on to the router unchanged.
``tests/server/test_dispatch.py`` sends the same requests through both paths and compares status, headers
and body.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

HOT_PATHS = frozenset({"/par", "/authorize", "/token"})
UNMATCHED = "unmatched"


class RouteTable:
    """The route Starlette's router would pick for a request, and its template (the metrics label)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self.literal: dict[str, Route] = {}
        for i, route in enumerate(self.routes):
            if route.param_convertors or route.path in self.literal:
                continue
            if not any(r.path_regex.match(route.path) for r in self.routes[:i] if r.param_convertors):
                self.literal[route.path] = route

    def route(self, scope: Scope) -> Route | None:
        """The first route whose path matches (whatever the method, as the router's 405 does)."""
        if not scope.get("root_path"):
            found = self.literal.get(scope["path"])
            if found is not None:
                return found
        for route in self.routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return route
        return None

    def template(self, scope: Scope) -> str:
        route = self.route(scope)
        return route.path if route is not None else UNMATCHED


class HotPaths:
    """Router middleware: ``paths`` served straight from their route's endpoint (see the module docstring)."""

    def __init__(self, app: ASGIApp, routes: Iterable[Route], paths: Collection[str] = HOT_PATHS) -> None:
        self.app = app
        self.hot = {path: route for path, route in RouteTable(routes).literal.items() if path in paths}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.hot.get(scope["path"]) if scope["type"] == "http" and not scope.get("root_path") else None
        if route is None or (route.methods is not None and scope["method"] not in route.methods):
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        response = await route.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)
