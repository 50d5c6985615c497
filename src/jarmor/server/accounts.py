"""End-user accounts: passwords hashed with Argon2id by the shared password service (``passwords.py``)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..protocol.interaction.authentication import PASSWORD
from ..protocol.interaction.lifecycle import Verified
from ..protocol.interaction.record import Interaction
from ..store.base import UserRecord, UserStore
from .passwords import MAX_USERNAME, NO_HASH_PREFIX, PASSWORDS
from .passwords import authenticate as _authenticate

MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    """Hash on the calling thread (command-line tools); servers use ``PASSWORDS.hash``."""
    return PASSWORDS.hash_now(password)


async def add_user(users: UserStore, username: str, password: str) -> UserRecord:
    if not username or len(username) > MAX_USERNAME or not username.isprintable():
        raise ValueError("username must be 1-128 printable characters")
    if len(password) < MIN_PASSWORD:
        raise ValueError("password must be at least 8 characters")
    record = UserRecord(username=username, password_hash=await PASSWORDS.hash(password), created_at=int(time.time()))
    await users.create(record)
    return record


async def authenticate(users: UserStore, username: str, password: str) -> UserRecord | None:
    """The enabled user with this password, else ``None`` (one hash check either way). The caller counts the
    attempt first (``signin.py``)."""
    return await _authenticate(users.get, users.update, username, password)


class PasswordVerifier:
    """The ``password`` sign-in method (``lifecycle.Verifier``): the account named in ``username``."""

    def __init__(self, users: UserStore) -> None:
        self.users = users

    def account(self, form: Mapping[str, str], interaction: Interaction) -> str | None:
        return form.get("username", "")

    async def verify(self, form: Mapping[str, str], interaction: Interaction) -> Verified | None:
        user = await authenticate(self.users, form.get("username", ""), form.get("password", ""))
        return Verified(user.username, PASSWORD.name) if user is not None else None

    async def enrolled(self, subject: str) -> bool:
        """Every account has a password, except passkey-only ones (their stored "hash" is a ``!`` marker)."""
        user = await self.users.get(subject)
        return user is not None and not user.password_hash.startswith(NO_HASH_PREFIX)
