"""Password hashing and verification (one service for end users and administrators) run off the event loop,
at most MAX_CONCURRENT_HASHES at a time; an outdated hash is replaced off the loop too."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from jarmor.server import accounts, passwords
from jarmor.server.admin.accounts import add_admin, authenticate_admin
from jarmor.store.memory import MemoryStore


async def test_sign_in_does_not_stall_the_event_loop() -> None:
    store = MemoryStore()
    await accounts.add_user(store.users, "alice", "correct horse battery")
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    t = asyncio.create_task(ticker())
    user = await accounts.authenticate(store.users, "alice", "correct horse battery")
    wrong = await accounts.authenticate(store.users, "alice", "wrong password!")
    unknown = await accounts.authenticate(store.users, "nobody", "whatever password")
    done.set()
    await t
    assert user is not None and user.username == "alice"
    assert wrong is None and unknown is None
    # three Argon2id verifications (~50 ms each) ran while the loop kept ticking
    assert ticks >= 10


async def test_concurrent_verifications_are_bounded(monkeypatch: object) -> None:
    running = peak = 0
    lock = threading.Lock()
    real = passwords._verify

    def counting(*args: object) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real(*args)  # type: ignore[arg-type]
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(passwords, "_verify", counting)  # type: ignore[attr-defined]
    stored = accounts.hash_password("correct horse battery")
    results = await asyncio.gather(*(passwords.PASSWORDS.verify(stored, "wrong password!") for _ in range(8)))
    assert results == [False] * 8
    assert peak <= passwords.MAX_CONCURRENT_HASHES


@pytest.mark.parametrize("population", ["users", "admins"])
async def test_outdated_hashes_are_replaced_off_the_event_loop(
    population: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both populations go through one service: a hash made with other parameters is replaced on the next
    sign-in, in a worker thread (the administrators' path used to rehash on the event loop)."""
    store = MemoryStore()
    hashed_on: list[int] = []

    class Recording(PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            hashed_on.append(threading.get_ident())
            return super().hash(password, salt=salt)

    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    stronger = Recording(time_cost=2, memory_cost=2048, parallelism=1)
    monkeypatch.setattr(passwords.PASSWORDS, "hasher", weak)
    name, password = "alice", "correct horse battery staple"
    if population == "users":
        await accounts.add_user(store.users, name, password)
    else:
        await add_admin(store.admins, name, password, now=0)
    monkeypatch.setattr(passwords.PASSWORDS, "hasher", stronger)
    loop_thread = threading.get_ident()
    if population == "users":
        record = await accounts.authenticate(store.users, name, password)
        stored = await store.users.get(name)
    else:
        record = await authenticate_admin(store.admins, name, password)
        stored = await store.admins.get(name)  # type: ignore[assignment]
    assert record is not None and stored is not None
    assert not stronger.check_needs_rehash(stored.password_hash), "the stored hash was replaced"
    assert hashed_on and loop_thread not in hashed_on, "the rehash ran on the event loop"
