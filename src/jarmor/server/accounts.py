"""End-user accounts: passwords hashed with Argon2id (argon2-cffi), never stored in the clear."""

from __future__ import annotations

import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..store.base import UserRecord, UserStore

_hasher = PasswordHasher()
# A fixed hash to verify against when the user does not exist, so timing does not reveal usernames.
_DUMMY = _hasher.hash("jarmor-dummy-password")


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


async def authenticate(users: UserStore, username: str, password: str) -> UserRecord | None:
    if len(username) > 128 or len(password) > 1024:
        return None
    record = await users.get(username)
    try:
        _hasher.verify(record.password_hash if record else _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if record is None or record.disabled:
        return None
    if _hasher.check_needs_rehash(record.password_hash):
        record.password_hash = hash_password(password)
        await users.update(record)
    return record
