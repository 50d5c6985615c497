"""Passkeys: the WebAuthn registration and authentication ceremonies (W3C WebAuthn Level 3 §7.1, §7.2), with
the ``webauthn`` package (py_webauthn) doing every check of the responses.

* The relying party is the issuer: RP ID its host name, the expected origin its ``scheme://host[:port]``
  (WebAuthn binds each signature to them: the verifier-name binding that makes passkeys phishing-resistant,
  NIST SP 800-63B §3.2.5). An issuer on an IP address cannot have passkeys (an RP ID is a domain).
* User verification is *required* in both ceremonies; attestation is not requested (``none``): no
  authenticator vendor has to be trusted.
* Each ceremony's challenge (32 random bytes) lives in the short-lived store under a random id, and is
  *taken* when the response arrives: one response per challenge, also across workers and nodes. Pages that
  must render without awaiting the store (the authorization interaction's sign-in page) use a self-contained
  challenge instead (``bound_authentication``: random bytes, an expiry and an HMAC-SHA256 with the server
  secret over both and what the page is bound to — the standard library's ``hmac``, as ``csrf.py``), spent
  with an atomic set-if-absent when its response arrives: equally single-use.
* The signature counter and the backup flags are stored; an assertion whose counter did not grow is refused
  (a cloned authenticator), and the counter is advanced with an atomic compare-and-set, so of two concurrent
  uses of one assertion at most one succeeds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..store.base import AccountStore, AuthenticatorRecord, EphemeralStore

CEREMONY_NS = "webauthn-ceremony"
CEREMONY_TTL = 300
MAX_RESPONSE = 64 * 1024
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


class PasskeyError(Exception):
    """A ceremony response that does not verify (the message is for logs, never for the page)."""


@dataclass(frozen=True, slots=True)
class RelyingParty:
    rp_id: str
    origin: str
    name: str

    @classmethod
    def for_issuer(cls, issuer: str) -> RelyingParty:
        parts = urlsplit(issuer)
        return cls(rp_id=parts.hostname or "", origin=f"{parts.scheme}://{parts.netloc}", name="jarmor")


@dataclass(frozen=True, slots=True)
class Ceremony:
    """A started ceremony: its id (for the form) and the options for ``navigator.credentials``."""

    ceremony_id: str
    options_json: str


async def _remember(store: EphemeralStore, purpose: str, challenge: bytes, subject: str) -> str:
    ceremony_id = secrets.token_urlsafe(24)
    record = orjson.dumps({"purpose": purpose, "challenge": bytes_to_base64url(challenge), "subject": subject})
    await store.put(CEREMONY_NS, ceremony_id, record, CEREMONY_TTL)
    return ceremony_id


async def _recall(store: EphemeralStore, ceremony_id: str, purpose: str, subject: str) -> bytes:
    raw = await store.take(CEREMONY_NS, ceremony_id) if 0 < len(ceremony_id) <= 64 else None
    if raw is None:
        raise PasskeyError("unknown, used or expired ceremony")
    record = orjson.loads(raw)
    if record["purpose"] != purpose or record["subject"] != subject:
        raise PasskeyError("the ceremony belongs to another purpose or session")
    return base64url_to_bytes(record["challenge"])


async def start_registration(
    store: EphemeralStore, rp: RelyingParty, username: str, existing: list[AuthenticatorRecord], bound_to: str
) -> Ceremony:
    """Options for ``navigator.credentials.create``: a discoverable credential, user verification required,
    no attestation, the account's existing passkeys excluded (WebAuthn §5.4 ``excludeCredentials``)."""
    challenge = secrets.token_bytes(32)
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_name=username,
        user_id=secrets.token_bytes(16),
        challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(r.credential_id))
            for r in existing if r.kind == "passkey" and r.credential_id
        ],
    )
    ceremony_id = await _remember(store, "register", challenge, bound_to)
    return Ceremony(ceremony_id, options_to_json(options))


def _credential(response: str) -> str:
    if not response or len(response) > MAX_RESPONSE:
        raise PasskeyError("no or oversized credential")
    return response


async def finish_registration(
    store: EphemeralStore, rp: RelyingParty, ceremony_id: str, response: str, *, bound_to: str,
    population: str, username: str, label: str, now: int,
) -> AuthenticatorRecord:
    """Verify the ``navigator.credentials.create`` response; the new passkey's record (not stored yet)."""
    challenge = await _recall(store, ceremony_id, "register", bound_to)
    try:
        verified = verify_registration_response(
            credential=_credential(response), expected_challenge=challenge, expected_rp_id=rp.rp_id,
            expected_origin=rp.origin, require_user_verification=True,
        )
        transports = orjson.loads(response).get("response", {}).get("transports", [])
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PasskeyError(f"registration did not verify: {type(exc).__name__}") from exc
    return AuthenticatorRecord(
        authenticator_id=secrets.token_urlsafe(12),
        population=population,
        username=username,
        kind="passkey",
        created_at=now,
        label=label,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        transports=tuple(t for t in transports if isinstance(t, str) and t in _TRANSPORTS)
        if isinstance(transports, list) else (),
        backup_eligible=verified.credential_device_type == "multi_device",
        backup_state=verified.credential_backed_up,
        user_verified=verified.user_verified,
    )


async def start_authentication(store: EphemeralStore, rp: RelyingParty, bound_to: str) -> Ceremony:
    """Options for ``navigator.credentials.get``: any discoverable credential for this RP (no account name is
    asked first, so nothing tells which accounts exist), user verification required."""
    challenge = secrets.token_bytes(32)
    options = generate_authentication_options(
        rp_id=rp.rp_id, challenge=challenge, user_verification=UserVerificationRequirement.REQUIRED
    )
    ceremony_id = await _remember(store, "authenticate", challenge, bound_to)
    return Ceremony(ceremony_id, options_to_json(options))


async def finish_authentication(
    store: EphemeralStore, accounts: AccountStore, rp: RelyingParty, ceremony_id: str, response: str, *,
    bound_to: str, now: int,
) -> AuthenticatorRecord:
    """Verify a ``navigator.credentials.get`` response against the stored passkey it names, and advance its
    counter (atomically); the passkey's record, updated."""
    challenge = await _recall(store, ceremony_id, "authenticate", bound_to)
    return await _advance(accounts, await _verify_assertion(accounts, rp, challenge, response), now)


async def _verify_assertion(
    accounts: AccountStore, rp: RelyingParty, challenge: bytes, response: str
) -> tuple[AuthenticatorRecord, Any]:
    try:
        credential_id = orjson.loads(_credential(response))["id"]
        if not isinstance(credential_id, str) or len(credential_id) > 1024:
            raise PasskeyError("bad credential id")
    except (ValueError, TypeError, KeyError) as exc:
        raise PasskeyError("malformed credential") from exc
    record = await accounts.by_credential(credential_id)
    if record is None or record.public_key is None:
        raise PasskeyError("unknown credential")
    try:
        verified = verify_authentication_response(
            credential=response, expected_challenge=challenge, expected_rp_id=rp.rp_id,
            expected_origin=rp.origin, credential_public_key=base64url_to_bytes(record.public_key),
            credential_current_sign_count=record.sign_count, require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PasskeyError(f"assertion did not verify: {type(exc).__name__}") from exc
    return record, verified


async def _advance(accounts: AccountStore, checked: tuple[AuthenticatorRecord, Any], now: int) -> AuthenticatorRecord:
    """Advance the passkey's counter (atomically: a counter that did not grow is refused)."""
    record, verified = checked
    if not await accounts.use_passkey(
        record.authenticator_id, verified.new_sign_count, verified.credential_backed_up, now
    ):
        raise PasskeyError("signature counter did not grow")
    record.sign_count, record.backup_state, record.last_used_at = (
        verified.new_sign_count, verified.credential_backed_up, now
    )
    return record


# -- sign-in pages that render without awaiting the store: self-contained, single-use challenges -------------

CHALLENGE_NS = "webauthn-challenge"
_NONCE, _EXPIRY, _MAC = 16, 8, 16


def _challenge_mac(secret: bytes, bound_to: str, body: bytes) -> bytes:
    msg = b"jarmor-webauthn-challenge|" + bound_to.encode("utf-8", "replace") + b"|" + body
    return hmac.new(secret, msg, hashlib.sha256).digest()[:_MAC]


def bound_authentication(rp: RelyingParty, secret: bytes, bound_to: str, now: int) -> Ceremony:
    """Options for ``navigator.credentials.get`` whose challenge carries its own proof: 16 random bytes, an
    expiry and an HMAC (keyed with the server secret) over both and ``bound_to`` — so a page can offer a
    passkey without writing anything. The challenge is made single-use when its response arrives
    (``finish_bound_authentication``: an atomic set-if-absent in the short-lived store)."""
    body = secrets.token_bytes(_NONCE) + (now + CEREMONY_TTL).to_bytes(_EXPIRY, "big")
    challenge = body + _challenge_mac(secret, bound_to, body)
    options = generate_authentication_options(
        rp_id=rp.rp_id, challenge=challenge, user_verification=UserVerificationRequirement.REQUIRED
    )
    return Ceremony("", options_to_json(options))


def _bound_challenge(response: str, live_secrets: list[bytes], bound_to: str, now: int) -> bytes:
    """The challenge the response answers, if this server made it for ``bound_to`` and it has not expired."""
    try:
        client_data = orjson.loads(base64url_to_bytes(orjson.loads(response)["response"]["clientDataJSON"]))
        challenge = base64url_to_bytes(client_data["challenge"])
    except (ValueError, TypeError, KeyError) as exc:
        raise PasskeyError("malformed client data") from exc
    if len(challenge) != _NONCE + _EXPIRY + _MAC:
        raise PasskeyError("not a challenge of this server")
    body, mac = challenge[:-_MAC], challenge[-_MAC:]
    ok = False
    for secret in live_secrets:  # no early exit
        ok |= hmac.compare_digest(mac, _challenge_mac(secret, bound_to, body))
    if not ok or int.from_bytes(body[_NONCE:], "big") < now:
        raise PasskeyError("challenge not made here, for another page, or expired")
    return challenge


async def finish_bound_authentication(
    store: EphemeralStore, accounts: AccountStore, rp: RelyingParty, live_secrets: list[bytes], response: str, *,
    bound_to: str, now: int,
) -> AuthenticatorRecord:
    """Verify a response to ``bound_authentication``'s options, then spend its challenge (once)."""
    challenge = _bound_challenge(_credential(response), live_secrets, bound_to, now)
    checked = await _verify_assertion(accounts, rp, challenge, response)
    if not await store.add_once(CHALLENGE_NS, hashlib.sha256(challenge).hexdigest(), CEREMONY_TTL + 60):
        raise PasskeyError("challenge already used")
    return await _advance(accounts, checked, now)
