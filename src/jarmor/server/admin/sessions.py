"""Administrator sessions and sign-in throttling, kept in the ephemeral store (shared by every worker/node).

* A session is an opaque 256-bit random identifier in a cookie (``HttpOnly``, ``SameSite=Strict``,
  ``Path=/admin``, ``Secure`` on https issuers); the store keeps only its SHA-256 digest, with the
  administrator's name and the session's CSRF token. Sessions end after ``IDLE`` seconds without a request
  and ``LIFETIME`` seconds after sign-in, whichever comes first; signing in always starts a new one.
* Throttling: ``MAX_FAILURES`` failed sign-ins for one name (or ``MAX_FAILURES_PER_ADDRESS`` from one client
  address) within ``WINDOW`` seconds lock further attempts for that name (address) until the window passes
  — the password is not even checked meanwhile, so guessing cannot continue.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass

import orjson

from ...store.base import EphemeralStore

SESSION_NS = "admin-session"
THROTTLE_NS = "admin-throttle"
IDLE = 30 * 60
LIFETIME = 8 * 3600
WINDOW = 15 * 60
MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 20


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


def _throttle_keys(username: str, address: str) -> list[tuple[str, int]]:
    return [(f"name-{_digest(username)}", MAX_FAILURES), (f"addr-{_digest(address)}", MAX_FAILURES_PER_ADDRESS)]


async def _count(store: EphemeralStore, key: str) -> int:
    raw = await store.get(THROTTLE_NS, key)
    return int(raw) if raw is not None and raw.isdigit() else 0


async def is_throttled(store: EphemeralStore, username: str, address: str) -> bool:
    for key, limit in _throttle_keys(username, address):
        if await _count(store, key) >= limit:
            return True
    return False


async def record_failure(store: EphemeralStore, username: str, address: str) -> None:
    for key, _limit in _throttle_keys(username, address):
        await store.put(THROTTLE_NS, key, str(await _count(store, key) + 1).encode(), WINDOW)


async def clear_failures(store: EphemeralStore, username: str) -> None:
    await store.delete(THROTTLE_NS, f"name-{_digest(username)}")


async def name_locked(store: EphemeralStore, username: str) -> bool:
    """Whether sign-in for ``username`` is locked now (``MAX_FAILURES`` within ``WINDOW``), whatever the
    address; shown by ``jarmor admins list`` and cleared by ``jarmor admins unlock`` (``clear_failures``)."""
    return await _count(store, f"name-{_digest(username)}") >= MAX_FAILURES
