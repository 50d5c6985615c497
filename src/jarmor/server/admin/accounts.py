"""Dashboard administrators: a population of their own (``store.admins``), never end users.

Passwords go through the same password service as end users' (``server/passwords.py``: Argon2id, verified
and rehashed off the event loop; an unknown name is checked against a dummy hash so the timing does not
reveal which administrators exist).
"""

from __future__ import annotations

from ...store.base import AdminRecord, AdminStore
from ..passwords import MAX_PASSWORD, MAX_USERNAME, PASSWORDS, authenticate

MIN_PASSWORD = 12


def valid_admin_name(username: str) -> bool:
    return 0 < len(username) <= MAX_USERNAME and username.isprintable() and username == username.strip()


async def add_admin(admins: AdminStore, username: str, password: str, *, now: int) -> AdminRecord:
    """Create an administrator (``AlreadyExists`` if the name is taken)."""
    if not valid_admin_name(username):
        raise ValueError("the administrator name must be 1-128 printable characters without surrounding spaces")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"the password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    record = AdminRecord(username=username, password_hash=await PASSWORDS.hash(password), created_at=now)
    await admins.create(record)
    return record


async def authenticate_admin(admins: AdminStore, username: str, password: str) -> AdminRecord | None:
    """The enabled administrator with this password, else ``None`` (one hash check either way). The caller
    counts the attempt first (``signin.py``)."""
    return await authenticate(admins.get, admins.update, username, password)
