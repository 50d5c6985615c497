"""The pure parts of ``bench/run.py``'s modes: the load balancer's configuration and log parsing, and the
aggregation of per-kind, worker-scaling and cluster measurements (the benchmarks themselves run by hand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import cluster
import kinds
import modes


def test_nginx_config_balances_two_nodes_request_by_request(tmp_path: Path) -> None:
    conf = cluster.nginx_config(tmp_path, 8443, ["127.0.0.1:9001", "127.0.0.1:9002"])
    assert "server 127.0.0.1:9001 max_fails=0;" in conf and "server 127.0.0.1:9002 max_fails=0;" in conf
    assert "listen 127.0.0.1:8443;" in conf
    assert "add_header X-Bench-Upstream $upstream_addr always;" in conf
    assert "ip_hash" not in conf and "hash " not in conf  # round-robin, not sticky
    assert f"pid {tmp_path}/nginx.pid;" in conf  # nothing written outside the prefix


@pytest.mark.skipif(not Path(cluster.NGINX).exists(), reason="nginx is not installed")
def test_nginx_accepts_the_generated_config(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(cluster.nginx_config(tmp_path, 18443, ["127.0.0.1:9001", "127.0.0.1:9002"]))
    r = subprocess.run([cluster.NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_per_node_counts_from_the_access_log() -> None:
    log = "\n".join([
        "127.0.0.1:9001 POST /par 201",
        "127.0.0.1:9002 GET /authorize 303",
        "127.0.0.1:9001 POST /token 200",
        "127.0.0.1:9002 POST /par 201",
        "- GET /favicon.ico 404",  # answered by nginx itself: no upstream
        "garbage",
    ])
    counts = cluster.per_node_counts(log, {"127.0.0.1:9001": "node1", "127.0.0.1:9002": "node2"})
    assert counts == {"-": {"/favicon.ico": 1}, "node1": {"/par": 1, "/token": 1},
                      "node2": {"/authorize": 1, "/par": 1}}


def test_pg_cpu_delta_counts_new_backends_from_zero() -> None:
    assert cluster.pg_cpu_delta({1: 10.0, 2: 5.0}, {1: 14.0, 3: 2.0}) == 6.0


def test_kind_summary() -> None:
    k = kinds.KindStats(ok=4, failed=1, cpu_ms=12.0, wall_s=2.0, requests=12, latencies=[1.0, 2.0, 3.0, 10.0],
                        side_ms={"lb": 2.0})
    s = kinds.summarize("authorization", k)
    assert s["server_cpu_ms_per_request"] == 3.0
    assert s["http_requests_per_request"] == 3.0
    assert s["server_cpu_ms_per_http_request"] == 1.0
    assert s["lb_cpu_ms_per_request"] == 0.5
    assert s["per_s"] == 2.0 and s["p50_ms"] == 2.0 and s["p99_ms"] == 10.0
    assert kinds.summarize("par", kinds.KindStats())["server_cpu_ms_per_request"] is None


def _kind(kind: str, ok: int, cpu: float, hops: float = 1.0) -> dict[str, Any]:
    return {"kind": kind, "ok": ok, "failed": 0, "server_cpu_ms_per_request": cpu,
            "http_requests_per_request": hops, "per_s": 100.0, "p50_ms": 2.0, "p99_ms": 9.0}


def test_kinds_aggregate_weights_by_requests_and_ratios_against_oidc_provider() -> None:
    runs = [
        {"server": "jarmor", "connections": "fresh", "concurrency": 1, "other_load_pct": 10.0,
         "kinds": [_kind("par", 100, 1.0)]},
        {"server": "jarmor", "connections": "fresh", "concurrency": 1, "other_load_pct": 30.0,
         "kinds": [_kind("par", 300, 2.0)]},
        {"server": "oidc-provider", "connections": "fresh", "concurrency": 1, "other_load_pct": 0.0,
         "kinds": [_kind("par", 200, 3.5), _kind("authorization", 200, 4.5, hops=3.0)]},
        {"server": "oidc-provider", "connections": "keep-alive", "concurrency": 1, "other_load_pct": 0.0,
         "kinds": [_kind("par", 200, 1.0)]},
    ]
    rows = modes.kinds_aggregate(runs)
    jar = next(r for r in rows if r["server"] == "jarmor")
    assert jar["ok"] == 400 and jar["server_cpu_ms_per_request"] == 1.75 and jar["rounds"] == 2
    assert jar["other_load_pct"] == 20.0
    auth = next(r for r in rows if r["kind"] == "authorization")
    assert auth["server_cpu_ms_per_http_request"] == 1.5
    ratios = modes.kinds_ratios(rows)
    assert ratios == [{"server": "jarmor", "connections": "fresh", "concurrency": 1, "kind": "par",
                       "server_cpu_ms_per_request": 0.5, "p50_ms": 1.0, "p99_ms": 1.0}]
    table = "\n".join(modes.kinds_table(rows, ratios))
    assert "| fresh | 1 | par | jarmor | 1.750 |" in table


def _row(server: str, c: int, flows: float, cpu: float, drv: float = 1.0, **more: Any) -> dict[str, Any]:
    return {"driver": "driver.py", "server": server, "concurrency": c, "flows_per_s": flows, "p50_ms": 10.0,
            "p99_ms": 40.0, "server_cpu_ms_per_flow": cpu, "driver_cpu_ms_per_flow": drv, "other_load_pct": 50.0,
            "machine_busy_pct": 90.0, **more}


def test_scaling_and_the_machine_ceiling() -> None:
    summary = [_row("jarmor", 16, 300.0, 2.0), _row("jarmor-w2", 16, 450.0, 2.2),
               _row("oidc-provider", 16, 200.0, 4.0)]
    [q] = modes.scaling(summary, 2, 2)
    assert q["speedup"] == 1.5
    assert q["ceiling_flows_per_s_n"] == 625.0  # 2 cores x 1000 / (2.2 + 1.0) ms
    assert q["ceiling_left_flows_per_s_n"] == 312.5  # half the machine was taken by other work
    assert q["ratio_n_vs_oidc_provider"] == 2.25
    assert modes.machine_ceiling(2, None, 1.0) is None


def test_cluster_rows_compare_with_sqlite_and_oidc_provider() -> None:
    summary = [_row("jarmor-pg2", 16, 100.0, 3.0, lb_cpu_ms_per_flow=0.3, pg_cpu_ms_per_flow=1.0),
               _row("jarmor", 16, 300.0, 2.0), _row("oidc-provider", 16, 200.0, 4.0)]
    [q] = modes.cluster_rows(summary, "jarmor-pg2")
    assert q["cpu_vs_sqlite"] == 1.5 and q["cpu_with_pg_vs_sqlite"] == 2.0 and q["cpu_vs_oidc_provider"] == 0.75
    assert modes.compared("jarmor-pg2") and not modes.compared("jarmor+dpop") and not modes.compared("oidc-provider")


def test_targets_of_issue_17() -> None:
    summary = [_row("jarmor", 16, 300.0, 1.0), _row("oidc-provider", 16, 200.0, 4.0)]
    result = {
        "summary": summary,
        "kinds_ratios": [{"server": "jarmor", "connections": "fresh", "concurrency": 1, "kind": "par",
                          "server_cpu_ms_per_request": 0.5}],
        "scaling": [{"driver": "driver.py", "concurrency": 16, "workers": 2, "speedup": 1.7,
                     "ceiling_flows_per_s_n": 600.0, "ceiling_left_flows_per_s_n": 300.0}],
    }
    met = {(t["target"].split(" ")[0], t["c"]): t["met"] for t in modes.targets(result)}
    assert met[("server", 16)] == "yes"  # 1.0 / 4.0 = 0.25 <= 1/3, not <= 1/5
    assert met[("p99", 16)] == "yes"  # 40 ms
    assert met[("par", 1)] == "no"
    assert met[("2", 16)] == "yes"
