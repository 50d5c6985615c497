"""The storage contract (``jarmor.store.base``), run against every implementation.

Each test receives ``store`` parametrized over ``MemoryStore``, ``SqlStore`` on in-memory SQLite, on an SQLite
file and on PostgreSQL, and the composite store with its ephemeral records in Redis (see ``conftest.py``), all
driven by the same fake clock (except Redis expiry, which runs on Redis's own clock).
"""

from __future__ import annotations

import dataclasses

import pytest

from jarmor.store import (
    AlreadyExists,
    ClientRecord,
    GrantRecord,
    ServerKeyRecord,
    Store,
    TokenRecord,
    UserRecord,
)

from .conftest import T0, FakeClock

# ---------------------------------------------------------------------------------------------- ephemeral


async def test_put_get_delete(store: Store) -> None:
    eph = store.ephemeral
    assert await eph.get("par", "k") is None
    await eph.put("par", "k", b"v1", 60)
    assert await eph.get("par", "k") == b"v1"
    assert await eph.get("par", "k") == b"v1", "get does not consume"
    await eph.put("par", "k", b"v2", 60)
    assert await eph.get("par", "k") == b"v2", "put replaces"
    await eph.delete("par", "k")
    assert await eph.get("par", "k") is None
    await eph.delete("par", "k")  # deleting an absent key is fine


async def test_namespaces_are_separate(store: Store) -> None:
    eph = store.ephemeral
    await eph.put("par", "k", b"par", 60)
    await eph.put("code", "k", b"code", 60)
    assert await eph.take("par", "k") == b"par"
    assert await eph.get("code", "k") == b"code"
    assert await eph.add_once("jti", "k", 60) is True


@pytest.mark.parametrize("value", [b"", bytes(range(256)), b"\x00" * 3, b"x" * 65536])
async def test_values_round_trip(store: Store, value: bytes) -> None:
    await store.ephemeral.put("ns", "k", value, 60)
    assert await store.ephemeral.get("ns", "k") == value
    assert await store.ephemeral.take("ns", "k") == value


async def test_ttl_expiry(store: Store, fake_clock_ephemeral: FakeClock) -> None:
    clock = fake_clock_ephemeral
    eph = store.ephemeral
    await eph.put("par", "k", b"v", 10)
    clock.advance(9)
    assert await eph.get("par", "k") == b"v"
    clock.advance(1)
    assert await eph.get("par", "k") is None
    assert await eph.take("par", "k") is None
    await eph.put("par", "k", b"again", 10)
    assert await eph.take("par", "k") == b"again", "an expired key can be written again"


async def test_take_is_single_use(store: Store) -> None:
    eph = store.ephemeral
    assert await eph.take("code", "c") is None
    await eph.put("code", "c", b"grant", 60)
    assert await eph.take("code", "c") == b"grant"
    assert await eph.take("code", "c") is None
    assert await eph.get("code", "c") is None


async def test_add_once_replay_then_expiry(store: Store, fake_clock_ephemeral: FakeClock) -> None:
    clock = fake_clock_ephemeral
    eph = store.ephemeral
    assert await eph.add_once("jti", "j1", 30) is True
    assert await eph.add_once("jti", "j1", 30) is False
    clock.advance(29)
    assert await eph.add_once("jti", "j1", 30) is False, "a replay does not extend or reset the mark"
    clock.advance(1)
    assert await eph.add_once("jti", "j1", 30) is True, "an expired mark counts as absent"
    assert await eph.add_once("jti", "j1", 30) is False
    clock.advance(30)
    assert await eph.add_once("jti", "j1", 30) is True


async def test_add_once_sees_put_and_take(store: Store) -> None:
    eph = store.ephemeral
    await eph.put("ns", "k", b"v", 60)
    assert await eph.add_once("ns", "k", 60) is False
    assert await eph.take("ns", "k") == b"v"
    assert await eph.add_once("ns", "k", 60) is True
    await eph.delete("ns", "k")
    assert await eph.add_once("ns", "k", 60) is True


async def test_take_and_mark_takes_and_leaves_the_mark(store: Store) -> None:
    eph = store.ephemeral
    await eph.put("code", "k", b"record", 60)
    assert await eph.take_and_mark("code", "k", "code-used", b"grant\x00flow", 3600) == b"record"
    assert await eph.get("code", "k") is None
    assert await eph.get("code-used", "k") == b"grant\x00flow"
    # taken already: nothing is returned and the mark is left as it was
    assert await eph.take_and_mark("code", "k", "code-used", b"other", 3600) is None
    assert await eph.get("code-used", "k") == b"grant\x00flow"
    # never stored: no mark
    assert await eph.take_and_mark("code", "absent", "code-used", b"x", 3600) is None
    assert await eph.get("code-used", "absent") is None


async def test_take_and_mark_of_an_expired_record_marks_nothing(
    store: Store, fake_clock_ephemeral: FakeClock
) -> None:
    eph = store.ephemeral
    await eph.put("code", "k", b"record", 10)
    fake_clock_ephemeral.advance(10)
    assert await eph.take_and_mark("code", "k", "code-used", b"x", 3600) is None
    assert await eph.get("code-used", "k") is None


async def test_take_and_mark_mark_expires(store: Store, fake_clock_ephemeral: FakeClock) -> None:
    eph = store.ephemeral
    await eph.put("code", "k", b"record", 60)
    assert await eph.take_and_mark("code", "k", "code-used", b"x", 30) == b"record"
    fake_clock_ephemeral.advance(29)
    assert await eph.get("code-used", "k") == b"x"
    fake_clock_ephemeral.advance(1)
    assert await eph.get("code-used", "k") is None


async def test_incr_counts_from_one(store: Store) -> None:
    eph = store.ephemeral
    assert [await eph.incr("attempts", "k", 60) for _ in range(3)] == [1, 2, 3]
    assert await eph.get("attempts", "k") == b"3", "a counter reads as its decimal digits"
    assert await eph.incr("attempts", "other", 60) == 1, "keys count separately"
    assert await eph.incr("elsewhere", "k", 60) == 1, "namespaces count separately"
    assert await eph.incr("attempts", "k", 60, by=-1) == 2
    assert await eph.incr("attempts", "k", 60, by=5) == 7
    assert await eph.take("attempts", "k") == b"7"
    assert await eph.incr("attempts", "k", 60) == 1, "a taken counter starts again"
    await eph.delete("attempts", "k")
    assert await eph.incr("attempts", "k", 60, by=-1) == -1, "an absent counter starts from zero"


async def test_incr_window_is_fixed_then_starts_again(store: Store, fake_clock_ephemeral: FakeClock) -> None:
    clock = fake_clock_ephemeral
    eph = store.ephemeral
    assert await eph.incr("attempts", "k", 30) == 1
    clock.advance(29)
    assert await eph.incr("attempts", "k", 30) == 2, "still in the window"
    clock.advance(1)
    assert await eph.get("attempts", "k") is None, "an increment does not extend the window"
    assert await eph.incr("attempts", "k", 30) == 1, "an expired counter starts from zero"
    clock.advance(29)
    assert await eph.incr("attempts", "k", 30) == 2
    clock.advance(1)
    assert await eph.incr("attempts", "k", 30) == 1


async def test_incr_keys_with_any_characters(store: Store) -> None:
    key = "client\x00" + "\u00fc" * 2000
    assert await store.ephemeral.incr("attempts", key, 60) == 1
    assert await store.ephemeral.incr("attempts", key, 60) == 2
    assert await store.ephemeral.incr("attempts", key[:-1], 60) == 1


# ------------------------------------------------------------------------------------------------ clients


def _client(client_id: str = "c1", **kw: object) -> ClientRecord:
    fields: dict[str, object] = {
        "client_id": client_id,
        "metadata": {
            "redirect_uris": ["https://rp.example/cb", "https://rp.example/cb2"],
            "client_name": "Relying Party \u2603 \u2013 \u00fc \U0001f511",
            "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AAA", "y": "BBB"}]},
            "default_max_age": 3600,
            "ratio": 0.25,
            "require_pushed_authorization_requests": True,
            "logo_uri": None,
            "nested": {"a": [1, 2, {"b": [True, False, None]}]},
            "zz": 1,
            "aa": 2,
        },
        "created_at": T0,
        "updated_at": T0,
        "secret_hash": "argon2$abc",
        "registration_token_hash": "sha256$def",
    }
    fields.update(kw)
    return ClientRecord(**fields)  # type: ignore[arg-type]


async def test_client_round_trip(store: Store) -> None:
    rec = _client(disabled_at=T0 + 5, disabled_reason="compromised", disabled_by="admin", last_used_at=T0 + 1)
    await store.clients.create(rec)
    got = await store.clients.get("c1")
    assert got == rec
    assert got is not None
    assert list(got.metadata) == list(rec.metadata), "metadata key order is kept"
    assert await store.clients.get("missing") is None


async def test_client_minimal_round_trip(store: Store) -> None:
    rec = ClientRecord("https://rp.example/client.json", {}, T0, T0)
    await store.clients.create(rec)
    assert await store.clients.get(rec.client_id) == rec


async def test_client_create_duplicate(store: Store) -> None:
    await store.clients.create(_client())
    with pytest.raises(AlreadyExists):
        await store.clients.create(_client(metadata={"other": True}))
    got = await store.clients.get("c1")
    assert got is not None and got.metadata == _client().metadata, "the first record is untouched"


async def test_client_returned_record_is_a_copy(store: Store) -> None:
    await store.clients.create(_client())
    got = await store.clients.get("c1")
    assert got is not None
    got.metadata["redirect_uris"].append("https://evil.example/")
    again = await store.clients.get("c1")
    assert again is not None and again.metadata == _client().metadata


async def test_client_update_delete_list_count(store: Store) -> None:
    assert await store.clients.count() == 0
    assert await store.clients.list() == []
    await store.clients.create(_client("c1"))
    await store.clients.create(_client("c2", created_at=T0 + 1))
    assert await store.clients.count() == 2

    updated = _client("c1", metadata={"client_name": "renamed"}, updated_at=T0 + 10, secret_hash=None)
    await store.clients.update(updated)
    assert await store.clients.get("c1") == updated
    assert sorted(c.client_id for c in await store.clients.list()) == ["c1", "c2"]

    assert await store.clients.delete("c1") is True
    assert await store.clients.delete("c1") is False
    assert await store.clients.get("c1") is None
    assert await store.clients.count() == 1
    assert [c.client_id for c in await store.clients.list()] == ["c2"]


async def test_client_state_is_the_version_and_the_disabled_mark(store: Store) -> None:
    """``state`` is what the client directory reads on every lookup: it follows updates, registration
    replacements and offboarding at once, and ignores ``touch`` (which must not invalidate caches)."""
    assert await store.clients.state("c1") is None
    await store.clients.create(_client())
    assert await store.clients.state("c1") == (T0, None)
    await store.clients.touch("c1", T0 + 100)
    assert await store.clients.state("c1") == (T0, None)
    await store.clients.update(_client(updated_at=T0 + 1))
    assert await store.clients.state("c1") == (T0 + 1, None)
    replaced = _client(updated_at=T0 + 2, registration_token_hash="sha256$next")
    assert await store.clients.replace_registration(replaced, "sha256$def") is True
    assert await store.clients.state("c1") == (T0 + 2, None)
    assert await store.clients.disable("c1", at=T0 + 3, reason="compromised", by="admin") is True
    assert await store.clients.state("c1") == (T0 + 2, T0 + 3)
    await store.clients.delete("c1")
    assert await store.clients.state("c1") is None
    assert await store.clients.state("nul\x00id") is None


async def test_client_standing_reads_the_client_and_its_user_at_once(store: Store) -> None:
    assert await store.clients.standing("c1", "alice") is None
    await store.clients.create(_client())
    assert await store.clients.standing("c1", None) == (T0, None, False)
    assert await store.clients.standing("c1", "alice") == (T0, None, False), "no such account: not disabled"
    await store.users.create(UserRecord("alice", "hash", T0))
    assert await store.clients.standing("c1", "alice") == (T0, None, False)
    await store.users.update(UserRecord("alice", "hash", T0, disabled=True))
    assert await store.clients.standing("c1", "alice") == (T0, None, True)
    assert await store.clients.standing("c1", "nul\x00user") == (T0, None, False)
    await store.clients.disable("c1", at=T0 + 3, reason="compromised", by="admin")
    assert await store.clients.standing("c1", "bob") == (T0, T0 + 3, False)


async def test_client_touch(store: Store) -> None:
    await store.clients.create(_client())
    await store.clients.touch("c1", T0 + 100)
    got = await store.clients.get("c1")
    assert got is not None and got.last_used_at == T0 + 100
    await store.clients.touch("c1", T0 + 100)
    await store.clients.touch("c1", T0 + 160)
    got = await store.clients.get("c1")
    assert got is not None and got.last_used_at == T0 + 160
    await store.clients.touch("missing", T0)
    assert await store.clients.get("missing") is None, "touch does not create"


async def test_client_touch_after_update(store: Store) -> None:
    await store.clients.create(_client())
    await store.clients.touch("c1", T0 + 100)
    await store.clients.update(_client(last_used_at=None))
    await store.clients.touch("c1", T0 + 100)
    got = await store.clients.get("c1")
    assert got is not None and got.last_used_at == T0 + 100


async def test_client_touch_after_delete_and_recreate(store: Store) -> None:
    await store.clients.create(_client())
    await store.clients.touch("c1", T0 + 100)
    await store.clients.delete("c1")
    await store.clients.create(_client())
    await store.clients.touch("c1", T0 + 100)
    got = await store.clients.get("c1")
    assert got is not None and got.last_used_at == T0 + 100


# -------------------------------------------------------------------------------------------------- users


async def test_users(store: Store) -> None:
    alice = UserRecord("alice", "argon2$a", T0)
    bob = UserRecord("bob", "argon2$b", T0 + 1, disabled=True)
    assert await store.users.get("alice") is None
    await store.users.create(alice)
    await store.users.create(bob)
    with pytest.raises(AlreadyExists):
        await store.users.create(UserRecord("alice", "other", T0))
    assert await store.users.get("alice") == alice
    got_bob = await store.users.get("bob")
    assert got_bob == bob and got_bob is not None and got_bob.disabled is True
    disabled = dataclasses.replace(alice, disabled=True, password_hash="argon2$new")
    await store.users.update(disabled)
    assert await store.users.get("alice") == disabled
    assert sorted(u.username for u in await store.users.list()) == ["alice", "bob"]


# --------------------------------------------------------------------------------------------------- keys


async def test_keys(store: Store) -> None:
    k1 = ServerKeyRecord("k1", "ES256", "sig", '{"kty":"EC","d":"secret"}', T0, T0)
    k2 = ServerKeyRecord("k2", "RSA-OAEP-256", "enc", "encrypted-blob", T0 + 1, T0 + 3600, state="pending")
    assert await store.keys.list() == []
    await store.keys.add(k1)
    await store.keys.add(k2)
    with pytest.raises(AlreadyExists):
        await store.keys.add(ServerKeyRecord("k1", "ES256", "sig", "{}", T0, T0))
    assert sorted(await store.keys.list(), key=lambda k: k.kid) == [k1, k2]
    retired = dataclasses.replace(k1, state="retired", retired_at=T0 + 7200)
    await store.keys.update(retired)
    assert sorted(await store.keys.list(), key=lambda k: k.kid) == [retired, k2]


# ------------------------------------------------------------------------------------------------- tokens


def _token(token_hash: str, **kw: object) -> TokenRecord:
    fields: dict[str, object] = {
        "token_hash": token_hash,
        "kind": "refresh_token",
        "client_id": "c1",
        "subject": "alice",
        "scope": "openid profile",
        "grant_id": "g1",
        "created_at": T0,
        "expires_at": T0 + 3600,
    }
    fields.update(kw)
    return TokenRecord(**fields)  # type: ignore[arg-type]


async def test_token_round_trip(store: Store) -> None:
    rec = _token("h1", extra={"cnf": {"jkt": "abc"}, "auth_time": T0, "acr": None, "amr": ["pwd"]})
    await store.tokens.create(rec)
    assert await store.tokens.get("h1") == rec
    assert await store.tokens.get("missing") is None
    bare = _token("h2", kind="access_token", subject=None, grant_id=None)
    await store.tokens.create(bare)
    assert await store.tokens.get("h2") == bare
    with pytest.raises(AlreadyExists):
        await store.tokens.create(_token("h1"))


async def test_token_revoke(store: Store) -> None:
    await store.tokens.create(_token("h1"))
    assert await store.tokens.revoke("h1", T0 + 5) is True
    assert await store.tokens.revoke("h1", T0 + 6) is False
    got = await store.tokens.get("h1")
    assert got is not None and got.revoked_at == T0 + 5
    assert await store.tokens.revoke("missing", T0) is False


async def test_revoke_grant_and_client_counts(store: Store) -> None:
    await store.tokens.create(_token("a1", grant_id="g1"))
    await store.tokens.create(_token("a2", grant_id="g1", kind="access_token"))
    await store.tokens.create(_token("a3", grant_id="g1", revoked_at=T0))
    await store.tokens.create(_token("b1", grant_id="g2"))
    await store.tokens.create(_token("c1", grant_id=None, client_id="c2"))
    await store.tokens.create(_token("c2", grant_id="g3", client_id="c2"))

    assert await store.tokens.revoke_grant("g1", T0 + 10) == 2
    assert await store.tokens.revoke_grant("g1", T0 + 11) == 0
    assert await store.tokens.revoke_grant("nope", T0 + 11) == 0
    a3 = await store.tokens.get("a3")
    assert a3 is not None and a3.revoked_at == T0, "an already revoked token keeps its revocation time"
    b1 = await store.tokens.get("b1")
    assert b1 is not None and b1.revoked_at is None

    assert await store.tokens.revoke_client("c2", T0 + 20) == 2
    assert await store.tokens.revoke_client("c2", T0 + 21) == 0
    assert await store.tokens.revoke_client("c1", T0 + 22) == 1, "only b1 was still live for c1"


async def test_rotate_succeeds_once(store: Store) -> None:
    await store.tokens.create(_token("r1"))
    r2 = _token("r2", created_at=T0 + 10, expires_at=T0 + 7200, extra={"rotation": 1})
    assert await store.tokens.rotate("r1", r2, T0 + 10) is True
    assert await store.tokens.rotate("r1", _token("r3"), T0 + 11) is False
    assert await store.tokens.get("r3") is None
    old = await store.tokens.get("r1")
    assert old is not None and old.rotated_to == "r2" and old.revoked_at == T0 + 10
    assert await store.tokens.get("r2") == r2
    assert await store.tokens.rotate("r2", _token("r3"), T0 + 12) is True


async def test_rotate_refuses_revoked_and_missing(store: Store) -> None:
    await store.tokens.create(_token("r1"))
    await store.tokens.revoke("r1", T0)
    assert await store.tokens.rotate("r1", _token("r2"), T0 + 1) is False
    assert await store.tokens.rotate("missing", _token("r3"), T0 + 1) is False
    assert await store.tokens.get("r2") is None
    assert await store.tokens.get("r3") is None


async def test_list_tokens_for_client(store: Store) -> None:
    await store.tokens.create(_token("live", expires_at=T0 + 100))
    await store.tokens.create(_token("expired", expires_at=T0 + 10))
    await store.tokens.create(_token("revoked", revoked_at=T0 + 1))
    await store.tokens.create(_token("other", client_id="c2"))
    every = await store.tokens.list_for_client("c1")
    assert sorted(t.token_hash for t in every) == ["expired", "live", "revoked"]
    active = await store.tokens.list_for_client("c1", active_at=T0 + 10)
    assert [t.token_hash for t in active] == ["live"]
    assert await store.tokens.list_for_client("nobody") == []


# ------------------------------------------------------------------------------------ durable transactions


async def test_transaction_commits_grant_and_tokens_together(store: Store) -> None:
    grant = GrantRecord("g1", "c1", "alice", "openid", T0, granted_by="alice")
    access = _token("a1", kind="access_token")
    refresh = _token("r1")
    async with store.transaction() as tx:
        await tx.create_grant(grant)
        await tx.create_token(access)
        await tx.create_token(refresh)
    assert await store.grants.get("g1") == grant
    assert await store.tokens.get("a1") == access
    assert await store.tokens.get("r1") == refresh


async def test_transaction_touches_the_client(store: Store) -> None:
    await store.clients.create(ClientRecord("c1", {}, T0, T0))

    class Failed(Exception):
        pass

    with pytest.raises(Failed):
        async with store.transaction() as tx:
            await tx.touch_client("c1", T0 + 5)
            raise Failed
    got = await store.clients.get("c1")
    assert got is not None and got.last_used_at is None
    async with store.transaction() as tx:
        await tx.touch_client("c1", T0 + 10)
        await tx.touch_client("missing", T0 + 10)
    got = await store.clients.get("c1")
    assert got is not None and got.last_used_at == T0 + 10
    async with store.transaction() as tx:
        await tx.touch_client("c1", T0 + 7)  # never backwards
    got = await store.clients.get("c1")
    assert got is not None and got.last_used_at == T0 + 10


async def test_transaction_rolls_everything_back_on_an_error(store: Store) -> None:
    await store.tokens.create(_token("taken"))

    class Failed(Exception):
        pass

    with pytest.raises(Failed):
        async with store.transaction() as tx:
            await tx.create_grant(GrantRecord("g1", "c1", "alice", "openid", T0))
            await tx.create_token(_token("a1", kind="access_token"))
            raise Failed
    assert await store.grants.get("g1") is None
    assert await store.tokens.get("a1") is None

    # a duplicate token digest: AlreadyExists, and the grant written before it is gone too
    with pytest.raises(AlreadyExists):
        async with store.transaction() as tx:
            await tx.create_grant(GrantRecord("g2", "c1", "alice", "openid", T0))
            await tx.create_token(_token("taken", kind="access_token", client_id="c2"))
    assert await store.grants.get("g2") is None
    kept = await store.tokens.get("taken")
    assert kept is not None and kept.client_id == "c1"


async def test_transaction_rotation_and_access_token(store: Store) -> None:
    await store.tokens.create(_token("r1"))
    async with store.transaction() as tx:
        assert await tx.rotate_token("r1", _token("r2"), T0 + 1) is True
        await tx.create_token(_token("a2", kind="access_token"))
    old = await store.tokens.get("r1")
    assert old is not None and old.rotated_to == "r2" and old.revoked_at == T0 + 1
    assert await store.tokens.get("a2") is not None
    async with store.transaction() as tx:
        assert await tx.rotate_token("r1", _token("r3"), T0 + 2) is False
    assert await store.tokens.get("r3") is None

    # the rotation is undone with the rest of the transaction
    with pytest.raises(AlreadyExists):
        async with store.transaction() as tx:
            assert await tx.rotate_token("r2", _token("r4"), T0 + 3) is True
            await tx.create_token(_token("a2", kind="access_token"))
    r2 = await store.tokens.get("r2")
    assert r2 is not None and r2.rotated_to is None and r2.revoked_at is None
    assert await store.tokens.get("r4") is None
    # a new refresh token whose digest is taken: AlreadyExists, the old one stays usable
    with pytest.raises(AlreadyExists):
        async with store.transaction() as tx:
            await tx.rotate_token("r2", _token("a2"), T0 + 4)
    r2 = await store.tokens.get("r2")
    assert r2 is not None and r2.rotated_to is None


# ------------------------------------------------------------------------------------------------- grants


async def test_grants(store: Store) -> None:
    g1 = GrantRecord("g1", "c1", "alice", "openid", T0, granted_by="consent")
    g2 = GrantRecord("g2", "c1", None, "api", T0 + 1)
    g3 = GrantRecord("g3", "c2", "bob", "openid", T0 + 2)
    for g in (g1, g2, g3):
        await store.grants.create(g)
    assert await store.grants.get("g1") == g1
    assert await store.grants.get("missing") is None
    assert sorted(g.grant_id for g in await store.grants.list_for_client("c1")) == ["g1", "g2"]
    assert await store.grants.revoke("g1", T0 + 5, "user withdrew consent") is True
    assert await store.grants.revoke("g1", T0 + 6, "again") is False
    assert await store.grants.revoke("missing", T0) is False
    got = await store.grants.get("g1")
    assert got == dataclasses.replace(g1, revoked_at=T0 + 5, revoked_reason="user withdrew consent")
    assert await store.grants.revoke("g2", T0 + 7) is True
    got2 = await store.grants.get("g2")
    assert got2 is not None and got2.revoked_at == T0 + 7 and got2.revoked_reason is None


async def test_grant_create_duplicate(store: Store) -> None:
    await store.grants.create(GrantRecord("g1", "c1", "alice", "openid", T0))
    with pytest.raises(AlreadyExists):
        await store.grants.create(GrantRecord("g1", "c2", "mallory", "admin", T0))
    got = await store.grants.get("g1")
    assert got is not None and got.client_id == "c1"


@pytest.mark.parametrize(
    "key",
    ["client\x00jti", "%00", "x" * 5000, "\u00e9\u4e2d\U0001f600", "a:b:c"],
    ids=["nul", "percent", "long", "unicode", "colons"],
)
async def test_any_key(store: Store, key: str) -> None:
    """Keys are opaque: a NUL separator (``client_id\\x00jti``), 5,000 characters, any Unicode."""
    eph = store.ephemeral
    await eph.put("par", key, b"v", 60)
    assert await eph.get("par", key) == b"v"
    assert await eph.get("par", key[:-1] + "?") is None
    assert await eph.take("par", key) == b"v"
    assert await eph.add_once("jti", key, 60) is True
    assert await eph.add_once("jti", key, 60) is False
    await eph.delete("jti", key)
    assert await eph.add_once("jti", key, 60) is True


async def test_lookups_of_ids_with_nul_find_nothing(store: Store) -> None:
    """Ids arrive from requests (``/register/{client_id}``): one holding NUL is simply unknown, on every
    backend (PostgreSQL text cannot hold NUL at all)."""
    await store.clients.create(_client("a"))
    assert await store.clients.get("a\x00") is None
    assert await store.users.get("alice\x00") is None
    assert await store.tokens.get("h\x00") is None
    assert await store.grants.get("g\x00") is None


async def test_inventory_counts_in_one_query_each(store: Store) -> None:
    """``active_counts`` / ``list_all``: what ``governance.inventory`` reads instead of N+1 per-client queries."""
    await store.tokens.create(_token("t1"))
    await store.tokens.create(_token("t2", expires_at=T0 + 10))  # expired at T0 + 100
    await store.tokens.create(_token("t3", client_id="c2"))
    await store.tokens.create(_token("t4", client_id="c2"))
    await store.tokens.revoke("t4", T0 + 1)
    assert await store.tokens.active_counts(T0 + 100) == {"c1": 1, "c2": 1}
    assert await store.tokens.active_counts(T0 + 5) == {"c1": 2, "c2": 1}
    await store.grants.create(GrantRecord("g1", "c1", "alice", "openid", T0))
    await store.grants.create(GrantRecord("g2", "c1", "bob", "openid", T0))
    await store.grants.create(GrantRecord("g3", "c3", "bob", "openid", T0))
    await store.grants.revoke("g3", T0 + 1, "test")
    assert await store.grants.active_counts() == {"c1": 2}
    await store.client_key_history.observe("c2", [("tp-b", "b")], T0)
    await store.client_key_history.observe("c1", [("tp-a", "a")], T0 + 1)
    assert [(k.client_id, k.thumbprint) for k in await store.client_key_history.list_all()] == [("c1", "tp-a"), ("c2", "tp-b")]
