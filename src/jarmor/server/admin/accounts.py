"""Dashboard administrators: a population of their own (``store.admins``), never end users.

Passwords are hashed with Argon2id (argon2-cffi defaults, as for end users); an unknown name is verified
against a fixed hash so the timing does not reveal which administrators exist.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher

from ...store.base import AdminRecord, AdminStore
from ..accounts import verify_password

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("jarmor-admin-dummy-password")


def valid_admin_name(username: str) -> bool:
    return 0 < len(username) <= 128 and username.isprintable() and username == username.strip()


async def add_admin(admins: AdminStore, username: str, password: str, *, now: int) -> AdminRecord:
    """Create an administrator (``AlreadyExists`` if the name is taken)."""
    if not valid_admin_name(username):
        raise ValueError("the administrator name must be 1-128 printable characters without surrounding spaces")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"the password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    record = AdminRecord(username=username, password_hash=_hasher.hash(password), created_at=now)
    await admins.create(record)
    return record


async def authenticate_admin(admins: AdminStore, username: str, password: str) -> AdminRecord | None:
    if len(username) > 128 or len(password) > MAX_PASSWORD:
        return None
    record = await admins.get(username) if username else None
    if not await verify_password(
        record.password_hash if record else None, password, hasher=_hasher, dummy=_dummy_hash()
    ):
        return None
    if record is None or record.disabled:
        return None
    if _hasher.check_needs_rehash(record.password_hash):
        record.password_hash = _hasher.hash(password)
        await admins.update(record)
    return record
