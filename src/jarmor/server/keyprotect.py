"""Protection of server private keys at rest.

With ``JARMOR_KEY_ENCRYPTION_KEY`` set (32 random bytes, base64url), every private key is sealed with
AES-256-GCM (``cryptography``) before it reaches the database; without it keys are stored in the clear and
the database file is created with owner-only permissions.
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "aesgcm:v1:"


class KeyProtectionError(Exception):
    pass


class KeyProtector:
    def __init__(self, key: bytes | None) -> None:
        if key is not None and len(key) != 32:
            raise KeyProtectionError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(key) if key else None

    @classmethod
    def from_env(cls, value: str | None = None) -> KeyProtector:
        value = value if value is not None else os.environ.get("JARMOR_KEY_ENCRYPTION_KEY")
        if not value:
            return cls(None)
        try:
            key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except ValueError as exc:
            raise KeyProtectionError("JARMOR_KEY_ENCRYPTION_KEY must be base64url") from exc
        return cls(key)

    @property
    def enabled(self) -> bool:
        return self._aead is not None

    def seal(self, plaintext: str) -> str:
        if self._aead is None:
            return plaintext
        nonce = secrets.token_bytes(12)
        ct = self._aead.encrypt(nonce, plaintext.encode(), b"jarmor-server-key")
        return PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        if self._aead is None:
            raise KeyProtectionError("server keys are encrypted: set JARMOR_KEY_ENCRYPTION_KEY")
        raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], b"jarmor-server-key").decode()
        except InvalidTag as exc:
            raise KeyProtectionError("cannot decrypt server keys: wrong JARMOR_KEY_ENCRYPTION_KEY") from exc
