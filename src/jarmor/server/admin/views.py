"""The dashboard's pages: the client inventory, a client's page (metadata, keys, grants, history, offboarding),
grant revocation and the audit log. The flow-record and report pages live in ``flows.py``."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlencode

from starlette.responses import JSONResponse, RedirectResponse, Response

from ...governance.inventory import InventoryQuery, client_summary, inventory, select_page
from ...governance.lifecycle import offboard, revoke_grant
from ...protocol.clients import CLIENT_KINDS
from .filters import DISABLED_CHOICES, ClientFilter
from .site import PREFIX, AdminContext, AdminView, admin_page, notice_page

# fixed confirmation messages (never reflected from the request)
DONE = {
    "offboarded": "The client was offboarded: it is disabled and its tokens and grants are revoked.",
    "grant-revoked": "The grant was revoked, with every token issued under it.",
}
MAX_AUDIT = 200


def client_href(client_id: str, **extra: str) -> str:
    return f"{PREFIX}/client?{urlencode({'id': client_id, **extra})}"


async def home(ctx: AdminContext) -> Response:
    return RedirectResponse(PREFIX + "/clients", status_code=303)


async def clients(ctx: AdminContext) -> Response:
    summaries = await inventory(ctx.store, ctx.now())
    summaries.sort(key=lambda c: (c.status != "active", c.name.lower(), c.client_id))
    chosen = ClientFilter.from_query(ctx.request.query_params)
    tiers = [t.name for t in sorted(ctx.env.policy.tiers.values(), key=lambda t: (t.rank, t.name))]
    tiers += sorted({c.risk_tier for c in summaries} - set(tiers))
    owners = sorted({c.owner for c in summaries if c.owner}, key=str.casefold)
    return admin_page(
        ctx,
        "admin/clients.html",
        {
            "clients": chosen.apply(summaries),
            "total": len(summaries),
            "href": client_href,
            "active": sum(c.status == "active" for c in summaries),
            "filter": chosen,
            "choices": {
                "tier": tiers,
                "kind": list(CLIENT_KINDS),
                "owner": owners + (["-"] if any(not c.owner for c in summaries) else []),
                "disabled": DISABLED_CHOICES,
            },
        },
        title="Clients",
    )


async def client(ctx: AdminContext) -> Response:
    client_id = ctx.request.query_params.get("id", "")
    record = await ctx.store.clients.get(client_id) if client_id else None
    if record is None:
        return notice_page(ctx, "Unknown client", "There is no client with this identifier.", status=404)
    now = ctx.now()
    summary = await client_summary(ctx.store, record, now)
    grants = await ctx.store.grants.list_for_client(client_id)
    live = Counter(t.grant_id for t in await ctx.store.tokens.list_for_client(client_id, active_at=now))
    grants.sort(key=lambda g: (g.revoked_at is not None, -g.created_at))
    rendered = []
    for section in ctx.dashboard.ordered_sections():
        template, data = await section.render(ctx, summary)
        rendered.append({"title": section.title, "template": template, "data": data})
    return admin_page(
        ctx,
        "admin/client.html",
        {
            "client": summary,
            "grants": grants[:100],
            "live": live,
            "events": await ctx.store.audit.list(target=f"client:{client_id}", limit=50),
            "metadata_json": json.dumps(record.metadata, indent=2, sort_keys=True),
            "sections": rendered,
            "done": DONE.get(ctx.request.query_params.get("done", "")),
            "offboard_action": PREFIX + "/client/offboard",
            "revoke_action": PREFIX + "/grant/revoke",
        },
        title=summary.name,
        nav_path="/clients",
    )


async def offboard_client(ctx: AdminContext) -> Response:
    client_id = ctx.form.get("client_id", "")
    result = await offboard(
        ctx.store, client_id, reason=ctx.form.get("reason", ""), by=ctx.actor, now=ctx.now()
    )
    ctx.server.directory.invalidate(result.client_id)
    return RedirectResponse(client_href(client_id, done="offboarded"), status_code=303)


async def revoke_grant_view(ctx: AdminContext) -> Response:
    result = await revoke_grant(
        ctx.store, ctx.form.get("grant_id", ""), reason=ctx.form.get("reason", ""), by=ctx.actor, now=ctx.now()
    )
    return RedirectResponse(client_href(result.grant.client_id, done="grant-revoked"), status_code=303)


async def audit(ctx: AdminContext) -> Response:
    events = await ctx.store.audit.list(limit=MAX_AUDIT)
    names: dict[str, str] = {}
    for target in dict.fromkeys(e.target for e in events if e.target and e.target.startswith("client:")):
        client = await ctx.server.directory.get(target[len("client:"):])
        if client is not None:
            names[target] = client.name
    return admin_page(
        ctx, "admin/audit.html", {"events": events, "limit": MAX_AUDIT, "names": names}, title="Audit log"
    )


def _int_param(ctx: AdminContext, name: str, default: int, *, least: int = 0, most: int = 10_000) -> int | None:
    value = ctx.request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit() or not least <= int(value) <= most:
        return None
    return int(value)


async def clients_api(ctx: AdminContext) -> Response:
    """The inventory as JSON, for scripts (the dashboard's data, same session): ``tier``, ``kind``, ``owner``,
    ``status`` (active | disabled), ``stale_days``, ``q`` (client_id or name contains), ``offset``, ``limit``."""
    params = ctx.request.query_params
    offset, limit = _int_param(ctx, "offset", 0, most=10**9), _int_param(ctx, "limit", 100, least=1, most=1000)
    stale = _int_param(ctx, "stale_days", 0, most=100_000) if "stale_days" in params else None
    status = params.get("status")
    if offset is None or limit is None or ("stale_days" in params and stale is None) or status not in (
        None, "active", "disabled"
    ):
        return JSONResponse({"error": "invalid_request", "error_description": "a query parameter is out of range"},
                            status_code=400, headers={"Cache-Control": "no-store"})
    query = InventoryQuery(
        tier=params.get("tier"), kind=params.get("kind"), owner=params.get("owner"), stale_days=stale,
        text=params.get("q"), disabled=None if status is None else status == "disabled", offset=offset, limit=limit,
    )
    now = ctx.now()
    page, total = select_page(await inventory(ctx.store, now), query, now)
    return JSONResponse(
        {"total": total, "offset": offset, "limit": limit, "clients": [c.to_json() for c in page]},
        headers={"Cache-Control": "no-store"},
    )


# the pages this module serves, listed in ``server/admin/__init__.py``'s ``DASHBOARD``
VIEWS = (
    AdminView("", home),
    AdminView("/clients", clients, nav="Clients", nav_order=10),
    AdminView("/client", client),
    AdminView("/client/offboard", offboard_client, methods=("POST",)),
    AdminView("/grant/revoke", revoke_grant_view, methods=("POST",)),
    AdminView("/audit", audit, nav="Audit log", nav_order=90),
    AdminView("/api/clients", clients_api),
)
