"""The authentication methods end users sign in with, as RFC 8176 ``amr`` values, and what each proves.

Pure data for the sign-in step and for assurance policy (which methods satisfy a tier):

* a password: ``["pwd"]`` — one factor (something known), not phishing-resistant;
* a password and a TOTP code: ``["pwd", "otp", "mfa"]`` — two factors (NIST SP 800-63B AAL2), neither
  phishing-resistant;
* a passkey with user verification: the key's storage — ``"hwk"`` for a device-bound credential (not backup
  eligible: the private key cannot leave the authenticator), ``"swk"`` for a synced one (backup eligible,
  held by a sync fabric) — plus ``"user"`` (the authenticator tested the user's presence and verified them)
  and ``"mfa"`` (possession of the key and the verification gesture: a multi-factor authenticator). Both are
  phishing-resistant (WebAuthn binds every signature to the RP ID and origin, SP 800-63B §3.2.5); a
  device-bound passkey can serve AAL3, a synced one AAL2 (NIST's 2024 supplement on syncable authenticators).
"""

from __future__ import annotations

from dataclasses import dataclass

PWD = "pwd"
OTP = "otp"
HWK = "hwk"
SWK = "swk"
USER = "user"
MFA = "mfa"

PASSWORD = "password"
PASSWORD_TOTP = "password+totp"
PASSKEY = "passkey"


@dataclass(frozen=True, slots=True)
class Method:
    """One way to sign in: its name on pages and in records, and what it proves."""

    name: str
    factors: int
    phishing_resistant: bool


METHODS = {
    PASSWORD: Method(PASSWORD, 1, False),
    PASSWORD_TOTP: Method(PASSWORD_TOTP, 2, False),
    PASSKEY: Method(PASSKEY, 2, True),
}


def password_amr(*, with_otp: bool) -> list[str]:
    return [PWD, OTP, MFA] if with_otp else [PWD]


def passkey_amr(*, backup_eligible: bool) -> list[str]:
    return [SWK if backup_eligible else HWK, USER, MFA]


def method_of(amr: list[str]) -> Method:
    """The method an ``amr`` list was reached with (the weakest reading when it is unknown)."""
    if HWK in amr or SWK in amr:
        return METHODS[PASSKEY]
    if OTP in amr:
        return METHODS[PASSWORD_TOTP]
    return METHODS[PASSWORD]
