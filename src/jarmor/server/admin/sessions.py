"""Administrator sessions, kept in the ephemeral store (shared by every worker/node).

* A session is an opaque 256-bit random identifier in a cookie (``HttpOnly``, ``SameSite=Strict``,
  ``Path=/admin``, ``Secure`` on https issuers); the store keeps only its SHA-256 digest, with the
  administrator's name and the session's CSRF token. Sessions end after ``IDLE`` seconds without a request
  and ``LIFETIME`` seconds after sign-in, whichever comes first; signing in always starts a new one.

Sign-in attempts are limited in ``server/signin.py`` (counted atomically before the password is checked).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass

import orjson

from ...store.base import EphemeralStore

SESSION_NS = "admin-session"
IDLE = 30 * 60
LIFETIME = 8 * 3600


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


@dataclass(slots=True)
class AdminSession:
    username: str
    csrf: str
    created_at: int
    last_seen: int

    def ttl(self, now: int) -> int:
        return max(0, min(IDLE, self.created_at + LIFETIME - now))


async def create_session(store: EphemeralStore, username: str, now: int) -> tuple[str, AdminSession]:
    sid = secrets.token_urlsafe(32)
    session = AdminSession(username=username, csrf=secrets.token_urlsafe(32), created_at=now, last_seen=now)
    await store.put(SESSION_NS, _digest(sid), orjson.dumps(asdict(session)), session.ttl(now))
    return sid, session


async def load_session(store: EphemeralStore, sid: str, now: int) -> AdminSession | None:
    """The live session named by the cookie value ``sid`` (its idle timeout restarts), else ``None``."""
    if not sid or len(sid) > 128:
        return None
    raw = await store.get(SESSION_NS, _digest(sid))
    if raw is None:
        return None
    session = AdminSession(**orjson.loads(raw))
    if session.ttl(now) <= 0 or now - session.last_seen >= IDLE:
        await store.delete(SESSION_NS, _digest(sid))
        return None
    if now > session.last_seen:
        session.last_seen = now
        await store.put(SESSION_NS, _digest(sid), orjson.dumps(asdict(session)), session.ttl(now))
    return session


async def end_session(store: EphemeralStore, sid: str) -> None:
    if sid and len(sid) <= 128:
        await store.delete(SESSION_NS, _digest(sid))
