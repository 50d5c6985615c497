"""One password service for every population that signs in (end users and dashboard administrators).

Passwords are hashed with Argon2id (argon2-cffi, its default parameters: RFC 9106 §4's second recommended
option), never stored in the clear. Argon2id costs ~50 ms of CPU and 64 MiB per hash or verification, so
every one of them — hashing a new password, checking one, and rehashing a stored hash whose parameters are
out of date — runs in a worker thread, at most ``MAX_CONCURRENT_HASHES`` at a time per event loop: sign-ins
never stall the loop's other requests, and a burst of them cannot take the worker's memory.

An unknown account is checked against a fixed dummy hash made with the same parameters, so the time an
answer takes does not reveal which accounts exist.

How many attempts reach ``verify`` at all is not decided here: the sign-in handlers count each attempt
atomically in the store first (``server/signin.py``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_CONCURRENT_HASHES = 2
MAX_USERNAME = 128
MAX_PASSWORD = 1024
# stored "hashes" that are markers, not Argon2 hashes (``!removed``, ``!passkey-only``): never verify, and are
# checked against the dummy hash so that such an account answers as slowly as any other
NO_HASH_PREFIX = "!"

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


class PasswordService:
    """Hash and verify passwords off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: tuple[PasswordHasher, str] | None = None

    def hash_now(self, password: str) -> str:
        """Hash on the calling thread (command-line tools, which have no event loop to keep free)."""
        return self.hasher.hash(password)

    async def hash(self, password: str) -> str:
        async with _gate():
            return await asyncio.to_thread(self.hasher.hash, password)

    def _dummy_hash(self) -> str:
        """Made on first use, not at import: a server that never shows a sign-in page never pays for it."""
        hasher = self.hasher
        if self._dummy is None or self._dummy[0] is not hasher:
            self._dummy = (hasher, hasher.hash("jarmor-dummy-password"))
        return self._dummy[1]

    async def verify(self, stored: str | None, password: str) -> bool:
        """Check ``password`` against ``stored`` (``None``: an unknown account, or a marker such as
        ``!passkey-only``: checked against the dummy hash so that timing does not reveal it); ``False`` for any
        mismatch."""
        hasher = self.hasher
        usable = stored is not None and not stored.startswith(NO_HASH_PREFIX)
        target = stored if stored is not None and usable else self._dummy_hash()
        async with _gate():
            ok = await asyncio.to_thread(_verify, hasher, target, password)
        return ok and usable

    async def rehash_if_needed(self, stored: str, password: str) -> str | None:
        """A new hash of the (just verified) ``password`` when ``stored`` was made with other parameters."""
        if not self.hasher.check_needs_rehash(stored):
            return None
        return await self.hash(password)


PASSWORDS = PasswordService()


class Account(Protocol):
    """What both ``UserRecord`` and ``AdminRecord`` are to sign-in."""

    username: str
    password_hash: str
    disabled: bool


A = TypeVar("A", bound=Account)


async def authenticate(
    get: Callable[[str], Awaitable[A | None]],
    update: Callable[[A], Awaitable[None]],
    username: str,
    password: str,
    *,
    passwords: PasswordService | None = None,
) -> A | None:
    """The enabled account ``username`` whose password is ``password``, else ``None`` — for every reason
    alike (unknown, wrong password, disabled), after one hash verification in each case. A stored hash with
    outdated parameters is replaced (the rehash runs off the event loop too)."""
    service = passwords or PASSWORDS
    if not username or len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        return None  # no account has such a name or password: nothing to hide, nothing to hash
    record = await get(username)
    if not await service.verify(record.password_hash if record else None, password):
        return None
    if record is None or record.disabled:
        return None
    new_hash = await service.rehash_if_needed(record.password_hash, password)
    if new_hash is not None:
        record.password_hash = new_hash
        await update(record)
    return record
