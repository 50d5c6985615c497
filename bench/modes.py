"""Aggregation and tables of ``bench/run.py``'s other modes: ``--kinds`` (server CPU per request kind),
``--workers N`` (flows/s with N workers against one) and ``--cluster`` (PostgreSQL + Redis, two nodes behind a
load balancer). Pure functions of the measurements, so that ``--report`` re-renders them."""

from __future__ import annotations

import statistics
from typing import Any

KIND_ORDER = {"par": 0, "authorization": 1, "token": 2}
CONN_ORDER = {"keep-alive": 0, "fresh": 1}
BASELINE = "oidc-provider"
SIDES = ("lb", "pg")


def fmt(v: Any, nd: int = 1) -> str:
    """A table cell: ``-`` for nothing, floats with ``nd`` decimals."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a in (None, 0) or b in (None, 0):
        return None
    return round(a / b, 2)  # type: ignore[operator]


def compared(name: str) -> bool:
    """Servers compared with oidc-provider: every plain jarmor server (``+dpop`` ones have their own baseline)."""
    return name.startswith("jarmor") and not name.endswith("+dpop")


# --- --kinds ----------------------------------------------------------------------------------------------


def kinds_aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (server, connections, concurrency, kind): CPU per request and per HTTP exchange weighted by
    the requests of each round (i.e. total CPU / total requests), latencies averaged over rounds."""
    groups: dict[tuple[str, str, int, str], list[dict[str, Any]]] = {}
    for r in runs:
        for k in r["kinds"]:
            groups.setdefault((r["server"], r["connections"], r["concurrency"], k["kind"]), []).append(
                {**k, "other_load_pct": r["other_load_pct"]})
    rows = []
    for (srv, conn, c, kind), ks in groups.items():
        ok = sum(k["ok"] for k in ks)
        cpu = sum((k["server_cpu_ms_per_request"] or 0) * k["ok"] for k in ks)
        http = sum((k["http_requests_per_request"] or 0) * k["ok"] for k in ks)
        p50 = [k["p50_ms"] for k in ks if k["p50_ms"] is not None]
        p99 = [k["p99_ms"] for k in ks if k["p99_ms"] is not None]
        rate = [k["per_s"] for k in ks if k["per_s"] is not None]
        rows.append({
            "server": srv, "connections": conn, "concurrency": c, "kind": kind, "rounds": len(ks),
            "ok": ok, "failed": sum(k["failed"] for k in ks),
            "server_cpu_ms_per_request": round(cpu / ok, 3) if ok else None,
            "http_requests_per_request": round(http / ok, 2) if ok else None,
            "server_cpu_ms_per_http_request": round(cpu / http, 3) if http else None,
            "per_s": round(statistics.mean(rate), 1) if rate else None,
            "p50_ms": round(statistics.mean(p50), 2) if p50 else None,
            "p99_ms": round(statistics.mean(p99), 2) if p99 else None,
            "other_load_pct": round(statistics.mean(k["other_load_pct"] for k in ks), 1),
        })
        for side in SIDES:  # a cluster's load balancer and PostgreSQL backends, measured apart
            key = f"{side}_cpu_ms_per_request"
            if any(k.get(key) is not None for k in ks):
                rows[-1][key] = round(sum((k.get(key) or 0) * k["ok"] for k in ks) / ok, 3) if ok else None
    return rows


def kinds_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """jarmor server / oidc-provider for each (connections, concurrency, kind) measured on both."""
    index = {(r["server"], r["connections"], r["concurrency"], r["kind"]): r for r in rows}
    out = []
    for (srv, conn, c, kind), a in index.items():
        b = index.get((BASELINE, conn, c, kind))
        if b is None or not compared(srv):
            continue
        out.append({
            "server": srv, "connections": conn, "concurrency": c, "kind": kind,
            "server_cpu_ms_per_request": _ratio(a["server_cpu_ms_per_request"], b["server_cpu_ms_per_request"]),
            "p50_ms": _ratio(a["p50_ms"], b["p50_ms"]), "p99_ms": _ratio(a["p99_ms"], b["p99_ms"]),
        })
    return out


def _kinds_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (CONN_ORDER.get(r["connections"], 9), r["concurrency"], KIND_ORDER.get(r["kind"], 9),
            r["server"] == BASELINE, r["server"])


def kinds_table(rows: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> list[str]:
    ratio = {(q["server"], q["connections"], q["concurrency"], q["kind"]): q for q in ratios}
    sides = any(f"{side}_cpu_ms_per_request" in r for r in rows for side in SIDES)
    lines = [
        "| connections | c | kind | server | server CPU ms/request | HTTP requests/request "
        "| CPU ms/HTTP request | requests/s | p50 ms | p99 ms | ratio CPU vs oidc-provider | other load % |"
        + (" load balancer / PostgreSQL CPU ms/request |" if sides else ""),
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if sides else ""),
    ]
    for r in sorted(rows, key=_kinds_key):
        q = ratio.get((r["server"], r["connections"], r["concurrency"], r["kind"]))
        fails = f" ({r['failed']} failed)" if r["failed"] else ""
        lines.append(
            f"| {r['connections']} | {r['concurrency']} | {r['kind']} | {r['server']}{fails} "
            f"| {fmt(r['server_cpu_ms_per_request'], 3)} | {fmt(r['http_requests_per_request'], 2)} "
            f"| {fmt(r['server_cpu_ms_per_http_request'], 3)} | {fmt(r['per_s'])} | {fmt(r['p50_ms'], 2)} "
            f"| {fmt(r['p99_ms'], 2)} | {fmt(q['server_cpu_ms_per_request'], 2) if q else ''} "
            f"| {fmt(r['other_load_pct'])} |"
            + (f" {fmt(r.get('lb_cpu_ms_per_request'), 3)} / {fmt(r.get('pg_cpu_ms_per_request'), 3)} |"
               if sides else "")
        )
    return lines


# --- --workers N -------------------------------------------------------------------------------------------


def machine_ceiling(cores: float, server_ms: float | None, driver_ms: float | None) -> float | None:
    """Flows/s the machine could reach at most when the server and the driver share its ``cores`` and each flow
    costs ``server_ms`` + ``driver_ms`` of CPU (whatever the number of workers)."""
    if not server_ms or driver_ms is None:
        return None
    return round(cores * 1000.0 / (server_ms + driver_ms), 1)


def scaling(summary: list[dict[str, Any]], workers: int, cores: int) -> list[dict[str, Any]]:
    """``jarmor-w{workers}`` against ``jarmor`` (one worker) for each (driver, concurrency)."""
    index = {(r["driver"], r["server"], r["concurrency"]): r for r in summary}
    out = []
    for (drv, srv, c), one in index.items():
        many = index.get((drv, f"jarmor-w{workers}", c))
        if srv != "jarmor" or many is None:
            continue
        base = index.get((drv, BASELINE, c))
        out.append({
            "driver": drv, "concurrency": c, "workers": workers,
            "flows_per_s_1": one["flows_per_s"], "flows_per_s_n": many["flows_per_s"],
            "speedup": _ratio(many["flows_per_s"], one["flows_per_s"]),
            "cpu_ms_per_flow_1": one["server_cpu_ms_per_flow"], "cpu_ms_per_flow_n": many["server_cpu_ms_per_flow"],
            "driver_cpu_ms_per_flow_n": many["driver_cpu_ms_per_flow"],
            "p99_ms_1": one["p99_ms"], "p99_ms_n": many["p99_ms"],
            "machine_busy_pct_n": many.get("machine_busy_pct"),
            "ceiling_flows_per_s_n": machine_ceiling(cores, many["server_cpu_ms_per_flow"],
                                                     many["driver_cpu_ms_per_flow"]),
            "other_load_pct_n": many.get("other_load_pct"),
            "ceiling_left_flows_per_s_n": machine_ceiling(
                cores * max(0.0, 1 - (many.get("other_load_pct") or 0) / 100), many["server_cpu_ms_per_flow"],
                many["driver_cpu_ms_per_flow"]),
            "flows_per_s_oidc_provider": base["flows_per_s"] if base else None,
            "ratio_n_vs_oidc_provider": _ratio(many["flows_per_s"], base["flows_per_s"]) if base else None,
        })
    return sorted(out, key=lambda q: (q["driver"], q["concurrency"]))


def scaling_table(rows: list[dict[str, Any]], cores: int) -> list[str]:
    if not rows:
        return []
    n = rows[0]["workers"]
    lines = [
        f"| driver | c | flows/s 1 worker | flows/s {n} workers | speedup | server CPU ms/flow 1 -> {n} "
        f"| driver CPU ms/flow | machine busy % (other work) | machine ceiling flows/s (what other work left) "
        f"| p99 ms 1 -> {n} | oidc-provider flows/s | {n} workers / oidc-provider |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for q in rows:
        lines.append(
            f"| {q['driver']} | {q['concurrency']} | {fmt(q['flows_per_s_1'])} | {fmt(q['flows_per_s_n'])} "
            f"| {fmt(q['speedup'], 2)} | {fmt(q['cpu_ms_per_flow_1'], 2)} -> {fmt(q['cpu_ms_per_flow_n'], 2)} "
            f"| {fmt(q['driver_cpu_ms_per_flow_n'], 2)} | {fmt(q['machine_busy_pct_n'])} "
            f"({fmt(q.get('other_load_pct_n'))}) | {fmt(q['ceiling_flows_per_s_n'])} "
            f"({fmt(q.get('ceiling_left_flows_per_s_n'))}) | {fmt(q['p99_ms_1'])} -> {fmt(q['p99_ms_n'])} "
            f"| {fmt(q['flows_per_s_oidc_provider'])} | {fmt(q['ratio_n_vs_oidc_provider'], 2)} |"
        )
    lines += ["", f"The machine has {cores} cores, shared by the server's workers, the driver's processes and "
              "whatever else runs: \"machine ceiling\" is cores x 1000 / (server + driver CPU ms per flow), the "
              "flows/s no number of workers can exceed here (in parentheses: with only the share of the cores other "
              "processes left during the measurement); a speedup near it is bound by the machine, not by "
              "the server. oidc-provider runs as one Node process (the harness has no cluster mode)."]
    return lines


# --- --cluster ---------------------------------------------------------------------------------------------


def cluster_rows(summary: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The cluster next to SQLite jarmor and oidc-provider, per (driver, concurrency), with the ratios."""
    index = {(r["driver"], r["server"], r["concurrency"]): r for r in summary}
    out = []
    for (drv, srv, c), cl in index.items():
        if srv != name:
            continue
        sq = index.get((drv, "jarmor", c))
        op = index.get((drv, BASELINE, c))
        total = (cl["server_cpu_ms_per_flow"] or 0) + (cl.get("pg_cpu_ms_per_flow") or 0)
        out.append({
            "driver": drv, "concurrency": c, "cluster": cl, "sqlite": sq, "oidc_provider": op,
            "cpu_vs_sqlite": _ratio(cl["server_cpu_ms_per_flow"], sq["server_cpu_ms_per_flow"]) if sq else None,
            "cpu_with_pg_vs_sqlite": _ratio(total, sq["server_cpu_ms_per_flow"]) if sq else None,
            "cpu_vs_oidc_provider": _ratio(cl["server_cpu_ms_per_flow"], op["server_cpu_ms_per_flow"]) if op else None,
            "p50_vs_oidc_provider": _ratio(cl["p50_ms"], op["p50_ms"]) if op else None,
            "p99_vs_oidc_provider": _ratio(cl["p99_ms"], op["p99_ms"]) if op else None,
        })
    return sorted(out, key=lambda q: (q["driver"], q["concurrency"]))


def cluster_table(rows: list[dict[str, Any]], distribution: dict[str, Any] | None) -> list[str]:
    if not rows:
        return []
    lines = [
        "| driver | c | server | flows/s | p50 ms | p99 ms | server CPU ms/flow | load balancer CPU ms/flow "
        "| PostgreSQL backends CPU ms/flow | flows across nodes |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for q in rows:
        for label in ("cluster", "sqlite", "oidc_provider"):
            r = q[label]
            if r is None:
                continue
            across = ""
            if label == "cluster" and r.get("flows_across_nodes") is not None:
                tracked = (r["flows_across_nodes"] or 0) + (r.get("flows_one_node") or 0)
                across = f"{r['flows_across_nodes']}/{tracked}"
            lines.append(
                f"| {q['driver']} | {q['concurrency']} | {r['server']} | {fmt(r['flows_per_s'])} "
                f"| {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['server_cpu_ms_per_flow'], 2)} "
                f"| {fmt(r.get('lb_cpu_ms_per_flow'), 2)} | {fmt(r.get('pg_cpu_ms_per_flow'), 2)} | {across} |"
            )
    lines += ["", "| driver | c | CPU/flow vs SQLite jarmor | with PostgreSQL backends | CPU/flow vs oidc-provider "
              "| p50 vs oidc-provider | p99 vs oidc-provider |", "|---|---:|---:|---:|---:|---:|---:|"]
    for q in rows:
        lines.append(
            f"| {q['driver']} | {q['concurrency']} | {fmt(q['cpu_vs_sqlite'], 2)} | {fmt(q['cpu_with_pg_vs_sqlite'], 2)} "
            f"| {fmt(q['cpu_vs_oidc_provider'], 2)} | {fmt(q['p50_vs_oidc_provider'], 2)} "
            f"| {fmt(q['p99_vs_oidc_provider'], 2)} |"
        )
    if distribution:
        lines += ["", "Requests per node (nginx access log, by path; and each node's own "
                  "`jarmor_http_requests_total` by route):", ""]
        for node, paths in distribution.get("access_log", {}).items():
            lines.append(f"- {node} (access log): " + ", ".join(f"{p} {n}" for p, n in paths.items()))
        for node, routes in distribution.get("metrics", {}).items():
            lines.append(f"- {node} (/metrics): " + ", ".join(f"{p} {n}" for p, n in routes.items()))
    lines += ["", "Server CPU is the two nodes' process trees summed; the load balancer's and the PostgreSQL "
              "backends' CPU (found by the nodes' `application_name`) are shown apart; Redis (a server shared with "
              "other work on this machine) is not measured."]
    return lines


# --- issue 17's targets ------------------------------------------------------------------------------------


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 17 that this run measured: what it asks, what was measured, met or not, and how busy
    the machine was with other work during the measurements compared (``load``: jarmor's / the other's %).
    Uses ``driver.py`` rows (the lighter driver) and, for the per-kind targets, every connection mode measured.
    The PostgreSQL target is judged with the PostgreSQL backends' CPU added (SQLite runs inside the server
    process, so its CPU is already in the SQLite figure)."""
    out: list[dict[str, Any]] = []
    summary = [r for r in result.get("summary") or [] if r["driver"] == "driver.py"]
    index = {(r["server"], r["concurrency"]): r for r in summary}
    kinds = {(r["server"], r["connections"], r["concurrency"], r["kind"]): r for r in result.get("kinds_summary") or []}

    def load(*rows: dict[str, Any] | None) -> str:
        return " / ".join(fmt(r.get("other_load_pct") if r else None) for r in rows)

    for (srv, c), r in sorted(index.items(), key=lambda kv: kv[0][1]):
        base = index.get((BASELINE, c))
        if srv == "jarmor" and base:
            q = _ratio(r["server_cpu_ms_per_flow"], base["server_cpu_ms_per_flow"])
            out.append({"target": "server CPU per full flow <= 1/3 of oidc-provider's (stretch 1/5)", "c": c,
                        "measured": f"{fmt(r['server_cpu_ms_per_flow'], 2)} vs {fmt(base['server_cpu_ms_per_flow'], 2)}"
                                    f" ms = {fmt(q, 2)}",
                        "met": None if q is None else ("yes (stretch too)" if q <= 0.2 else "yes" if q <= 1 / 3
                                                       else "no"), "load": load(r, base)})
        if srv == "jarmor" and c == 16:
            out.append({"target": "p99 at c=16 < 50 ms, one worker", "c": c,
                        "measured": f"{fmt(r['p99_ms'])} ms (p50 {fmt(r['p50_ms'])})",
                        "met": "yes" if r["p99_ms"] < 50 else "no", "load": load(r)})
    for q in result.get("kinds_ratios") or []:
        if q["server"] != "jarmor" or q["kind"] not in ("par", "token"):
            continue
        v = q["server_cpu_ms_per_request"]
        a = kinds.get((q["server"], q["connections"], q["concurrency"], q["kind"]))
        b = kinds.get((BASELINE, q["connections"], q["concurrency"], q["kind"]))
        out.append({"target": f"{q['kind']} CPU <= 1/2.5 of oidc-provider's ({q['connections']})",
                    "c": q["concurrency"],
                    "measured": (f"{fmt(a['server_cpu_ms_per_request'], 2)} vs {fmt(b['server_cpu_ms_per_request'], 2)}"
                                 f" ms = {fmt(v, 2)}" if a and b else fmt(v, 2)),
                    "met": None if v is None else "yes" if v <= 0.4 else "no", "load": load(a, b)})
    for q in (result.get("cluster") or {}).get("rows") or []:
        if q["driver"] != "driver.py":
            continue
        cl = q["cluster"]
        v = q["cpu_with_pg_vs_sqlite"]
        out.append({"target": "PostgreSQL + Redis (2 nodes) CPU per flow <= 1.5x SQLite's", "c": q["concurrency"],
                    "measured": f"{fmt(v, 2)}x with the PostgreSQL backends' CPU ({fmt(q['cpu_vs_sqlite'], 2)}x "
                                "the nodes alone)",
                    "met": None if v is None else "yes" if v <= 1.5 else "no", "load": load(cl, q["sqlite"])})
        if q["concurrency"] == 16:
            out.append({"target": "PostgreSQL + Redis (2 nodes) p50 < 20 ms at c=16", "c": 16,
                        "measured": f"{fmt(cl['p50_ms'])} ms", "met": "yes" if cl["p50_ms"] < 20 else "no",
                        "load": load(cl)})
    for q in result.get("scaling") or []:
        if q["driver"] != "driver.py":
            continue
        out.append({"target": f"{q['workers']} workers >= 1.6x one worker's flows/s", "c": q["concurrency"],
                    "measured": f"{fmt(q['speedup'], 2)}x (machine ceiling {fmt(q['ceiling_flows_per_s_n'])} "
                                f"flows/s, {fmt(q['ceiling_left_flows_per_s_n'])} with the other load)",
                    "met": None if q["speedup"] is None else "yes" if q["speedup"] >= 1.6 else "no",
                    "load": fmt(q.get("other_load_pct_n"))})
    return out


def targets_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["| target (issue 17) | c | measured | met? | other load % (jarmor / compared) |", "|---|---:|---|---|---:|"]
    lines += [f"| {r['target']} | {r['c']} | {r['measured']} | {r['met'] or '-'} | {r.get('load', '-')} |"
              for r in rows]
    return lines
