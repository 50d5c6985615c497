"""Dashboard pages for flow integrity records and the governance report (governance, part 1).

* ``/admin/flows`` — one row per transaction, filtered by client, outcome and ``since`` (GET form: filtering
  changes nothing); ``/admin/flow?id=`` — one transaction: its hops, the controls evidenced, the decision;
* ``POST /admin/flows/verify`` — verify the hash chain now (a POST, behind the session's CSRF token: it
  reads the whole chain, which a cross-site link must not be able to trigger);
* ``/admin/report`` — the governance report with its inline SVG charts (``governance.render.report_body``);
* the "Recent flows" section of a client's page.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ...governance import render
from ...governance.chain import verify
from ...governance.flows import FlowSummary, summarize
from ...governance.inventory import ClientSummary
from ...governance.query import OUTCOME_HELP, FlowQuery, QueryError, find_flows, parse_since
from ...governance.reports import load_report
from .site import PREFIX, AdminContext, AdminView, ClientSection, admin_page, notice_page
from .views import client_href

PAGE_SIZE = 200
SECTION_SIZE = 10
OUTCOME_CHOICES = ("", "success", "error", "incomplete", "pending")
BADGE = {"success": "ok", "error": "bad", "incomplete": "warn", "pending": "grey"}


def flow_href(flow_id: str) -> str:
    return f"{PREFIX}/flow?{render.flows_query_string(id=flow_id)}"


async def _client_names(ctx: AdminContext, flows: list[FlowSummary]) -> dict[str, str]:
    """Display names of the (verified) clients of ``flows``, through the server's client cache."""
    names: dict[str, str] = {}
    for client_id in dict.fromkeys(f.client_id for f in flows if f.client_id):
        client = await ctx.server.directory.get(client_id)
        if client is not None:
            names[client_id] = client.name
    return names


def _rows(flows: list[FlowSummary], names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    names = names or {}
    return [
        {
            "flow": f,
            "href": flow_href(f.flow_id),
            "client_href": client_href(f.client_id) if f.client_id else None,
            "client_name": names.get(f.client_id) if f.client_id else None,
            "controls": render.controls_brief(f),
            "badge": BADGE.get(f.outcome_class, "grey"),
        }
        for f in flows
    ]


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value or default), low), high)
    except ValueError:
        return default


async def flows(ctx: AdminContext) -> Response:
    q = ctx.request.query_params
    now = ctx.now()
    client = q.get("client", "").strip()[:256]
    outcome = q.get("outcome", "").strip()[:64]
    since_text = q.get("since", "").strip()[:64]
    try:
        since = parse_since(since_text, now) if since_text else None
    except QueryError as exc:
        return notice_page(ctx, "Flow records", str(exc))
    found = await find_flows(
        ctx.store.flows, FlowQuery(client_id=client or None, since=since, outcome=outcome or None, limit=PAGE_SIZE),
        now,
    )
    head = await ctx.store.flows.head()
    return admin_page(
        ctx,
        "admin/flows.html",
        {
            "rows": _rows(found, await _client_names(ctx, found)),
            "filters": {"client": client, "outcome": outcome, "since": since_text},
            "outcomes": OUTCOME_CHOICES,
            "outcome_help": OUTCOME_HELP,
            "limit": PAGE_SIZE,
            "head": head,
            "verify_action": PREFIX + "/flows/verify",
        },
        title="Flow records",
    )


async def flow(ctx: AdminContext) -> Response:
    flow_id = ctx.request.query_params.get("id", "")[:64]
    rows = await ctx.store.flows.of_flow(flow_id) if flow_id else []
    summaries = summarize(rows, ctx.now())
    if not summaries:
        return notice_page(ctx, "Unknown flow", "There is no flow record with this identifier.", status=404)
    f = summaries[0]
    return admin_page(
        ctx,
        "admin/flow.html",
        {
            "f": f,
            "row": _rows([f], await _client_names(ctx, [f]))[0],
            "records": rows,
            "controls_json": render.json_pretty(f.controls),
        },
        title=f"Flow {f.flow_id}",
    )


async def verify_chain(ctx: AdminContext) -> Response:
    report = await verify(ctx.store.flows)
    return admin_page(ctx, "admin/flows_verify.html", {"report": report}, title="Flow record chain",
                      status=200 if report.ok else 409)


async def report(ctx: AdminContext) -> Response:
    q = ctx.request.query_params
    days = _int(q.get("days"), 30, 1, 366)
    stale_days = _int(q.get("stale_days"), 90, 0, 3650)
    key_age_days = _int(q.get("key_age_days"), 180, 0, 3650)
    rep = await load_report(
        ctx.store, now=ctx.now(), policy=ctx.env.policy, caps=ctx.env.capabilities(), window_days=days,
        stale_days=stale_days, key_age_days=key_age_days,
    )
    return admin_page(
        ctx,
        "admin/report.html",
        {
            "body": render.report_body(rep, client_href=client_href),
            "params": {"days": days, "stale_days": stale_days, "key_age_days": key_age_days},
        },
        title="Report",
    )


async def recent_flows(ctx: AdminContext, client: ClientSummary) -> tuple[str, dict[str, Any]]:
    found = await find_flows(ctx.store.flows, FlowQuery(client_id=client.client_id, limit=SECTION_SIZE), ctx.now())
    return "admin/client_flows.html", {
        "rows": _rows(found),
        "all_href": f"{PREFIX}/flows?{render.flows_query_string(client=client.client_id)}",
        "size": SECTION_SIZE,
    }


# the pages this module serves, listed in ``server/admin/__init__.py``'s ``DASHBOARD``
VIEWS = (
    AdminView("/flows", flows, nav="Flow records", nav_order=20),
    AdminView("/flow", flow),
    AdminView("/flows/verify", verify_chain, methods=("POST",)),
    AdminView("/report", report, nav="Report", nav_order=30),
)
SECTIONS = (ClientSection("Recent flows", recent_flows, order=40),)
