"""Password verification runs off the event loop, at most MAX_CONCURRENT_HASHES at a time."""

from __future__ import annotations

import asyncio
import threading

from jarmor.server import accounts
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
    real = accounts._verify

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

    monkeypatch.setattr(accounts, "_verify", counting)  # type: ignore[attr-defined]
    stored = accounts.hash_password("correct horse battery")
    results = await asyncio.gather(*(accounts.verify_password(stored, "wrong password!") for _ in range(8)))
    assert results == [False] * 8
    assert peak <= accounts.MAX_CONCURRENT_HASHES
