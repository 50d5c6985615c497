"""A software WebAuthn authenticator: what ``jarmor demo`` signs in with where a tier needs a passkey, and what
the test suites use without a browser. It answers the options the server makes with a "none"-attestation
registration and ES256 assertions, built from the WebAuthn Level 3 formats (§6.1 authenticator data, §6.5.4
attestation object, §5.8.1 client data) with cbor2 and ``cryptography`` (ECDSA P-256 signatures: no crypto
is written here, only the byte layouts WebAuthn defines, which no library builds for an authenticator).

It stands in for a security key and is not one: its private key lives in this process's memory and is gone
when the process ends. ``backup_eligible=False`` (the default) makes it present itself as a device-bound
passkey, which the server places at AAL3 — true of the hardware it imitates, not of this object, which is why
only the demo and tests use it (the server never trusts a claim it cannot verify beyond what WebAuthn lets
it: with attestation ``none``, every relying party takes the authenticator's flags on trust).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


@dataclass
class SoftAuthenticator:
    origin: str
    user_verified: bool = True
    backup_eligible: bool = False
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    sign_count: int = 0

    def _flags(self) -> int:
        return UP | (UV if self.user_verified else 0) | (BE if self.backup_eligible else 0)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin}).encode()

    def create(self, options_json: str) -> str:
        options = json.loads(options_json)
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + cose
        rp_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        auth_data = rp_hash + bytes([self._flags() | AT]) + struct.pack(">I", self.sign_count) + attested
        att = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        cid = bytes_to_base64url(self.credential_id)
        return json.dumps({
            "id": cid, "rawId": cid, "type": "public-key", "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(self._client_data("webauthn.create", options["challenge"])),
                "attestationObject": bytes_to_base64url(att), "transports": ["internal"],
            },
        })

    def get(self, options_json: str, rp_id: str | None = None, *, bump: bool = True) -> str:
        """An assertion for the request ``options_json`` (``rp_id``: default, the options' ``rpId``)."""
        options = json.loads(options_json)
        rp_id = rp_id or str(options["rpId"])
        if bump:
            self.sign_count += 1
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([self._flags()]) + struct.pack(">I", self.sign_count)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        cid = bytes_to_base64url(self.credential_id)
        return json.dumps({
            "id": cid, "rawId": cid, "type": "public-key", "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data), "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature), "userHandle": None,
            },
        })


