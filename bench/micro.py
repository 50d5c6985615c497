"""Micro benchmarks: jarmor's JOSE layer against the raw floor, and the protocol pipeline without HTTP.

    python bench/micro.py [--quick] [--jose-only] [--json bench/results/micro.json]

1. JOSE, CPU µs per operation (ES256, P-256):
   * verify a request object: ``jarmor.jose.verify_jws`` (strict parsing, allowlist, ``typ``, key selection)
     vs ``joserfc.jws.deserialize_compact`` vs ``cryptography``'s ECDSA verify (plus the R‖S -> DER step);
   * sign a JARM response: ``jarmor.jose.sign_jws`` vs ``joserfc.jws.serialize_compact`` vs ``cryptography``'s
     ECDSA sign (plus DER -> R‖S and base64url);
   * what a cold client costs: parsing its JWKS (``JwkSet.from_dict``) and its record (``Client.from_metadata``);
   * a DPoP proof (``verify_jws_embedded_jwk``: the key comes from the header) and strict JSON on its own
     (``loads_object`` on the request object's claims, on a header; the standard library's ``json.loads`` and
     ``orjson.loads`` beside it, with no duplicate check, as floors).
2. One full flow in-process, CPU µs per flow and per endpoint (PAR with ``private_key_jwt`` and a signed request
   object, authorization with auto-approve and a JARM response, token with PKCE and ``private_key_jwt``):
   * ``protocol``: the calls ``jarmor.server.app`` makes (``push_authorization_request``, ``run_checks``,
     ``issue_code`` + ``render``, ``token_endpoint``) on the in-memory store and on SQLite;
   * ``asgi``: the app ``jarmor serve`` runs (``create_app``, with its middleware) called directly with ASGI
     messages (no sockets, no HTTP parsing), SQLite.
   The difference between the two is the framework's cost; between ``asgi`` and the server CPU per flow
   that ``bench/run.py`` measures is the HTTP server's (uvicorn, h11, asyncio, sockets).
   Request objects and client assertions are signed before the clock starts: only server work is timed.

Every figure is the fastest of several runs of CPU time (``time.process_time``): the least disturbed by
other work on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from jarmor.jose import (
    JwkSet,
    generate_jwk,
    loads_object,
    sign_jws,
    sign_jws_embedded_jwk,
    verify_jws,
    verify_jws_embedded_jwk,
)

ISSUER = "http://127.0.0.1:8000"
REDIRECT = "http://127.0.0.1:9999/cb"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


CLOCK = time.process_time  # CPU time of this process: what the server pays, and robust to a busy machine


def bench(fn: Callable[[], object], n: int, repeat: int = 5) -> float:
    """The fastest of ``repeat`` runs, as mean CPU µs per call (the minimum is the figure least disturbed by
    other work on the machine, as ``timeit`` recommends)."""
    for _ in range(min(n, 50)):
        fn()
    runs = []
    for _ in range(repeat):
        t = CLOCK()
        for _ in range(n):
            fn()
        runs.append((CLOCK() - t) / n * 1e6)
    return min(runs)


def bench_interleaved(fns: list[Callable[[], object]], n: int, repeat: int = 7) -> list[float]:
    """Like ``bench`` for several functions, taking turns (round-robin) so that drift hits all alike."""
    for fn in fns:
        for _ in range(min(n, 50)):
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = CLOCK()
            for _ in range(n):
                fn()
            best[i] = min(best[i], (CLOCK() - t) / n * 1e6)
    return best


# --- 1. JOSE ------------------------------------------------------------------------------------------


def jose_benchmarks(n: int) -> list[dict[str, Any]]:
    from joserfc import jws as rfc_jws
    from joserfc.jwk import ECKey

    client_key = generate_jwk("ES256", kid="cli-es256")
    server_key = generate_jwk("ES256", kid="srv-es256")
    client_keys = JwkSet.from_dict({"keys": [client_key.public_dict()]})
    now = int(time.time())
    request_claims = {
        "iss": "peer-client", "aud": ISSUER, "client_id": "peer-client", "response_type": "code",
        "response_mode": "jwt", "redirect_uri": REDIRECT, "scope": "openid", "state": secrets.token_urlsafe(12),
        "code_challenge": b64(hashlib.sha256(b"x").digest()), "code_challenge_method": "S256",
        "iat": now, "nbf": now, "exp": now + 300, "jti": secrets.token_urlsafe(16),
    }
    ro = sign_jws(request_claims, client_key, "ES256", typ="oauth-authz-req+jwt")
    jarm_claims = {"iss": ISSUER, "aud": "peer-client", "iat": now, "exp": now + 300,
                   "code": secrets.token_urlsafe(32), "state": secrets.token_urlsafe(12)}

    rfc_public = ECKey.import_key(client_key.public_dict())
    rfc_private = ECKey.import_key(server_key.private_dict())
    crypto_public: ec.EllipticCurvePublicKey = rfc_public.public_key  # type: ignore[assignment]
    crypto_private: ec.EllipticCurvePrivateKey = rfc_private.private_key  # type: ignore[assignment]
    head, payload, sig = ro.split(".")
    signing_input = f"{head}.{payload}".encode()
    raw_sig = base64.urlsafe_b64decode(sig + "==")
    rfc_registry = rfc_jws.JWSRegistry(algorithms=["ES256"])

    def crypto_verify() -> None:
        h, p, s = ro.split(".")
        rs = base64.urlsafe_b64decode(s + "==")
        der = encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big"))
        crypto_public.verify(der, f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
        json.loads(base64.urlsafe_b64decode(p + "=="))

    def crypto_verify_only() -> None:
        der = encode_dss_signature(int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big"))
        crypto_public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))

    jarm_payload = json.dumps(jarm_claims, separators=(",", ":")).encode()

    def crypto_sign() -> str:
        h = b64(b'{"alg":"ES256","kid":"srv-es256"}')
        p = b64(json.dumps(jarm_claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(crypto_private.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256())))
        return f"{h}.{p}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def crypto_sign_only() -> bytes:
        return crypto_private.sign(signing_input, ec.ECDSA(hashes.SHA256()))

    rows = [
        ("verify request object (ES256)", "jarmor.jose.verify_jws (typ, allowlist, strict JSON)",
         lambda: verify_jws(ro, client_keys, algorithms=["ES256"], typ=["oauth-authz-req+jwt"])),
        ("verify request object (ES256)", "joserfc.jws.deserialize_compact",
         lambda: rfc_jws.deserialize_compact(ro, rfc_public, algorithms=["ES256"], registry=rfc_registry)),
        ("verify request object (ES256)", "cryptography: R||S->DER + verify + json.loads", crypto_verify),
        ("verify request object (ES256)", "cryptography: ECDSA verify only (floor)", crypto_verify_only),
        ("sign JARM response (ES256)", "jarmor.jose.sign_jws",
         lambda: sign_jws(jarm_claims, server_key, "ES256")),
        ("sign JARM response (ES256)", "joserfc.jws.serialize_compact",
         lambda: rfc_jws.serialize_compact({"alg": "ES256", "kid": "srv-es256"}, jarm_payload, rfc_private,
                                           algorithms=["ES256"], registry=rfc_registry)),
        ("sign JARM response (ES256)", "cryptography: json + b64 + sign + DER->R||S", crypto_sign),
        ("sign JARM response (ES256)", "cryptography: ECDSA sign only (floor)", crypto_sign_only),
    ]
    dpop_key = generate_jwk("ES256")
    proof = sign_jws_embedded_jwk({"htm": "POST", "htu": ISSUER + "/token", "iat": now, "jti": secrets.token_urlsafe(16)},
                                  dpop_key, "ES256", typ="dpop+jwt")
    claims_json = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    header_json = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    import orjson

    rows += [
        ("verify DPoP proof (ES256)", "jarmor.jose.verify_jws_embedded_jwk (same client key each time)",
         lambda: verify_jws_embedded_jwk(proof, algorithms=["ES256"])),
        ("strict JSON (request object claims)", "jarmor.jose.loads_object", lambda: loads_object(claims_json)),
        ("strict JSON (request object claims)", "json.loads (no duplicate check)", lambda: json.loads(claims_json)),
        ("strict JSON (request object claims)", "orjson.loads (no duplicate check)", lambda: orjson.loads(claims_json)),
        ("strict JSON (JWS header)", "jarmor.jose.loads_object", lambda: loads_object(header_json, max_depth=4)),
    ]
    times = bench_interleaved([fn for _op, _impl, fn in rows], n)
    out = [{"operation": op, "implementation": impl, "us": round(t, 1)}
           for (op, impl, _fn), t in zip(rows, times, strict=True)]

    # a cold client: what a client-cache miss costs on top of its SQL row
    try:
        from jarmor.protocol.clients import Client

        rsa = generate_jwk("PS256", kid="cli-ps256")
        harness_like = {"keys": [client_key.public_dict(), rsa.public_dict()]}
        metadata = {
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt", "jwks": harness_like,
            "request_object_signing_alg": "ES256", "token_endpoint_auth_signing_alg": "ES256",
            "authorization_signed_response_alg": "ES256", "id_token_signed_response_alg": "ES256",
            "risk_tier": "high", "response_modes": ["jwt"], "grant_types": ["authorization_code"],
            "response_types": ["code"],
        }
        m = max(50, n // 10)
        out.append({"operation": "cold client", "implementation": "JwkSet.from_dict (EC P-256 key)",
                    "us": round(bench(lambda: JwkSet.from_dict({"keys": [client_key.public_dict()]}), m), 1)})
        out.append({"operation": "cold client", "implementation": "JwkSet.from_dict (EC + RSA-2048 keys)",
                    "us": round(bench(lambda: JwkSet.from_dict(harness_like), m), 1)})
        out.append({"operation": "cold client", "implementation": "Client.from_metadata (EC + RSA JWKS)",
                    "us": round(bench(lambda: Client.from_metadata("c", metadata), m), 1)})
    except Exception as exc:  # the protocol layer is being reworked; report rather than fail
        out.append({"operation": "cold client", "implementation": f"skipped: {exc!r}", "us": None})
    return out


# --- 2. the flow in-process ---------------------------------------------------------------------------


class Flow:
    """A registered client and its pre-signed inputs for ``count`` flows."""

    def __init__(self, count: int) -> None:
        self.key = generate_jwk("ES256", kid="cli-es256")
        self.client_id = "peer-client"
        self.metadata = {
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [self.key.public_dict()]}, "request_object_signing_alg": "ES256",
            "token_endpoint_auth_signing_alg": "ES256", "authorization_signed_response_alg": "ES256",
            "id_token_signed_response_alg": "ES256", "risk_tier": "high",
            "response_modes": ["jwt", "query.jwt", "fragment.jwt", "form_post.jwt"],
            "grant_types": ["authorization_code"], "response_types": ["code"],
        }
        self.inputs = self.more(count)

    def more(self, count: int) -> list[dict[str, Any]]:
        """``count`` more pre-signed inputs (their assertions live a minute: sign them just before use)."""
        return [self._one() for _ in range(count)]

    def _assertion(self, now: int) -> str:
        return sign_jws({"iss": self.client_id, "sub": self.client_id, "aud": ISSUER,
                         "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 60}, self.key, "ES256")

    def _one(self) -> dict[str, Any]:
        now = int(time.time())
        verifier = secrets.token_urlsafe(32)
        state = secrets.token_urlsafe(12)
        ro = sign_jws({
            "iss": self.client_id, "aud": ISSUER, "client_id": self.client_id, "response_type": "code",
            "response_mode": "jwt", "redirect_uri": REDIRECT, "scope": "openid", "state": state,
            "code_challenge": b64(hashlib.sha256(verifier.encode()).digest()), "code_challenge_method": "S256",
            "iat": now, "nbf": now, "exp": now + 600, "jti": secrets.token_urlsafe(16),
        }, self.key, "ES256", typ="oauth-authz-req+jwt")
        return {
            "par": {"client_id": self.client_id, "request": ro, "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self._assertion(now)},
            "token": {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": verifier,
                      "client_id": self.client_id, "client_assertion_type": ASSERTION_TYPE,
                      "client_assertion": self._assertion(now)},
            "state": state,
            "par_body": urlencode({"client_id": self.client_id, "request": ro, "client_assertion_type": ASSERTION_TYPE,
                                   "client_assertion": self._assertion(now)}).encode(),
        }


def bench_policy() -> Any:
    """The built-in tiers minus ``sender_constrained_tokens`` and ``authentication_assurance`` (the flow this
    benchmark has always measured, approved by auto-approve, as ``bench/run.py``'s plain ``jarmor`` server runs
    it: ``dpop.no_dpop_policy``)."""
    from jarmor.protocol.policy import DEFAULT_TIERS, Control, Policy, tier_from_config

    dropped = {Control.SENDER_CONSTRAINED_TOKENS, Control.AUTHENTICATION_ASSURANCE}
    tiers = dict(DEFAULT_TIERS)
    for name, tier in DEFAULT_TIERS.items():
        if tier.controls & dropped:
            controls = sorted(c.value for c in tier.controls - dropped)
            tiers[name] = tier_from_config(name, {"controls": controls}, tier)
    return Policy(tiers=tiers)


PG_ENV, REDIS_ENV = "JARMOR_TEST_POSTGRES_URL", "JARMOR_TEST_REDIS_URL"


def with_backends() -> bool:
    """Whether PostgreSQL and Redis are named (the ``postgres+redis`` rows run only then)."""
    return bool(os.environ.get(PG_ENV) and os.environ.get(REDIS_ENV))


@contextlib.contextmanager
def backend_urls(store_kind: str, tmp: Path) -> Iterator[tuple[str, str | None]]:
    """(store URL, Redis URL) for ``store_kind``; ``postgres+redis``: a fresh PostgreSQL schema and Redis key
    prefix (from ``JARMOR_TEST_POSTGRES_URL`` / ``JARMOR_TEST_REDIS_URL``), dropped afterwards."""
    if store_kind == "memory":
        yield "memory://", None
        return
    if store_kind == "sqlite":
        yield f"sqlite:///{tmp / f'micro-{secrets.token_hex(4)}.db'}", None
        return
    import psycopg
    from cluster import drop_redis_prefix
    from sqlalchemy.engine import make_url

    from jarmor.store import migrate
    from jarmor.store.sql import SqlStore

    base, redis_base = os.environ.get(PG_ENV), os.environ.get(REDIS_ENV)
    if not base or not redis_base:
        raise RuntimeError(f"set {PG_ENV} and {REDIS_ENV}")
    name, prefix = f"jarmor_bench_{secrets.token_hex(6)}", f"jarmor-bench-{secrets.token_hex(6)}"
    libpq = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = (make_url(base).set(drivername="postgresql+psycopg")
           .update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False))
    try:
        admin = SqlStore.open(url, create_tables=False)
        try:
            migrate.upgrade(admin.engine)
        finally:
            admin.engine.dispose()
        yield url, f"{redis_base}{'&' if '?' in redis_base else '?'}key_prefix={prefix}"
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        drop_redis_prefix(redis_base, prefix)


async def make_server(store_kind: str, tmp: Path, urls: tuple[str, str | None] | None = None) -> Any:
    from jarmor.config import ServerConfig
    from jarmor.protocol.context import Settings
    from jarmor.server.app import create_app
    from jarmor.store import open_store

    url, redis_url = urls or ("memory://" if store_kind == "memory" else
                              f"sqlite:///{tmp / f'micro-{secrets.token_hex(4)}.db'}", None)
    store = open_store(url, redis_url)
    window = 60 if os.environ.get("JARMOR_BENCH_RATE_LIMITS") else 0  # --rate-limits in bench/run.py
    config = ServerConfig(issuer=ISSUER, settings=Settings(auto_approve="alice", rate_limit_window=window),
                          auto_approve="alice", policy=bench_policy())
    app = create_app(config, store)
    server = app.state.jarmor
    server.app = app
    await server.start()
    return server


def code_from(location: str) -> tuple[str, str]:
    parts = urlsplit(location)
    params = dict(parse_qsl(parts.fragment or parts.query))
    claims = json.loads(base64.urlsafe_b64decode(params["response"].split(".")[1] + "=="))
    return claims["code"], claims.get("state", "")


async def protocol_flow(server: Any, inp: dict[str, Any], timings: dict[str, float],
                        counter: StatementCounter | None = None) -> None:
    """What ``jarmor.server.app`` does for PAR, authorize (auto-approve) and token, minus Starlette."""
    from jarmor.protocol.authorization import AUTHORIZATION_ENDPOINT, AuthorizationState, run_checks
    from jarmor.protocol.par import push_authorization_request
    from jarmor.protocol.responses import render
    from jarmor.protocol.tokens import issue_code, token_endpoint

    env = server.env
    if counter:
        counter.current = "par"
    t0 = CLOCK()
    pushed = await push_authorization_request(env, inp["par"], None)
    t1 = CLOCK()
    if counter:
        counter.current = "authorize"
    outer = {"client_id": inp["par"]["client_id"], "request_uri": pushed.body["request_uri"]}
    st = AuthorizationState(env=env, outer=outer, endpoint="authorization", now=env.now())
    req = await run_checks(AUTHORIZATION_ENDPOINT, st)
    client = await env.clients.get(req.client_id)
    issued = await issue_code(env, req, subject="alice", auth_time=env.now(), flow_id=secrets.token_urlsafe(12))
    rendered, _ = await render(env, client, req.target(), {"code": issued.code}, tier=env.policy.tier(req.tier))
    t2 = CLOCK()
    code, state = code_from(rendered.location)
    assert state == inp["state"]
    if counter:
        counter.current = "token"
    t2b = CLOCK()
    result = await token_endpoint(env, {**inp["token"], "code": code}, None)
    assert "access_token" in result.body
    t3 = CLOCK()
    timings["par"] += t1 - t0
    timings["authorize"] += t2 - t1
    timings["token"] += t3 - t2b


class Asgi:
    """Calls a Starlette app with ASGI messages: the framework without a server or sockets."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.spent = 0.0  # CPU seconds inside the app

    async def request(self, method: str, path: str, query: str = "", body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        headers = [(b"host", b"127.0.0.1:8000")]
        if body:
            headers += [(b"content-type", b"application/x-www-form-urlencoded"),
                        (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        status, out_headers, chunks = 0, {}, []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out_headers.update({k.decode(): v.decode() for k, v in message.get("headers", [])})
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        t = CLOCK()
        await self.app(scope, receive, send)
        self.spent += CLOCK() - t
        return status, out_headers, b"".join(chunks)


async def asgi_flow(asgi: Asgi, inp: dict[str, Any], timings: dict[str, float],
                    counter: StatementCounter | None = None) -> None:
    """Only the time inside the app counts (building ASGI messages and reading responses is client work)."""
    if counter:
        counter.current = "par"
    asgi.spent = 0.0
    status, _, body = await asgi.request("POST", "/par", body=inp["par_body"])
    assert status == 201, body
    timings["par"] += asgi.spent
    request_uri = json.loads(body)["request_uri"]
    if counter:
        counter.current = "authorize"
    asgi.spent = 0.0
    status, headers, body = await asgi.request(
        "GET", "/authorize", urlencode({"client_id": inp["par"]["client_id"], "request_uri": request_uri}))
    assert status == 303, body
    timings["authorize"] += asgi.spent
    code, state = code_from(headers["location"])
    assert state == inp["state"]
    body_bytes = urlencode({**inp["token"], "code": code}).encode()
    if counter:
        counter.current = "token"
    asgi.spent = 0.0
    status, _, body = await asgi.request("POST", "/token", body=body_bytes)
    assert status == 200, body
    timings["token"] += asgi.spent


def run_inline(coro: Any) -> Any:
    """Run a coroutine that never suspends (the SQL store's methods run inline) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the coroutine suspended")


def storage_benchmarks(n: int) -> list[dict[str, Any]]:
    """One ephemeral write and one atomic take through ``jarmor.store`` vs the same SQL on a
    raw ``sqlite3`` connection with the same pragmas (WAL, synchronous=NORMAL, autocommit)."""
    import sqlite3

    from jarmor.store import open_store

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/store.db")
        eph = store.ephemeral
        keys = [secrets.token_urlsafe(16) for _ in range(n + 60)]
        it = iter(keys)

        put_us = bench(lambda: run_inline(eph.put("bench", next(it), b"x" * 300, 60)), n, repeat=1)
        take_it = iter(keys)
        take_us = bench(lambda: run_inline(eph.take("bench", next(take_it))), n, repeat=1)
        out += [{"operation": "ephemeral put (INSERT ... ON CONFLICT, commit)", "implementation": "jarmor.store (its SQLite executor)", "us": round(put_us, 1)},
                {"operation": "ephemeral take (DELETE ... RETURNING, commit)", "implementation": "jarmor.store (its SQLite executor)", "us": round(take_us, 1)}]
        run_inline(store.close())
        con = sqlite3.connect(f"{tmp}/raw.db", isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000"):
            con.execute(f"PRAGMA {pragma}")
        con.execute("CREATE TABLE ephemeral (namespace TEXT, key TEXT, value BLOB NOT NULL, expires_at INTEGER NOT NULL,"
                    " PRIMARY KEY (namespace, key))")
        con.execute("CREATE INDEX ix_exp ON ephemeral (expires_at)")
        raw_it = iter(keys)
        now = int(time.time())
        put_sql = ("INSERT INTO ephemeral (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT "
                   "(namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at")
        raw_put = bench(lambda: con.execute(put_sql, ("bench", next(raw_it), b"x" * 300, now + 60)), n, repeat=1)
        raw_take_it = iter(keys)
        take_sql = "DELETE FROM ephemeral WHERE namespace = ? AND key = ? AND expires_at > ? RETURNING value"
        raw_take = bench(lambda: con.execute(take_sql, ("bench", next(raw_take_it), now)).fetchone(), n, repeat=1)
        con.close()
        out += [{"operation": "ephemeral put (INSERT ... ON CONFLICT, commit)", "implementation": "sqlite3 directly (floor)", "us": round(raw_put, 1)},
                {"operation": "ephemeral take (DELETE ... RETURNING, commit)", "implementation": "sqlite3 directly (floor)", "us": round(raw_take, 1)}]
    return sorted(out, key=lambda r: r["operation"])


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
RECORDER_TASK = "jarmor-flow-recorder"  # governance.recorder.FlowRecorder's writer task
FLOW_RECORDS = "flow records (batched)"


class StatementCounter:
    """Counts, per endpoint, the SQL statements and the commits (a write statement outside ``BEGIN``: its own
    transaction; or a ``COMMIT``) run on every open ``sqlite3`` connection (``set_trace_callback``): independent
    of how the store reaches the driver (SQLAlchemy or the raw connection)."""

    def __init__(self) -> None:
        import gc
        import sqlite3

        self.current = "setup"
        self.counts: dict[str, dict[str, int]] = {}
        self.commits: dict[str, int] = {}
        self._in_tx = False
        for obj in gc.get_objects():
            if isinstance(obj, sqlite3.Connection):
                obj.set_trace_callback(self._on_statement)

    def count(self, key: str, *, commit: bool) -> None:
        where = self.current
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop
            task = None
        if task is not None and task.get_name() == RECORDER_TASK:  # a batch written while a request waited
            where = FLOW_RECORDS
        per = self.counts.setdefault(where, {})
        per[key] = per.get(key, 0) + 1
        if commit:
            self.commits[where] = self.commits.get(where, 0) + 1

    def _on_statement(self, statement: str) -> None:
        words = statement.split()
        verb = words[0].upper() if words else "?"
        table = next((w.strip('"') for i, w in enumerate(words) if i and words[i - 1].upper() in
                      ("INTO", "FROM", "UPDATE")), "")
        commit = verb == "COMMIT" or (verb in _WRITES and not self._in_tx)
        if verb == "BEGIN":
            self._in_tx = True
        elif verb in ("COMMIT", "ROLLBACK", "END"):
            self._in_tx = False
        self.count(f"{verb} {table}".strip(), commit=commit)


class BackendCounter(StatementCounter):
    """The same on PostgreSQL + Redis: wraps the store's PostgreSQL executor (every statement; one commit per
    write statement in autocommit mode, one per ``transaction()``) and its Redis store (every command)."""

    def __init__(self, store: Any) -> None:
        self.current = "setup"
        self.counts, self.commits = {}, {}
        self._in_tx = False
        self._wrap_sql(store.durable._db)
        self._wrap_redis(store.ephemeral)

    def _sql(self, db: Any, stmt: Any) -> tuple[str, bool]:
        words = db.compiled(stmt).sql.split()
        verb = words[0].upper()
        table = next((w.strip('"') for i, w in enumerate(words) if i and words[i - 1].upper() in
                      ("INTO", "FROM", "UPDATE")), "")
        return f"{verb} {table}".strip(), verb in _WRITES

    def _wrap_sql(self, db: Any) -> None:
        counter = self
        for name in ("write", "first", "all"):
            inner = getattr(db, name)

            async def run(stmt: Any, params: Any, inner: Any = inner) -> Any:
                key, write = counter._sql(db, stmt)
                counter.count(key, commit=write and not counter._in_tx)
                return await inner(stmt, params)

            setattr(db, name, run)
        transaction = db.transaction

        @contextlib.asynccontextmanager
        async def counted() -> Any:
            async with transaction() as tx:
                counter.count("BEGIN", commit=False)
                for name in ("write", "write_many", "first"):
                    inner = getattr(tx, name)

                    async def run(stmt: Any, params: Any, inner: Any = inner) -> Any:
                        counter.count(counter._sql(db, stmt)[0], commit=False)
                        return await inner(stmt, params)

                    setattr(tx, name, run)
                yield tx
            counter.count("COMMIT", commit=True)

        db.transaction = counted

    def _wrap_redis(self, redis_store: Any) -> None:
        for name in ("put", "get", "take", "add_once", "incr", "delete", "take_and_mark"):
            inner = getattr(redis_store, name, None)
            if inner is None:
                continue

            async def run(*args: Any, inner: Any = inner, name: str = name, **kw: Any) -> Any:
                self.count(f"redis {name} {args[0]}", commit=False)
                return await inner(*args, **kw)

            setattr(redis_store, name, run)


async def count_statements(n: int = 40, store_kind: str = "sqlite") -> dict[str, Any]:
    """SQL statements (and Redis commands) and commits per flow, by endpoint, as the ASGI app runs them (so
    including what the adapter adds); the flow recorder's batches, written by its own task while requests
    wait, count apart (the recorder is flushed before counting stops)."""
    from jarmor.protocol.registration import register

    with tempfile.TemporaryDirectory() as tmp, backend_urls(store_kind, Path(tmp)) as urls:
        server = await make_server(store_kind, Path(tmp), urls)
        flow = Flow(n + 5)
        await register(server.env, flow.metadata, client_id=flow.client_id)
        asgi = Asgi(server.app)
        for inp in flow.inputs[:5]:
            await asgi_flow(asgi, inp, {"par": 0.0, "authorize": 0.0, "token": 0.0})
        await server.flows.flush()
        counter = StatementCounter() if store_kind == "sqlite" else BackendCounter(server.store)
        for inp in flow.inputs[5:]:
            await asgi_flow(asgi, inp, {"par": 0.0, "authorize": 0.0, "token": 0.0}, counter)
        counter.current = FLOW_RECORDS
        await server.flows.flush()
        counter.current = "teardown"
        await server.stop()
    per_endpoint = {ep: {k: round(v / n, 2) for k, v in sorted(c.items())} for ep, c in counter.counts.items()
                    if ep not in ("setup", "teardown")}
    commits = {ep: round(counter.commits.get(ep, 0) / n, 2) for ep in per_endpoint}
    return {"store": store_kind,
            "per_flow": round(sum(v for ep, c in per_endpoint.items() for k, v in c.items()
                                  if not k.startswith("redis")), 2),
            "commits_per_flow": round(sum(commits.values()), 2), "by_endpoint": per_endpoint,
            "commits_by_endpoint": commits}


async def key_refresh_cost(n: int = 20) -> dict[str, Any]:
    """CPU ms of one forced keyring refresh (what a worker does every refresh interval, inline)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = await make_server("sqlite", Path(tmp))
        await server.refresh_keys(force=True)
        t = CLOCK()
        for _ in range(n):
            await server.refresh_keys(force=True)
        ms = (CLOCK() - t) / n * 1000
        await server.stop()
    return {"cpu_ms_per_refresh": round(ms, 2)}


def client_cache_memory(count: int = 2000) -> dict[str, Any]:
    """Resident memory per parsed client (EC + RSA JWKS, as the harness registers) held in the cache."""
    import gc

    from jarmor.protocol.clients import Client

    def rss_kb() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    key = generate_jwk("ES256", kid="cli-es256")
    rsa = generate_jwk("PS256", kid="cli-ps256")
    metadata = {
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict(), rsa.public_dict()]}, "risk_tier": "high",
        "authorization_signed_response_alg": "ES256", "id_token_signed_response_alg": "ES256",
        "grant_types": ["authorization_code"], "response_types": ["code"],
    }
    gc.collect()
    before = rss_kb()
    held = [Client.from_metadata(f"c{i}", json.loads(json.dumps(metadata))) for i in range(count)]
    gc.collect()
    per = (rss_kb() - before) / len(held)
    return {"clients": count, "kb_per_client": round(per, 2), "mb_for_10000": round(per * 10000 / 1024, 1)}


async def pipeline_benchmarks(n_all: int, repeat: int) -> list[dict[str, Any]]:
    from jarmor.protocol.registration import register

    out = []
    levels = [("protocol", "memory"), ("protocol", "sqlite"), ("asgi", "sqlite")]
    if with_backends():
        levels.append(("asgi", "postgres+redis"))
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack_urls:
        for level, store_kind in levels:
            try:
                urls = stack_urls.enter_context(backend_urls(store_kind, Path(tmp)))
                server = await make_server(store_kind, Path(tmp), urls)
                # a PostgreSQL flow waits for its commits (fsync): fewer flows
                n = n_all if store_kind != "postgres+redis" else max(20, n_all // 5)
                flow = Flow(20)
                await register(server.env, flow.metadata, client_id=flow.client_id)
                asgi = Asgi(server.app)
                runs: list[dict[str, float]] = []
                warm = {"par": 0.0, "authorize": 0.0, "token": 0.0}
                step: Callable[[dict[str, Any], dict[str, float]], Awaitable[None]]
                if level == "protocol":
                    def step(inp: dict[str, Any], t: dict[str, float], server: Any = server) -> Awaitable[None]:
                        return protocol_flow(server, inp, t)
                else:
                    def step(inp: dict[str, Any], t: dict[str, float], asgi: Asgi = asgi) -> Awaitable[None]:
                        return asgi_flow(asgi, inp, t)
                for inp in flow.inputs:
                    await step(inp, warm)
                wall_runs = []
                for _ in range(repeat):
                    inputs = iter(flow.more(n))  # signed now, outside the measurement
                    t = {"par": 0.0, "authorize": 0.0, "token": 0.0}
                    w0 = time.perf_counter()
                    for _ in range(n):
                        await step(next(inputs), t)
                    wall_runs.append((time.perf_counter() - w0) / n * 1e6)
                    runs.append({k: v / n * 1e6 for k, v in t.items()})
                best = min(range(repeat), key=lambda i: sum(runs[i].values()))
                out.append({
                    "level": level, "store": store_kind,
                    "runs_cpu_us": [round(sum(r.values())) for r in runs],
                    "cpu_us_per_flow": round(sum(runs[best].values()), 0),
                    "wall_us_per_flow": round(min(wall_runs), 0),
                    "us_par": round(runs[best]["par"], 0), "us_authorize": round(runs[best]["authorize"], 0),
                    "us_token": round(runs[best]["token"], 0),
                })
                await server.stop()
            except Exception as exc:  # the protocol layer is being reworked; report rather than fail
                out.append({"level": level, "store": store_kind, "error": repr(exc)})
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["| operation | implementation | CPU µs/op |", "|---|---|---:|"]
    lines += [f"| {r['operation']} | {r['implementation']} | {r['us']} |"
              for r in result["jose"] + result.get("storage", [])]
    lines += ["", "| level | store | CPU µs/flow (fastest run) | (wall µs/flow) | PAR | authorize | token |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in result["pipeline"]:
        if "error" in r:
            lines.append(f"| {r['level']} | {r['store']} | error: {r['error']} | | | | |")
        else:
            lines.append(f"| {r['level']} | {r['store']} | {r['cpu_us_per_flow']:.0f} | {r['wall_us_per_flow']:.0f} "
                         f"| {r['us_par']:.0f} | {r['us_authorize']:.0f} | {r['us_token']:.0f} |")
    for sql in result.get("sql_statements") or []:
        if "by_endpoint" not in sql:
            lines += ["", f"Statements per flow ({sql.get('store')}): error {sql.get('error')}"]
            continue
        lines += ["", f"SQL statements per flow ({sql['store']}, through the ASGI app, mean of 40 flows): "
                  f"{sql['per_flow']}; commits per flow: {sql['commits_per_flow']}", "",
                  "| endpoint | commits | statements (and Redis commands) |", "|---|---:|---|"]
        for ep, c in sql["by_endpoint"].items():
            lines.append(f"| {ep} | {sql['commits_by_endpoint'][ep]:g} | {', '.join(f'{k} x{v:g}' for k, v in c.items())} |")
    refresh = result.get("key_refresh") or {}
    if "cpu_ms_per_refresh" in refresh:
        lines += ["", f"Keyring refresh (forced, inline in the event loop): {refresh['cpu_ms_per_refresh']} ms CPU."]
    mem = result.get("client_cache_memory") or {}
    if "kb_per_client" in mem:
        lines += ["", f"Client cache: {mem['kb_per_client']} KB resident per parsed client (EC + RSA JWKS); "
                  f"a full cache of 10,000 clients ~ {mem['mb_for_10000']} MB."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--counts", action="store_true",
                   help="only count statements and commits per endpoint (SQLite; and PostgreSQL + Redis when "
                        f"{PG_ENV} and {REDIS_ENV} are set)")
    p.add_argument("--jose-only", action="store_true", help="only the JOSE rows (section 1)")
    opt = p.parse_args(argv)
    if opt.counts:
        kinds = ("sqlite", "postgres+redis") if with_backends() else ("sqlite",)
        print(markdown({"jose": [], "pipeline": [],
                        "sql_statements": [asyncio.run(count_statements(store_kind=k)) for k in kinds]}))
        return 0
    n_ops, n_flows, repeat = (300, 100, 3) if opt.quick else (3000, 500, 5)
    if opt.jose_only:
        print(markdown({"jose": jose_benchmarks(n_ops), "pipeline": []}))
        return 0
    try:  # first, while the heap has no freed memory to reuse
        cache_memory: dict[str, Any] = client_cache_memory()
    except Exception as exc:
        cache_memory = {"error": repr(exc)}
    result: dict[str, Any] = {
        "python": platform.python_version(),
        "client_cache_memory": cache_memory,
        "jose": jose_benchmarks(n_ops),
        "pipeline": asyncio.run(pipeline_benchmarks(n_flows, repeat)),
    }
    try:
        result["storage"] = storage_benchmarks(n_ops // 3)
    except Exception as exc:
        result["storage"] = [{"operation": "storage", "implementation": f"skipped: {exc!r}", "us": None}]
    result["sql_statements"] = []
    for kind in ("sqlite", "postgres+redis") if with_backends() else ("sqlite",):
        try:
            result["sql_statements"].append(asyncio.run(count_statements(store_kind=kind)))
        except Exception as exc:
            result["sql_statements"].append({"store": kind, "error": repr(exc)})
    try:
        result["key_refresh"] = asyncio.run(key_refresh_cost())
    except Exception as exc:
        result["key_refresh"] = {"error": repr(exc)}
    md = markdown(result)
    print(md)
    if opt.json:
        Path(opt.json).parent.mkdir(parents=True, exist_ok=True)
        Path(opt.json).write_text(json.dumps({**result, "markdown": md}, indent=2))
    return 0 if all("error" not in r for r in result["pipeline"]) else 1


if __name__ == "__main__":
    sys.exit(main())
