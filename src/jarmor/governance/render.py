"""Rendering flow records, chain verification, reports and policy checks: text tables, JSON, and HTML.

HTML goes through an autoescaping Jinja environment (``templates/``); charts are inline SVG built from
``charts`` geometry, so a report file loads nothing from anywhere (its CSP says so: ``default-src 'none'``).
``report_body`` is the fragment the admin dashboard embeds; ``report_html`` the standalone document.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from . import terminal
from .chain import ChainReport
from .charts import OUTCOME_COLORS, TIER_COLORS, share_bars, stacked_by_day
from .flows import FlowSummary
from .policy_check import PolicyCheck
from .reports import Report

_templates = Environment(
    loader=PackageLoader("jarmor.governance", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)

_AUTH = {"private_key_jwt": "pkjwt", "client_secret_basic": "basic", "client_secret_post": "post", "none": "public"}


def when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def table(rows: Sequence[Sequence[str]]) -> str:
    """The one table renderer of text output (``terminal.table``): cells made inert, one line each."""
    return terminal.table(rows)


def controls_brief(f: FlowSummary) -> str:
    """``PAR RO:PS256+enc JARM:ES256 iss PKCE pkjwt AAL2`` — what the records show was applied (the last item:
    the assurance level the user's sign-in reached, ``interaction.assurance.evidence``)."""
    c = f.controls
    parts: list[str] = []
    if c.get("par"):
        parts.append("PAR")
    ro = c.get("request_object") or {}
    if ro.get("signed"):
        parts.append(f"RO:{ro.get('alg')}" + ("+enc" if ro.get("encrypted") else ""))
    jarm = c.get("jarm") or {}
    if jarm.get("signed"):
        parts.append(f"JARM:{jarm.get('alg')}" + ("+enc" if jarm.get("encrypted") else ""))
    if c.get("iss"):
        parts.append("iss")
    if c.get("pkce") == "S256":
        parts.append("PKCE")
    auth = c.get("client_auth") or c.get("par_client_auth") or {}
    if auth.get("method"):
        parts.append(_AUTH.get(str(auth["method"]), str(auth["method"])))
    signed_in = c.get("authentication")
    if isinstance(signed_in, dict) and isinstance(signed_in.get("reached"), str):
        parts.append(signed_in["reached"].upper())
    return " ".join(parts) or "-"


def _short(value: str | None, n: int) -> str:
    if not value:
        return "-"
    return value if len(value) <= n else value[: n - 1] + "…"


def flows_table(flows: Sequence[FlowSummary]) -> str:
    rows = [["STARTED", "FLOW", "CLIENT", "SUBJECT", "SCOPES", "TIER", "CONTROLS", "OUTCOME", "AT"]]
    for f in flows:
        client = f.client_id or (f"?{f.client_claimed}" if f.client_claimed else None)
        rows.append([
            when(f.started_at),
            f.flow_id,
            _short(client, 24),
            _short(f.subject, 16),
            _short(" ".join(f.scopes), 28),
            f.tier or "-",
            controls_brief(f),
            f.outcome,
            f.stage,
        ])
    return table(rows)


def verify_text(rep: ChainReport) -> str:
    lines = [f"{rep.records} record(s) checked; chain head: {rep.head_seq}:{rep.head_hash}"]
    if rep.archived_through:
        lines.append(
            f"the stored chain starts after an archive of records 1-{rep.archived_through} (vouched for by the "
            "signed checkpoint at its cut; verify the archive files with --archive to prove nothing else went)"
        )
    if rep.checkpoints is not None:
        lines.append(
            f"signed checkpoints: {rep.checkpoints} valid, the last covering records 1-{rep.last_checkpoint}"
            if rep.checkpoints else "signed checkpoints: none yet"
        )
    if rep.ok:
        lines.append("OK: every record is intact and in order (keep the head above as an anchor: --anchor SEQ:HASH)")
    else:
        lines.append(f"FAILED: {len(rep.problems) + rep.more_problems} problem(s)")
        lines.extend(f"  {p}" for p in rep.problems)
        if rep.more_problems:
            lines.append(f"  ... and {rep.more_problems} more")
    return "\n".join(lines)


def report_text(r: Report) -> str:
    out: list[str] = [
        f"governance report, {when(r.generated_at)} — last {r.window_days} day(s)",
        f"flows: {r.coverage.flows} ({r.coverage.successful} successful)"
        + (" [truncated]" if r.truncated else ""),
        "",
        f"registration drift ({len({d.client_id for d in r.drift})} client(s), {len(r.drift)} rule(s)):",
    ]
    out += [f"  {d.client_id} [{d.tier}] {d.rule}: {d.error}: {d.description}" for d in r.drift] or ["  none"]
    out += ["", f"third-party clients with {r.high_rank_tier}-tier scopes ({len(r.exposure)}):"]
    out += [f"  {e.client_id} [{e.tier}] {' '.join(e.scopes)} — {'; '.join(e.via)}" for e in r.exposure] or ["  none"]
    out += ["", f"stale clients, no flow in {r.stale_days} days ({len(r.stale_clients)}):"]
    out += [
        f"  {c.client_id} [{c.kind}, {c.tier}] last activity "
        + (f"{when(c.last_activity)} ({c.idle_days} days)" if c.last_activity else "never")
        for c in r.stale_clients
    ] or ["  none"]
    out += ["", f"server keys older than {r.key_age_days} days ({len(r.old_keys)}):"]
    out += [f"  {k.kid} {k.alg} {k.use} {k.state} created {when(k.created_at)} ({k.age_days} days)"
            for k in r.old_keys] or ["  none"]
    cov = r.coverage
    out += ["", "coverage:"]
    if cov.flows:
        out.append("  flows per tier: " + ", ".join(f"{t} {n} ({pct(n / cov.flows)})" for t, n in cov.by_tier.items()))
        out.append("  flows per outcome: " + ", ".join(f"{o} {n} ({pct(n / cov.flows)})"
                                                       for o, n in cov.by_outcome.items()))
        rows = [["  CONTROL", "APPLIED", "OF", "SHARE"]]
        rows += [[f"  {s.control}", str(s.applied), str(s.eligible), pct(s.share) if s.eligible else "-"]
                 for s in cov.controls]
        out.append(table(rows))
        for tier, shares in cov.by_tier_controls.items():  # how flows met a control (its registry entry)
            out += [f"  {tier} {s.control}: " + ", ".join(f"{label} {n}" for label, n in sorted(s.how.items()))
                    for s in shares if s.how]
    else:
        out.append("  no flows in the window")
    return "\n".join(out)


def _matrix(r: Report) -> dict[str, Any]:
    tiers = list(r.coverage.by_tier_controls)
    rows = []
    for share in r.coverage.controls:
        cells = [pct(share.share) if share.eligible else "—"]
        for tier in tiers:
            hit = next((s for s in r.coverage.by_tier_controls[tier] if s.control == share.control), None)
            cells.append(pct(hit.share) if hit is not None and hit.eligible else "—")
        rows.append({"control": share.control, "cells": cells})
    how = [{"tier": tier, "control": s.control, "labels": sorted(s.how.items())}
           for tier in tiers for s in r.coverage.by_tier_controls[tier] if s.how]
    return {"tiers": tiers, "rows": rows, "how": how}


def _charts(r: Report) -> dict[str, Any]:
    cov = r.coverage
    return {
        "outcome_chart": stacked_by_day("Flows per day, by outcome", r.trends.days, r.trends.by_outcome, OUTCOME_COLORS),
        "tier_chart": stacked_by_day("Flows per day, by effective tier", r.trends.days, r.trends.by_tier, TIER_COLORS),
        "tier_share_chart": share_bars(
            "Share of flows per effective tier",
            [(t, n / cov.flows, f"{n} ({pct(n / cov.flows)})") for t, n in cov.by_tier.items()] if cov.flows else [],
        ),
        "control_chart": share_bars(
            "Controls applied, share of successful flows",
            [(s.control, s.share, f"{s.applied}/{s.eligible} ({pct(s.share)})") for s in cov.controls if s.eligible],
        ),
    }


def _plain_link(client_id: str, name: str) -> Markup:
    text = name if name == client_id else f"{name} ({client_id})"
    return Markup("<span>{}</span>").format(text)


def report_body(r: Report, *, client_href: Callable[[str], str] | None = None) -> Markup:
    """The report as an HTML fragment (autoescaped); ``client_href`` links client names (the dashboard)."""

    def client_link(client_id: str, name: str) -> Markup:
        if client_href is None:
            return _plain_link(client_id, name)
        return Markup('<a href="{}">{}</a>').format(client_href(client_id), name)

    html = _templates.get_template("report_body.html").render(
        r=r, when=when, pct=pct, client_link=client_link, matrix=_matrix(r), **_charts(r)
    )
    return Markup(html)  # noqa: S704 (rendered by the autoescaping environment above)


def report_html(r: Report, *, issuer: str) -> str:
    """A standalone HTML document: inline CSS (CSP nonce) and inline SVG; nothing loads from anywhere."""
    return _templates.get_template("report.html").render(
        r=r, when=when, issuer=issuer, nonce=secrets.token_urlsafe(16), body=report_body(r)
    )


def policy_text(check: PolicyCheck) -> str:
    """One line per finding: what would happen (a registration refused, a recorded flow failing), the client,
    the rule and why."""
    out = [f"policy {check.current} -> {check.proposed}"]
    out += [f"  {c}" for c in check.changes] or ["  (no difference)"]
    skipped = ""
    if check.clients_skipped or check.flows_skipped:
        skipped = (f" (skipped {check.clients_skipped} disabled client(s) and {check.flows_skipped} flow(s) of "
                   "disabled or deleted clients)")
    out.append(f"checked {check.clients_checked} active client registration(s) and {check.flows_checked} "
               f"recorded flow(s){skipped}")
    new = [f for f in check.findings if f.new]
    old = [f for f in check.findings if not f.new]
    if not new:
        out.append("nothing would break")
    else:
        out.append(f"WOULD BREAK ({len(new)}):")
    rows: list[list[str]] = []
    for f in new + old:
        who = f.client_id or "-"
        if f.client_name and f.client_name != f.client_id:
            who = f"{f.client_name} ({who})"
        what = f.verdict if f.kind == "registration" else f"{f.count} recorded flow(s) would fail"
        why = f.reason + ("" if f.new else " [already failing under the current policy]")
        if f.kind == "flow":
            why += f" (e.g. {', '.join(f.flow_ids)})"
        rows.append(["  " + what, who, f.rule or "-", why])
    if rows:
        out.append(table([["  WHAT", "CLIENT", "RULE", "WHY"], *rows]))
    return "\n".join(out)


def flows_query_string(**params: str | None) -> str:
    return urlencode({k: v for k, v in params.items() if v})


def json_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
