"""End-user accounts: passwords hashed with Argon2id (argon2-cffi), never stored in the clear."""

from __future__ import annotations

import asyncio
import functools
import time
import weakref

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..store.base import UserRecord, UserStore

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so timing does not reveal usernames. Made on
    first use, not at import: Argon2id takes 64 MiB, which a server that never shows a login page never pays."""
    return _hasher.hash("jarmor-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def add_user(users: UserStore, username: str, password: str) -> UserRecord:
    if not username or len(username) > 128 or not username.isprintable():
        raise ValueError("username must be 1-128 printable characters")
    if len(password) < 8:
        raise ValueError("password must be at least 8 characters")
    record = UserRecord(username=username, password_hash=hash_password(password), created_at=int(time.time()))
    await users.create(record)
    return record


# Argon2id costs ~50 ms of CPU and 64 MiB per verification: run it in a thread so sign-ins never stall the
# event loop's other requests, and at most MAX_CONCURRENT_HASHES at a time per event loop, so a burst of
# sign-in attempts cannot take the worker's memory.
MAX_CONCURRENT_HASHES = 2
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
    return gate


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return bool(hasher.verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(
    stored: str | None, password: str, *, hasher: PasswordHasher = _hasher, dummy: str | None = None
) -> bool:
    """Check ``password`` against ``stored`` (or, for an unknown account, against ``dummy`` so that timing does
    not reveal which accounts exist); ``False`` for any mismatch."""
    async with _gate():
        ok = await asyncio.to_thread(_verify, hasher, stored or dummy or _dummy_hash(), password)
    return ok and stored is not None


async def authenticate(users: UserStore, username: str, password: str) -> UserRecord | None:
    if len(username) > 128 or len(password) > 1024:
        return None
    record = await users.get(username)
    if not await verify_password(record.password_hash if record else None, password):
        return None
    if record is None or record.disabled:
        return None
    if _hasher.check_needs_rehash(record.password_hash):
        record.password_hash = await asyncio.to_thread(hash_password, password)
        await users.update(record)
    return record
