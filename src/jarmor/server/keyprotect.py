"""Protection of server private keys at rest.

With ``JARMOR_KEY_ENCRYPTION_KEY`` set (32 random bytes, base64url), every private key is sealed with
AES-256-GCM (``cryptography``'s AEAD, the key record's purpose bound as associated data) before it reaches
the database; without it keys are stored in the clear and the database file is created with owner-only
permissions. While sealing is configured, a key stored in the clear is refused, never used: someone with
write access to the database must not be able to plant a signing key (``jarmor keys seal`` seals the keys
of a deployment that turns sealing on).

Rotating the key-encryption key: set the new one in ``JARMOR_KEY_ENCRYPTION_KEY`` and the old one(s) in
``JARMOR_KEY_ENCRYPTION_KEY_PREVIOUS`` (comma-separated) — keys sealed with either open — then run ``jarmor
keys seal`` to re-seal everything with the new one, and drop the old ones. This is the envelope Fernet /
MultiFernet offers; AES-GCM is used instead because the sealed format predates this and AES-256-GCM is the
stronger primitive (Fernet is AES-128-CBC + HMAC); the format carries a version prefix (``aesgcm:v1:``).
"""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..config import from_environment

PREFIX = "aesgcm:v1:"


class KeyProtectionError(Exception):
    pass


def _decode(value: str, name: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError as exc:
        raise KeyProtectionError(f"{name} must be base64url") from exc


class KeyProtector:
    def __init__(self, key: bytes | None, previous: tuple[bytes, ...] = ()) -> None:
        for k in (key, *previous):
            if k is not None and len(k) != 32:
                raise KeyProtectionError("a key-encryption key must be 32 bytes")
        if previous and key is None:
            raise KeyProtectionError("previous key-encryption keys need a current one")
        self._aead = AESGCM(key) if key else None
        self._previous = tuple(AESGCM(k) for k in previous)

    @classmethod
    def from_env(cls, value: str | None = None, previous: str | None = None) -> KeyProtector:
        """From ``value`` / ``previous`` when given, else from ``JARMOR_KEY_ENCRYPTION_KEY`` / ``_PREVIOUS``
        (declared with every other variable in ``config.ENVIRONMENT_ONLY``)."""
        value = value if value is not None else from_environment("key_encryption_key")
        previous = previous if previous is not None else from_environment("key_encryption_key_previous") or ""
        old = tuple(_decode(v.strip(), "JARMOR_KEY_ENCRYPTION_KEY_PREVIOUS") for v in previous.split(",") if v.strip())
        if not value:
            return cls(None, old)
        return cls(_decode(value, "JARMOR_KEY_ENCRYPTION_KEY"), old)

    @property
    def enabled(self) -> bool:
        return self._aead is not None

    def seal(self, plaintext: str) -> str:
        if self._aead is None:
            return plaintext
        nonce = secrets.token_bytes(12)
        ct = self._aead.encrypt(nonce, plaintext.encode(), b"jarmor-server-key")
        return PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()

    def is_current(self, stored: str) -> bool:
        """Sealed as ``seal`` would seal it now (with the current key-encryption key), or both in the clear."""
        if self._aead is None:
            return not stored.startswith(PREFIX)
        if not stored.startswith(PREFIX):
            return False
        raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
        try:
            self._aead.decrypt(raw[:12], raw[12:], b"jarmor-server-key")
        except InvalidTag:
            return False
        return True

    def open(self, stored: str, *, allow_clear: bool = False) -> str:
        """The private key material. While sealing is configured a key in the clear is refused, unless
        ``allow_clear`` (``jarmor keys seal``, which seals it)."""
        if not stored.startswith(PREFIX):
            if self._aead is not None and not allow_clear:
                raise KeyProtectionError(
                    "a server key is stored in the clear while JARMOR_KEY_ENCRYPTION_KEY is set: refusing it "
                    "(run `jarmor keys seal` to seal the existing keys)"
                )
            return stored
        if self._aead is None:
            raise KeyProtectionError("server keys are encrypted: set JARMOR_KEY_ENCRYPTION_KEY")
        raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
        for aead in (self._aead, *self._previous):
            try:
                return aead.decrypt(raw[:12], raw[12:], b"jarmor-server-key").decode()
            except InvalidTag:
                continue
        raise KeyProtectionError("cannot decrypt server keys: wrong JARMOR_KEY_ENCRYPTION_KEY")
