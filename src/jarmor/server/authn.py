"""The sign-in methods as checks any sign-in page can run: a password, a TOTP code, a passkey assertion.

Each check answers only "proven or not" (never why: the pages answer every failure alike) and leaves the
counting of attempts to its caller (``signin.py``, before the check). A successful check yields a ``Proof``:
who, how (``amr``, RFC 8176, from ``protocol/authn_methods.py``) and when — what a session or an interaction
records, and what assurance policy judges. The account page (``account/signin_views.py``) and the
authorization interaction both sign in through these.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import authn_methods
from ..store.base import Store, UserRecord
from . import passkeys, totp
from .account_lifecycle import PASSKEY_ONLY, is_removed
from .accounts import authenticate
from .keyprotect import KeyProtector

POPULATION = "user"


@dataclass(frozen=True, slots=True)
class Proof:
    username: str
    amr: tuple[str, ...]
    at: int

    @property
    def method(self) -> authn_methods.Method:
        return authn_methods.method_of(list(self.amr))


async def methods_of(store: Store, username: str) -> frozenset[str]:
    """The methods the account can sign in with (``authn_methods`` names); empty for no such account."""
    user = await store.users.get(username)
    if user is None or user.disabled or is_removed(user):
        return frozenset()
    kinds = {a.kind for a in await store.accounts.list_for(POPULATION, username)}
    out = set()
    if user.password_hash != PASSKEY_ONLY:
        out.add(authn_methods.PASSWORD_TOTP if "totp" in kinds else authn_methods.PASSWORD)
    if "passkey" in kinds:
        out.add(authn_methods.PASSKEY)
    return frozenset(out)


async def check_password(store: Store, username: str, password: str) -> UserRecord | None:
    """The enabled account with this password (one Argon2 verification whatever the account)."""
    return await authenticate(store.users, username, password)


async def has_totp(store: Store, username: str) -> bool:
    return any(a.kind == "totp" for a in await store.accounts.list_for(POPULATION, username))


async def check_totp(store: Store, protector: KeyProtector, username: str, code: str, now: int) -> bool:
    """A code from one of the account's TOTP authenticators, used now (never again)."""
    code = code.strip().replace(" ", "")
    for record in await store.accounts.list_for(POPULATION, username):
        if record.kind == "totp" and (await totp.verify(store.accounts, protector, record, code, now)).ok:
            return True
    return False


async def check_passkey(
    store: Store, issuer: str, ceremony_id: str, credential: str, *, bound_to: str, now: int
) -> Proof | None:
    """The enabled end user whose passkey made this assertion (for the challenge bound to ``bound_to``)."""
    try:
        record = await passkeys.finish_authentication(
            store.ephemeral, store.accounts, passkeys.RelyingParty.for_issuer(issuer), ceremony_id, credential,
            bound_to=bound_to, now=now,
        )
    except passkeys.PasskeyError:
        return None
    user = await store.users.get(record.username)
    if record.population != POPULATION or user is None or user.disabled or is_removed(user):
        return None
    return Proof(user.username, tuple(authn_methods.passkey_amr(backup_eligible=record.backup_eligible)), now)


def password_proof(username: str, *, with_otp: bool, now: int) -> Proof:
    return Proof(username, tuple(authn_methods.password_amr(with_otp=with_otp)), now)
