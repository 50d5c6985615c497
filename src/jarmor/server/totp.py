"""TOTP second factors (RFC 6238 over RFC 4226, with ``pyotp``): 30-second steps, 6 digits, HMAC-SHA-1.

* Enrolment makes a 160-bit random secret (RFC 4226 §4 R6), shows it and its ``otpauth://`` URI as text (no
  QR code: nothing is drawn or fetched), and keeps it — sealed with the server's key-encryption key, like the
  server keys (``keyprotect.py``) — only once the user typed a code it produces.
* A code is checked against the current step and one step either side (RFC 6238 §5.2: at most one step of
  drift), all three compared in constant time without an early exit. The step it matched is then *used* in
  the store with an atomic compare-and-set (``AccountStore.use_totp_step``): a code (or an older one) that
  was accepted once is refused, even when two submissions race.

pyotp is used for the HOTP computation; the window loop is written here because pyotp's ``verify`` answers
a boolean, and replay refusal needs the step that matched.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass

import pyotp

from ..store.base import AccountStore, AuthenticatorRecord
from .keyprotect import KeyProtector

DIGITS = 6
STEP = 30
WINDOW = 1  # steps of drift accepted either side
SECRET_BYTES = 20


def new_secret() -> str:
    """A base32 secret of 160 random bits."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode()


def provisioning_uri(secret: str, account: str, issuer_name: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app imports (Key Uri Format)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(name=account, issuer_name=issuer_name)


def well_formed(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, now: int) -> int | None:
    """The newest time step within the window whose code is ``code``, else ``None``."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int(now) // STEP  # RFC 6238 §4.2: T = (now - T0) / X, T0 = 0
    found: int | None = None
    candidate = code if well_formed(code) else "x" * DIGITS
    for offset in range(-WINDOW, WINDOW + 1):
        step = current + offset
        if hmac.compare_digest(totp.generate_otp(step).encode(), candidate.encode()):
            found = step
    return found


@dataclass(frozen=True, slots=True)
class TotpCheck:
    ok: bool
    replayed: bool = False


async def verify(
    accounts: AccountStore, protector: KeyProtector, record: AuthenticatorRecord, code: str, now: int
) -> TotpCheck:
    """Check ``code`` for the TOTP authenticator ``record`` and use its step (once, atomically)."""
    if record.kind != "totp" or record.secret is None:
        return TotpCheck(False)
    step = matching_step(protector.open(record.secret), code, now)
    if step is None:
        return TotpCheck(False)
    if not await accounts.use_totp_step(record.authenticator_id, step, now):
        return TotpCheck(False, replayed=True)
    return TotpCheck(True)


def seal(protector: KeyProtector, secret: str) -> str:
    return protector.seal(secret)
