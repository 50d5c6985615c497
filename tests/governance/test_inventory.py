"""The inventory: the bulk reading equals the per-client one, and the filters and paging the CLI, the
dashboard and the admin API share."""

from __future__ import annotations

from dataclasses import replace

from jarmor.governance.inventory import InventoryQuery, client_summary, inventory, select_page
from jarmor.store import MemoryStore
from jarmor.store.base import ClientRecord, GrantRecord, TokenRecord

T0 = 1_800_000_000
DAY = 86400


async def _store() -> MemoryStore:
    store = MemoryStore()
    for i in range(12):
        meta = {"client_name": f"App {i}", "risk_tier": "high" if i % 3 == 0 else "baseline",
                "client_kind": "machine" if i % 2 else "third-party", "owner": "team-a" if i < 6 else "team-b"}
        await store.clients.create(ClientRecord(f"c{i:02}", meta, T0 - i * DAY, T0 - i * DAY,
                                                last_used_at=None if i % 4 else T0 - i * DAY))
        await store.client_key_history.observe(f"c{i:02}", [(f"tp{i}", f"k{i}")], T0 - i * DAY)
        for g in range(i % 3):
            await store.grants.create(GrantRecord(f"g{i}-{g}", f"c{i:02}", "alice", "openid", T0))
            await store.tokens.create(TokenRecord(f"t{i}-{g}", "access_token", f"c{i:02}", "alice", "openid",
                                                  f"g{i}-{g}", T0, T0 + 3600))
    rec = await store.clients.get("c05")
    assert rec is not None
    await store.clients.update(replace(rec, disabled_at=T0, disabled_reason="test", disabled_by="ops"))
    return store


async def test_bulk_inventory_equals_the_per_client_summaries() -> None:
    store = await _store()
    bulk = await inventory(store, T0 + 10)
    one_by_one = [await client_summary(store, r, T0 + 10) for r in await store.clients.list()]
    assert bulk == one_by_one and len(bulk) == 12
    assert {c.active_grants for c in bulk} == {0, 1, 2} and any(c.keys for c in bulk)


async def test_filters_and_paging() -> None:
    summaries = await inventory(await _store(), T0)
    page, total = select_page(summaries, InventoryQuery(tier="high"), T0)
    assert total == 4 and {c.risk_tier for c in page} == {"high"}
    page, total = select_page(summaries, InventoryQuery(kind="machine", owner="team-b"), T0)
    assert total == 3 and all(c.client_kind == "machine" and c.owner == "team-b" for c in page)
    assert select_page(summaries, InventoryQuery(disabled=True), T0)[1] == 1
    assert select_page(summaries, InventoryQuery(disabled=False), T0)[1] == 11
    stale, total = select_page(summaries, InventoryQuery(stale_days=5), T0)
    assert total == 7 and all(T0 - (c.last_used_at or c.created_at) >= 5 * DAY for c in stale)
    assert [c.client_id for c in select_page(summaries, InventoryQuery(text="APP 1"), T0)[0]] == ["c01", "c10", "c11"]
    first, total = select_page(summaries, InventoryQuery(limit=5), T0)
    second, _ = select_page(summaries, InventoryQuery(limit=5, offset=5), T0)
    assert total == 12 and len(first) == len(second) == 5 and not {c.client_id for c in first} & {c.client_id for c in second}
