"""``jarmor demo``: complete flows in each tier and response mode, printing every hop and what was verified.

Against a running server (``--issuer``) the demo registers its clients and a demo user in the server's
database (the same ``--config`` / ``--database`` as ``serve``), then acts as both the client application
(``jarmor.client``) and the user's browser (following redirects, signing in and consenting through the real
HTML forms). Without ``--issuer`` it runs the same against an in-process server on a temporary database.

The built-in ``high`` and ``critical`` tiers require authentication assurance (a second factor; a
device-bound passkey), so the demo's user signs in as each tier needs: before the flows it enrols, through
the account pages, a TOTP app (codes computed with ``pyotp``) and a passkey on a software authenticator
(``soft_authenticator``: a stand-in for a security key, whose key lives in this process only). ``baseline``
and ``elevated`` flows sign in with the password, ``high`` with the password and a TOTP code (each code is
accepted once: when this 30-second step's code is spent, a further ``high`` flow uses the passkey, which
reaches AAL3 and so AAL2), ``critical`` with the passkey.

The demo changes only what it created: its clients and its user are the ones whose creation the audit log
attributes to ``jarmor demo`` (dynamic registration cannot forge that actor). It reuses them on the next run
(giving each client fresh keys, since the previous run's private keys are gone) instead of adding more, and
refuses a ``--user`` that exists but is not its own rather than change that user's password.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import httpx

from ..client import AsyncOAuthClient, ClientConfig, ClientError, ResponseMode, format_trace_event
from ..config import ServerConfig
from ..governance.terminal import safe_lines
from ..jose import Jwk, JwkSet, generate_jwk
from ..protocol.clients import validate_client_metadata
from ..protocol.policy import Control, Tier
from ..protocol.registration import observe_client_keys, register
from ..server.accounts import hash_password
from ..store.base import AdminEvent, ClientRecord, Store, UserRecord
from .common import config_from, fail, open_state
from .demo_user import REDIRECT_URI, Browser, DemoRefused, DemoUser, enrol_factors, sign_in_plan

JARM = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")
PLAIN = ("query", "fragment", "form_post")
DEMO_ACTOR = "jarmor demo"  # the audit log's actor for everything the demo creates or changes
ENCRYPTION = ("ECDH-ES", "A128GCM")  # request object and JARM encryption of the critical tier


@dataclass(frozen=True, slots=True)
class Step:
    tier: str
    modes: tuple[str, ...]
    par: bool
    encrypted: bool = False  # signed-then-encrypted request object and JARM (the critical tier)


PLAN: tuple[Step, ...] = (
    Step("baseline", PLAIN + JARM, False),
    Step("elevated", JARM, False),
    Step("high", JARM, True),
    Step("critical", JARM, True, encrypted=True),
)


@dataclass(frozen=True, slots=True)
class DemoClient:
    client_id: str
    key: Jwk  # signs request objects and client assertions
    enc_key: Jwk | None = None  # decrypts encrypted JARM responses
    reused: bool = False
    dpop: bool = False  # registered dpop_bound_access_tokens: its tier requires sender-constrained tokens


def _client_metadata(step: Step | None, key: Jwk, enc_key: Jwk | None, *, dpop: bool = False) -> dict[str, Any]:
    """One demo client's registration: per tier (``step``), or the machine client (``None``). ``dpop``: the
    tier requires sender-constrained tokens, so the client registers DPoP-bound tokens (RFC 9449 §5.2)."""
    keys = [key.public_dict()] + ([enc_key.public_dict()] if enc_key else [])
    if step is None:
        return {
            "client_name": "jarmor demo (machine)",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": keys},
            "risk_tier": "elevated",
            "scope": "profile",
            "client_kind": "machine",
            "owner": DEMO_ACTOR,
        }
    metadata: dict[str, Any] = {
        "client_name": f"jarmor demo ({step.tier})",
        "risk_tier": step.tier,
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": keys},
        "request_object_signing_alg": "ES256",
        "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256",
        "response_modes": list(step.modes),
        "grant_types": ["authorization_code", "refresh_token"],
        "client_kind": "third-party",
        "owner": DEMO_ACTOR,
    }
    if step.par:
        metadata["require_pushed_authorization_requests"] = True
    if dpop:
        metadata["dpop_bound_access_tokens"] = True
    if step.encrypted:
        alg, enc = ENCRYPTION
        metadata.update(
            request_object_encryption_alg=alg,
            request_object_encryption_enc=enc,
            authorization_encrypted_response_alg=alg,
            authorization_encrypted_response_enc=enc,
        )
    return metadata


async def _created_by_demo(store: Store, target: str, action: str) -> bool:
    """Whether the audit log attributes the creation of ``target`` to the demo (an actor no request sets)."""
    events = await store.audit.list(target=target, limit=100_000)
    return any(e.action == action and e.actor == DEMO_ACTOR for e in events)


async def _own_clients(store: Store) -> dict[str, ClientRecord]:
    """The demo's clients from earlier runs, by name: enabled, and registered by the demo itself."""
    found: dict[str, ClientRecord] = {}
    for record in await store.clients.list():
        name = record.metadata.get("client_name")
        if (
            record.disabled_at is None
            and record.metadata.get("owner") == DEMO_ACTOR
            and isinstance(name, str)
            and name not in found
            and await _created_by_demo(store, f"client:{record.client_id}", "client.register")
        ):
            found[name] = record
    return found


async def _refresh_keys(env: Any, record: ClientRecord, metadata: dict[str, Any]) -> None:
    """Give a demo client of an earlier run this run's keys (validated as at registration)."""
    now = env.now()
    record.metadata = validate_client_metadata(metadata, policy=env.policy, server=env.capabilities())
    record.updated_at = now
    await env.store.clients.update(record)
    await observe_client_keys(env, record.client_id, record.metadata, now)
    await env.store.audit.append(AdminEvent(
        at=now, actor=DEMO_ACTOR, action="client.update", target=f"client:{record.client_id}",
        details={"why": "jarmor demo: new keys for this run"},
    ))


async def _register_clients(env: Any, store: Store, say: Any) -> dict[str, DemoClient]:
    """One client per tier (plus a machine client); tier -> client. Earlier runs' demo clients are reused."""
    own = await _own_clients(store)
    out: dict[str, DemoClient] = {}
    for step in (*PLAN, None):
        name = step.tier if step else "machine"
        key = generate_jwk("ES256")
        enc_key = generate_jwk(ENCRYPTION[0]) if step and step.encrypted else None
        tier = env.policy.tiers.get(step.tier if step else "elevated")
        dpop = tier is not None and tier.requires(Control.SENDER_CONSTRAINED_TOKENS)
        metadata = _client_metadata(step, key, enc_key, dpop=dpop)
        existing = own.get(metadata["client_name"])
        if existing is not None:
            await _refresh_keys(env, existing, metadata)
            out[name] = DemoClient(existing.client_id, key, enc_key, reused=True, dpop=dpop)
        else:
            body = await register(env, metadata, actor=DEMO_ACTOR)
            out[name] = DemoClient(str(body["client_id"]), key, enc_key, dpop=dpop)
    reused = sum(c.reused for c in out.values())
    say(f"jarmor demo: {reused} demo client(s) reused, {len(out) - reused} registered")
    return out


async def _ensure_user(store: Store, username: str) -> str:
    """The demo's user: created (and recorded as the demo's) when missing; one the demo created earlier
    gets a new random password; anyone else's account is refused, never changed."""
    password = secrets.token_urlsafe(12)
    now = int(time.time())
    record = UserRecord(username=username, password_hash=hash_password(password), created_at=now)
    existing = await store.users.get(username)
    if existing is None:
        await store.users.create(record)
        await store.audit.append(AdminEvent(at=now, actor=DEMO_ACTOR, action="user.add", target=f"user:{username}"))
        return password
    if not await _created_by_demo(store, f"user:{username}", "user.add") or existing.disabled:
        raise DemoRefused(
            f"user {username} exists and is not the demo's own: the demo never changes an account it did not "
            "create; pass another --user"
        )
    existing.password_hash = record.password_hash
    await store.users.update(existing)
    await store.audit.append(AdminEvent(
        at=now, actor=DEMO_ACTOR, action="user.reset_password", target=f"user:{username}",
        details={"why": "jarmor demo: new random password for this run"},
    ))
    return password


async def _enrol(
    store: Store, transport: httpx.AsyncBaseTransport | None, issuer: str, username: str, password: str, say: Any
) -> DemoUser:
    """Give the demo's user (its own: ``_ensure_user`` checked) the factors the high and critical tiers need:
    its authenticators of an earlier run are removed (their secrets and keys are gone with that run), then
    ``enrol_factors``."""
    for old in await store.accounts.list_for("user", username):
        await store.accounts.remove("user", username, old.authenticator_id)
    user = await enrol_factors(transport, issuer, username, password)
    if {a.kind for a in await store.accounts.list_for("user", username)} != {"totp", "passkey"}:
        raise DemoRefused("enrolling the demo user's second factors failed")
    say(f"jarmor demo: user {username}: password, TOTP app and passkey (software authenticator) enrolled")
    return user


async def _check_same_database(http: httpx.AsyncClient, issuer: str, store: Store, database: str) -> None:
    """The demo registers its clients in a database, then asks the server at ``issuer`` to use them: refuse
    early, with the reason, when that server publishes none of this database's keys (another database)."""
    try:
        r = await http.get(f"{issuer}/jwks")
    except httpx.HTTPError as exc:
        raise DemoRefused(f"cannot reach {issuer}: {exc or type(exc).__name__}") from exc
    try:
        published = {str(k.get("kid")) for k in r.json().get("keys", [])} if r.status_code == 200 else set()
    except ValueError:
        published = set()
    if r.status_code != 200 or not published:
        raise DemoRefused(f"{issuer}/jwks answered {r.status_code} without keys: is it a jarmor server?")
    ours = {k.kid for k in await store.keys.list()}
    if not published & ours:
        raise DemoRefused(
            f"the server at {issuer} does not use the database {database} (its /jwks publishes none of that "
            "database's keys), so it would refuse the demo's clients: pass the server's --database or --config"
        )


async def _run(args: argparse.Namespace, config: ServerConfig) -> int:
    from ..server.app import JarmorServer, build_routes

    out = sys.stdout

    def say(line: str) -> None:
        print(safe_lines(line), file=out, flush=True)  # server texts and stored values, made inert

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
        transport = None

    failures = 0
    started = int(time.time()) - 1
    try:
        async with httpx.AsyncClient(transport=transport, base_url=issuer, timeout=10) as http:
            if not in_process:
                await _check_same_database(http, issuer, store, config.database)
                await server.start()  # for registration validation only; loads the same keys the server uses
                say(f"jarmor demo: server {issuer}, demo clients in {config.database}")
            password = await _ensure_user(store, args.user)
            user = await _enrol(store, transport, issuer, args.user, password, say)
            clients = await _register_clients(server.env, store, say)
            for step in PLAN:
                client = clients[step.tier]
                how = "private_key_jwt, ES256" + (f", encrypted {'+'.join(ENCRYPTION)}" if step.encrypted else "")
                say(f"\n=== tier {step.tier}: client {client.client_id} ({how}) ===")
                tier = server.env.policy.tiers.get(step.tier)
                for mode in step.modes:
                    ok = await _one_flow(http, transport, issuer, client, mode, step, user, tier, say)
                    failures += 0 if ok else 1
            failures += 0 if await _machine_flow(http, issuer, clients["machine"], say) else 1
    except DemoRefused as exc:
        await server.stop()
        fail(str(exc))
    expected = sum(len(step.modes) for step in PLAN) + 1
    demo_clients = {c.client_id for c in clients.values()}
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
    demo_client: DemoClient,
    mode: str,
    step: Step,
    user: DemoUser,
    tier: Tier | None,
    say: Any,
) -> bool:
    how = "PAR" if step.par else "request object by value"
    if step.encrypted:
        how += ", encrypted request object and JARM"
    plan = sign_in_plan(tier, user)
    say(f"\n--- {step.tier} / response_mode={mode} / {how} / sign-in: {plan} ---")

    trace = _tracer(say)
    encryption: dict[str, Any] = {}
    if step.encrypted and demo_client.enc_key is not None:
        alg, enc = ENCRYPTION
        encryption = {
            "request_object_encryption_alg": alg,
            "request_object_encryption_enc": enc,
            "authorization_encrypted_response_alg": alg,
            "authorization_encrypted_response_enc": enc,
            "decryption_keys": JwkSet((demo_client.enc_key,)),
        }
    config = ClientConfig(
        issuer=issuer,
        client_id=demo_client.client_id,
        redirect_uri=REDIRECT_URI,
        signing_key=demo_client.key,
        signing_alg="ES256",
        authorization_signed_response_alg="ES256",
        id_token_signed_response_alg="ES256",
        allow_insecure_http=True,
        dpop=demo_client.dpop,
        **encryption,
    )
    client = AsyncOAuthClient(config, http=http, trace=trace)
    browser_http = httpx.AsyncClient(transport=transport, timeout=10)  # its own cookie jar
    try:
        start = await client.start_authorization(
            scope="openid profile",
            response_mode=cast(ResponseMode, mode),
            use_par=step.par,
            encrypt_request=step.encrypted,
        )
        delivered = await Browser(browser_http, user, say, plan).run(start.url)
        if isinstance(delivered, str) and "#" in delivered:
            # fragment modes: the client's page script hands the fragment to the application
            delivered = dict(parse_qsl(urlsplit(delivered).fragment))
        result = await client.handle_callback(delivered, expected_state=start.state)
        tokens = await client.exchange_code(result)
        say(
            f"  result: access token issued (token_type={tokens.token_type}, expires_in={tokens.expires_in}), "
            f"id_token={'verified' if tokens.id_token else 'none'}, "
            f"refresh_token={'yes' if tokens.refresh_token else 'no'}"
        )
        claims = tokens.id_token_claims or {}
        amr = claims.get("amr")
        say(f"  signed in: acr={claims.get('acr')}, amr={' '.join(map(str, amr)) if isinstance(amr, list) else '-'}")
        return True
    except (ClientError, RuntimeError, httpx.HTTPError) as exc:
        say(f"  FAILED: {type(exc).__name__}: {exc}")
        return False
    finally:
        await browser_http.aclose()


async def _machine_flow(http: httpx.AsyncClient, issuer: str, client: DemoClient, say: Any) -> bool:
    client_id, key = client.client_id, client.key
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
