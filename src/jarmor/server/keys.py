"""The server's keys: generated on first start, persisted in the key store, published in the JWKS.

Signing keys are one per algorithm (RFC 8725 §3.1: one key, one algorithm). A key is published as soon as
it exists and used for signing only from its ``active_at`` time, so relying parties can fetch it first.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from ..jose import Jwk, JwkSet, generate_jwk, import_jwk
from ..store.base import KeyStore, ServerKeyRecord
from .keyprotect import KeyProtector

DEFAULT_SIGNING_ALGS = ("ES256", "PS256", "RS256", "EdDSA")
DEFAULT_ENCRYPTION_ALGS = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW", "RSA-OAEP-256")
SECRET_ALG = "secret"  # symmetric secrets (CSRF/cookie MACs); never published


@dataclass(frozen=True, slots=True)
class LoadedKey:
    record: ServerKeyRecord
    jwk: Jwk | None
    secret: bytes | None = None


class Keyring:
    """An immutable view of the key store at one moment; the server swaps in a new one after rotation."""

    def __init__(self, keys: Iterable[LoadedKey], *, now: float | None = None) -> None:
        self._now = int(now if now is not None else time.time())
        self._keys = [k for k in keys if k.record.state != "retired"]
        self._signing: dict[str, Jwk] = {}
        for k in sorted(self._keys, key=lambda k: k.record.active_at):
            if k.jwk is None or k.record.use != "sig":
                continue
            if k.record.state == "active" and k.record.active_at <= self._now:
                self._signing[k.record.alg] = k.jwk
        if "EdDSA" in self._signing:
            self._signing.setdefault("Ed25519", self._signing["EdDSA"])
        self._decryption = JwkSet(tuple(k.jwk for k in self._keys if k.jwk is not None and k.record.use == "enc"))
        self._public = {"keys": [k.jwk.public_dict() for k in self._keys if k.jwk is not None]}
        self._secret = next((k.secret for k in self._keys if k.secret is not None), None)

    def signing_key(self, alg: str) -> Jwk:
        try:
            return self._signing[alg]
        except KeyError:
            raise LookupError(f"no active server key for {alg}") from None

    def signing_algs(self) -> tuple[str, ...]:
        return tuple(self._signing)

    def decryption_keys(self) -> JwkSet:
        return self._decryption

    def public_jwks(self) -> dict[str, object]:
        return self._public

    def secret(self) -> bytes:
        if self._secret is None:
            raise LookupError("no server secret")
        return self._secret

    def records(self) -> list[ServerKeyRecord]:
        return [k.record for k in self._keys]


def _new_record(alg: str, protector: KeyProtector, now: int, *, active_at: int | None = None) -> ServerKeyRecord:
    if alg == SECRET_ALG:
        material = orjson.dumps({"kty": "oct", "k": secrets.token_urlsafe(32)}).decode()
        kid, use = "secret-" + secrets.token_hex(8), "secret"
    else:
        jwk = generate_jwk(alg)
        material = orjson.dumps(jwk.private_dict()).decode()
        kid, use = jwk.kid, str(jwk.use)
    return ServerKeyRecord(
        kid=kid,
        alg=alg,
        use=use,
        private_jwk=protector.seal(material),
        created_at=now,
        active_at=now if active_at is None else active_at,
    )


def load_key(record: ServerKeyRecord, protector: KeyProtector) -> LoadedKey:
    material = orjson.loads(protector.open(record.private_jwk))
    if record.alg == SECRET_ALG:
        from ..jose import b64url_decode

        return LoadedKey(record, None, b64url_decode(material["k"]))
    jwk = import_jwk(material, allow_private=True, created_at=record.created_at)
    return LoadedKey(record, jwk)


async def ensure_keys(
    store: KeyStore,
    protector: KeyProtector,
    *,
    algs: Iterable[str] = DEFAULT_SIGNING_ALGS + DEFAULT_ENCRYPTION_ALGS,
    now: int | None = None,
) -> list[ServerKeyRecord]:
    """Generate any missing key (first start); return the full list. Safe to call on every start."""
    now = int(now if now is not None else time.time())
    records = await store.list()
    have = {r.alg for r in records if r.state in ("active", "pending")}
    for alg in (*algs, SECRET_ALG):
        if alg not in have:
            rec = _new_record(alg, protector, now)
            try:
                await store.add(rec)
            except Exception:  # another worker generated it first  # noqa: BLE001, S112
                continue
            records.append(rec)
    return await store.list()


async def load_keyring(store: KeyStore, protector: KeyProtector, *, now: float | None = None) -> Keyring:
    records = await store.list()
    return Keyring((load_key(r, protector) for r in records if r.state != "retired"), now=now)
