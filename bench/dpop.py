"""The DPoP part of ``bench/run.py --dpop``: the plain server's policy without the control, oidc-provider with
DPoP nonces, and the table of what DPoP costs each server per flow (see ``run.py``'s docstring)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from modes import fmt as _fmt


def no_dpop_policy(python: str, *, dpop: bool = False) -> str:
    """TOML for the benchmarked ``jarmor`` servers: the built-in tiers minus ``authentication_assurance``
    (both servers: the benchmark's high-tier client is approved by ``--auto-approve``, which signs nobody in
    and so cannot meet the level the built-in high tier requires; the benchmark measures the protocol hops,
    not a person typing a TOTP code) and, for the plain server (``dpop=False``), minus
    ``sender_constrained_tokens`` (the flow this benchmark has always measured), so that only DPoP
    separates it from ``jarmor+dpop``."""
    dropped = "{C.AUTHENTICATION_ASSURANCE}" if dpop else "{C.SENDER_CONSTRAINED_TOKENS, C.AUTHENTICATION_ASSURANCE}"
    code = ("import json; from jarmor.protocol.policy import DEFAULT_TIERS as T, Control as C; "
            f"d = {{c for c in {dropped}}}; "
            "print(json.dumps({n: sorted(c.value for c in t.controls - d) for n, t in T.items() if t.controls & d}))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:  # an older jarmor without these controls: its policy already is the plain one
        return ""
    tiers = json.loads(out.stdout)
    return "".join(f"[policy.tiers.{name}]\ncontrols = {json.dumps(controls)}\n" for name, controls in tiers.items())


DPOP_FEATURE = "dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },"


def dpop_provider(peer: Path) -> str:
    """``provider-dpop.mjs``: the harness's provider with DPoP nonces required (RFC 9449 §8), as jarmor's
    ``high`` tier does (``features.dPoP`` is on in oidc-provider 9, nonces are not without ``nonceSecret``)."""
    source = (peer / "provider.mjs").read_text()
    anchor = "  features: {\n"
    if source.count(anchor) != 1 or "randomBytes" not in source:
        raise SystemExit("provider.mjs changed: cannot derive provider-dpop.mjs")
    (peer / "provider-dpop.mjs").write_text(source.replace(anchor, anchor + "    " + DPOP_FEATURE + "\n"))
    return "provider-dpop.mjs"


def dpop_cost(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each server measured with and without DPoP (``X`` and ``X+dpop``, same driver and concurrency):
    what DPoP adds per flow (server CPU, latency) and takes from throughput."""
    index = {(r["driver"], r["server"], r["concurrency"]): r for r in rows}
    out = []
    for (drv, srv, c), with_ in sorted(index.items()):
        if not srv.endswith("+dpop"):
            continue
        plain = index.get((drv, srv.removesuffix("+dpop"), c))
        if plain is None:
            continue

        def delta(key: str, a: dict[str, Any] = with_, b: dict[str, Any] = plain) -> float | None:
            return round(a[key] - b[key], 2) if a.get(key) is not None and b.get(key) is not None else None

        out.append({
            "driver": drv, "server": srv.removesuffix("+dpop"), "concurrency": c,
            "flows_per_s": [plain["flows_per_s"], with_["flows_per_s"]],
            "flows_per_s_ratio": round(with_["flows_per_s"] / plain["flows_per_s"], 3) if plain["flows_per_s"] else None,
            "p50_ms": [plain["p50_ms"], with_["p50_ms"]], "p50_delta_ms": delta("p50_ms"),
            "server_cpu_ms_per_flow": [plain["server_cpu_ms_per_flow"], with_["server_cpu_ms_per_flow"]],
            "server_cpu_delta_ms": delta("server_cpu_ms_per_flow"),
        })
    return out


def dpop_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| server | driver | c | flows/s without -> with DPoP | p50 ms without -> with | server CPU ms/flow without -> with "
        "| DPoP's server CPU per flow |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["concurrency"], r["server"])):
        (f0, f1), (p0, p1), (c0, c1) = r["flows_per_s"], r["p50_ms"], r["server_cpu_ms_per_flow"]
        lines.append(
            f"| {r['server']} | {r['driver']} | {r['concurrency']} | {_fmt(f0)} -> {_fmt(f1)} "
            f"(x{_fmt(r['flows_per_s_ratio'], 2)}) | {_fmt(p0)} -> {_fmt(p1)} | {_fmt(c0, 2)} -> {_fmt(c1, 2)} "
            f"| {'+' if (r['server_cpu_delta_ms'] or 0) >= 0 else ''}{_fmt(r['server_cpu_delta_ms'], 2)} ms |"
        )
    return lines
