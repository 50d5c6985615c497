"""Keys and key sets: import with validation, generation, public export, and ``kid`` selection rules.

Selection follows RFC 9101 §6.2 / RFC 7515 §4.1.4 and FAPI 1.0 Advanced §8.11: when a ``kid`` is present the
key it names is the only candidate; among keys sharing a ``kid``, ``kty``/``crv``/``alg``/``use`` decide;
with no ``kid``, exactly one compatible key must exist. Keys named or embedded in a token header (``jwk``,
``jku``, ``x5u``, ``x5c``) are never consulted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.errors import JoseError as _LibError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from .algorithms import (
    ALLOWED_CURVES,
    CONTENT_ENCRYPTION_ALGS,
    KEY_MANAGEMENT_ALGS,
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    SIGNING_ALGS,
)
from .errors import InvalidKey, KeyNotFound

AsymmetricKey = ECKey | RSAKey | OKPKey

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_KEYS_PER_SET = 32


@dataclass(frozen=True, eq=False, slots=True)
class Jwk:
    """One validated asymmetric key with its JWK metadata."""

    key: AsymmetricKey
    kid: str
    kty: str
    crv: str | None
    alg: str | None
    use: str | None
    key_ops: frozenset[str] | None
    created_at: int = field(default=0)

    @property
    def is_private(self) -> bool:
        return bool(self.key.is_private)

    def public_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.key.as_dict(private=False))
        data["kid"] = self.kid
        if self.alg:
            data["alg"] = self.alg
        if self.use:
            data["use"] = self.use
        data.pop("key_ops", None)
        return data

    def private_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.key.as_dict(private=True))
        data["kid"] = self.kid
        if self.alg:
            data["alg"] = self.alg
        if self.use:
            data["use"] = self.use
        return data

    def thumbprint(self) -> str:
        return str(self.key.thumbprint())

    def fits_signing_alg(self, alg: str) -> bool:
        """RFC 8725 §3.1: a key is used with exactly one family of algorithms, checked at use time."""
        want = SIGNING_ALGS.get(alg)
        if want is None or (self.kty, self.crv if self.kty != "RSA" else None) != want:
            return False
        if self.alg is not None and self.alg != alg and {self.alg, alg} != {"EdDSA", "Ed25519"}:
            return False
        if self.use is not None and self.use != "sig":
            return False
        return self.key_ops is None or bool(self.key_ops & {"sign", "verify"})

    def fits_encryption_alg(self, alg: str) -> bool:
        allowed = KEY_MANAGEMENT_ALGS.get(alg)
        if allowed is None or (self.kty, self.crv if self.kty != "RSA" else None) not in allowed:
            return False
        if self.alg is not None and self.alg != alg:
            return False
        if self.use is not None and self.use != "enc":
            return False
        return self.key_ops is None or bool(
            self.key_ops & {"encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"}
        )


def _bits(key: RSAKey) -> int:
    raw = key.raw_value
    if isinstance(raw, rsa.RSAPrivateKey):
        return raw.key_size
    return int(raw.key_size)


def import_jwk(data: Mapping[str, Any], *, allow_private: bool, created_at: int = 0) -> Jwk:
    """Import one JWK, refusing symmetric keys, weak sizes, unknown curves and malformed members."""
    if not isinstance(data, Mapping):
        raise InvalidKey("a JWK must be a JSON object")
    kty = data.get("kty")
    if not allow_private and any(m in data for m in _PRIVATE_MEMBERS):
        raise InvalidKey("a public key set must not contain private key material")
    for member in ("kid", "alg", "use", "crv"):
        if member in data and not isinstance(data[member], str):
            raise InvalidKey(f"JWK member {member!r} must be a string")
    key_ops_raw = data.get("key_ops")
    if key_ops_raw is not None and (
        not isinstance(key_ops_raw, list) or not all(isinstance(op, str) for op in key_ops_raw)
    ):
        raise InvalidKey("JWK key_ops must be an array of strings")
    clean = {k: v for k, v in data.items() if k not in {"key_ops", "x5c", "x5u", "x5t", "x5t#S256", "ext"}}
    try:
        key: AsymmetricKey
        if kty == "EC":
            key = ECKey.import_key(clean)
        elif kty == "RSA":
            key = RSAKey.import_key(clean)
        elif kty == "OKP":
            key = OKPKey.import_key(clean)
        else:
            raise InvalidKey(f"unsupported key type {kty!r} (only EC, RSA and OKP keys are accepted)")
    except InvalidKey:
        raise
    except (_LibError, ValueError, TypeError, KeyError) as exc:
        raise InvalidKey(f"invalid {kty} key: {exc}") from exc
    crv = data.get("crv") if kty != "RSA" else None
    if kty != "RSA" and crv not in ALLOWED_CURVES:
        raise InvalidKey(f"unsupported curve {crv!r}")
    if isinstance(key, RSAKey):
        bits = _bits(key)
        if bits < MIN_RSA_BITS or bits > MAX_RSA_BITS:
            raise InvalidKey(f"RSA keys must be {MIN_RSA_BITS}-{MAX_RSA_BITS} bits, got {bits}")
    alg = data.get("alg")
    if alg is not None and alg not in SIGNING_ALGS and alg not in KEY_MANAGEMENT_ALGS:
        raise InvalidKey(f"key algorithm {alg!r} is not supported")
    use = data.get("use")
    if use is not None and use not in ("sig", "enc"):
        raise InvalidKey(f"key use {use!r} is not supported")
    kid = data.get("kid") or str(key.thumbprint())
    return Jwk(
        key=key,
        kid=kid,
        kty=str(kty),
        crv=crv,
        alg=alg,
        use=use,
        key_ops=frozenset(key_ops_raw) if key_ops_raw is not None else None,
        created_at=created_at,
    )


@dataclass(frozen=True, slots=True)
class JwkSet:
    """An immutable set of keys; ``select_*`` implement the ``kid`` rules."""

    keys: tuple[Jwk, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, *, allow_private: bool = False) -> JwkSet:
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise InvalidKey('a JWK Set must be an object with a "keys" array')
        raw = data["keys"]
        if len(raw) > MAX_KEYS_PER_SET:
            raise InvalidKey(f"a JWK Set may hold at most {MAX_KEYS_PER_SET} keys")
        keys = tuple(import_jwk(k, allow_private=allow_private) for k in raw)
        seen: set[tuple[str, str, str | None, str | None]] = set()
        for k in keys:
            ident = (k.kid, k.kty, k.crv, k.use)
            if ident in seen:
                raise InvalidKey(f"duplicate key id {k.kid!r} for the same key type and use")
            seen.add(ident)
        return cls(keys)

    def __iter__(self) -> Iterable[Jwk]:  # type: ignore[override]
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def public_dict(self) -> dict[str, Any]:
        return {"keys": [k.public_dict() for k in self.keys]}

    def by_kid(self, kid: str) -> list[Jwk]:
        return [k for k in self.keys if k.kid == kid]

    def has_kid(self, kid: str) -> bool:
        return any(k.kid == kid for k in self.keys)

    def _select(self, kid: object, fits: Sequence[Jwk], purpose: str) -> Jwk:
        if kid is not None:
            if not isinstance(kid, str) or not kid or len(kid) > 256:
                raise KeyNotFound("malformed kid", reason="bad_kid")
            named = [k for k in fits if k.kid == kid]
            if len(named) == 1:
                return named[0]
            if not named:
                raise KeyNotFound(f"no {purpose} key with kid {kid!r} fits the algorithm")
            raise KeyNotFound(f"ambiguous {purpose} key id {kid!r}")
        if len(fits) == 1:
            return fits[0]
        if not fits:
            raise KeyNotFound(f"no {purpose} key fits the algorithm")
        raise KeyNotFound(f"several {purpose} keys fit and the token names no kid", reason="kid_required")

    def select_verification_key(self, alg: str, kid: object) -> Jwk:
        return self._select(kid, [k for k in self.keys if k.fits_signing_alg(alg)], "signature")

    def select_decryption_key(self, alg: str, kid: object) -> Jwk:
        fits = [k for k in self.keys if k.is_private and k.fits_encryption_alg(alg)]
        return self._select(kid, fits, "decryption")

    def select_encryption_key(self, alg: str, kid: object = None) -> Jwk:
        """Pick the recipient's key for ``alg`` (by ``use``/``alg``); newest wins when several fit."""
        fits = [k for k in self.keys if k.fits_encryption_alg(alg)]
        if kid is not None:
            return self._select(kid, fits, "encryption")
        if not fits:
            raise KeyNotFound(f"no encryption key fits {alg}")
        return max(fits, key=lambda k: k.created_at)


def generate_jwk(alg: str, *, use: str | None = None, kid: str | None = None) -> Jwk:
    """Generate a private key for a signing or key-management algorithm; ``kid`` defaults to the thumbprint."""
    key: AsymmetricKey
    if alg in SIGNING_ALGS:
        kty, crv = SIGNING_ALGS[alg]
        use = use or "sig"
    elif alg in KEY_MANAGEMENT_ALGS:
        kty, crv = ("RSA", None) if alg.startswith("RSA") else ("EC", "P-256")
        use = use or "enc"
    else:
        raise InvalidKey(f"cannot generate a key for {alg!r}")
    if kty == "EC":
        key = ECKey.generate_key(crv or "P-256")
    elif kty == "RSA":
        key = RSAKey.generate_key(2048)
    else:
        key = OKPKey.generate_key(crv or "Ed25519")
    return Jwk(
        key=key,
        kid=kid or str(key.thumbprint()),
        kty=kty,
        crv=crv,
        alg=alg,
        use=use,
        key_ops=None,
        created_at=int(time.time()),
    )


def check_encryption(alg: str, enc: str) -> None:
    if alg not in KEY_MANAGEMENT_ALGS or enc not in CONTENT_ENCRYPTION_ALGS:
        raise InvalidKey(f"unsupported encryption {alg}/{enc}")
