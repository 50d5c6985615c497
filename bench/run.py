"""Benchmark: jarmor vs oidc-provider, full hardened flows, same driver, interleaved A/B/A/B in one run.

    python bench/run.py            # 2 rounds x {jarmor, oidc-provider} x concurrency {1, 16} x both drivers
    python bench/run.py --quick    # smoke run: 1 round, 3 s per measurement
    python bench/run.py --clients 100000 --profile
    python bench/run.py --dpop --drivers py   # + the cost of DPoP per flow, jarmor next to oidc-provider
    python bench/run.py --kinds               # server CPU per PAR, authorization, token (keep-alive and fresh)
    python bench/run.py --workers 2 --drivers py --concurrency 16,32   # flows/s with 2 workers vs 1
    python bench/run.py --cluster --drivers py                          # 2 nodes on PostgreSQL + Redis, nginx

What it does:

1. copies the peer harness (``../shared/peers/node``, read-only) to ``bench/results/peer-node``, runs ``npm ci``
   there (again only when ``package-lock.json`` changed) and ``node keys.mjs``;
2. creates a fresh SQLite database and registers the harness's client with ``jarmor clients add`` (ES256
   everywhere, ``private_key_jwt``, ``risk_tier`` high, the four JARM modes); with ``--clients N`` a second
   database gets N more clients (same metadata and JWKS) by one ``executemany``;
3. starts ``jarmor serve --auto-approve alice --workers 1`` (uvicorn runs in the CLI's own process, checked by
   finding which process owns the listening socket) and ``node provider.mjs`` (oidc-provider, in-memory);
4. drives each server with the same drivers — ``flow.mjs`` (openid-client, the harness's own) and
   ``bench/driver.py`` (a lighter Python driver: ``flow.mjs`` spends ~10 ms of CPU per flow, more than
   the servers, on a 2-core machine) — interleaving servers within each (round, concurrency, driver);
5. per measurement: flows/s, latency p50/p90/p99, server CPU ms per flow (utime+stime of the server process
   tree from ``/proc/PID/stat``, after the driver's warm-up), driver CPU ms per flow, server RSS (``VmRSS``,
   and the peak ``VmHWM``) from ``/proc/PID/status``, and how busy the machine was with *other* work;
   before each measurement it waits (``--wait-quiet``, up to 30 s) for other processes to calm down;
6. writes ``bench/results/<UTC time>/results.json`` and ``results.md`` (``bench/results/latest`` links to it)
   and prints the Markdown tables: every measurement, then only those taken while other processes used less
   than 10 % of the machine, each with ratios jarmor / oidc-provider.

``--dpop`` adds the cost of sender-constrained tokens (RFC 9449) from the same run: a second jarmor server
(``jarmor+dpop``: the default policy but for ``authentication_assurance``, ``dpop.no_dpop_policy``; its ``high``
tier requires DPoP with server nonces; client
``peer-client-dpop`` registered with ``dpop_bound_access_tokens``) and a second oidc-provider
(``oidc-provider+dpop``: the harness's ``provider.mjs`` with ``features.dPoP`` nonces required, written next to
it as ``provider-dpop.mjs``), both driven by ``bench/driver.py --dpop`` (proofs on PAR and the token request,
one key and the latest nonce per worker). The plain ``jarmor`` server then runs a policy whose tiers do not
require sender-constrained tokens, so that ``jarmor`` vs ``jarmor+dpop`` differ by DPoP only; the report adds
a table of what DPoP costs each server per flow, and the ratios jarmor+dpop / oidc-provider+dpop.

``--kinds`` measures each request kind apart (``bench/kinds.py``): batches of ``--batch`` flows (100: oidc-provider's
in-memory store is a bounded LRU), each batch's PARs, then its authorizations (every redirect hop: 1 on jarmor,
3 on oidc-provider), then its token requests, each in its own window of server CPU read from ``/proc``; with one
keep-alive connection per worker and with a fresh TCP connection per request (``--connections``). Alone it
measures no full flows (add ``--drivers py`` for both in one run).

``--workers N`` (N > 1) runs ``jarmor-wN`` (``jarmor serve --workers N``, same SQLite database) beside the
one-worker ``jarmor``, with ``driver.py`` in ``--processes`` separate processes (2 by default then), and reports
flows/s N workers / 1 worker next to the machine's ceiling: cores x 1000 / (server + driver CPU ms per flow).

``--cluster`` adds ``jarmor-pg2``: two ``jarmor serve`` nodes on a fresh PostgreSQL schema
(``JARMOR_TEST_POSTGRES_URL``) and Redis key prefix (``JARMOR_TEST_REDIS_URL``), both dropped afterwards, behind
nginx started by the benchmark (``bench/cluster.py``: round-robin request by request, so a flow's hops land on
different nodes; each reply names its node, ``driver.py`` counts the flows that crossed nodes, and the report lists
each node's requests from nginx's access log and the node's own ``/metrics``). Server CPU is both nodes' summed;
nginx's and the PostgreSQL backends' CPU are reported apart. Every mode's table carries the ratios against
oidc-provider from the same run, and the report ends with issue 17's targets as this run measured them.

``--profile`` then runs jarmor under a CPU-time sampler (``bench/cpu_profile.py``) at the highest concurrency
(and, with ``--clients``, again with a random client per flow), adds the CPU breakdown by layer
(``bench/profile_server.py``) to the report, and records a py-spy flame graph when py-spy is installed.
``--report results.json`` re-renders the tables of an earlier run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import cluster as lbcluster  # noqa: E402
import driver as pydriver  # noqa: E402
import modes  # noqa: E402
from dpop import dpop_cost, dpop_provider, dpop_table, no_dpop_policy  # noqa: E402
from modes import fmt as _fmt  # noqa: E402

PEER_SOURCE_CANDIDATES = [
    os.environ.get("JARMOR_PEER_NODE", ""),
    str(REPO.parent / "shared" / "peers" / "node"),
    "/work/shared/peers/node",
]
REDIRECT_URI = "http://127.0.0.1:9999/cb"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- machine and /proc ------------------------------------------------------------------------------------


def machine_busy_ms() -> tuple[float, float]:
    """(busy, total) CPU milliseconds of the whole machine, all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) * 1000 / CLK_TCK, total * 1000 / CLK_TCK


def status_kb(pid: int, name: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return None


def listening_pids(port: int) -> set[int]:
    """The processes holding a listening TCP socket on ``port`` (from /proc/net/tcp and each fd)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        pids.add(int(entry.name))
                        break
    return pids


def wait_quiet(max_wait: float, threshold_pct: float) -> float:
    """Wait (at most ``max_wait`` s) until the machine is less than ``threshold_pct`` busy over 1 s, measured
    while every server here is idle; return the last load seen. Other sessions may share the machine."""
    deadline = time.time() + max_wait
    told = False
    while True:
        b0, t0 = machine_busy_ms()
        time.sleep(1.0)
        b1, t1 = machine_busy_ms()
        load = round(100 * (b1 - b0) / ((t1 - t0) or 1.0), 1)
        if load <= threshold_pct or time.time() >= deadline:
            if told:
                log(f"  ... machine {load}% busy, going on")
            return load
        if not told:
            log(f"  machine {load}% busy with other work; waiting up to {max_wait:.0f} s ...")
            told = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = status_like("/proc/meminfo", "MemTotal")
    versions = {}
    for pkg in ("jarmor", "uvicorn", "starlette", "h11", "httptools", "uvloop", "sqlalchemy", "joserfc",
                "cryptography", "orjson", "granian"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[pkg] = version(pkg)
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True)
    return {
        "cpu": cpu,
        "cores": NCPU,
        "memory_mb": (mem_kb or 0) // 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        "packages": versions,
        "git": git.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else ""),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def status_like(path: str, name: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return None


# --- peer harness -----------------------------------------------------------------------------------------


def find_peer_source() -> Path:
    for c in PEER_SOURCE_CANDIDATES:
        if c and (Path(c) / "flow.mjs").exists():
            return Path(c)
    raise SystemExit("peer harness not found; set JARMOR_PEER_NODE to the shared/peers/node folder")


def prepare_peer(results: Path) -> Path:
    """Copy the harness next to the results (its source is read-only), ``npm ci``, generate keys."""
    src = find_peer_source()
    dst = results / "peer-node"
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            target = dst / f.name
            if not target.exists() or target.read_bytes() != f.read_bytes():
                shutil.copyfile(f, target)
    lock = (dst / "package-lock.json").read_bytes()
    stamp = dst / "node_modules" / ".bench-stamp"
    digest = hashlib.sha256(lock).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        log(f"npm ci in {dst} ...")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=dst, check=True)
        stamp.write_text(digest)
    subprocess.run(["node", "keys.mjs"], cwd=dst, check=True, capture_output=True)
    return dst


# --- jarmor database --------------------------------------------------------------------------------------


def jarmor_cli(python: str) -> list[str]:
    script = Path(python).parent / "jarmor"
    return [str(script)] if script.exists() else [python, "-m", "jarmor.cli.main"]


def client_metadata(peer: Path) -> dict[str, Any]:
    return {
        "client_name": "peer harness (openid-client)",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": json.loads((peer / "keys" / "client.public.jwks.json").read_text()),
        "request_object_signing_alg": "ES256",
        "token_endpoint_auth_signing_alg": "ES256",
        "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256",
        "risk_tier": "high",
        "response_modes": ["jwt", "query.jwt", "fragment.jwt", "form_post.jwt"],
        "response_types": ["code"],
        "grant_types": ["authorization_code"],
    }


def prepare_database(run_dir: Path, peer: Path, python: str, database: str) -> None:
    """``jarmor db upgrade`` and the harness's client, ``peer-client``, registered in ``database`` (a URL)."""
    meta = run_dir / "client-metadata.json"
    meta.write_text(json.dumps(client_metadata(peer), indent=2))
    # the CLI creates a database only on purpose (db upgrade / serve), never as a side effect of clients add
    subprocess.run([*jarmor_cli(python), "db", "upgrade", "--database", database], check=True,
                   capture_output=True)
    plain = run_dir / "policy-plain.toml"
    plain.write_text(no_dpop_policy(python))
    (run_dir / "policy-dpop.toml").write_text(no_dpop_policy(python, dpop=True))
    subprocess.run(
        [*jarmor_cli(python), "clients", "add", "--metadata", str(meta), "--client-id", "peer-client",
         "--database", database, "--config", str(plain)],
        check=True, capture_output=True,
    )


def create_database(run_dir: Path, peer: Path, python: str, name: str = "jarmor.db", dpop: bool = False) -> Path:
    db = run_dir / name
    prepare_database(run_dir, peer, python, f"sqlite:///{db}")
    if dpop:
        bound = run_dir / "client-metadata-dpop.json"
        bound.write_text(json.dumps({**client_metadata(peer), "dpop_bound_access_tokens": True}, indent=2))
        subprocess.run(
            [*jarmor_cli(python), "clients", "add", "--metadata", str(bound), "--client-id", "peer-client-dpop",
             "--database", f"sqlite:///{db}"],
            check=True, capture_output=True,
        )
    return db


def bulk_clients(src_db: Path, dst_db: Path, n: int, ids_file: Path) -> float:
    """A copy of ``src_db`` with ``n`` more clients (bulk-000000 ...), each a copy of peer-client's validated
    metadata (one shared JWKS) with its own registration token hash. Returns the seconds it took."""
    t0 = time.perf_counter()
    with contextlib.closing(sqlite3.connect(src_db)) as src, contextlib.closing(sqlite3.connect(dst_db)) as dst:
        src.backup(dst)
        row = dst.execute("SELECT metadata, created_at FROM clients WHERE client_id = 'peer-client'").fetchone()
        metadata, created = row
        now = int(time.time())

        def rows() -> Iterator[tuple[Any, ...]]:
            for i in range(n):
                token_hash = hashlib.sha256(secrets.token_urlsafe(32).encode()).hexdigest()
                yield (f"bulk-{i:06d}", metadata, created, now, token_hash)

        with dst:
            dst.executemany(
                "INSERT INTO clients (client_id, metadata, created_at, updated_at, registration_token_hash) "
                "VALUES (?, ?, ?, ?, ?)",
                rows(),
            )
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        count = dst.execute("SELECT count(*) FROM clients").fetchone()[0]
    ids_file.write_text("\n".join(f"bulk-{i:06d}" for i in range(n)) + "\n")
    log(f"bulk-inserted {n} clients into {dst_db.name} ({count} clients) in {time.perf_counter() - t0:.1f} s")
    return time.perf_counter() - t0


# --- servers ----------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    kind: str  # "jarmor" | "oidc-provider"
    issuer: str
    proc: subprocess.Popen[bytes]
    pid: int = 0
    log_path: Path | None = None
    client_ids_file: Path | None = None  # for the "random client per flow" variant
    drivers: tuple[str, ...] = ("flow", "py")
    note: str = ""
    dpop: bool = False  # driven with DPoP proofs (driver.py --dpop)
    client_id: str = "peer-client"
    base_pid: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    kinds: bool = True  # measured by --kinds too
    # a cluster (--cluster): the process trees whose CPU is the server's (the nodes), the load balancer's
    # process (its CPU reported apart), the nodes themselves and the PostgreSQL/Redis services
    cpu_pids: list[int] = field(default_factory=list)
    lb_pid: int = 0
    nodes: list[Server] = field(default_factory=list)
    services: lbcluster.Services | None = None

    @property
    def server_pids(self) -> list[int]:
        return self.cpu_pids or [self.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for node in self.nodes:
            node.stop()
        if self.services is not None:
            self.services.close()
            self.services = None


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    url = server.issuer + "/.well-known/openid-configuration"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited early; see {server.log_path}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{server.name} did not answer on {url}")


def start_jarmor(name: str, db: Path | str, run_dir: Path, python: str, workers: int,
                 sampler: Path | None = None, server: str = "uvicorn", dpop: bool = False,
                 issuer: str | None = None, redis: str | None = None) -> Server:
    """``jarmor serve`` (or, with ``sampler``, the same under ``bench/cpu_profile.py``; with ``server`` granian,
    the ASGI factory under granian, configured by ``JARMOR_*`` variables). ``db``: a SQLite file or a database
    URL; ``issuer`` (a cluster node: the load balancer's URL) and ``redis`` are passed on to ``jarmor serve``."""
    database = db if isinstance(db, str) else f"sqlite:///{db}"
    port = free_port()
    log_path = run_dir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JARMOR_")}
    # one driver address and a few clients send thousands of requests a minute: no rate limits here
    config = run_dir / f"{name}.toml"
    # --rate-limits keeps the production default, to see what the limits cost per flow
    config.write_text(("[settings]\n" if os.environ.get("JARMOR_BENCH_RATE_LIMITS") else
                       "[settings]\nrate_limit_window = 0\n")
                      + (run_dir / ("policy-dpop.toml" if dpop else "policy-plain.toml")).read_text())
    env["JARMOR_CONFIG"] = str(config)
    args = ["serve", "--auto-approve", "alice", "--database", database,
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--config", str(config)]
    if issuer:
        args += ["--issuer", issuer]
    if redis:
        args += ["--redis", redis]
    if sampler is not None:
        cmd = [python, str(HERE / "cpu_profile.py"), "--out", str(sampler), "--", *args]
    elif server == "granian":
        env.update(JARMOR_DATABASE=database, JARMOR_AUTO_APPROVE="alice", JARMOR_HOST="127.0.0.1",
                   JARMOR_PORT=str(port), JARMOR_ISSUER=f"http://127.0.0.1:{port}")
        cmd = [python, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port",
               str(port), "--workers", str(workers), "--runtime-mode", "st", "--no-access-log",
               "--log-level", "warning", "jarmor.server.asgi:app_from_environment"]
    else:
        cmd = [*jarmor_cli(python), *args]
    proc = subprocess.Popen(cmd, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=run_dir)
    server = Server(name, "jarmor", f"http://127.0.0.1:{port}", proc, pid=proc.pid, log_path=log_path)
    if dpop:
        server.dpop, server.client_id, server.drivers = True, "peer-client-dpop", ("py",)
    wait_ready(server)
    owners = listening_pids(port)
    tree = set(pydriver.process_tree(proc.pid))
    if workers == 1 and server == "uvicorn" and owners != {proc.pid}:
        raise SystemExit(f"{name}: expected the CLI process {proc.pid} to serve port {port}, found {owners}")
    if not owners <= tree:
        raise SystemExit(f"{name}: port {port} is served by {owners}, outside the process tree {tree}")
    server.extra["listening_pids"] = sorted(owners)
    server.extra["command"] = " ".join(cmd)
    server.extra["workers"] = workers
    return server


def start_oidc_provider(peer: Path, run_dir: Path, dpop: bool = False) -> Server:
    port = free_port()
    name = "oidc-provider+dpop" if dpop else "oidc-provider"
    script = dpop_provider(peer) if dpop else "provider.mjs"
    log_path = run_dir / f"{name}.log"
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1"}
    proc = subprocess.Popen(["node", script], cwd=peer, env=env, stdout=log_path.open("wb"),
                            stderr=subprocess.STDOUT)
    server = Server(name, "oidc-provider", f"http://127.0.0.1:{port}", proc, pid=proc.pid,
                    log_path=log_path)
    if dpop:
        server.dpop, server.drivers = True, ("py",)
    wait_ready(server)
    owners = listening_pids(port)
    if owners != {proc.pid}:
        raise SystemExit(f"oidc-provider: expected pid {proc.pid} to serve port {port}, found {owners}")
    server.extra["listening_pids"] = sorted(owners)
    server.extra["command"] = f"PORT={port} node {script}"
    return server


def start_cluster(run_dir: Path, peer: Path, python: str, name: str = "jarmor-pg2") -> Server:
    """Two ``jarmor serve`` nodes (one worker each) on a fresh PostgreSQL schema and Redis key prefix, behind
    nginx (round-robin, request by request); the returned server is the load balancer's address, its CPU the
    nodes' (``cpu_pids``), the balancer's own CPU and the PostgreSQL backends' measured apart."""
    services = lbcluster.Services()
    nodes: list[Server] = []
    lb: subprocess.Popen[bytes] | None = None
    try:
        prepare_database(run_dir, peer, python, services.database)
        lb_port = free_port()
        issuer = f"http://127.0.0.1:{lb_port}"
        for i in (1, 2):  # one after the other: the first node generates the server keys
            nodes.append(start_jarmor(f"{name}-node{i}", services.database, run_dir, python, 1, issuer=issuer,
                                      redis=services.redis))
        upstreams = [n.issuer.removeprefix("http://") for n in nodes]
        lb = lbcluster.start_nginx(run_dir / name, lb_port, upstreams)
        lbcluster.wait_port(lb_port, lb)
        server = Server(name, "jarmor", issuer, lb, pid=nodes[0].pid, log_path=run_dir / name / "nginx",
                        drivers=("py",), cpu_pids=[n.pid for n in nodes], lb_pid=lb.pid, nodes=nodes,
                        services=services,
                        note="2 nodes (jarmor serve, 1 worker each) on PostgreSQL + Redis behind nginx round-robin")
        wait_ready(server)
    except BaseException:
        if lb is not None:
            lb.terminate()
            lb.wait(10)
        for n in nodes:
            n.stop()
        services.close()
        raise
    server.extra.update(
        nodes=[{"name": n.name, "url": n.issuer, "pid": n.pid} for n in nodes],
        load_balancer=f"nginx {lbcluster.NGINX} pid {lb.pid}, config {run_dir / name / 'nginx' / 'nginx.conf'}",
        postgres_schema=services.schema, redis_prefix=services.prefix,
    )
    return server


def cluster_distribution(server: Server) -> dict[str, Any]:
    """How the balancer spread the requests: per node and endpoint from nginx's access log, and each node's
    own count from its /metrics."""
    names = {n.issuer.removeprefix("http://"): n.name for n in server.nodes}
    access = Path(str(server.log_path)) / lbcluster.ACCESS_LOG
    text = access.read_text() if access.exists() else ""
    return {
        "access_log": lbcluster.per_node_counts(text, names),
        "metrics": {n.name: lbcluster.scrape_requests(n.issuer) for n in server.nodes},
    }


# --- one measurement --------------------------------------------------------------------------------------


def measure(server: Server, driver: str, concurrency: int, duration: float, peer: Path, out: Path,
            round_no: int, python: str, processes: int) -> dict[str, Any]:
    if driver == "flow":
        cmd = ["node", "flow.mjs", "--issuer", server.issuer, "--client-id", "peer-client",
               "--concurrency", str(concurrency), "--duration", str(duration), "--warmup", "3",
               "--provider-pid", str(server.pid), "--json", str(out)]
        cwd = peer
    else:
        cmd = [python, str(HERE / "driver.py"), "--issuer", server.issuer, "--client-id", server.client_id,
               "--keys", str(peer / "keys" / "client.private.jwks.json"), "--concurrency", str(concurrency),
               "--duration", str(duration), "--json", str(out), "--processes", str(processes)]
        for pid in server.server_pids:
            cmd += ["--server-pid", str(pid)]
        if server.client_ids_file:
            cmd += ["--client-ids-file", str(server.client_ids_file)]
        if server.dpop:
            cmd.append("--dpop")
        cwd = REPO
    proc, summary, cpu = run_measured(server, cmd, cwd, out)
    summary.pop("latencies_ms", None)
    busy, capacity, other, wall, side = cpu["busy"], cpu["capacity"], cpu["other"], cpu["wall"], cpu
    flows = summary["flows_ok"] or 0
    tree = [p for pid in server.server_pids for p in pydriver.process_tree(pid)]
    rss = [status_kb(p, "VmRSS") or 0 for p in tree]
    hwm = [status_kb(p, "VmHWM") or 0 for p in tree]
    return {
        "server": server.name,
        "kind": server.kind,
        "driver": "flow.mjs" if driver == "flow" else "driver.py",
        "concurrency": concurrency,
        "round": round_no,
        "exit_code": proc.returncode,
        "flows_per_s": summary["flows_per_s"],
        "flows_ok": summary["flows_ok"],
        "flows_failed": summary["flows_failed"],
        "latency_ms": summary["latency_ms"],
        "step_median_ms": summary.get("step_median_ms"),
        "server_cpu_ms_per_flow": summary.get("provider_cpu_ms_per_flow"),
        "driver_cpu_ms_per_flow": summary.get("driver_cpu_ms_per_flow"),
        "server_rss_mb": round(max(rss) / 1024, 1),
        "server_peak_rss_mb": round(max(hwm) / 1024, 1),
        "server_tree_rss_mb": round(sum(rss) / 1024, 1),
        "machine_busy_pct": round(100 * busy / capacity, 1),
        "other_load_pct": round(100 * other / capacity, 1),
        "wall_s": round(wall, 2),
        "dpop_nonce_retries": summary.get("dpop_nonce_retries"),
        "failures": summary.get("failures"),
        "workers": server.extra.get("workers"),
        "driver_processes": processes if driver == "py" else None,
        **({"lb_cpu_ms_per_flow": round(side["lb_ms"] / flows, 3) if flows else None,
            "pg_cpu_ms_per_flow": round(side["pg_ms"] / flows, 3) if flows else None,
            "node_requests": summary.get("node_requests"),
            "flows_across_nodes": summary.get("flows_across_nodes"),
            "flows_one_node": summary.get("flows_one_node")} if server.nodes else {}),
    }


def run_measured(server: Server, cmd: list[str], cwd: Path, out: Path) -> tuple[
        subprocess.CompletedProcess[str], dict[str, Any], dict[str, float]]:
    """Run a driver command against ``server``; (its process, the JSON it wrote to ``out``, CPU figures: the
    machine's busy and total ms, other processes' share, wall seconds, the load balancer's and PostgreSQL's ms)."""
    with side_cpu(server) as side:
        busy0, total0 = machine_busy_ms()
        srv0 = pydriver.trees_cpu_ms(server.server_pids)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        srv1 = pydriver.trees_cpu_ms(server.server_pids)
        busy1, total1 = machine_busy_ms()
    if not out.exists():
        raise SystemExit(f"{Path(cmd[1]).name} against {server.name} wrote no result:\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-2000:]}")
    driver_ms = ((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)) * 1000
    busy = busy1 - busy0
    other = max(0.0, busy - (srv1 - srv0) - driver_ms - side["lb_ms"] - side["pg_ms"])
    return proc, json.loads(out.read_text()), {
        "busy": busy, "capacity": (total1 - total0) or 1.0, "other": other, "wall": wall, **side}


@contextlib.contextmanager
def side_cpu(server: Server) -> Iterator[dict[str, float]]:
    """The CPU a cluster spends outside its nodes during the block: the load balancer's process tree and the
    PostgreSQL backends serving the nodes (``lb_ms``, ``pg_ms``; zero for a single server)."""
    out = {"lb_ms": 0.0, "pg_ms": 0.0}
    if not server.nodes:
        yield out
        return
    lb0 = pydriver.tree_cpu_ms(server.lb_pid)
    services = server.services
    pg0 = lbcluster.pg_cpu_ms(services.backend_pids(), pydriver.cpu_ms) if services else {}
    yield out
    out["lb_ms"] = pydriver.tree_cpu_ms(server.lb_pid) - lb0
    if services:
        out["pg_ms"] = lbcluster.pg_cpu_delta(pg0, lbcluster.pg_cpu_ms(services.backend_pids(), pydriver.cpu_ms))


def measure_kinds(server: Server, connections: str, concurrency: int, duration: float, batch: int, peer: Path,
                  out: Path, round_no: int, python: str) -> dict[str, Any]:
    """One per-kind measurement (``bench/kinds.py``): PAR, authorization and token CPU per request."""
    cmd = [python, str(HERE / "kinds.py"), "--issuer", server.issuer, "--client-id", server.client_id,
           "--keys", str(peer / "keys" / "client.private.jwks.json"), "--concurrency", str(concurrency),
           "--duration", str(duration), "--batch", str(batch), "--json", str(out)]
    for pid in server.server_pids:
        cmd += ["--server-pid", str(pid)]
    if connections == "fresh":
        cmd.append("--fresh")
    if server.nodes:
        cmd += ["--side", f"lb={server.lb_pid}"]
        for pid in server.services.backend_pids() if server.services else []:
            cmd += ["--side", f"pg={pid}"]
    proc, summary, cpu = run_measured(server, cmd, REPO, out)
    return {
        "server": server.name, "kind": server.kind, "connections": connections, "concurrency": concurrency,
        "round": round_no, "exit_code": proc.returncode, "batch": batch, "batches": summary["batches"],
        "kinds": summary["kinds"], "failed": summary["failed"],
        "other_load_pct": round(100 * cpu["other"] / cpu["capacity"], 1),
    }


# --- aggregation and report -------------------------------------------------------------------------------


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["driver"], r["server"], r["concurrency"]), []).append(r)
    rows = []
    for (drv, srv, c), rs in groups.items():
        flows = sum(r["flows_ok"] for r in rs) or 1

        def weighted(key: str, rs: list[dict[str, Any]] = rs, flows: int = flows) -> float | None:
            vals = [(r[key], r["flows_ok"]) for r in rs if r.get(key) is not None]
            return round(sum(v * n for v, n in vals) / flows, 2) if vals else None

        rows.append({
            "driver": drv, "server": srv, "concurrency": c, "rounds": len(rs),
            "flows_per_s": round(statistics.mean(r["flows_per_s"] for r in rs), 1),
            "flows_per_s_range": [min(r["flows_per_s"] for r in rs), max(r["flows_per_s"] for r in rs)],
            "p50_ms": round(statistics.mean(r["latency_ms"]["median"] for r in rs), 1),
            "p99_ms": round(statistics.mean(r["latency_ms"]["p99"] for r in rs), 1),
            "server_cpu_ms_per_flow": weighted("server_cpu_ms_per_flow"),
            "driver_cpu_ms_per_flow": weighted("driver_cpu_ms_per_flow"),
            "server_peak_rss_mb": max(r["server_peak_rss_mb"] for r in rs),
            "server_rss_mb": max(r["server_rss_mb"] for r in rs),
            "other_load_pct": round(statistics.mean(r["other_load_pct"] for r in rs), 1),
            "machine_busy_pct": round(statistics.mean(r["machine_busy_pct"] for r in rs), 1),
            "flows_failed": sum(r["flows_failed"] for r in rs),
        })
        if any("lb_cpu_ms_per_flow" in r for r in rs):  # a cluster
            across = [r["flows_across_nodes"] for r in rs if r.get("flows_across_nodes") is not None]
            one = [r["flows_one_node"] for r in rs if r.get("flows_one_node") is not None]
            rows[-1].update(lb_cpu_ms_per_flow=weighted("lb_cpu_ms_per_flow"),
                            pg_cpu_ms_per_flow=weighted("pg_cpu_ms_per_flow"),
                            flows_across_nodes=sum(across) if across else None,
                            flows_one_node=sum(one) if one else None)
    return rows


def ratios(rows: list[dict[str, Any]], base: str | None = None, other: str = "oidc-provider") -> list[dict[str, Any]]:
    """``base`` / ``other`` per (driver, concurrency); without ``base``, every plain jarmor server of the run."""
    out = []
    index = {(r["driver"], r["server"], r["concurrency"]): r for r in rows}
    for (drv, srv, c), a in index.items():
        if srv != base if base else not modes.compared(srv):
            continue
        b = index.get((drv, other, c))
        if b is None:
            continue

        def ratio(key: str, a: dict[str, Any] = a, b: dict[str, Any] = b) -> float | None:
            if a.get(key) in (None, 0) or b.get(key) in (None, 0):
                return None
            return round(a[key] / b[key], 2)

        out.append({"driver": drv, "server": srv, "concurrency": c,
                    **{k: ratio(k) for k in ("flows_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_flow",
                                             "server_peak_rss_mb")}})
    return out


def summary_table(rows: list[dict[str, Any]]) -> list[str]:
    order = {"driver.py": 0, "flow.mjs": 1}
    lines = [
        "| driver | server | c | flows/s | p50 ms | p99 ms | server CPU ms/flow | driver CPU ms/flow "
        "| server RSS MB (peak) | other load % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (order.get(r["driver"], 9), r["concurrency"], r["server"])):
        lo, hi = r["flows_per_s_range"]
        spread = f" ({lo:.0f}-{hi:.0f})" if r["rounds"] > 1 else ""
        lines.append(
            f"| {r['driver']} | {r['server']} | {r['concurrency']} | {r['flows_per_s']:.1f}{spread} "
            f"| {_fmt(r['p50_ms'])} | {_fmt(r['p99_ms'])} | {_fmt(r['server_cpu_ms_per_flow'], 2)} "
            f"| {_fmt(r['driver_cpu_ms_per_flow'], 2)} | {_fmt(r['server_rss_mb'])} ({_fmt(r['server_peak_rss_mb'])}) "
            f"| {_fmt(r['other_load_pct'])} |"
        )
    return lines


def ratio_table(qs: list[dict[str, Any]]) -> list[str]:
    order = {"driver.py": 0, "flow.mjs": 1}
    lines = [
        "| driver | server | c | flows/s | p50 | p99 | server CPU/flow | server peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for q in sorted(qs, key=lambda q: (order.get(q["driver"], 9), q["concurrency"], q.get("server", ""))):
        lines.append(
            f"| {q['driver']} | {q.get('server', 'jarmor')} | {q['concurrency']} | {_fmt(q['flows_per_s'], 2)} "
            f"| {_fmt(q['p50_ms'], 2)} "
            f"| {_fmt(q['p99_ms'], 2)} | {_fmt(q['server_cpu_ms_per_flow'], 2)} "
            f"| {_fmt(q['server_peak_rss_mb'], 2)} |"
        )
    return lines


QUIET_PCT = 10.0


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Run {result['started']} on {result['machine']['cpu']} ({result['machine']['cores']} cores), "
        f"{result['config']['rounds']} round(s) x {result['config']['duration_s']} s per measurement, "
        f"jarmor at {result['machine'].get('git', '?')}.",
    ]
    if result["summary"]:
        lines += ["", "Full flows: every measurement, averaged over rounds (flows/s range in parentheses):", "",
                  *summary_table(result["summary"])]
    if result["ratios"]:
        lines += ["", "Ratios jarmor / oidc-provider (flows/s: higher is better for jarmor; the others: lower "
                  "is better):", "", *ratio_table(result["ratios"])]
    if result.get("dpop_cost"):
        lines += ["", "The cost of DPoP (RFC 9449: proofs on PAR and the token request, server nonces) per flow, "
                  "each server with and without it, from the same run:", "", *dpop_table(result["dpop_cost"])]
        if result.get("dpop_ratios"):
            lines += ["", "Ratios jarmor+dpop / oidc-provider+dpop:", "", *ratio_table(result["dpop_ratios"])]
    workers = result["config"].get("jarmor_workers", 1)
    if result.get("scaling"):
        lines += ["", f"`--workers {workers}`: jarmor on SQLite with {workers} workers (`jarmor-w{workers}`) against "
                  f"one (`jarmor`), the driver in {result['config'].get('driver_processes')} separate process(es), "
                  "same run:", "", *modes.scaling_table(result["scaling"], result["machine"]["cores"])]
    if result.get("cluster"):
        lines += ["", f"`--cluster`: {result['cluster']['note']}, next to SQLite jarmor (one node, one worker) and "
                  "oidc-provider, same run:", "",
                  *modes.cluster_table(result["cluster"]["rows"], result["cluster"].get("distribution"))]
    if result.get("kinds_summary"):
        cfg = result["config"]
        lines += ["", f"Per request kind (`--kinds`, `bench/kinds.py`): batches of {cfg.get('batch')} flows, each "
                  "kind measured in its own window (server CPU from /proc around the batch's PARs, then its "
                  "authorizations — every redirect hop included — then its token requests); connections: "
                  + " and ".join({"keep-alive": "one keep-alive connection per worker",
                                  "fresh": "a fresh TCP connection per HTTP request"}.get(c, c)
                                 for c in cfg.get("connections") or []) + ":", "",
                  *modes.kinds_table(result["kinds_summary"], result.get("kinds_ratios") or [])]
    if result.get("targets"):
        lines += ["", "Issue 17's targets, from this run (driver.py; a busy machine inflates every figure):", "",
                  *modes.targets_table(result["targets"])]
    quiet = result.get("quiet_summary")
    if quiet:
        lines += ["", f"Only the measurements taken while other processes used less than {QUIET_PCT:.0f} % of the "
                  "machine (the figures to trust on a shared machine):", "", *summary_table(quiet)]
        if result.get("quiet_ratios"):
            lines += ["", *ratio_table(result["quiet_ratios"])]
    prof = result.get("profile")
    if prof:
        lines += ["", f"Where the jarmor server's CPU goes ({prof['method']}; {prof['samples']} samples over "
                  f"{prof['flows']} flows at c={prof['concurrency']}, {prof['server_cpu_ms_per_flow']} ms CPU "
                  "per flow in that run):", "", prof["table"]]
    prof = result.get("profile_spread")
    if prof:
        lines += [f"The same on {result['config']['bulk_clients']} clients, a random one per flow ({prof['samples']} "
                  f"samples over {prof['flows']} flows, {prof['server_cpu_ms_per_flow']} ms CPU per flow):", "",
                  prof["table"]]
    return "\n".join(lines) + "\n"


# --- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 round, 3 s per measurement, at most 5 s waiting for quiet")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration", type=float, default=12.0, help="seconds per measurement")
    p.add_argument("--concurrency", default="1,16", help="comma-separated concurrency levels")
    p.add_argument("--drivers", default=None,
                   help="full flows with py (bench/driver.py), flow (flow.mjs), both (the default) or none "
                        "(the default with --kinds)")
    p.add_argument("--servers", default="jarmor,oidc-provider")
    p.add_argument("--rate-limits", action="store_true",
                   help="run jarmor with its default rate limits (off otherwise: one driver address sends thousands "
                        "of requests a minute)")
    p.add_argument("--clients", type=int, default=0,
                   help="also run jarmor on a database with this many more registered clients (e.g. 100000)")
    p.add_argument("--workers", type=int, default=1,
                   help="N > 1: also run jarmor (SQLite) with N workers as jarmor-wN beside the one-worker jarmor, "
                        "and report flows/s N workers / 1 worker")
    p.add_argument("--processes", type=int, default=None,
                   help="driver.py processes (default 1; 2 with --workers N > 1)")
    p.add_argument("--kinds", action="store_true",
                   help="measure PAR, authorization and token separately (bench/kinds.py), on every plain server")
    p.add_argument("--connections", default="keep-alive,fresh",
                   help="--kinds: keep-alive (one connection per worker), fresh (one per request), or both")
    p.add_argument("--batch", type=int, default=100,
                   help="--kinds: flows per batch (oidc-provider's in-memory store is a bounded LRU)")
    p.add_argument("--cluster", action="store_true",
                   help="also run jarmor-pg2: two nodes on PostgreSQL (JARMOR_TEST_POSTGRES_URL, a fresh schema) + "
                        "Redis (JARMOR_TEST_REDIS_URL, a fresh key prefix) behind nginx round-robin")
    p.add_argument("--jarmor-python", default=sys.executable,
                   help="interpreter whose environment runs jarmor (try another server stack in a scratch venv)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=[granian:]PYTHON",
                   help="also run jarmor as NAME with another interpreter (e.g. a scratch venv with uvloop and "
                        "httptools, which uvicorn then picks up), or under granian; repeatable")
    p.add_argument("--wait-quiet", type=float, default=30.0, metavar="SECONDS",
                   help="before each measurement wait up to this long for other load to drop below --quiet-pct")
    p.add_argument("--quiet-pct", type=float, default=25.0,
                   help="machine load (%% of all cores) from other processes considered quiet enough")
    p.add_argument("--dpop", action="store_true",
                   help="also measure both servers with DPoP-bound tokens (driver.py --dpop): the cost of DPoP per flow")
    p.add_argument("--profile", action="store_true",
                   help="then profile jarmor under load: CPU-time sampler (bench/cpu_profile.py), and py-spy's "
                        "flame graph when py-spy is installed")
    p.add_argument("--profile-duration", type=float, default=20.0)
    p.add_argument("--results", default=str(HERE / "results"))
    p.add_argument("--keep-db", action="store_true", help="keep the SQLite databases (deleted by default)")
    p.add_argument("--report", metavar="RESULTS_JSON",
                   help="only re-render results.md (and print it) from an earlier run's results.json")
    opt = p.parse_args(argv)
    if opt.rate_limits:
        os.environ["JARMOR_BENCH_RATE_LIMITS"] = "1"
    if opt.quick:
        opt.rounds, opt.duration = 1, 3.0
        opt.profile_duration = min(opt.profile_duration, 5.0)
        opt.wait_quiet = min(opt.wait_quiet, 5.0)
    opt.concurrency = [int(c) for c in opt.concurrency.split(",") if c]
    if opt.drivers is None:
        opt.drivers = "none" if opt.kinds else "py,flow"
    opt.drivers = [d.strip() for d in opt.drivers.split(",") if d.strip() and d.strip() != "none"]
    opt.connections = [c.strip() for c in opt.connections.split(",") if c.strip()]
    if bad := set(opt.connections) - {"keep-alive", "fresh"}:
        p.error(f"--connections: unknown {', '.join(sorted(bad))} (keep-alive, fresh)")
    if opt.processes is None:
        opt.processes = 2 if opt.workers > 1 else 1
    opt.servers = [s.strip() for s in opt.servers.split(",") if s.strip()]
    return opt


def rerender(path: Path) -> int:
    """Re-render the tables, re-analyzing the CPU profiles kept beside the results (the layer rules may have
    changed since)."""
    import profile_server

    result = json.loads(path.read_text())
    for key, name in (("profile", "cpu-profile"), ("profile_spread", "cpu-profile-spread")):
        prof = result.get(key)
        collapsed = path.parent / f"{name}.collapsed"
        if prof and collapsed.exists():
            fresh = profile_server.analyze(collapsed, prof.get("server_cpu_ms_per_flow"))
            prof.update(fresh, table=profile_server.table(fresh))
    result["quiet_summary"] = aggregate([r for r in result["runs"] if r["other_load_pct"] < QUIET_PCT])
    result["quiet_ratios"] = ratios(result["quiet_summary"])
    result["dpop_cost"] = dpop_cost(result["summary"])
    result["dpop_ratios"] = ratios(result["summary"], "jarmor+dpop", "oidc-provider+dpop")
    result["ratios"] = ratios(result["summary"])
    derive_modes(result)
    md = markdown(result)
    (path.parent / "results.md").write_text(md)
    print(md)
    return 0


def derive_modes(result: dict[str, Any]) -> None:
    """The --kinds, --workers and --cluster tables' figures, from the measurements in ``result``."""
    cfg = result["config"]
    if result.get("kinds_runs"):
        result["kinds_summary"] = modes.kinds_aggregate(result["kinds_runs"])
        result["kinds_ratios"] = modes.kinds_ratios(result["kinds_summary"])
    if cfg.get("jarmor_workers", 1) > 1:
        result["scaling"] = modes.scaling(result["summary"], cfg["jarmor_workers"], result["machine"]["cores"])
    if result.get("cluster"):
        result["cluster"]["rows"] = modes.cluster_rows(result["summary"], result["cluster"]["server"])
    result["targets"] = modes.targets(result)


def main(argv: list[str] | None = None) -> int:
    opt = parse_args(argv)
    if opt.report:
        return rerender(Path(opt.report))
    started = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results = Path(opt.results)
    run_dir = results / started
    run_dir.mkdir(parents=True, exist_ok=True)
    peer = prepare_peer(results)
    info = machine_info()
    servers: list[Server] = []
    try:
        if "jarmor" in opt.servers or opt.clients:
            db = create_database(run_dir, peer, opt.jarmor_python, dpop=opt.dpop)
        if "jarmor" in opt.servers:
            servers.append(start_jarmor("jarmor", db, run_dir, opt.jarmor_python, 1))
            if opt.workers > 1:
                wn = start_jarmor(f"jarmor-w{opt.workers}", db, run_dir, opt.jarmor_python, opt.workers)
                wn.drivers, wn.kinds = ("py",), False
                servers.append(wn)
        if "oidc-provider" in opt.servers:
            servers.append(start_oidc_provider(peer, run_dir))
        if opt.cluster:
            servers.append(start_cluster(run_dir, peer, opt.jarmor_python))
        if opt.dpop and "jarmor" in opt.servers:
            servers.append(start_jarmor("jarmor+dpop", db, run_dir, opt.jarmor_python, 1, dpop=True))
        if opt.dpop and "oidc-provider" in opt.servers:
            servers.append(start_oidc_provider(peer, run_dir, dpop=True))
        for s in servers:
            if s.dpop:
                s.kinds = False
        bulk_seconds = None
        if opt.clients:
            big = run_dir / "jarmor-big.db"
            ids = run_dir / "client-ids.txt"
            bulk_seconds = bulk_clients(db, big, opt.clients, ids)
            label = f"jarmor-{opt.clients // 1000}k" if opt.clients >= 1000 else f"jarmor-{opt.clients}"
            bulk = start_jarmor(label, big, run_dir, opt.jarmor_python, 1)
            bulk.kinds = False
            servers.append(bulk)
            spread = start_jarmor(f"{label}-spread", big, run_dir, opt.jarmor_python, 1)
            spread.kinds = False
            spread.client_ids_file = ids
            spread.drivers = ("py",)
            spread.note = "a random one of the bulk clients per flow"
            servers.append(spread)
        for spec in opt.variant:
            vname, _, target = spec.partition("=")
            kind, _, vpython = target.rpartition(":") if target.startswith("granian:") else ("uvicorn", "", target)
            vs = start_jarmor(f"jarmor[{vname}]", db, run_dir, vpython or opt.jarmor_python, 1,
                              server=kind or "uvicorn")
            vs.drivers, vs.kinds = ("py",), False
            servers.append(vs)
        for s in servers:
            s.extra["idle_rss_mb"] = round((status_kb(s.pid, "VmRSS") or 0) / 1024, 1)
            log(f"{s.name}: {s.issuer} pid {s.pid} (idle RSS {s.extra['idle_rss_mb']} MB)")

        runs: list[dict[str, Any]] = []
        kinds_runs: list[dict[str, Any]] = []
        total = opt.rounds * len(opt.concurrency) * (
            sum(1 for d in opt.drivers for s in servers if d in s.drivers)
            + (len(opt.connections) * sum(1 for s in servers if s.kinds) if opt.kinds else 0))
        n = 0
        for rnd in range(1, opt.rounds + 1):
            for c in opt.concurrency:
                for drv in opt.drivers:
                    for s in servers:
                        if drv not in s.drivers:
                            continue
                        n += 1
                        out = run_dir / f"{drv}-{s.name}-c{c}-r{rnd}.json"
                        quiet = wait_quiet(opt.wait_quiet, opt.quiet_pct)
                        r = measure(s, drv, c, opt.duration, peer, out, rnd, opt.jarmor_python, opt.processes)
                        r["load_before_pct"] = quiet
                        runs.append(r)
                        log(f"[{n}/{total}] {r['driver']:9} {s.name:18} c={c:<3} r{rnd}: "
                            f"{r['flows_per_s']:7.1f} flows/s  p50 {r['latency_ms']['median']:7.1f} ms  "
                            f"p99 {r['latency_ms']['p99']:7.1f} ms  server {r['server_cpu_ms_per_flow']} ms/flow  "
                            f"driver {r['driver_cpu_ms_per_flow']} ms/flow  RSS {r['server_rss_mb']} MB "
                            f"(peak {r['server_peak_rss_mb']})  other load {r['other_load_pct']}%"
                            + (f"  FAILED {r['flows_failed']}: {r['failures']}" if r["flows_failed"] else ""))
                for conn in opt.connections if opt.kinds else ():
                    for s in servers:
                        if not s.kinds:
                            continue
                        n += 1
                        out = run_dir / f"kinds-{s.name}-{conn}-c{c}-r{rnd}.json"
                        quiet = wait_quiet(opt.wait_quiet, opt.quiet_pct)
                        k = measure_kinds(s, conn, c, opt.duration, opt.batch, peer, out, rnd, opt.jarmor_python)
                        k["load_before_pct"] = quiet
                        kinds_runs.append(k)
                        log(f"[{n}/{total}] kinds     {s.name:18} c={c:<3} r{rnd} {conn:10}: " + "  ".join(
                            f"{q['kind']} {q['server_cpu_ms_per_request']} ms"
                            + (f" ({q['http_requests_per_request']} hops)" if q["kind"] == "authorization" else "")
                            for q in k["kinds"]) + f"  other load {k['other_load_pct']}%"
                            + (f"  FAILED {k['failed']}: {[q['failures'] for q in k['kinds']]}" if k["failed"] else ""))
        summary = aggregate(runs)
        quiet_summary = aggregate([r for r in runs if r["other_load_pct"] < QUIET_PCT])
        profile = pyspy = profile_spread = None
        target = next((s for s in servers if s.name == "jarmor"), None)
        if opt.profile and target is not None:
            import profile_server

            keys = peer / "keys" / "client.private.jwks.json"
            wait_quiet(opt.wait_quiet, opt.quiet_pct)
            sampled = start_jarmor("jarmor-cpu-profile", db, run_dir, opt.jarmor_python, 1,
                                   sampler=run_dir / "cpu-profile.collapsed")
            try:
                profile = profile_server.cpu_profile_under_load(
                    pid=sampled.pid, issuer=sampled.issuer, keys=keys, out_dir=run_dir,
                    duration=opt.profile_duration, concurrency=max(opt.concurrency), python=opt.jarmor_python)
            finally:
                sampled.stop()
            spread_target = next((s for s in servers if s.client_ids_file), None)
            if spread_target is not None:
                wait_quiet(opt.wait_quiet, opt.quiet_pct)
                sampled = start_jarmor("jarmor-cpu-profile-spread", run_dir / "jarmor-big.db", run_dir,
                                       opt.jarmor_python, 1, sampler=run_dir / "cpu-profile-spread.collapsed")
                try:
                    profile_spread = profile_server.cpu_profile_under_load(
                        pid=sampled.pid, issuer=sampled.issuer, keys=keys, out_dir=run_dir,
                        duration=opt.profile_duration, concurrency=max(opt.concurrency),
                        python=opt.jarmor_python, client_ids_file=spread_target.client_ids_file,
                        name="cpu-profile-spread")
                finally:
                    sampled.stop()
            wait_quiet(opt.wait_quiet, opt.quiet_pct)
            pyspy = profile_server.pyspy_under_load(
                pid=target.pid, issuer=target.issuer, keys=keys, out_dir=run_dir,
                duration=opt.profile_duration, concurrency=max(opt.concurrency), python=opt.jarmor_python)
        info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
        result = {
            "started": started,
            "machine": info,
            "config": {
                "rounds": opt.rounds, "duration_s": opt.duration, "concurrency": opt.concurrency,
                "drivers": opt.drivers, "jarmor_workers": opt.workers, "driver_processes": opt.processes,
                "bulk_clients": opt.clients, "bulk_insert_s": bulk_seconds,
                "jarmor_python": opt.jarmor_python, "variants": opt.variant, "command": " ".join(sys.argv),
                "wait_quiet_s": opt.wait_quiet, "quiet_pct": opt.quiet_pct,
                "kinds": opt.kinds, "connections": opt.connections if opt.kinds else None,
                "batch": opt.batch if opt.kinds else None, "cluster": opt.cluster,
            },
            "servers": [{"name": s.name, "kind": s.kind, "issuer": s.issuer, "pid": s.pid, "note": s.note,
                         **s.extra} for s in servers],
            "runs": runs,
            "summary": summary,
            "ratios": ratios(summary),
            "quiet_summary": quiet_summary,
            "quiet_ratios": ratios(quiet_summary),
            "dpop_cost": dpop_cost(summary),
            "dpop_ratios": ratios(summary, "jarmor+dpop", "oidc-provider+dpop"),
            "kinds_runs": kinds_runs,
            "cluster": ({"server": cl.name, "note": cl.note, "distribution": cluster_distribution(cl), **cl.extra}
                        if (cl := next((s for s in servers if s.nodes), None)) else None),
            "profile": profile,
            "profile_spread": profile_spread,
            "pyspy": {k: v for k, v in pyspy.items() if k != "table"} if pyspy else None,
        }
    finally:
        for s in servers:
            s.stop()
        if not opt.keep_db:
            for f in run_dir.glob("jarmor*.db*"):
                f.unlink()
    derive_modes(result)
    (run_dir / "results.json").write_text(json.dumps(result, indent=2))
    md = markdown(result)
    (run_dir / "results.md").write_text(md)
    latest = results / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_dir.name)
    print(md)
    log(f"results: {run_dir}/results.json, {run_dir}/results.md")
    failed = sum(r["flows_failed"] for r in runs) + sum(k["failed"] for k in kinds_runs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
