"""Server CPU per request kind: PAR, authorization and token measured separately, at equal work on any server.

    python bench/kinds.py --issuer http://127.0.0.1:8000 --keys peer/keys/client.private.jwks.json \
        --server-pid PID -c 16 -d 10 --batch 100 [--fresh] --json out.json

The flow is ``driver.py``'s, cut into three phases run batch by batch: sign ``--batch`` request objects and
client assertions (outside the measured window), send the batch's PARs (measured), then the authorization
requests for those ``request_uri`` values, following the server's redirects with a cookie jar per request
(measured: for oidc-provider one authorization is several hops — its interaction endpoint and the resume
endpoint — all counted in that kind, and the hops per completed authorization are reported), verify the JARM
responses (outside), then redeem the codes at the token endpoint (measured). Each window's server CPU is read
from ``/proc`` (utime + stime of the server's process tree, summed over every ``--server-pid``) at its start
and its end, and summed per kind over all batches; latencies are per HTTP exchange of that kind (for the
authorization: the whole redirect chain).

Why batches: oidc-provider's in-memory adapter is a bounded LRU (``lib/helpers/lru.js``: 1,000 entries per
generation, two generations) holding every PAR, interaction, session, grant, code and token; a PAR must still
be there when its authorization comes, and a code when its token request comes. A flow inserts seven to nine
entries, so a batch of 100 keeps every record of the batch within the last 1,000 inserts (batches of 400 lose
PAR entries: ``invalid_request_uri``).

``--fresh`` opens a new TCP connection for every HTTP request (``Connection: close``); otherwise each worker
keeps one keep-alive connection. Server-side work that finishes after the last response of a window (a background
flow-record batch, closing connections) is waited for: the window's CPU is read once the server has used no
CPU for ``--settle`` seconds (at most 0.5 s; /proc counts CPU in ticks of 10 ms), outside its wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from driver import (
    ASSERTION_TYPE,
    Connection,
    Setup,
    _path,
    _setup,
    client_assertion,
    follow_authorization,
    pct,
    request_object,
    trees_cpu_ms,
)

from jarmor.jose import verify_jws

KINDS = ("par", "authorization", "token")


@dataclass
class Pending:
    verifier: str
    state: str
    request_object: str
    assertion: str
    request_uri: str = ""
    code: str = ""
    hops: int = 0


@dataclass
class KindStats:
    """One kind's totals over all batches."""

    ok: int = 0
    failed: int = 0
    cpu_ms: float = 0.0
    side_ms: dict[str, float] = field(default_factory=dict)  # --side NAME=PID: e.g. a load balancer, database
    wall_s: float = 0.0
    requests: int = 0  # HTTP exchanges (authorization: every hop)
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def fail(self, exc: BaseException) -> None:
        self.failed += 1
        if len(self.failures) < 5:
            self.failures.append(f"{type(exc).__name__}: {exc}"[:300])


def summarize(kind: str, k: KindStats) -> dict[str, Any]:
    """The figures of one kind (a pure function of its totals)."""
    lat = sorted(k.latencies)
    return {
        "kind": kind,
        "ok": k.ok,
        "failed": k.failed,
        "server_cpu_ms_per_request": round(k.cpu_ms / k.ok, 3) if k.ok else None,
        "http_requests_per_request": round(k.requests / k.ok, 2) if k.ok else None,
        "server_cpu_ms_per_http_request": round(k.cpu_ms / k.requests, 3) if k.requests else None,
        **{f"{name}_cpu_ms_per_request": round(ms / k.ok, 3) if k.ok else None for name, ms in k.side_ms.items()},
        "per_s": round(k.ok / k.wall_s, 1) if k.wall_s else None,
        "p50_ms": round(pct(lat, 50), 2) if lat else None,
        "p99_ms": round(pct(lat, 99), 2) if lat else None,
        "failures": k.failures,
    }


def prepare(s: Setup, client_id: str, n: int) -> list[Pending]:
    """Sign ``n`` request objects and PAR client assertions (outside the measured windows)."""
    out = []
    now = int(time.time())
    for _ in range(n):
        verifier, state = secrets.token_urlsafe(32), secrets.token_urlsafe(12)
        out.append(Pending(verifier, state, request_object(s, client_id, state, verifier, now),
                           client_assertion(s, client_id, now)))
    return out


async def par(s: Setup, conn: Connection, client_id: str, p: Pending) -> int:
    r = await conn.request("POST", _path(s.par), urlencode({
        "client_id": client_id, "request": p.request_object, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": p.assertion,
    }).encode())
    if r.status != 201:
        raise RuntimeError(f"PAR {r.status}: {r.body[:300]!r}")
    p.request_uri = json.loads(r.body)["request_uri"]
    return 1


async def authorize(s: Setup, conn: Connection, client_id: str, p: Pending) -> int:
    """Follow the redirects to the JARM response; keep it in ``p.code`` (verified later); return the hops."""
    params, p.hops = await follow_authorization(s, conn, client_id, p.request_uri)
    if "response" not in params:
        raise RuntimeError(f"no JARM response: {params}")
    p.code = params["response"]  # the JARM JWT until verified
    return p.hops


def read_jarm(s: Setup, client_id: str, p: Pending) -> None:
    claims = verify_jws(p.code, s.server_keys, algorithms=["ES256"]).claims
    if claims.get("iss") != s.issuer or claims.get("aud") != client_id or claims.get("state") != p.state:
        raise RuntimeError(f"bad JARM response {claims}")
    p.code = str(claims["code"])
    p.assertion = client_assertion(s, client_id, int(time.time()))


async def token(s: Setup, conn: Connection, client_id: str, p: Pending) -> int:
    r = await conn.request("POST", _path(s.token), urlencode({
        "grant_type": "authorization_code", "code": p.code, "redirect_uri": s.redirect_uri,
        "code_verifier": p.verifier, "client_id": client_id, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": p.assertion,
    }).encode())
    if r.status != 200 or b"access_token" not in r.body:
        raise RuntimeError(f"token {r.status}: {r.body[:300]!r}")
    return 1


Step = Callable[[Setup, Connection, str, Pending], Awaitable[int]]


def side_cpu(sides: dict[str, list[int]]) -> dict[str, float]:
    """CPU ms of each named group of processes (each pid with its descendants; a vanished one counts zero)."""
    return {name: trees_cpu_ms(pids) for name, pids in sides.items()}


async def settle(pids: list[int], sides: dict[str, list[int]], quiet_s: float, limit_s: float = 0.5) -> None:
    """Wait until the measured processes stop using CPU (no tick added over ``quiet_s``; at most ``limit_s``), so
    that work a window's requests leave behind (a background batch of flow records, closing connections) is
    counted in that window and not in the next kind's."""
    if quiet_s <= 0 or not pids:
        return

    def total() -> float:
        return trees_cpu_ms(pids) + sum(side_cpu(sides).values())

    deadline = time.perf_counter() + limit_s
    last = total()
    while time.perf_counter() < deadline:
        await asyncio.sleep(quiet_s)
        now = total()
        if now == last:
            return
        last = now


async def window(step: Step, s: Setup, conns: list[Connection], client_id: str, batch: list[Pending],
                 stats: KindStats | None, pids: list[int], sides: dict[str, list[int]],
                 quiet_s: float = 0.0) -> list[Pending]:
    """Run ``step`` for every pending entry, ``len(conns)`` at a time; measure the server's CPU around it.
    Returns the entries that succeeded."""
    queue = list(reversed(batch))
    done: list[Pending] = []

    async def worker(conn: Connection) -> None:
        while queue:
            p = queue.pop()
            t = time.perf_counter()
            try:
                hops = await step(s, conn, client_id, p)
            except Exception as exc:
                conn.close()
                if stats is not None:
                    stats.fail(exc)
                continue
            if stats is not None:
                stats.latencies.append((time.perf_counter() - t) * 1000)
                stats.requests += hops
                stats.ok += 1
            done.append(p)

    cpu0 = trees_cpu_ms(pids) if pids else 0.0
    side0 = side_cpu(sides)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - t0
    await settle(pids, sides, quiet_s)
    cpu1 = trees_cpu_ms(pids) if pids else 0.0
    side1 = side_cpu(sides)
    if stats is not None:
        stats.cpu_ms += cpu1 - cpu0
        stats.wall_s += wall
        for name, ms in side1.items():
            stats.side_ms[name] = stats.side_ms.get(name, 0.0) + ms - side0[name]
    return done


async def run_batches(opt: argparse.Namespace) -> dict[str, Any]:
    s = await _setup(opt)
    client_id = opt.client_id
    conns = [Connection(s.host, s.port, fresh=opt.fresh) for _ in range(opt.concurrency)]
    stats = {k: KindStats() for k in KINDS}
    pids: list[int] = opt.server_pid or []
    sides: dict[str, list[int]] = {}
    for spec in opt.side:
        name, _, pid = spec.partition("=")
        sides.setdefault(name, []).append(int(pid))
    batches = 0

    async def one_batch(n: int, measured: bool) -> None:
        pend = prepare(s, client_id, n)
        pend = await window(par, s, conns, client_id, pend, stats["par"] if measured else None, pids, sides, opt.settle)
        pend = await window(authorize, s, conns, client_id, pend, stats["authorization"] if measured else None,
                            pids, sides, opt.settle)
        verified = []
        for p in pend:
            try:
                read_jarm(s, client_id, p)
            except Exception as exc:
                stats["authorization"].fail(exc)
                continue
            verified.append(p)
        await window(token, s, conns, client_id, verified, stats["token"] if measured else None, pids, sides, opt.settle)

    await one_batch(max(opt.concurrency, 10), measured=False)  # warm-up: connections, caches, JIT
    t_end = time.perf_counter() + opt.duration
    while time.perf_counter() < t_end or batches < opt.min_batches:
        await one_batch(opt.batch, measured=True)
        batches += 1
        if sum(k.failed for k in stats.values()) > 50:
            break
    for c in conns:
        c.close()
    return {
        "driver": "bench/kinds.py",
        "issuer": opt.issuer,
        "client": client_id,
        "concurrency": opt.concurrency,
        "connections": "fresh" if opt.fresh else "keep-alive",
        "batch": opt.batch,
        "batches": batches,
        "kinds": [summarize(k, stats[k]) for k in KINDS],
        "failed": sum(k.failed for k in stats.values()),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--issuer", default="http://127.0.0.1:8000")
    p.add_argument("--client-id", default="peer-client")
    p.add_argument("--keys", required=True, help="the client's private JWKS")
    p.add_argument("--redirect-uri", default="http://127.0.0.1:9999/cb")
    p.add_argument("--response-mode", default="jwt")
    p.add_argument("--scope", default="openid")
    p.add_argument("-c", "--concurrency", type=int, default=1)
    p.add_argument("-d", "--duration", type=float, default=10.0, help="seconds of batches (whole batches)")
    p.add_argument("--batch", type=int, default=100,
                   help="flows per batch (oidc-provider's in-memory store keeps ~1,000-2,000 entries)")
    p.add_argument("--min-batches", type=int, default=2)
    p.add_argument("--fresh", action="store_true", help="a new TCP connection per HTTP request")
    p.add_argument("--settle", type=float, default=0.03, metavar="SECONDS",
                   help="after each window, wait until the server used no CPU for this long (at most 0.5 s) "
                        "before reading its CPU; 0: read at once")
    p.add_argument("--server-pid", type=int, action="append", help="server process tree(s) to measure")
    p.add_argument("--side", action="append", default=[], metavar="NAME=PID",
                   help="also report this process tree's CPU per request as NAME_cpu_ms_per_request (repeatable; "
                        "e.g. lb=PID of a load balancer, pg=PID of a database backend)")
    p.add_argument("--json", help="write the summary here")
    opt = p.parse_args(argv)
    opt.client_ids_file, opt.no_verify, opt.dpop = None, False, False  # driver._setup's other options
    return opt


def main(argv: list[str] | None = None) -> int:
    opt = parse_args(argv)
    summary = asyncio.run(run_batches(opt))
    text = json.dumps(summary, indent=2)
    if opt.json:
        Path(opt.json).write_text(text)
    print(text)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
