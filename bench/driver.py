"""A light load driver for full flows: the same hops as the peer harness's ``flow.mjs``, minimal work per flow.

One flow = sign a request object (ES256, ``typ`` oauth-authz-req+jwt) -> PAR with ``private_key_jwt`` ->
GET the authorization endpoint, following redirects with a cookie jar (oidc-provider's interaction hops) ->
read the JARM response (query, fragment or form_post) and verify its signature, ``iss``, ``aud``, ``exp``
and ``state`` -> redeem the code at the token endpoint with PKCE and ``private_key_jwt``.

Why not httpx: the driver shares two cores with the server, so every millisecond it spends is taken from
the server. This one speaks HTTP/1.1 over one keep-alive asyncio connection per worker (``Content-Length``
and chunked bodies), signs with ``jarmor.jose`` and keeps keys and endpoints pre-loaded; it costs about a
tenth of ``flow.mjs``'s CPU per flow. ``--processes N`` splits the workers over N processes.

    python bench/driver.py --issuer http://127.0.0.1:8000 --client-id peer-client \
        --keys peer/keys/client.private.jwks.json -c 16 -d 10 --server-pid PID --json out.json

``--dpop``: sender-constrained tokens (RFC 9449) as a DPoP client sends them: each worker keeps one ES256 proof
key (``jarmor.client.dpop.DPoP``) and the server's latest nonce; PAR and the token request carry a fresh proof,
a ``use_dpop_nonce`` answer is retried once with the server's nonce (counted in ``dpop_nonce_retries``), and
the token response must say ``token_type: DPoP``.

The summary printed (and written with ``--json``) has the same fields as ``flow.mjs``'s, plus the raw
latencies; ``provider_cpu_ms_per_flow`` is measured from ``/proc/PID/stat`` (the PID and its descendants)
between the end of the warm-up and the end of the last flow.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import random
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jarmor.client.dpop import DPoP
from jarmor.jose import JwkSet, import_jwk, sign_jws, verify_jws

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc ------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                out.extend(int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn ``--workers N`` runs workers as children)."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(_children(p))
    return tree


def cpu_ms(pid: int) -> float:
    """utime + stime of one process (all its threads), in milliseconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / CLK_TCK


def tree_cpu_ms(pid: int) -> float:
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, ValueError):
            total += cpu_ms(p)
    return total


def trees_cpu_ms(pids: list[int]) -> float:
    """The CPU of several servers' process trees (the nodes of a cluster), summed."""
    return sum(tree_cpu_ms(p) for p in pids)


# --- a minimal HTTP/1.1 client --------------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


UPSTREAM_HEADER = "x-bench-upstream"  # set by the load balancer of ``run.py --cluster``: the node that answered


class Connection:
    """One keep-alive connection to the server; reconnects when the server closes it. With ``fresh``, every
    request goes on a new TCP connection (``Connection: close``: the server closes it after answering).

    ``nodes``, when a list, collects the ``x-bench-upstream`` header of each reply (which node behind the load
    balancer answered)."""

    def __init__(self, host: str, port: int, fresh: bool = False) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.hostheader = f"{host}:{port}".encode()
        self.fresh = fresh
        self.nodes: list[str] | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, target: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Reply:
        for attempt in (0, 1):
            if self.writer is None:
                await self._open()
            try:
                reply = await self._exchange(method, target, body, headers)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
                continue
            if self.nodes is not None:
                self.nodes.append(reply.header(UPSTREAM_HEADER) or "?")
            return reply
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, target: str, body: bytes | None,
                        headers: dict[str, str] | None) -> Reply:
        assert self.reader is not None and self.writer is not None
        head = [f"{method} {target} HTTP/1.1".encode(), b"Host: " + self.hostheader]
        if self.fresh:
            head.append(b"Connection: close")
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}".encode())
        if body is not None:
            head.append(b"Content-Type: application/x-www-form-urlencoded")
            head.append(b"Content-Length: " + str(len(body)).encode())
        self.writer.write(b"\r\n".join(head) + b"\r\n\r\n" + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                hdrs.append((k.strip().lower(), v.strip()))
        reply = Reply(status, hdrs, b"")
        length = reply.header("content-length")
        if length is not None:
            reply.body = await self.reader.readexactly(int(length))
        elif (reply.header("transfer-encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(data[:-2])
            reply.body = b"".join(chunks)
        elif status not in (204, 304) and method != "HEAD":
            reply.body = await self.reader.read()  # read to close
            self.close()
        if self.fresh or (reply.header("connection") or "").lower() == "close":
            self.close()
        return reply


class Jar:
    """Just what oidc-provider needs: name=value, Path, deletion by expiry."""

    def __init__(self) -> None:
        self.cookies: dict[tuple[str, str], str] = {}

    def store(self, reply: Reply) -> None:
        for line in reply.all("set-cookie"):
            pair, *attrs = line.split(";")
            name, _, value = pair.strip().partition("=")
            path, expired = "/", False
            for a in attrs:
                k, _, v = a.strip().partition("=")
                k = k.lower()
                if k == "path":
                    path = v
                elif (k == "max-age" and v.lstrip("-").isdigit() and int(v) <= 0) or (k == "expires" and "1970" in v):
                    expired = True
            if expired or not value:
                self.cookies.pop((name, path), None)
            else:
                self.cookies[(name, path)] = value

    def header(self, path: str) -> str:
        return "; ".join(
            f"{n}={v}" for (n, p), v in self.cookies.items()
            if path == p or path.startswith(p if p.endswith("/") else p + "/")
        )


_FORM = re.compile(r"<form[^>]*\baction\s*=\s*[\"']([^\"']*)[\"']", re.I)
_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_NAME = re.compile(r"\bname\s*=\s*[\"']([^\"']*)[\"']", re.I)
_VALUE = re.compile(r"\bvalue\s*=\s*[\"']([^\"']*)[\"']", re.I)


# --- the flow -------------------------------------------------------------------------------------------


@dataclass
class Setup:
    issuer: str
    client_ids: list[str]
    redirect_uri: str
    response_mode: str
    scope: str
    key: Any
    server_keys: JwkSet
    par: str
    authorize: str
    token: str
    host: str
    port: int
    verify: bool = True
    dpop: bool = False


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    steps: list[list[float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    nonce_retries: int = 0
    # behind run.py --cluster's load balancer: requests per node, and flows whose hops all hit one node
    node_requests: dict[str, int] = field(default_factory=dict)
    flows_one_node: int = 0
    flows_across_nodes: int = 0

    def count_nodes(self, nodes: list[str]) -> None:
        if not nodes or "?" in nodes:
            return
        for n in nodes:
            self.node_requests[n] = self.node_requests.get(n, 0) + 1
        if len(set(nodes)) > 1:
            self.flows_across_nodes += 1
        else:
            self.flows_one_node += 1

    def merge(self, other: Stats) -> None:
        self.latencies += other.latencies
        self.steps += other.steps
        self.failures += other.failures
        self.nonce_retries += other.nonce_retries
        for n, k in other.node_requests.items():
            self.node_requests[n] = self.node_requests.get(n, 0) + k
        self.flows_one_node += other.flows_one_node
        self.flows_across_nodes += other.flows_across_nodes


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def post_with_dpop(conn: Connection, url: str, form: Any, dpop: DPoP | None, stats: Stats | None) -> Reply:
    """POST ``form()`` (rebuilt for a retry: a fresh client assertion), with a DPoP proof when ``dpop`` is set;
    one ``use_dpop_nonce`` answer is retried with the server's nonce (RFC 9449 §8)."""
    for attempt in (1, 2):
        headers = {"DPoP": dpop.proof("POST", url, now=int(time.time()))} if dpop is not None else None
        r = await conn.request("POST", _path(url), urlencode(form()).encode(), headers=headers)
        if dpop is None:
            return r
        dpop.remember(url, r.all("dpop-nonce"))
        if attempt == 2 or r.status != 400 or b"use_dpop_nonce" not in r.body:
            return r
        if stats is not None:
            stats.nonce_retries += 1
    raise AssertionError("unreachable")


def request_object(s: Setup, client_id: str, state: str, verifier: str, now: int) -> str:
    """The signed request object (ES256, ``typ`` oauth-authz-req+jwt) with the PKCE S256 challenge."""
    return sign_jws(
        {
            "iss": client_id, "aud": s.issuer, "client_id": client_id, "response_type": "code",
            "response_mode": s.response_mode, "redirect_uri": s.redirect_uri, "scope": s.scope,
            "state": state, "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256", "iat": now, "nbf": now, "exp": now + 300,
            "jti": secrets.token_urlsafe(16),
        },
        s.key, "ES256", typ="oauth-authz-req+jwt",
    )


def client_assertion(s: Setup, client_id: str, now: int) -> str:
    """A ``private_key_jwt`` client assertion (ES256) with a fresh ``jti``."""
    return sign_jws(
        {"iss": client_id, "sub": client_id, "aud": s.issuer, "jti": secrets.token_urlsafe(16),
         "iat": now, "exp": now + 60},
        s.key, "ES256",
    )


async def follow_authorization(s: Setup, conn: Connection, client_id: str, request_uri: str) -> tuple[dict[str, str], int]:
    """GET the authorization endpoint and follow its redirects (a cookie jar for oidc-provider's interaction
    hops) to the response at the redirect URI (query, fragment or form_post); (its parameters, the hops)."""
    jar = Jar()
    url = s.authorize + ("&" if "?" in s.authorize else "?") + urlencode(
        {"client_id": client_id, "request_uri": request_uri})
    for hop in range(1, 11):
        cookie = jar.header(urlsplit(url).path)
        r = await conn.request("GET", _path(url), headers={"Cookie": cookie} if cookie else None)
        jar.store(r)
        location = r.header("location")
        if r.status == 200:
            text = r.body.decode()
            action = _FORM.search(text)
            if action and unescape(action.group(1)) == s.redirect_uri:
                params = {}
                for tag in _INPUT.findall(text):
                    name, value = _NAME.search(tag), _VALUE.search(tag)
                    if name:
                        params[unescape(name.group(1))] = unescape(value.group(1)) if value else ""
                return params, hop
        if not (300 <= r.status < 400) or not location:
            raise RuntimeError(f"authorize {r.status}: {r.body[:300]!r}")
        if location.startswith(s.redirect_uri):
            parts = urlsplit(location)
            return dict(parse_qsl(parts.fragment or parts.query)), hop
        if location.startswith("/"):
            base = urlsplit(url)
            location = f"{base.scheme}://{base.netloc}{location}"
        url = location
    raise RuntimeError("redirect loop")


async def one_flow(s: Setup, conn: Connection, dpop: DPoP | None = None, stats: Stats | None = None) -> list[float]:
    t = [time.perf_counter()]
    client_id = s.client_ids[0] if len(s.client_ids) == 1 else random.choice(s.client_ids)
    now = int(time.time())
    verifier = secrets.token_urlsafe(32)
    state = secrets.token_urlsafe(12)
    ro = request_object(s, client_id, state, verifier, now)

    def assertion() -> str:
        return client_assertion(s, client_id, now)

    t.append(time.perf_counter())
    r = await post_with_dpop(conn, s.par, lambda: {
        "client_id": client_id, "request": ro, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(),
    }, dpop, stats)
    if r.status != 201:
        raise RuntimeError(f"PAR {r.status}: {r.body[:300]!r}")
    request_uri = json.loads(r.body)["request_uri"]
    t.append(time.perf_counter())

    params, _hops = await follow_authorization(s, conn, client_id, request_uri)
    t.append(time.perf_counter())

    response = params.get("response")
    if response is None:
        raise RuntimeError(f"no JARM response: {params}")
    if s.verify:
        claims = verify_jws(response, s.server_keys, algorithms=["ES256"]).claims
        if claims.get("iss") != s.issuer or claims.get("aud") != client_id or claims.get("exp", 0) < now - 5:
            raise RuntimeError(f"bad JARM claims {claims}")
    else:
        claims = json.loads(base64.urlsafe_b64decode(response.split(".")[1] + "=="))
    if claims.get("state") != state or "code" not in claims:
        raise RuntimeError(f"bad JARM response {claims}")
    r = await post_with_dpop(conn, s.token, lambda: {
        "grant_type": "authorization_code", "code": claims["code"], "redirect_uri": s.redirect_uri,
        "code_verifier": verifier, "client_id": client_id, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(),
    }, dpop, stats)
    if r.status != 200 or b"access_token" not in r.body:
        raise RuntimeError(f"token {r.status}: {r.body[:300]!r}")
    if dpop is not None and str(json.loads(r.body).get("token_type", "")).lower() != "dpop":
        raise RuntimeError(f"token_type is not DPoP: {r.body[:300]!r}")
    t.append(time.perf_counter())
    return [(b - a) * 1000 for a, b in itertools.pairwise(t)]


async def _discover(issuer: str) -> tuple[dict[str, Any], JwkSet]:
    parts = urlsplit(issuer)
    conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
    try:
        meta: dict[str, Any] = {}
        for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
            r = await conn.request("GET", parts.path.rstrip("/") + path)
            if r.status == 200:
                meta = json.loads(r.body)
                break
        if not meta:
            raise RuntimeError(f"no discovery document at {issuer}")
        r = await conn.request("GET", _path(meta["jwks_uri"]))
        return meta, JwkSet.from_dict(
            {"keys": [k for k in json.loads(r.body)["keys"] if k.get("use", "sig") == "sig"]})
    finally:
        conn.close()


async def _setup(opt: argparse.Namespace) -> Setup:
    meta, jwks = await _discover(opt.issuer)
    keys = json.loads(Path(opt.keys).read_text())["keys"]
    jwk = next(k for k in keys if k.get("alg") == "ES256" and k.get("use", "sig") == "sig")
    parts = urlsplit(opt.issuer)
    client_ids = [opt.client_id]
    if opt.client_ids_file:
        client_ids = Path(opt.client_ids_file).read_text().split()
    return Setup(
        issuer=meta["issuer"], client_ids=client_ids, redirect_uri=opt.redirect_uri,
        response_mode=opt.response_mode, scope=opt.scope, key=import_jwk(jwk, allow_private=True),
        server_keys=jwks, par=meta["pushed_authorization_request_endpoint"],
        authorize=meta["authorization_endpoint"], token=meta["token_endpoint"],
        host=parts.hostname or "127.0.0.1", port=parts.port or 80, verify=not opt.no_verify, dpop=opt.dpop,
    )


async def _run_workers(opt: argparse.Namespace, workers: int, after_warmup: Any = None) -> tuple[Stats, float, float]:
    """Warm up, call ``after_warmup`` (it may return a wall-clock time to start at, when several processes
    start together), run; return the stats, this process's CPU ms in the measured window and its length."""
    s = await _setup(opt)
    stats = Stats()
    conns = [Connection(s.host, s.port) for _ in range(workers)]
    # one DPoP client per worker: its key and the server's latest nonce live across its flows
    proofs = {id(c): DPoP(None, "ES256") if s.dpop else None for c in conns}
    for i in range(opt.warmup):
        await one_flow(s, conns[i % workers], proofs[id(conns[i % workers])])
    start_at = after_warmup() if after_warmup is not None else None
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + opt.duration
    remaining = [opt.count] if opt.count is not None else None

    async def worker(conn: Connection) -> None:
        while True:
            if remaining is not None:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            elif time.perf_counter() >= deadline:
                return
            t = time.perf_counter()
            conn.nodes = []
            try:
                steps = await one_flow(s, conn, proofs[id(conn)], stats)
            except Exception as exc:
                stats.failures.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                if len(stats.failures) > 50:
                    return
                continue
            stats.latencies.append((time.perf_counter() - t) * 1000)
            stats.steps.append(steps)
            stats.count_nodes(conn.nodes)

    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    cpu = (time.process_time() - cpu0) * 1000
    for c in conns:
        c.close()
    return stats, cpu, elapsed


def _child(opt: argparse.Namespace, workers: int, ready: Any, start: Any, out: Any) -> None:
    def after_warmup() -> float:
        ready.put(True)
        value: float = start.get()  # blocks the loop, which has nothing else to do yet
        return value

    stats, cpu, elapsed = asyncio.run(_run_workers(opt, workers, after_warmup))
    out.put((stats, cpu, elapsed))


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, -(-p * len(sorted_values) // 100) - 1))
    return sorted_values[int(idx)]


def run(opt: argparse.Namespace) -> dict[str, Any]:
    server_cpu0 = None
    if opt.processes <= 1:
        def mark() -> None:
            nonlocal server_cpu0
            if opt.server_pid:
                server_cpu0 = trees_cpu_ms(opt.server_pid)

        stats, cpu, elapsed = asyncio.run(_run_workers(opt, opt.concurrency, mark))
        server_cpu1 = trees_cpu_ms(opt.server_pid) if opt.server_pid else None
    else:
        ctx = multiprocessing.get_context("fork")
        ready, start, out = ctx.Queue(), ctx.Queue(), ctx.Queue()
        per = [opt.concurrency // opt.processes + (i < opt.concurrency % opt.processes)
               for i in range(opt.processes)]
        procs = [ctx.Process(target=_child, args=(opt, n, ready, start, out)) for n in per if n]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get()
        server_cpu0 = trees_cpu_ms(opt.server_pid) if opt.server_pid else None
        t_start = time.time() + 0.05
        for _ in procs:
            start.put(t_start)
        stats, cpu, elapsed = Stats(), 0.0, 0.0
        for _ in procs:
            part, c, e = out.get()
            stats.merge(part)
            cpu += c
            elapsed = max(elapsed, e)
        server_cpu1 = trees_cpu_ms(opt.server_pid) if opt.server_pid else None
        for p in procs:
            p.join()
    n = len(stats.latencies)
    lat = sorted(stats.latencies)
    step_names = ["jar_sign", "par", "authorize", "callback_and_token"]
    summary: dict[str, Any] = {
        "driver": "bench/driver.py",
        "issuer": opt.issuer,
        "client": opt.client_id if not opt.client_ids_file else f"{opt.client_ids_file} (random per flow)",
        "response_mode": opt.response_mode,
        "concurrency": opt.concurrency,
        "processes": opt.processes,
        "elapsed_s": round(elapsed, 2),
        "flows_ok": n,
        "flows_failed": len(stats.failures),
        "flows_per_s": round(n / elapsed, 1) if elapsed else 0.0,
        "latency_ms": {
            "median": round(pct(lat, 50), 2), "p90": round(pct(lat, 90), 2),
            "p99": round(pct(lat, 99), 2), "max": round(lat[-1], 2) if lat else None,
        },
        "step_median_ms": {
            name: round(pct(sorted(s[i] for s in stats.steps), 50), 2) for i, name in enumerate(step_names)
        },
        "http_requests_per_flow": None,
        "driver_cpu_ms_per_flow": round(cpu / n, 3) if n else None,
        "provider_cpu_ms_per_flow": (
            round((server_cpu1 - server_cpu0) / n, 3)
            if n and server_cpu0 is not None and server_cpu1 is not None else None
        ),
        "dpop": opt.dpop,
        "dpop_nonce_retries": stats.nonce_retries if opt.dpop else None,
        "node_requests": stats.node_requests or None,
        "flows_across_nodes": stats.flows_across_nodes if stats.node_requests else None,
        "flows_one_node": stats.flows_one_node if stats.node_requests else None,
        "failures": stats.failures[:5],
        "latencies_ms": [round(x, 3) for x in stats.latencies] if opt.raw else None,
    }
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--issuer", default="http://127.0.0.1:8000")
    p.add_argument("--client-id", default="peer-client")
    p.add_argument("--client-ids-file", help="whitespace-separated client ids sharing the key; one at random per flow")
    p.add_argument("--keys", required=True, help="the client's private JWKS (the peer harness's keys/client.private.jwks.json)")
    p.add_argument("--redirect-uri", default="http://127.0.0.1:9999/cb")
    p.add_argument("--response-mode", default="jwt")
    p.add_argument("--scope", default="openid")
    p.add_argument("-c", "--concurrency", type=int, default=1)
    p.add_argument("-d", "--duration", type=float, default=10.0)
    p.add_argument("-n", "--count", type=int, help="run exactly N flows (overrides --duration)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--processes", type=int, default=1, help="split the workers over N processes")
    p.add_argument("--server-pid", type=int, action="append",
                   help="report this process tree's CPU ms per flow; repeatable (a cluster's nodes: summed)")
    p.add_argument("--no-verify", action="store_true", help="do not verify the JARM signature")
    p.add_argument("--dpop", action="store_true",
                   help="DPoP-bound tokens: proofs on PAR and the token request, one nonce retry (RFC 9449)")
    p.add_argument("--raw", action="store_true", help="include every flow's latency in the JSON")
    p.add_argument("--json", help="write the summary here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opt = parse_args(argv)
    summary = run(opt)
    text = json.dumps(summary, indent=2)
    if opt.json:
        Path(opt.json).write_text(text)
    print(json.dumps({k: v for k, v in summary.items() if k != "latencies_ms"}, indent=2))
    if summary["failures"]:
        print("failures:", *summary["failures"], sep="\n  ", file=sys.stderr)
    return 1 if summary["flows_failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
