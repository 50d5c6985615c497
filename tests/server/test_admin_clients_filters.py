"""The dashboard's client search and filters (``server/admin/filters.py``), tier badge colours
(``site.tier_classes``) and client names on the flow pages."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from jarmor.governance.inventory import ClientSummary
from jarmor.protocol.policy import DEFAULT_TIERS, Policy, Tier
from jarmor.server.admin.filters import ClientFilter
from jarmor.server.admin.site import tier_classes
from tests.kit import Kit

from .support import plain_request
from .test_admin import admin_kit, cheap_hashing, signed_in  # noqa: F401  (fixtures)


def summary(client_id: str, **kw: object) -> ClientSummary:
    base = ClientSummary(
        client_id=client_id, name=client_id, risk_tier="baseline", client_kind="third-party", owner=None,
        contacts=[], auth_method="private_key_jwt", grant_types=[], scopes=None, redirect_uris=[],
        resource_server=False, key_source=None, jwks_uri=None, keys=[], created_at=0, updated_at=0,
        last_used_at=None, disabled_at=None, disabled_reason=None, disabled_by=None, active_grants=0,
        active_tokens=0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


CLIENTS = [
    summary("c-shop", name="Shop Front", owner="team-shop", contacts=["ops@shop.example"]),
    summary("c-pay", name="Payments", risk_tier="high", owner="team-pay", client_kind="first-party"),
    summary("c-batch", name="Nightly batch", client_kind="machine", disabled_at=5, disabled_reason="old"),
    summary("c-anon", name="c-anon", risk_tier="elevated"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["c-shop", "c-pay", "c-batch", "c-anon"]),
        ({"q": "SHOP"}, ["c-shop"]),  # name, case-insensitive
        ({"q": "ops@shop"}, ["c-shop"]),  # a contact
        ({"q": "team-pay"}, ["c-pay"]),  # the owner
        ({"q": "c-ba"}, ["c-batch"]),  # the client_id
        ({"tier": "high"}, ["c-pay"]),
        ({"kind": "machine"}, ["c-batch"]),
        ({"owner": "team-shop"}, ["c-shop"]),
        ({"owner": "-"}, ["c-batch", "c-anon"]),  # no owner
        ({"disabled": "yes"}, ["c-batch"]),
        ({"disabled": "no"}, ["c-shop", "c-pay", "c-anon"]),
        ({"disabled": "maybe"}, ["c-shop", "c-pay", "c-batch", "c-anon"]),  # unknown value: no filter
        ({"kind": "third-party", "disabled": "no", "q": "ANON"}, ["c-anon"]),
        ({"tier": "nope"}, []),
    ],
)
def test_filter_logic(query: dict[str, str], expected: list[str]) -> None:
    chosen = ClientFilter.from_query(query)
    assert [c.client_id for c in chosen.apply(CLIENTS)] == expected
    assert chosen.active == any(v for k, v in query.items() if k != "disabled" or v in ("yes", "no"))


def test_parameters_are_bounded_and_printable() -> None:
    chosen = ClientFilter.from_query({"q": "  a\x00b\n" + "x" * 500, "owner": "\u202eteam "})
    assert chosen.q == "ab" + "x" * 198 and chosen.owner == "team"


def test_tier_colours_follow_rank() -> None:
    tier_class = tier_classes(Policy())
    assert [tier_class(t) for t in ("baseline", "elevated", "high", "critical")] == [
        "tier tier-0", "tier tier-1", "tier tier-2", "tier tier-3"
    ]
    assert tier_class("retired") == tier_class(None) == "tier grey"
    two = Policy(tiers={"baseline": DEFAULT_TIERS["baseline"], "top": Tier(name="top", rank=9, controls=frozenset())})
    assert tier_classes(two)("top") == "tier tier-3" and tier_classes(two)("baseline") == "tier tier-0"


async def test_clients_page_filters_and_keeps_the_form(admin_kit: Kit) -> None:  # noqa: F811
    kit = admin_kit
    await kit.add_client(client_name="Shop Front", owner="team-shop")
    await kit.add_client(client_name="Payments", owner="team-pay", risk_tier="elevated", scope="openid",
                         response_modes=["jwt"], require_signed_request_object=True)
    await signed_in(kit)
    page = await kit.http.get("/admin/clients")
    assert page.status_code == 200 and "Shop Front" in page.text and "Payments" in page.text
    assert '<span class="badge tier tier-1">elevated</span>' in page.text
    assert '<span class="badge tier tier-0">baseline</span>' in page.text
    r = await kit.http.get("/admin/clients", params={"tier": "elevated", "q": '"><script>x</script>'})
    assert "Payments" not in r.text and 'id="no-match"' in r.text
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in r.text and "<script>x" not in r.text
    r = await kit.http.get("/admin/clients", params={"tier": "elevated", "owner": "team-pay", "disabled": "no"})
    rows = re.findall(r'<tr data-client-id="[^"]+">\s*<td class="name"><a href="[^"]+">([^<]+)</a>', r.text)
    assert rows == ["Payments"]
    assert '<option value="elevated" selected>' in r.text and '<option value="team-pay" selected>' in r.text
    assert '<option value="no" selected>' in r.text and 'id="filter-count">1 of 2 clients match.' in r.text


async def test_flow_and_audit_pages_show_client_names(admin_kit: Kit) -> None:  # noqa: F811
    kit = admin_kit
    kit.server.env.settings = replace(kit.server.env.settings, auto_approve="alice")
    client = await kit.add_client(client_name="Shop <Front>")
    assert (await kit.authorize(plain_request(client)[0])).status_code == 303
    await kit.server.flows.flush()
    await signed_in(kit)
    r = await kit.http.get("/admin/flows")
    assert f'>Shop &lt;Front&gt;</a><div class="muted mono">{client.client_id}</div>' in r.text
    flow = re.search(r'href="(/admin/flow\?id=[^"]+)"', r.text)
    assert flow
    detail = await kit.http.get(flow.group(1).replace("&amp;", "&"))
    assert f">Shop &lt;Front&gt;</a> <code>{client.client_id}</code>" in detail.text
    audit = await kit.http.get("/admin/audit")
    assert f'>Shop &lt;Front&gt;</a><div class="muted mono">{client.client_id}</div>' in audit.text
