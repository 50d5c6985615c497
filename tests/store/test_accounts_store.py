"""``AccountStore`` contract on every backend: authenticators, single-use TOTP steps, passkey counters and the
grants one user gave (with when each was last used)."""

from __future__ import annotations

import asyncio

import pytest

from jarmor.store import Store
from jarmor.store.base import AlreadyExists, AuthenticatorRecord, GrantRecord, TokenRecord

from .conftest import T0


def passkey(aid: str = "a1", cred: str = "cred-1", user: str = "alice") -> AuthenticatorRecord:
    return AuthenticatorRecord(
        aid, "user", user, "passkey", T0, label="laptop", credential_id=cred, public_key="pk",
        sign_count=3, transports=("internal", "hybrid"), backup_eligible=True, backup_state=False,
        user_verified=True,
    )


def totp(aid: str = "t1", user: str = "alice") -> AuthenticatorRecord:
    return AuthenticatorRecord(aid, "user", user, "totp", T0 + 1, label="phone", secret="aesgcm:v1:sealed")


async def test_round_trip_and_listing(store: Store) -> None:
    await store.accounts.add(passkey())
    await store.accounts.add(totp())
    await store.accounts.add(passkey("a2", "cred-2", user="bob"))
    assert await store.accounts.get("a1") == passkey()
    assert await store.accounts.by_credential("cred-1") == passkey()
    assert await store.accounts.by_credential("nope") is None
    assert [r.authenticator_id for r in await store.accounts.list_for("user", "alice")] == ["a1", "t1"]
    assert await store.accounts.list_for("admin", "alice") == []
    assert await store.accounts.get("nul\x00") is None


async def test_ids_and_credential_ids_are_unique(store: Store) -> None:
    await store.accounts.add(passkey())
    with pytest.raises(AlreadyExists):
        await store.accounts.add(passkey("a1", "other"))
    with pytest.raises(AlreadyExists):
        await store.accounts.add(passkey("a9", "cred-1", user="bob"))


async def test_remove_only_the_owners(store: Store) -> None:
    await store.accounts.add(passkey())
    assert not await store.accounts.remove("user", "bob", "a1")
    assert not await store.accounts.remove("admin", "alice", "a1")
    assert await store.accounts.remove("user", "alice", "a1")
    assert not await store.accounts.remove("user", "alice", "a1")
    assert await store.accounts.get("a1") is None


async def test_totp_step_is_used_once_and_never_backwards(store: Store) -> None:
    await store.accounts.add(totp())
    assert await store.accounts.use_totp_step("t1", 100, T0)
    assert not await store.accounts.use_totp_step("t1", 100, T0)
    assert not await store.accounts.use_totp_step("t1", 99, T0)
    assert await store.accounts.use_totp_step("t1", 101, T0 + 30)
    rec = await store.accounts.get("t1")
    assert rec is not None and rec.last_step == 101 and rec.last_used_at == T0 + 30


async def test_concurrent_use_of_one_step_succeeds_once(store: Store) -> None:
    await store.accounts.add(totp())
    results = await asyncio.gather(*(store.accounts.use_totp_step("t1", 500, T0) for _ in range(30)))
    assert results.count(True) == 1


async def test_passkey_counter_must_grow(store: Store) -> None:
    await store.accounts.add(passkey())
    assert not await store.accounts.use_passkey("a1", 3, True, T0)  # not grown: a cloned authenticator
    assert await store.accounts.use_passkey("a1", 4, True, T0 + 5)
    rec = await store.accounts.get("a1")
    assert rec is not None and rec.sign_count == 4 and rec.backup_state and rec.last_used_at == T0 + 5
    results = await asyncio.gather(*(store.accounts.use_passkey("a1", 5, True, T0) for _ in range(20)))
    assert results.count(True) == 1
    assert not await store.accounts.use_totp_step("a1", 1, T0)  # a passkey has no steps


async def test_passkey_without_counter(store: Store) -> None:
    rec = passkey()
    rec.sign_count = 0
    await store.accounts.add(rec)
    assert await store.accounts.use_passkey("a1", 0, False, T0)
    assert await store.accounts.use_passkey("a1", 0, False, T0)


async def test_grants_of_a_user_with_last_use(store: Store) -> None:
    await store.grants.create(GrantRecord("g1", "c1", "alice", "openid", T0))
    await store.grants.create(GrantRecord("g2", "c2", "alice", "openid email", T0 + 10))
    await store.grants.create(GrantRecord("g3", "c1", "bob", "openid", T0))
    await store.grants.create(GrantRecord("g4", "c3", "alice", "openid", T0 + 20))
    await store.grants.revoke("g4", T0 + 21)
    for i, at in enumerate((T0 + 50, T0 + 70)):
        await store.tokens.create(TokenRecord(f"h{i}", "access_token", "c1", "alice", "openid", "g1", at, at + 60))
    uses = await store.accounts.grants_of("alice")
    assert [(u.grant.grant_id, u.last_used_at) for u in uses] == [("g2", None), ("g1", T0 + 70)]
    assert uses[0].grant.scope == "openid email"
    assert await store.accounts.grants_of("nobody") == []
