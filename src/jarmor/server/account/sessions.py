"""End users' account sessions (the ``/account`` pages), kept in the short-lived store like administrators'.

A session is an opaque 256-bit id in a cookie (``HttpOnly``, ``SameSite=Strict``, ``Path=/account``,
``Secure`` on https issuers); the store keeps only its SHA-256 digest. A session records how far sign-in got
(``stage``: ``second-factor`` after a right password of an account with a TOTP authenticator, ``signed-in``),
the methods used (RFC 8176 ``amr`` values) and when authentication completed. Every authentication step ends
the session it started from and starts a new one (a new id): an id planted in the browser before sign-in
never becomes a signed-in session (session fixation, OWASP ASVS 4.0 V3.2.1). Sessions end after ``IDLE``
seconds without a request and ``LIFETIME`` seconds after they started.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, field

import orjson

from ...store.base import EphemeralStore

SESSION_NS = "account-session"
IDLE = 30 * 60
LIFETIME = 8 * 3600
SECOND_FACTOR_TTL = 5 * 60
SIGNED_IN = "signed-in"
SECOND_FACTOR = "second-factor"


def digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "replace")).hexdigest()


@dataclass(slots=True)
class AccountSession:
    username: str
    stage: str
    created_at: int
    last_seen: int
    amr: list[str] = field(default_factory=list)
    auth_time: int | None = None

    def ttl(self, now: int) -> int:
        limit = SECOND_FACTOR_TTL if self.stage == SECOND_FACTOR else LIFETIME
        return max(0, min(IDLE, self.created_at + limit - now))


async def start(store: EphemeralStore, session: AccountSession, *, replacing: str = "") -> str:
    """Store ``session`` under a new id (ending the session ``replacing``, if any); the new id."""
    if replacing:
        await end(store, replacing)
    sid = secrets.token_urlsafe(32)
    await store.put(SESSION_NS, digest(sid), orjson.dumps(asdict(session)), max(1, session.ttl(session.created_at)))
    return sid


async def load(store: EphemeralStore, sid: str, now: int) -> AccountSession | None:
    """The live session named by the cookie value ``sid`` (its idle timeout restarts), else ``None``."""
    if not sid or len(sid) > 128:
        return None
    raw = await store.get(SESSION_NS, digest(sid))
    if raw is None:
        return None
    session = AccountSession(**orjson.loads(raw))
    if session.ttl(now) <= 0 or now - session.last_seen >= IDLE:
        await store.delete(SESSION_NS, digest(sid))
        return None
    if now > session.last_seen:
        session.last_seen = now
        await store.put(SESSION_NS, digest(sid), orjson.dumps(asdict(session)), session.ttl(now))
    return session


async def take(store: EphemeralStore, sid: str) -> AccountSession | None:
    """End the session ``sid`` and return it (one of concurrent callers gets it): a step that completes."""
    if not sid or len(sid) > 128:
        return None
    raw = await store.take(SESSION_NS, digest(sid))
    return None if raw is None else AccountSession(**orjson.loads(raw))


async def end(store: EphemeralStore, sid: str) -> None:
    if sid and len(sid) <= 128:
        await store.delete(SESSION_NS, digest(sid))
