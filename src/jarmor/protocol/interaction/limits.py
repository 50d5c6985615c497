"""Sign-in attempt limits for end users and administrators, counted atomically before a password is checked.

Each attempt first *reserves* one unit of every limit that applies to it — an atomic increment in the
short-lived store (``EphemeralStore.incr``: one ``INCRBY`` / ``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING``), shared by every worker and node — and is refused, without its password being checked, once
any count goes past its limit. So of any number of concurrent attempts at most ``max_attempts`` reach the
Argon2 verification, and a correct password arriving after them is refused like a wrong one (NIST SP
800-63B §5.2.2 rate limiting; OWASP ASVS 4.0 V2.2.1). Reading a count, awaiting the hash check and writing
the count back would let every concurrent attempt through.

Limits are data: what a count is per (an interaction, a client address, an account name), the store
namespace it lives in, the number of attempts and the window. The window is fixed: it starts with the
first attempt and later attempts do not extend it, so a locked account opens again at most ``window``
seconds after its first counted attempt. Unknown account names are counted exactly like existing ones,
so neither the answer nor the lockout tells which accounts exist. A successful sign-in resets its
account's count and gives its reservation of the address count back (so only failures accumulate there).

``unlock_user`` / ``unlock_admin`` clear an account's count (the ``jarmor users|admins unlock`` commands).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

from ...store.base import EphemeralStore
from ..context import Settings


class Per(Enum):
    """What one count is kept per."""

    INTERACTION = "interaction"  # one pending authorization request (the browser flow)
    ADDRESS = "address"  # the client's network address
    ACCOUNT = "account"  # the account name typed in (existing or not)


@dataclass(frozen=True, slots=True)
class AttemptLimit:
    per: Per
    namespace: str
    max_attempts: int  # 0: this limit is off
    window: int  # seconds

    def key(self, subject: str) -> str:
        """The store key for ``subject``: a digest, so its size is bounded and it holds no raw input."""
        return hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()


# store namespaces (a namespace never contains ':', see redis_store.py)
USER_INTERACTION_NS = "signin-interaction"
USER_ADDRESS_NS = "signin-address"
USER_ACCOUNT_NS = "signin-account"
ADMIN_ADDRESS_NS = "admin-signin-address"
ADMIN_ACCOUNT_NS = "admin-signin-name"

# administrators: five attempts per name, twenty failures per address, in fifteen minutes
ADMIN_WINDOW = 15 * 60
ADMIN_MAX_ATTEMPTS = 5
ADMIN_MAX_ATTEMPTS_PER_ADDRESS = 20
ADMIN_ADDRESS = AttemptLimit(Per.ADDRESS, ADMIN_ADDRESS_NS, ADMIN_MAX_ATTEMPTS_PER_ADDRESS, ADMIN_WINDOW)
ADMIN_ACCOUNT = AttemptLimit(Per.ACCOUNT, ADMIN_ACCOUNT_NS, ADMIN_MAX_ATTEMPTS, ADMIN_WINDOW)

# end users: five attempts end one interaction (the flow is refused with access_denied)
MAX_INTERACTION_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class UserLimits:
    """End users' limits, from ``[settings]`` (``login_max_failures``, ``login_lockout_window``,
    ``login_max_failures_per_address``) and the interaction lifetime."""

    interaction: AttemptLimit
    address: AttemptLimit
    account: AttemptLimit

    @classmethod
    def from_settings(cls, settings: Settings) -> UserLimits:
        window = settings.login_lockout_window
        return cls(
            interaction=AttemptLimit(
                Per.INTERACTION, USER_INTERACTION_NS, MAX_INTERACTION_ATTEMPTS, settings.interaction_lifetime
            ),
            address=AttemptLimit(Per.ADDRESS, USER_ADDRESS_NS, settings.login_max_failures_per_address, window),
            account=AttemptLimit(Per.ACCOUNT, USER_ACCOUNT_NS, settings.login_max_failures, window),
        )


@dataclass(slots=True)
class Attempt:
    """The counts one sign-in attempt reserved, in order, and the limit that refused it (``None``: the
    password may be checked)."""

    counts: list[tuple[AttemptLimit, str, int]] = field(default_factory=list)
    refused: AttemptLimit | None = None

    def count(self, per: Per) -> int:
        """This attempt's number under the limit kept ``per`` (0 when it was not counted)."""
        return next((n for limit, _key, n in self.counts if limit.per is per), 0)

    @property
    def first_refusal(self) -> bool:
        """This attempt is the first one its limit refused (the moment a lockout starts)."""
        return self.refused is not None and self.count(self.refused.per) == self.refused.max_attempts + 1


async def reserve(store: EphemeralStore, checks: list[tuple[AttemptLimit, str]]) -> Attempt:
    """Count one attempt against each ``(limit, subject)`` in order, stopping at the first limit exceeded
    (later counts are not touched: a refused attempt does not lock anything further)."""
    attempt = Attempt()
    for limit, subject in checks:
        if limit.max_attempts <= 0:
            continue
        key = limit.key(subject)
        n = await store.incr(limit.namespace, key, limit.window)
        attempt.counts.append((limit, key, n))
        if n > limit.max_attempts:
            attempt.refused = limit
            break
    return attempt


async def succeeded(store: EphemeralStore, attempt: Attempt) -> None:
    """The password was right: the account's count starts again and the address gets its attempt back."""
    for limit, key, _n in attempt.counts:
        if limit.per is Per.ACCOUNT:
            await store.delete(limit.namespace, key)
        elif limit.per is Per.ADDRESS:
            await store.incr(limit.namespace, key, limit.window, by=-1)


async def _unlock(store: EphemeralStore, namespace: str, name: str) -> bool:
    key = AttemptLimit(Per.ACCOUNT, namespace, 1, 1).key(name)
    return await store.take(namespace, key) is not None


async def unlock_user(store: EphemeralStore, username: str) -> bool:
    """Clear the end-user account ``username``'s sign-in count (its lockout, if any); ``True`` if there was
    one. Works for any configured limit and window: the count lives in one namespace."""
    return await _unlock(store, USER_ACCOUNT_NS, username)


async def unlock_admin(store: EphemeralStore, name: str) -> bool:
    """Clear the administrator ``name``'s sign-in count (its lockout, if any); ``True`` if there was one."""
    return await _unlock(store, ADMIN_ACCOUNT_NS, name)
