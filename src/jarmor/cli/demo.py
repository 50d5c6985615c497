"""``jarmor demo``: complete flows in each tier and response mode, printing every hop and what was verified.

Against a running server (``--issuer``) the demo registers its clients and a demo user in the server's
database (the same ``--config`` / ``--database`` as ``serve``), then acts as both the client application
(``jarmor.client``) and the user's browser (following redirects, signing in and consenting through the real
HTML forms). Without ``--issuer`` it runs the same against an in-process server on a temporary database.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, cast
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from ..client import AsyncOAuthClient, ClientConfig, ClientError, ResponseMode, format_trace_event
from ..config import ServerConfig
from ..jose import generate_jwk
from ..protocol.errors import OAuthError
from ..protocol.registration import register
from ..server.accounts import hash_password
from ..store.base import Store, UserRecord
from .common import config_from, open_state

REDIRECT_URI = "http://127.0.0.1:9999/cb"  # never dereferenced: the demo's browser stops here
JARM = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")
PLAIN = ("query", "fragment", "form_post")

# tier -> (response modes to run, use PAR?)
PLAN: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("baseline", PLAIN + JARM, False),
    ("elevated", JARM, False),
    ("high", JARM, True),
)


class _Forms(HTMLParser):
    """Collects the forms of a page: action, method and input values (the demo's browser)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}})
        elif tag in ("input", "button") and self.forms and a.get("name") and (tag == "input" or a.get("value")):
            self.forms[-1]["fields"].setdefault(a["name"], a.get("value", ""))


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@dataclass
class Browser:
    """Follows the front channel like a user agent: redirects, cookies, the login and consent forms."""

    http: httpx.AsyncClient
    username: str
    password: str
    say: Any
    hops: list[str] = field(default_factory=list)

    async def run(self, url: str) -> Mapping[str, str] | str:
        for _ in range(10):
            r = await self.http.get(url)
            self.say(f"  browser: GET {_short(url)} -> {r.status_code}")
            url, done = await self._next(url, r)
            if done is not None:
                return done
        raise RuntimeError("too many hops")

    async def _next(self, url: str, r: httpx.Response) -> tuple[str, Mapping[str, str] | str | None]:
        while True:
            if r.status_code in (302, 303):
                location = urljoin(url, r.headers["location"])
                if location.startswith(REDIRECT_URI):
                    parts = urlsplit(location)
                    where = "fragment" if parts.fragment else "query"
                    self.say(f"  browser: redirected to the client callback (response in the {where})")
                    return location, location
                return location, None
            page = forms(r.text) if r.status_code in (200, 401) else []
            if not page:
                raise RuntimeError(f"unexpected {r.status_code}: {r.text[:200]}")
            form = page[0]
            action = urljoin(url, form["action"])
            fields: dict[str, str] = dict(form["fields"])
            if action.startswith(REDIRECT_URI):
                self.say("  browser: auto-submitting form_post page carries the response to the callback")
                return action, fields
            if "password" in fields:
                fields.update(username=self.username, password=self.password)
                self.say(f"  browser: login page (CSRF token present) -> signing in as {self.username}")
            elif "decision" in fields or "csrf_token" in fields:
                fields["decision"] = "approve"
                self.say("  browser: consent page -> Allow")
            r = await self.http.post(action, data=fields)
            self.say(f"  browser: POST {_short(action)} -> {r.status_code}")
            url = action


def _short(url: str) -> str:
    parts = urlsplit(url)
    query = f"?{parts.query[:40]}..." if len(parts.query) > 40 else (f"?{parts.query}" if parts.query else "")
    return f"{parts.path}{query}"


async def _register_clients(
    store_env: Any, issuer: str, http: httpx.AsyncClient, registration_token: str | None
) -> dict[str, tuple[str, Any]]:
    """One client per tier (plus a machine client); returns tier -> (client_id, private key)."""
    out: dict[str, tuple[str, Any]] = {}
    for tier, modes, use_par in PLAN:
        key = generate_jwk("ES256")
        metadata: dict[str, Any] = {
            "client_name": f"jarmor demo ({tier})",
            "risk_tier": tier,
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_dict()]},
            "request_object_signing_alg": "ES256",
            "authorization_signed_response_alg": "ES256",
            "id_token_signed_response_alg": "ES256",
            "response_modes": list(modes),
            "grant_types": ["authorization_code", "refresh_token"],
            "client_kind": "third-party",
            "owner": "demo",
        }
        if use_par:
            metadata["require_pushed_authorization_requests"] = True
        body = await _register(store_env, http, issuer, registration_token, metadata)
        out[tier] = (str(body["client_id"]), key)
    key = generate_jwk("ES256")
    body = await _register(
        store_env,
        http,
        issuer,
        registration_token,
        {
            "client_name": "jarmor demo (machine)",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_dict()]},
            "risk_tier": "elevated",
            "scope": "profile",
            "client_kind": "machine",
        },
    )
    out["machine"] = (str(body["client_id"]), key)
    return out


async def _register(
    env: Any, http: httpx.AsyncClient, issuer: str, token: str | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    if token:
        r = await http.post(f"{issuer}/register", json=metadata, headers={"Authorization": f"Bearer {token}"})
        if r.status_code != 201:
            raise RuntimeError(f"registration failed: {r.text}")
        return dict(r.json())
    return await register(env, metadata)


async def _ensure_user(store: Store, username: str) -> str:
    password = secrets.token_urlsafe(12)
    record = UserRecord(username=username, password_hash=hash_password(password), created_at=int(time.time()))
    if await store.users.get(username) is None:
        await store.users.create(record)
    else:
        await store.users.update(record)
    return password


async def _run(args: argparse.Namespace, config: ServerConfig) -> int:
    from ..server.app import JarmorServer, build_routes

    out = sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    in_process = not args.issuer
    if in_process:
        from dataclasses import replace

        from starlette.applications import Starlette

        from ..store.memory import MemoryStore

        store: Store = MemoryStore()
        config = replace(config, issuer="http://127.0.0.1:8000")
        server = JarmorServer(config, store)
        await server.start()
        app = Starlette(routes=build_routes(server))
        transport: httpx.AsyncBaseTransport | None = httpx.ASGITransport(app=app)
        issuer = config.issuer
        say(f"jarmor demo: in-process server {issuer} (memory store)")
    else:
        store = open_state(config)
        issuer = args.issuer.rstrip("/")
        server = JarmorServer(
            ServerConfig(
                issuer=issuer, database=config.database, policy=config.policy, settings=config.settings
            ),
            store,
        )
        await server.start()  # for registration validation only; loads the same keys the server uses
        transport = None
        say(f"jarmor demo: server {issuer}, registering demo clients in {config.database}")

    failures = 0
    started = int(time.time()) - 1
    async with httpx.AsyncClient(transport=transport, base_url=issuer, timeout=10) as http:
        password = await _ensure_user(store, args.user)
        clients = await _register_clients(server.env, issuer, http, None)
        for tier, modes, use_par in PLAN:
            client_id, key = clients[tier]
            say(f"\n=== tier {tier}: client {client_id} (private_key_jwt, ES256) ===")
            for mode in modes:
                ok = await _one_flow(
                    http, transport, issuer, client_id, key, mode, use_par, tier, args.user, password, say
                )
                failures += 0 if ok else 1
        failures += 0 if await _machine_flow(http, issuer, clients["machine"], say) else 1
        say("\n=== tier critical ===")
        try:
            await register(
                server.env,
                {
                    "risk_tier": "critical",
                    "redirect_uris": [REDIRECT_URI],
                    "jwks": {"keys": [generate_jwk("ES256").public_dict()]},
                },
            )
            say("  registered (unexpected)")
        except OAuthError as err:
            say(f"  registration refused as designed: {err.error}: {err.description}")
    expected = sum(len(modes) for _, modes, _ in PLAN) + 1
    demo_clients = {client_id for client_id, _key in clients.values()}
    await _show_flow_records(server, store, started, demo_clients, expected, in_process, say)
    await server.stop()
    say(f"\n{'all flows completed' if not failures else f'{failures} flow(s) FAILED'}")
    return 1 if failures else 0


def _tracer(say: Any) -> Any:
    """A ``jarmor.client`` trace hook that prints each hop, indented under the flow's heading."""

    def trace(hop: str, details: Mapping[str, Any]) -> None:
        say("  " + format_trace_event(hop, details))

    return trace


async def _one_flow(
    http: httpx.AsyncClient,
    transport: httpx.AsyncBaseTransport | None,
    issuer: str,
    client_id: str,
    key: Any,
    mode: str,
    use_par: bool,
    tier: str,
    username: str,
    password: str,
    say: Any,
) -> bool:
    say(f"\n--- {tier} / response_mode={mode} / {'PAR' if use_par else 'request object by value'} ---")

    trace = _tracer(say)

    config = ClientConfig(
        issuer=issuer,
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        signing_key=key,
        signing_alg="ES256",
        authorization_signed_response_alg="ES256",
        id_token_signed_response_alg="ES256",
        allow_insecure_http=True,
    )
    client = AsyncOAuthClient(config, http=http, trace=trace)
    browser_http = httpx.AsyncClient(transport=transport, timeout=10)  # its own cookie jar
    try:
        start = await client.start_authorization(
            scope="openid profile", response_mode=cast(ResponseMode, mode), use_par=use_par
        )
        delivered = await Browser(browser_http, username, password, say).run(start.url)
        if isinstance(delivered, str) and "#" in delivered:
            # fragment modes: the client's page script hands the fragment to the application
            delivered = dict(parse_qsl(urlsplit(delivered).fragment))
        result = await client.handle_callback(delivered, expected_state=start.state)
        tokens = await client.exchange_code(result)
        say(
            f"  result: access token issued (expires_in={tokens.expires_in}), "
            f"id_token={'verified' if tokens.id_token else 'none'}, "
            f"refresh_token={'yes' if tokens.refresh_token else 'no'}"
        )
        return True
    except (ClientError, RuntimeError, httpx.HTTPError) as exc:
        say(f"  FAILED: {type(exc).__name__}: {exc}")
        return False
    finally:
        await browser_http.aclose()


async def _machine_flow(http: httpx.AsyncClient, issuer: str, client: tuple[str, Any], say: Any) -> bool:
    client_id, key = client
    say(f"\n=== machine client {client_id}: client_credentials with private_key_jwt ===")

    trace = _tracer(say)

    config = ClientConfig(
        issuer=issuer,
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        signing_key=key,
        allow_insecure_http=True,
    )
    try:
        tokens = await AsyncOAuthClient(config, http=http, trace=trace).client_credentials("profile")
        say(f"  result: access token for scope {tokens.scope!r} (expires_in={tokens.expires_in})")
        return True
    except ClientError as exc:
        say(f"  FAILED: {exc}")
        return False


async def _show_flow_records(
    server: Any, store: Store, since: int, client_ids: set[str], expected: int, in_process: bool, say: Any
) -> None:
    """The flow integrity records of the demo's flows, one row per flow (``jarmor flows`` shows the same).

    In-process, the demo's own server flushes its recorder; a running server writes its records in batches
    a fraction of a second after each hop, so the demo waits (briefly) until every flow it ran has ended."""
    from ..governance.query import FlowQuery, find_flows
    from ..governance.render import flows_table

    say("\n=== flow integrity records (jarmor flows) ===")
    if in_process:
        await server.flows.flush()
    deadline = time.monotonic() + (0 if in_process else 10)
    while True:
        found = await find_flows(store.flows, FlowQuery(since=since, limit=1000), int(time.time()))
        flows = [f for f in found if f.client_id in client_ids]
        if sum(f.outcome_class != "pending" for f in flows) >= expected or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.25)
    if not flows:
        say("  none recorded (does the server write flow records? see its log)")
        return
    say(flows_table(list(reversed(flows))))
    head_seq, head_hash = await store.flows.head()
    say(f"  {len(flows)} flow(s); chain head {head_seq}:{head_hash}")
    if not in_process:
        say("  verify the chain with: jarmor flows verify (same --config / --database)")


def demo(args: argparse.Namespace) -> int:
    config = config_from(args)
    return asyncio.run(_run(args, config))
