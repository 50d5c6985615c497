"""The thin dispatch of the hot endpoints (``server/dispatch.py``) answers exactly as Starlette's router does.

The same server is served twice — ``starlette_app`` with ``HotPaths`` (what ``create_app`` runs) and with the
plain router (``hot_paths=()``) — each behind the metrics middleware, as in ``create_app``. Every request of
the matrix goes to both and the answers are compared: status, every header, and the body, after replacing
what is random by design (request URIs, codes, tokens, CSP nonces). The thin app's hot routes are built so
that reaching them through the router fails the test: the thin path really served them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from jarmor.protocol import errors
from jarmor.protocol.context import Settings
from jarmor.server import app as app_module
from jarmor.server import metrics
from jarmor.server.app import build_routes, starlette_app
from jarmor.server.dispatch import HOT_PATHS, RouteTable
from jarmor.store.base import StoreUnavailable
from tests.kit import ISSUER, Kit, TestClient, response_params

from .conftest import KitFactory
from .support import plain_request

RANDOM_JSON = ("request_uri", "access_token", "id_token", "refresh_token")
NONCE = re.compile(r"nonce-[A-Za-z0-9_-]+|nonce=\"[A-Za-z0-9_-]+\"")
RANDOM_PARAM = re.compile(r"\b(response|code)=[^&#]+")
FORM = {"content-type": "application/x-www-form-urlencoded"}


class Pair:
    """One server, two applications: the thin dispatch (``thin``) and the plain router (``plain``)."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.thin_routes = build_routes(kit.server)
        for route in self.thin_routes:
            if route.path in HOT_PATHS:
                route.app = _never  # the router's way in: the thin path must not take it
        plain_routes = build_routes(kit.server)
        self.thin = starlette_app(
            kit.server, self.thin_routes, middleware=[Middleware(metrics.RequestMetrics, routes=self.thin_routes)]
        )
        self.plain = starlette_app(
            kit.server, plain_routes, middleware=[Middleware(metrics.RequestMetrics, routes=plain_routes)],
            hot_paths=(),
        )

    def client(self, app: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        return httpx.AsyncClient(transport=transport, base_url=ISSUER)

    async def both(self, method: str, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
        async with self.client(self.thin) as thin, self.client(self.plain) as plain:
            return await thin.request(method, path, **kw), await plain.request(method, path, **kw)

    async def same(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send the request to both; assert identical answers; return the thin path's."""
        thin, plain = await self.both(method, path, **kw)
        assert normalized(thin) == normalized(plain)
        return thin


async def _never(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("a hot endpoint was reached through the router")


def normalized(r: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    if r.request.method != "HEAD":
        assert int(r.headers.get("content-length", len(r.content))) == len(r.content)
    headers = sorted(
        (k, NONCE.sub("nonce-*", RANDOM_PARAM.sub(r"\1=*", v)))
        for k, v in r.headers.multi_items() if k not in ("content-length", "dpop-nonce")
    )
    body: Any = r.content
    if r.request.method == "HEAD":
        pass
    elif r.headers.get("content-type") == "application/json":
        body = {k: "*" if k in RANDOM_JSON else v for k, v in r.json().items()}
    elif r.headers.get("content-type", "").startswith("text/html"):
        body = RANDOM_PARAM.sub(r"\1=*", NONCE.sub("nonce-*", r.text))
        body = re.sub(r'name="(response|code)" value="[^"]*"', r'name="\1" value="*"', body)
    return r.status_code, headers, body


@pytest.fixture
async def pair(make: KitFactory) -> Pair:
    return Pair(await make())


@pytest.fixture
async def client(pair: Pair) -> TestClient:
    return await pair.kit.add_client(risk_tier="elevated")


def test_the_route_table_finds_what_the_router_finds(pair: Pair) -> None:
    table = RouteTable(pair.thin_routes)
    for path in ("/par", "/token", "/authorize", "/register/abc/def", "/interaction/x/login", "/nowhere", "/par/"):
        scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
        expected = next((r.path for r in pair.thin_routes if r.matches(scope)[0].value), "unmatched")
        assert table.template(scope) == expected
    assert set(table.literal) >= HOT_PATHS


@pytest.mark.parametrize("path", sorted(HOT_PATHS))
@pytest.mark.parametrize(
    "method, kw",
    [
        ("POST", {}),  # no body, no content type
        ("POST", {"content": b"a=1", "headers": {"content-type": "application/json"}}),
        ("POST", {"content": b"a=1&a=2", "headers": FORM}),  # a repeated parameter
        ("POST", {"content": b"client_id=\xff", "headers": FORM}),  # not UTF-8
        ("POST", {"content": b"x" * (64 * 1024 + 1), "headers": FORM}),  # over the body limit
        ("POST", {"content": b"client_id=nobody&grant_type=authorization_code", "headers": FORM}),
        ("POST", {"content": b"a=1", "headers": {**FORM, "content-length": "nope"}}),
        ("GET", {}),
        ("GET", {"params": {"client_id": "nobody", "response_type": "code"}}),
        ("GET", {"params": {"client_id": "x\x00"}}),
        ("HEAD", {}),
        ("PUT", {"content": b"a=1", "headers": FORM}),  # 405 with Allow
        ("DELETE", {}),
        ("OPTIONS", {}),
    ],
)
async def test_bad_requests_are_answered_identically(pair: Pair, path: str, method: str, kw: dict[str, Any]) -> None:
    r = await pair.same(method, path, **kw)
    assert r.status_code >= 400


@pytest.mark.parametrize("path", ["/par/", "/token/", "/authorize/", "/par?x=1"])
async def test_paths_beside_the_hot_ones_go_to_the_router(pair: Pair, path: str) -> None:
    await pair.same("POST", path, content=b"a=1", headers=FORM)
    await pair.same("GET", path)


async def test_a_query_string_that_is_not_utf8_is_an_error_page_on_both_paths(pair: Pair) -> None:
    """Raw bytes (no percent-encoding) in the query: the same 400 page, not a server error."""
    answers = []
    for app in (pair.thin, pair.plain):
        sent: list[dict[str, Any]] = []
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/authorize", "raw_path": b"/authorize", "query_string": b"client_id=\xff\xfe", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000")], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        await app(scope, receive, send)
        answers.append((sent[0]["status"], NONCE.sub("nonce-*", sent[1]["body"].decode())))
    assert answers[0] == answers[1]
    assert answers[0][0] == 400 and "invalid_request" in answers[0][1]


async def test_a_full_flow_is_answered_identically(pair: Pair, client: TestClient) -> None:
    contexts = []
    for _ in range(2):
        ro, ctx = client.request_object()
        form = {**client.auth_form(), "request": ro, "client_id": client.client_id}
        contexts.append((form, ctx))
    thin_form, thin_ctx = contexts[0]
    plain_form, plain_ctx = contexts[1]
    async with pair.client(pair.thin) as thin, pair.client(pair.plain) as plain:
        pushed = [await thin.post("/par", data=thin_form), await plain.post("/par", data=plain_form)]
        assert pushed[0].status_code == 201 and normalized(pushed[0]) == normalized(pushed[1])
        params = [{"client_id": client.client_id, "request_uri": p.json()["request_uri"]} for p in pushed]
        authorized = [await thin.get("/authorize", params=params[0]), await plain.get("/authorize", params=params[1])]
        assert authorized[0].status_code == 303 and normalized(authorized[0]) == normalized(authorized[1])
        codes = [pair.kit.jarm(client, response_params(a)["response"])["code"] for a in authorized]
        tokens = []
        for http, code, ctx in ((thin, codes[0], thin_ctx), (plain, codes[1], plain_ctx)):
            tokens.append(await http.post("/token", data={
                **client.auth_form(), "grant_type": "authorization_code", "code": code,
                "redirect_uri": ctx["redirect_uri"], "code_verifier": ctx["code_verifier"],
            }))
        assert tokens[0].status_code == 200 and normalized(tokens[0]) == normalized(tokens[1])
        # the code is single use on both paths alike
        again = [await http.post("/token", data={
            **client.auth_form(), "grant_type": "authorization_code", "code": code,
            "redirect_uri": ctx["redirect_uri"], "code_verifier": ctx["code_verifier"],
        }) for http, code, ctx in ((thin, codes[0], thin_ctx), (plain, codes[1], plain_ctx))]
        assert again[0].status_code == 400 and normalized(again[0]) == normalized(again[1])


async def test_a_form_post_authorization_is_answered_identically(pair: Pair, make: KitFactory) -> None:
    client = await pair.kit.add_client(risk_tier="baseline", token_endpoint_auth_method="none")
    answers = []
    for _ in range(2):
        params, _verifier = plain_request(client, response_mode="form_post")
        answers.append(params)
    async with pair.client(pair.thin) as thin, pair.client(pair.plain) as plain:
        t = await thin.post("/authorize", content=urlencode(answers[0]).encode(), headers=FORM)
        p = await plain.post("/authorize", content=urlencode(answers[1]).encode(), headers=FORM)
    state = re.compile(r'name="state" value="[^"]*"')
    assert t.status_code == 200 and "text/html" in t.headers["content-type"]
    assert normalized(t)[:2] == normalized(p)[:2]
    assert state.sub("", str(normalized(t)[2])) == state.sub("", str(normalized(p)[2]))


CRASHES: list[tuple[str, str, Callable[..., Any], str]] = [
    ("/par", "push_authorization_request", RuntimeError, "server_error"),
    ("/token", "token_endpoint", RuntimeError, "server_error"),
    ("/par", "push_authorization_request", StoreUnavailable, "temporarily_unavailable"),
    ("/token", "token_endpoint", StoreUnavailable, "temporarily_unavailable"),
]


@pytest.mark.parametrize("path, name, exc, error", CRASHES)
async def test_failures_are_answered_identically(
    pair: Pair, client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str, name: str, exc: Any, error: str
) -> None:
    """A crash is the same JSON 500 without detail; a store outage the same 503 with Retry-After."""
    async def failing(*_a: Any, **_kw: Any) -> Any:
        raise exc("secret detail")

    monkeypatch.setattr(app_module, name, failing)
    r = await pair.same("POST", path, data={**client.auth_form(), "client_id": client.client_id})
    assert r.json()["error"] == error and "secret" not in r.text


async def test_an_authorization_crash_is_the_same_page(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(*_a: Any, **_kw: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(pair.kit.server.lifecycle, "authorize", failing)
    r = await pair.same("GET", "/authorize", params={"client_id": "c"})
    assert r.status_code == 500 and "Something went wrong" in r.text and "secret" not in r.text


async def test_an_oauth_error_from_the_core_is_answered_identically(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refusing(*_a: Any, **_kw: Any) -> Any:
        raise errors.InvalidClient("client authentication failed")

    monkeypatch.setattr(app_module, "token_endpoint", refusing)
    r = await pair.same("POST", "/token", data={"grant_type": "authorization_code"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_rate_limits_are_answered_identically(make: KitFactory) -> None:
    pair = Pair(await make(settings=Settings(rate_limit_per_address=2)))
    client = await pair.kit.add_client(risk_tier="elevated")
    for _ in range(3):  # both paths count in the same store: the limit is spent after these
        await pair.both("POST", "/par", data={**client.auth_form(), "client_id": client.client_id})
    r = await pair.same("POST", "/par", data={**client.auth_form(), "client_id": client.client_id})
    assert r.status_code == 429 and r.headers["retry-after"]
