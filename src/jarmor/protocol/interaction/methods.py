"""The sign-in methods beyond the password: a TOTP code and passkeys, as ``authentication.Method`` data.

* ``totp``: a one-time code from an authenticator app (RFC 6238): possession of the shared secret; it does
  not identify a user by itself (a second factor after a password); ``amr`` ``otp``.
* ``passkey``: a *synced* passkey (backup eligible, WebAuthn §6.1.3): possession of the key plus the user
  verification the authenticator performed (a PIN or a biometric: a second factor — a multi-factor
  authenticator), phishing-resistant (the signature is bound to the RP ID and origin), but its key can be
  exported to a sync fabric; ``amr`` ``swk`` + ``user``. NIST's supplement on syncable authenticators: AAL2.
* ``passkey-device``: a device-bound passkey (not backup eligible): the same, with a key that cannot leave
  the authenticator; ``amr`` ``hwk`` + ``user``: AAL3.

One verifier serves both passkey methods and names the one the credential proves (its backup-eligible flag,
stored at registration). Importing ``jarmor.protocol.interaction`` registers them.
"""

from __future__ import annotations

from .authentication import Factor, Method, register_method

TOTP = Method("totp", ("otp",), frozenset({Factor.POSSESSION}), identifies=False)
PASSKEY = Method(
    "passkey", ("swk", "user"), frozenset({Factor.POSSESSION, Factor.INHERENCE}), phishing_resistant=True
)
PASSKEY_DEVICE = Method(
    "passkey-device", ("hwk", "user"), frozenset({Factor.POSSESSION, Factor.INHERENCE}),
    phishing_resistant=True, hardware_bound=True,
)
PASSKEY_METHODS = (PASSKEY.name, PASSKEY_DEVICE.name)

for _method in (TOTP, PASSKEY, PASSKEY_DEVICE):
    register_method(_method)
