"""Storage contract for the governance records, on every store: administrators, the append-only audit log,
client key first-seen times, and the two conditional client updates (registration token swap, disable)."""

from __future__ import annotations

import asyncio

import pytest

from jarmor.store import AlreadyExists, ClientRecord, Store
from jarmor.store.base import AdminEvent, AdminRecord

from .conftest import T0


def client(client_id: str = "c1", token_hash: str | None = "h1") -> ClientRecord:
    return ClientRecord(client_id, {"client_name": "A", "scope": "openid"}, T0, T0, "secret-h", token_hash)


async def test_admins(store: Store) -> None:
    assert await store.admins.get("root") is None
    await store.admins.create(AdminRecord("root", "argon2-hash", T0))
    with pytest.raises(AlreadyExists):
        await store.admins.create(AdminRecord("root", "other", T0))
    got = await store.admins.get("root")
    assert got == AdminRecord("root", "argon2-hash", T0, False)
    got.disabled = True
    await store.admins.update(got)
    assert (await store.admins.get("root")) == AdminRecord("root", "argon2-hash", T0, True)
    await store.admins.create(AdminRecord("ops", "h", T0 + 1))
    assert [a.username for a in await store.admins.list()] == ["root", "ops"]


async def test_audit_log_is_ordered_newest_first(store: Store) -> None:
    for i in range(5):
        await store.audit.append(AdminEvent(at=T0 + i, actor="admin:root", action="client.offboard",
                                            target=f"client:c{i % 2}", reason=f"r{i}", details={"n": i, "s": "é"}))
    events = await store.audit.list()
    assert [e.reason for e in events] == ["r4", "r3", "r2", "r1", "r0"]
    assert all(e.seq is not None for e in events)
    seqs = [e.seq for e in events if e.seq is not None]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 5
    assert events[0].details == {"n": 4, "s": "é"} and events[0].target == "client:c0"
    assert [e.reason for e in await store.audit.list(target="client:c1")] == ["r3", "r1"]
    assert [e.reason for e in await store.audit.list(limit=2)] == ["r4", "r3"]
    assert not hasattr(store.audit, "delete") and not hasattr(store.audit, "update"), "append-only"


async def test_client_keys_first_seen(store: Store) -> None:
    await store.client_key_history.observe("c1", [("tp-a", "a"), ("tp-b", "b")], T0)
    await store.client_key_history.observe("c2", [("tp-a", "a")], T0 + 5)
    keys = await store.client_key_history.list_for_client("c1")
    assert [(k.thumbprint, k.kid, k.first_seen_at, k.removed_at) for k in keys] == [
        ("tp-a", "a", T0, None), ("tp-b", "b", T0, None)
    ]
    # rotation: b stays (renamed kid), a goes, c arrives
    await store.client_key_history.observe("c1", [("tp-b", "b2"), ("tp-c", "c")], T0 + 100)
    keys = {k.thumbprint: k for k in await store.client_key_history.list_for_client("c1")}
    assert (keys["tp-a"].removed_at, keys["tp-b"].first_seen_at, keys["tp-b"].kid) == (T0 + 100, T0, "b2")
    assert (keys["tp-c"].first_seen_at, keys["tp-c"].removed_at) == (T0 + 100, None)
    # a key that comes back keeps its age
    await store.client_key_history.observe("c1", [("tp-a", "a")], T0 + 200)
    keys = {k.thumbprint: k for k in await store.client_key_history.list_for_client("c1")}
    assert (keys["tp-a"].first_seen_at, keys["tp-a"].removed_at) == (T0, None)
    assert keys["tp-b"].removed_at == T0 + 200 and keys["tp-c"].removed_at == T0 + 200
    assert [k.first_seen_at for k in await store.client_key_history.list_for_client("c2")] == [T0 + 5]
    await store.client_key_history.observe("c2", [], T0 + 300)
    assert [k.removed_at for k in await store.client_key_history.list_for_client("c2")] == [T0 + 300]


async def test_replace_registration_is_conditional(store: Store) -> None:
    await store.clients.create(client())
    await store.clients.touch("c1", T0 + 50)
    new = client(token_hash="h2")
    new.metadata = {"client_name": "B"}
    new.updated_at, new.secret_hash = T0 + 60, None
    assert not await store.clients.replace_registration(new, "wrong")
    assert await store.clients.replace_registration(new, "h1")
    got = await store.clients.get("c1")
    assert got is not None
    assert (got.metadata, got.updated_at, got.secret_hash, got.registration_token_hash) == (
        {"client_name": "B"}, T0 + 60, None, "h2"
    )
    assert got.last_used_at == T0 + 50 and got.created_at == T0, "other columns untouched"
    assert not await store.clients.replace_registration(new, "h1"), "the old token hash is spent"
    assert not await store.clients.replace_registration(client("missing"), "h1")


async def test_concurrent_registration_swaps_succeed_once(store: Store) -> None:
    await store.clients.create(client())
    results = await asyncio.gather(
        *(store.clients.replace_registration(client(token_hash=f"n{i}"), "h1") for i in range(8))
    )
    assert sorted(results) == [False] * 7 + [True]


async def test_disable(store: Store) -> None:
    await store.clients.create(client())
    assert await store.clients.disable("c1", at=T0 + 9, reason="contract ended", by="admin:root")
    got = await store.clients.get("c1")
    assert got is not None
    assert (got.disabled_at, got.disabled_reason, got.disabled_by) == (T0 + 9, "contract ended", "admin:root")
    assert not await store.clients.disable("c1", at=T0 + 10, reason="again", by="cli")
    assert (await store.clients.get("c1")).disabled_reason == "contract ended"  # type: ignore[union-attr]
    assert not await store.clients.disable("missing", at=T0, reason="x", by="y")
    assert not await store.clients.replace_registration(client(token_hash="h2"), "h1"), (
        "a disabled client's registration cannot change (an update never undoes an offboarding)"
    )
