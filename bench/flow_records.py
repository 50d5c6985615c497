"""What recording flow integrity records costs a flow: flows/s with and without recording, in the same run.

    python bench/flow_records.py                 # in-process, then two real servers (about 3 minutes)
    python bench/flow_records.py --quick         # fewer, shorter rounds
    python bench/flow_records.py --no-real       # in-process only

1. **In-process** (``JarmorServer`` + Starlette through httpx's ASGI transport, no sockets): a hardened flow —
   PAR with ``private_key_jwt`` and a signed request object, authorization with auto-approve and a JARM
   response, token with PKCE and ``private_key_jwt`` — on an SQLite file store and on the memory store, with
   recording on and off. Request objects and client assertions are signed before the clock starts. Rounds
   alternate on/off so that drift (CPU frequency, caches) hits both alike; the median round is reported.
   Recording's writes happen *during* the rounds (the background writer shares the event loop); the backlog
   left at the end of a round and the time to flush it are reported too.
2. **Real servers**: two ``jarmor serve`` processes on their own SQLite databases, identical but for
   ``[settings] flow_records = false`` on one, driven alternately by ``bench/driver.py`` (its own process),
   at concurrency 1 and 16. Reports flows/s, latency p50 and server CPU ms per flow (from ``/proc``), and
   checks that the recording server's chain verifies and holds three records per flow.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from jarmor.config import ServerConfig  # noqa: E402
from jarmor.governance.chain import verify  # noqa: E402
from jarmor.jose import generate_jwk, sign_jws  # noqa: E402
from jarmor.protocol.context import Settings  # noqa: E402
from jarmor.protocol.registration import register  # noqa: E402
from jarmor.server.app import JarmorServer, build_routes  # noqa: E402
from jarmor.store import MemoryStore, open_store  # noqa: E402
from jarmor.store.base import Store  # noqa: E402

ISSUER = "http://127.0.0.1:8000"
REDIRECT = "https://client.example/cb"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- in-process ------------------------------------------------------------------------------------------------


class InProcess:
    def __init__(self, store: Store, recording: bool) -> None:
        from starlette.applications import Starlette

        settings = replace(Settings(), auto_approve="alice", flow_records=recording, rate_limit_window=0)
        self.config = ServerConfig(issuer=ISSUER, settings=settings, auto_approve="alice")
        self.server = JarmorServer(self.config, store)
        self.store = store
        self._app = Starlette
        self.http: httpx.AsyncClient | None = None
        self.client_id = ""
        self.key = generate_jwk("ES256")

    async def start(self) -> None:
        await self.server.start()
        app = self._app(routes=build_routes(self.server))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
        body = await register(self.server.env, {
            "risk_tier": "high", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [self.key.public_dict()]}, "request_object_signing_alg": "ES256",
            "token_endpoint_auth_signing_alg": "ES256", "authorization_signed_response_alg": "ES256",
            "id_token_signed_response_alg": "ES256", "response_modes": ["jwt"], "grant_types": ["authorization_code"],
        })
        self.client_id = str(body["client_id"])

    def presign(self, n: int) -> list[dict[str, str]]:
        out = []
        now = int(time.time())
        for _ in range(n):
            verifier = secrets.token_urlsafe(32)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            ro = sign_jws({
                "iss": self.client_id, "aud": ISSUER, "client_id": self.client_id, "response_type": "code",
                "redirect_uri": REDIRECT, "scope": "openid", "state": secrets.token_urlsafe(8),
                "code_challenge": challenge, "code_challenge_method": "S256", "response_mode": "jwt",
                "iat": now, "nbf": now, "exp": now + 600, "jti": secrets.token_urlsafe(12),
            }, self.key, "ES256", typ="oauth-authz-req+jwt")
            out.append({"ro": ro, "verifier": verifier, "a1": self._assertion(now), "a2": self._assertion(now)})
        return out

    def _assertion(self, now: int) -> str:
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": ISSUER, "jti": secrets.token_urlsafe(12),
                  "iat": now, "exp": now + 600 - 60}
        return sign_jws(claims, self.key, "ES256")

    async def flow(self, p: dict[str, str]) -> None:
        http = self.http
        assert http is not None
        r = await http.post("/par", data={"client_id": self.client_id, "request": p["ro"],
                                          "client_assertion_type": ASSERTION_TYPE, "client_assertion": p["a1"]})
        assert r.status_code == 201, r.text
        r = await http.get("/authorize", params={"client_id": self.client_id, "request_uri": r.json()["request_uri"]})
        assert r.status_code == 303, r.text
        token = dict(parse_qsl(urlsplit(r.headers["location"]).query))["response"]
        code = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["code"]  # signature: not timed
        r = await http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": REDIRECT, "code_verifier": p["verifier"],
                                            "client_assertion_type": ASSERTION_TYPE, "client_assertion": p["a2"]})
        assert r.status_code == 200, r.text

    async def round(self, n: int, concurrency: int) -> dict[str, float]:
        work = self.presign(n)
        queue = list(reversed(work))

        async def worker() -> None:
            while queue:
                await self.flow(queue.pop())

        cpu0 = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        backlog = self.server.flows.pending
        t0 = time.perf_counter()
        await self.server.flows.flush()  # the writes this round caused are part of its cost
        cpu = time.process_time() - cpu0
        return {"flows_per_s": n / elapsed, "cpu_ms_per_flow": cpu * 1000 / n, "backlog": backlog,
                "flush_ms": (time.perf_counter() - t0) * 1000}

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await self.server.stop()


async def in_process(kind: str, rounds: int, n: int, concurrency: int, tmp: Path) -> dict[str, Any]:
    def store(tag: str) -> Store:
        return MemoryStore() if kind == "memory" else open_store(f"sqlite:///{tmp / f'{kind}-{tag}-{concurrency}.db'}")

    on, off = InProcess(store("on"), True), InProcess(store("off"), False)
    for s in (on, off):
        await s.start()
        await s.round(20, concurrency)  # warm-up
    results: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for i in range(rounds):
        order = (("on", on), ("off", off)) if i % 2 == 0 else (("off", off), ("on", on))
        for tag, s in order:
            results[tag].append(await s.round(n, concurrency))
    rep = await verify(on.store.flows)
    stats = on.server.flows.stats
    await on.stop()
    await off.stop()
    med_on = statistics.median(r["flows_per_s"] for r in results["on"])
    med_off = statistics.median(r["flows_per_s"] for r in results["off"])
    cpu_on = statistics.median(r["cpu_ms_per_flow"] for r in results["on"])
    cpu_off = statistics.median(r["cpu_ms_per_flow"] for r in results["off"])
    return {
        "store": kind, "concurrency": concurrency, "rounds": rounds, "flows_per_round": n,
        "on_flows_per_s": round(med_on, 1), "off_flows_per_s": round(med_off, 1),
        "cost_pct": round((med_off - med_on) / med_off * 100, 1),
        "on_cpu_ms_per_flow": round(cpu_on, 3), "off_cpu_ms_per_flow": round(cpu_off, 3),
        "cpu_cost_ms": round(cpu_on - cpu_off, 3), "cpu_cost_pct": round((cpu_on - cpu_off) / cpu_off * 100, 1),
        "on_rounds": [round(r["flows_per_s"], 1) for r in results["on"]],
        "off_rounds": [round(r["flows_per_s"], 1) for r in results["off"]],
        "max_backlog": max(r["backlog"] for r in results["on"]),
        "max_flush_ms": round(max(r["flush_ms"] for r in results["on"]), 1),
        "records": rep.records, "chain_ok": rep.ok, "recorder": stats.as_dict(),
    }


# --- the recording path alone -------------------------------------------------------------------------------


async def recording_path(tmp: Path, n_flows: int = 10_000) -> dict[str, Any]:
    """CPU per flow of what recording adds, measured alone: building a flow's three events (from the payloads
    a real in-process flow recorded) and queueing them (``FlowRecorder.record``), then writing them as the
    writer does — ``entry`` + canonical body + SHA-256 chain hash + batched INSERTs (500 per transaction) on
    an SQLite file."""
    from jarmor.governance.recorder import FlowRecorder
    from jarmor.governance.records import FlowEvent

    src = InProcess(MemoryStore(), True)
    await src.start()
    await src.round(1, 1)
    samples = [json.loads(r.body) for r in await src.store.flows.scan()]
    await src.stop()
    fields = [{f: getattr(FlowEvent.from_payload(p), f) for f in FlowEvent.__dataclass_fields__} for p in samples]
    store = open_store(f"sqlite:///{tmp / 'path.db'}")
    recorder = FlowRecorder(store.flows, capacity=10 * n_flows * len(fields), interval=3600, batch_size=500)
    t0 = time.process_time()
    for i in range(n_flows):
        for f in fields:
            recorder.record(FlowEvent(**{**f, "flow_id": f"{f['flow_id']}{i}", "event_id": secrets.token_urlsafe(9)}))
    queued = time.process_time() - t0
    t0 = time.process_time()
    await recorder.flush()
    written = time.process_time() - t0
    rep = await verify(store.flows)
    await store.close()
    assert rep.ok and rep.records == n_flows * len(fields)
    return {"events_per_flow": len(fields), "flows": n_flows,
            "build_and_queue_us_per_flow": round(queued / n_flows * 1e6, 1),
            "seal_and_write_us_per_flow": round(written / n_flows * 1e6, 1),
            "total_us_per_flow": round((queued + written) / n_flows * 1e6, 1)}


# --- real servers -----------------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def real_servers(rounds: int, duration: float, concurrencies: list[int], tmp: Path) -> list[dict[str, Any]]:
    key = generate_jwk("ES256")
    keys = tmp / "client.private.jwks.json"
    keys.write_text(json.dumps({"keys": [{**key.private_dict(), "alg": "ES256", "use": "sig"}]}))
    meta = tmp / "client.json"
    meta.write_text(json.dumps({
        "risk_tier": "high", "redirect_uris": ["https://client.example/cb"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.public_dict()]},
        "request_object_signing_alg": "ES256", "token_endpoint_auth_signing_alg": "ES256",
        "authorization_signed_response_alg": "ES256", "id_token_signed_response_alg": "ES256",
        "response_modes": ["jwt"], "grant_types": ["authorization_code"],
    }))
    jarmor = [sys.executable, "-m", "jarmor.cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JARMOR_")}
    servers: dict[str, dict[str, Any]] = {}
    try:
        for tag, recording in (("on", True), ("off", False)):
            db = tmp / f"real-{tag}.db"
            config = tmp / f"{tag}.toml"
            config.write_text(f"[settings]\nflow_records = {'true' if recording else 'false'}\nrate_limit_window = 0\n")
            subprocess.run([*jarmor, "db", "upgrade", "--database", f"sqlite:///{db}"], check=True,
                           capture_output=True, env=env)
            subprocess.run([*jarmor, "clients", "add", "--metadata", str(meta), "--client-id", "bench-client",
                            "--database", f"sqlite:///{db}", "--config", str(config)], check=True,
                           capture_output=True, env=env)
            port = _free_port()
            log = (tmp / f"serve-{tag}.log").open("wb")
            proc = subprocess.Popen([*jarmor, "serve", "--config", str(config), "--database", f"sqlite:///{db}",
                                     "--port", str(port), "--auto-approve", "alice"], stdout=log,
                                    stderr=subprocess.STDOUT, env=env, cwd=tmp)
            servers[tag] = {"proc": proc, "issuer": f"http://127.0.0.1:{port}", "db": db}
        for s in servers.values():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(s["issuer"] + "/jwks", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
        out: list[dict[str, Any]] = []
        for c in concurrencies:
            runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
            for i in range(rounds):
                for tag in (("on", "off") if i % 2 == 0 else ("off", "on")):
                    s = servers[tag]
                    js = tmp / f"drv-{tag}-{c}-{i}.json"
                    subprocess.run([sys.executable, str(HERE / "driver.py"), "--issuer", s["issuer"], "--client-id",
                                    "bench-client", "--keys", str(keys), "--redirect-uri", "https://client.example/cb",
                                    "-c", str(c), "-d", str(duration), "--server-pid", str(s["proc"].pid),
                                    "--json", str(js)], check=True, capture_output=True, env=env)
                    runs[tag].append(json.loads(js.read_text()))
            row: dict[str, Any] = {"concurrency": c, "rounds": rounds, "duration_s": duration}
            for tag in ("on", "off"):
                row[f"{tag}_flows_per_s"] = round(statistics.median(_num(r, "flows_per_s", "throughput") for r in runs[tag]), 1)
                row[f"{tag}_p50_ms"] = round(statistics.median(float(r["latency_ms"]["median"]) for r in runs[tag]), 2)
                row[f"{tag}_server_cpu_ms_per_flow"] = round(statistics.median(
                    _num(r, "provider_cpu_ms_per_flow") for r in runs[tag]), 2)
                row[f"{tag}_failures"] = sum(int(r["flows_failed"]) for r in runs[tag])
            row["cost_pct"] = round((row["off_flows_per_s"] - row["on_flows_per_s"]) / row["off_flows_per_s"] * 100, 1)
            row["cpu_cost_pct"] = round((row["on_server_cpu_ms_per_flow"] - row["off_server_cpu_ms_per_flow"])
                                        / row["off_server_cpu_ms_per_flow"] * 100, 1)
            out.append(row)
    finally:
        for s in servers.values():
            s["proc"].terminate()
            s["proc"].wait(15)
    check = asyncio.run(_check_chain(servers["on"]["db"]))
    for row in out:
        row.update(check)
    return out


def _num(summary: dict[str, Any], *names: str) -> float:
    for name in names:
        if isinstance(summary.get(name), int | float):
            return float(summary[name])
    raise KeyError(f"none of {names} in the driver's summary: {sorted(summary)}")


async def _check_chain(db: Path) -> dict[str, Any]:
    store = open_store(f"sqlite:///{db}")
    try:
        rep = await verify(store.flows)
        return {"recording_server_records": rep.records, "recording_server_chain_ok": rep.ok}
    finally:
        await store.close()


# --- main -----------------------------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-real", action="store_true", help="skip the real-server comparison")
    p.add_argument("--json", help="write every figure here")
    opt = p.parse_args(argv)
    rounds, n = (4, 100) if opt.quick else (15, 150)
    real_rounds, duration = (2, 4.0) if opt.quick else (4, 8.0)
    results: dict[str, Any] = {"in_process": [], "real": [], "path": {}}
    with tempfile.TemporaryDirectory(prefix="jarmor-bench-flows-") as d:
        tmp = Path(d)
        results["path"] = asyncio.run(recording_path(tmp, 2000 if opt.quick else 10_000))
        print(f"recording path: {results['path']}", file=sys.stderr, flush=True)
        for kind in ("sqlite", "memory"):
            for c in (1, 16):
                row = asyncio.run(in_process(kind, rounds, n, c, tmp))
                results["in_process"].append(row)
                print(f"in-process {kind} c={c}: on {row['on_flows_per_s']} / off {row['off_flows_per_s']} flows/s, "
                      f"CPU {row['on_cpu_ms_per_flow']} / {row['off_cpu_ms_per_flow']} ms per flow",
                      file=sys.stderr, flush=True)
        if not opt.no_real:
            results["real"] = real_servers(real_rounds, duration, [1, 16], tmp)
    print("## The recording path alone (CPU per flow, SQLite file)\n")
    print(table([results["path"]], list(results["path"])))
    print("\n## In-process (median of rounds; recording on vs off, interleaved)\n")
    print(table(results["in_process"], ["store", "concurrency", "on_flows_per_s", "off_flows_per_s", "cost_pct",
                                        "on_cpu_ms_per_flow", "off_cpu_ms_per_flow", "cpu_cost_ms", "cpu_cost_pct",
                                        "max_backlog", "max_flush_ms", "records", "chain_ok"]))
    if results["real"]:
        print("\n## Real servers (jarmor serve, SQLite, bench/driver.py; median of rounds)\n")
        print(table(results["real"], ["concurrency", "on_flows_per_s", "off_flows_per_s", "cost_pct", "on_p50_ms",
                                      "off_p50_ms", "on_server_cpu_ms_per_flow", "off_server_cpu_ms_per_flow",
                                      "cpu_cost_pct", "on_failures", "off_failures", "recording_server_records",
                                      "recording_server_chain_ok"]))
    if opt.json:
        Path(opt.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
