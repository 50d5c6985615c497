"""Keys and key sets: import with validation, generation, public export, and ``kid`` selection rules.

Selection follows RFC 9101 §6.2 / RFC 7515 §4.1.4 and FAPI 1.0 Advanced §8.11: when a ``kid`` is present the
key it names is the only candidate; among keys sharing a ``kid``, ``kty``/``crv``/``alg``/``use`` decide;
with no ``kid``, exactly one compatible key must exist. Keys named or embedded in a token header (``jwk``,
``jku``, ``x5u``, ``x5c``) are never consulted.

Import is strict (RFC 7517, RFC 7518 §6, RFC 8037 §2, RFC 8725 §3.5): only EC P-256/384/521, OKP
Ed25519/X25519 and RSA 2048-8192 bits; every key-material member must be canonical base64url of the exact
length the curve needs; a private key must agree with the public members published beside it; ``alg``,
``use`` and ``key_ops`` must agree with each other and with the key type.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa, x25519
from joserfc.errors import JoseError as _LibError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from .algorithms import (
    KEY_MANAGEMENT_ALGS,
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    SIGNING_ALGS,
)
from .b64 import b64url_decode
from .errors import InvalidKey, KeyNotFound, MalformedToken
from .signatures import SignatureOps, build_signature_ops

AsymmetricKey = ECKey | RSAKey | OKPKey

_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_KEYS_PER_SET: Final = 32
MAX_KID_LENGTH: Final = 256
MAX_RSA_EXPONENT_BITS: Final = 256

EC_CURVES: Final[dict[str, int]] = {"P-256": 32, "P-384": 48, "P-521": 66}
OKP_CURVES: Final[dict[str, int]] = {"Ed25519": 32, "X25519": 32}

_MATERIAL: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    # kty -> (public members, private members)
    "EC": (frozenset({"crv", "x", "y"}), frozenset({"d"})),
    "OKP": (frozenset({"crv", "x"}), frozenset({"d"})),
    "RSA": (frozenset({"n", "e"}), frozenset({"d", "p", "q", "dp", "dq", "qi"})),
}
_CONTROL_CHARACTER: Final = re.compile(r"[\x00-\x1f\x7f]")
_SIG_OPS: Final = frozenset({"sign", "verify"})
_ENC_OPS: Final = frozenset({"encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"})


def valid_kid(kid: object) -> bool:
    """A ``kid`` is a non-empty string of at most 256 characters without control characters."""
    return isinstance(kid, str) and 0 < len(kid) <= MAX_KID_LENGTH and _CONTROL_CHARACTER.search(kid) is None


def _key_family(kty: str, crv: str | None) -> tuple[str, str | None]:
    return (kty, crv if kty != "RSA" else None)


def _alg_fits_key(alg: str, kty: str, crv: str | None) -> bool:
    family = _key_family(kty, crv)
    if alg in SIGNING_ALGS:
        return SIGNING_ALGS[alg] == family
    allowed = KEY_MANAGEMENT_ALGS.get(alg)
    return allowed is not None and family in allowed


@dataclass(frozen=True, eq=False, slots=True)
class Jwk:
    """One validated asymmetric key with its JWK metadata.

    Construction re-checks the invariants that ``import_jwk`` establishes, so a key that reaches a
    ``JwkSet`` by another route (a store, a test, a migration) cannot be weaker than an imported one
    (RFC 7518 §3.3/§4.2: RSA keys of 2048 bits or more; RFC 8725 §3.1: one key, one algorithm family).
    """

    key: AsymmetricKey
    kid: str
    kty: str
    crv: str | None
    alg: str | None
    use: str | None
    key_ops: frozenset[str] | None
    created_at: int = field(default=0)
    # Derived once, on first use, from the immutable fields above (see ``signature_ops``/``thumbprint``).
    _ops: dict[str, SignatureOps | None] = field(default_factory=dict, init=False, repr=False)
    _fits_signing: dict[str, bool] = field(default_factory=dict, init=False, repr=False)
    _thumbprint: str | None = field(default=None, init=False, repr=False)
    _private: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if not valid_kid(self.kid):
            raise InvalidKey("key id must be a non-empty string of at most 256 characters", reason="bad_kid")
        if self.kty == "RSA":
            if not isinstance(self.key, RSAKey) or self.crv is not None:
                raise InvalidKey("key object does not match kty RSA", reason="inconsistent")
            bits = _bits(self.key)
            if bits < MIN_RSA_BITS or bits > MAX_RSA_BITS:
                raise InvalidKey(
                    f"RSA keys must be {MIN_RSA_BITS}-{MAX_RSA_BITS} bits, got {bits}", reason="weak_key"
                )
        elif self.kty == "EC":
            if (
                not isinstance(self.key, ECKey)
                or self.crv not in EC_CURVES
                or self.key.curve_name != self.crv
            ):
                raise InvalidKey("key object does not match kty EC and its crv", reason="inconsistent")
        elif self.kty == "OKP":
            if (
                not isinstance(self.key, OKPKey)
                or self.crv not in OKP_CURVES
                or self.key.curve_name != self.crv
            ):
                raise InvalidKey("key object does not match kty OKP and its crv", reason="inconsistent")
        else:
            raise InvalidKey("unsupported key type", reason="unsupported_kty")
        if self.alg is not None and not _alg_fits_key(self.alg, self.kty, self.crv):
            raise InvalidKey(
                f"the key algorithm does not fit a {self.kty} {self.crv} key", reason="alg"
            )
        if self.use not in (None, "sig", "enc"):
            raise InvalidKey("key use must be sig or enc", reason="use")
        if (
            self.use is not None
            and self.alg is not None
            and (self.alg in SIGNING_ALGS) != (self.use == "sig")
        ):
            raise InvalidKey("key use and alg disagree", reason="inconsistent")
        if (
            self.key_ops is not None
            and self.use is not None
            and not self.key_ops <= (_SIG_OPS if self.use == "sig" else _ENC_OPS)
        ):
            raise InvalidKey("key_ops and use disagree", reason="inconsistent")
        object.__setattr__(self, "_private", bool(self.key.is_private))

    @property
    def is_private(self) -> bool:
        return self._private

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

    @property
    def modulus_bytes(self) -> int:
        """The RSA modulus width in bytes (the length of every RS*/PS* signature and RSA-OAEP ciphertext)."""
        if not isinstance(self.key, RSAKey):
            raise InvalidKey("not an RSA key", reason="inconsistent")
        return (_bits(self.key) + 7) // 8

    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint of the public key (computed by the JOSE library once per key)."""
        value = self._thumbprint
        if value is None:
            value = str(self.key.thumbprint())
            object.__setattr__(self, "_thumbprint", value)  # a cache of an immutable key's digest
        return value

    def signature_ops(self, alg: str) -> SignatureOps | None:
        """This key prepared for the signing algorithm ``alg`` (``cryptography`` key objects, padding, hash),
        built on first use and kept for the life of this ``Jwk``: a rotated key is another ``Jwk`` with its
        own, and a key removed from a set can no longer be selected. ``None`` when the JOSE library's key
        checks refuse the pair. Whether the key may be used with ``alg`` at all is ``fits_signing_alg``'s
        decision, made by the callers on every use (RFC 8725 §3.1)."""
        if alg not in SIGNING_ALGS:
            return None
        try:
            return self._ops[alg]
        except KeyError:
            ops = self._ops[alg] = build_signature_ops(self.key, alg)
            return ops

    def _purposes(self) -> frozenset[str]:
        if self.use is not None:
            return frozenset({self.use})
        if self.alg is not None:
            return frozenset({"sig" if self.alg in SIGNING_ALGS else "enc"})
        return frozenset({"sig", "enc"})

    def fits_signing_alg(self, alg: str) -> bool:
        """RFC 8725 §3.1: a key is used with exactly one family of algorithms, checked at use time (the
        answer depends on this key's immutable fields only, so it is kept per ``alg``)."""
        if alg not in SIGNING_ALGS:
            return False
        try:
            return self._fits_signing[alg]
        except KeyError:
            fits = self._fits_signing[alg] = self._fits_signing_alg(alg)
            return fits

    def _fits_signing_alg(self, alg: str) -> bool:
        want = SIGNING_ALGS.get(alg)
        if want is None or _key_family(self.kty, self.crv) != want:
            return False
        if self.alg is not None and self.alg != alg and {self.alg, alg} != {"EdDSA", "Ed25519"}:
            return False
        if self.use is not None and self.use != "sig":
            return False
        return self.key_ops is None or bool(self.key_ops & _SIG_OPS)

    def fits_encryption_alg(self, alg: str) -> bool:
        allowed = KEY_MANAGEMENT_ALGS.get(alg)
        if allowed is None or _key_family(self.kty, self.crv) not in allowed:
            return False
        if self.alg is not None and self.alg != alg:
            return False
        if self.use is not None and self.use != "enc":
            return False
        return self.key_ops is None or bool(self.key_ops & _ENC_OPS)


def _bits(key: RSAKey) -> int:
    raw = key.raw_value
    if isinstance(raw, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return raw.key_size
    raise InvalidKey("not an RSA key", reason="inconsistent")  # pragma: no cover - joserfc invariant


def _decode_member(data: Mapping[str, Any], name: str, length: int | None = None) -> bytes:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidKey(f"JWK member {name!r} must be a non-empty base64url string", reason="bad_member")
    try:
        raw = b64url_decode(value)
    except MalformedToken as exc:
        raise InvalidKey(f"JWK member {name!r} is not canonical base64url", reason="bad_member") from exc
    if length is not None and len(raw) != length:
        raise InvalidKey(f"JWK member {name!r} must be {length} bytes, got {len(raw)}", reason="bad_member")
    return raw


def _check_material(data: Mapping[str, Any], kty: str, crv: str | None, private: bool) -> dict[str, Any]:
    """Validate the key-material members and return only those, for the JOSE library to import."""
    public, private_members = _MATERIAL[kty]
    clean: dict[str, Any] = {"kty": kty}
    if kty == "RSA":
        n = int.from_bytes(_decode_member(data, "n"), "big")
        e = int.from_bytes(_decode_member(data, "e"), "big")
        if n.bit_length() < MIN_RSA_BITS or n.bit_length() > MAX_RSA_BITS:
            raise InvalidKey(
                f"RSA keys must be {MIN_RSA_BITS}-{MAX_RSA_BITS} bits, got {n.bit_length()}",
                reason="weak_key",
            )
        if e < 3 or e % 2 == 0 or e.bit_length() > MAX_RSA_EXPONENT_BITS:
            raise InvalidKey(
                "RSA public exponent must be odd, at least 3 and at most 256 bits", reason="weak_key"
            )
        if "oth" in data:
            raise InvalidKey("multi-prime RSA keys are not supported", reason="bad_member")
        for name in ("n", "e"):
            clean[name] = data[name]
        if private:
            for name in sorted(private_members):
                if name in data:
                    _decode_member(data, name)
                    clean[name] = data[name]
    else:
        size = (EC_CURVES if kty == "EC" else OKP_CURVES)[str(crv)]
        clean["crv"] = crv
        for name in sorted(public - {"crv"}):
            _decode_member(data, name, size)
            clean[name] = data[name]
        if kty == "OKP":
            _check_okp_public(str(crv), _decode_member(data, "x", size))
        if private:
            _decode_member(data, "d", size)
            clean["d"] = data["d"]
    return clean


_P25519: Final = 2**255 - 19
_PROBE: Final = x25519.X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def _low_order_u(u: int) -> bool:
    """True when the Montgomery u-coordinate is of small order: a clamped scalar (a multiple of 8) maps it to
    the all-zero point, which X25519 reports as an error (RFC 7748 §6.1)."""
    try:
        _PROBE.exchange(x25519.X25519PublicKey.from_public_bytes(u.to_bytes(32, "little")))
    except ValueError:
        return True
    return False


def _check_okp_public(crv: str, x: bytes) -> None:
    """Refuse small-order OKP public keys (RFC 7748 §6.1, RFC 8032 §5.1.3, RFC 8725 §3.4).

    An Ed25519 key of small order verifies forged signatures for any message; its ``y`` is mapped to the
    birationally equivalent Montgomery ``u = (1 + y) / (1 - y)`` and tested like an X25519 key. Non-canonical
    encodings (``y >= p``) are refused as RFC 8032 decoding requires.
    """
    if crv == "X25519":
        if _low_order_u(int.from_bytes(x, "little") & ((1 << 255) - 1)):
            raise InvalidKey("X25519 public key of small order", reason="weak_key")
        return
    y = int.from_bytes(x, "little") & ((1 << 255) - 1)
    if y >= _P25519:
        raise InvalidKey("non-canonical Ed25519 public key", reason="bad_member")
    if y == 1 or _low_order_u((1 + y) * pow(1 - y, -1, _P25519) % _P25519):
        raise InvalidKey("Ed25519 public key of small order", reason="weak_key")


def _check_okp_pair(key: OKPKey, given_x: str) -> None:
    """RFC 8037 §2: ``x`` is the public key of ``d``; the JOSE library keeps ``x`` as given, so compare."""
    raw = key.raw_value
    if isinstance(raw, ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey):
        derived = key.as_dict(private=False)
        pub = raw.public_key().public_bytes_raw()
        if b64url_decode(given_x) != pub or b64url_decode(str(derived["x"])) != pub:
            raise InvalidKey("OKP private key does not match its public member x", reason="inconsistent")


def import_jwk(data: Mapping[str, Any], *, allow_private: bool, created_at: int = 0) -> Jwk:
    """Import one JWK, refusing symmetric keys, weak sizes, unknown curves and malformed members.

    ``allow_private=False`` (the default for every key set received from a peer) refuses any private
    member. Every refusal is an ``InvalidKey`` with a ``reason``.
    """
    if not isinstance(data, Mapping):
        raise InvalidKey("a JWK must be a JSON object", reason="bad_member")
    kty = data.get("kty")
    if not isinstance(kty, str) or kty not in _MATERIAL:
        raise InvalidKey(
            "unsupported key type (only EC, RSA and OKP keys are accepted)", reason="unsupported_kty"
        )
    has_private = any(m in data for m in _PRIVATE_MEMBERS)
    if has_private and not allow_private:
        raise InvalidKey("a public key set must not contain private key material", reason="private_key")
    for member in ("kid", "alg", "use", "crv"):
        if member in data and not isinstance(data[member], str):
            raise InvalidKey(f"JWK member {member} must be a string", reason="bad_member")
    crv = data.get("crv") if kty != "RSA" else None
    if (kty == "EC" and crv not in EC_CURVES) or (kty == "OKP" and crv not in OKP_CURVES):
        raise InvalidKey("unsupported curve", reason="unsupported_curve")
    key_ops_raw = data.get("key_ops")
    if key_ops_raw is not None and (
        not isinstance(key_ops_raw, list)
        or not all(isinstance(op, str) for op in key_ops_raw)
        or len(set(key_ops_raw)) != len(key_ops_raw)
    ):
        raise InvalidKey("JWK key_ops must be an array of distinct strings", reason="bad_member")
    alg = data.get("alg")
    if alg is not None and alg not in SIGNING_ALGS and alg not in KEY_MANAGEMENT_ALGS:
        raise InvalidKey("unsupported key algorithm", reason="alg")
    kid = data.get("kid")
    if kid is not None and kid != "" and not valid_kid(kid):
        raise InvalidKey("key id must be at most 256 characters without control characters", reason="bad_kid")
    if has_private and "d" not in data:
        raise InvalidKey("private key members without 'd'", reason="bad_member")
    private = has_private
    clean = _check_material(data, kty, crv, private)
    try:
        key: AsymmetricKey
        if kty == "EC":
            key = ECKey.import_key(clean)
        elif kty == "RSA":
            key = RSAKey.import_key(clean)
        else:
            key = OKPKey.import_key(clean)
            if private:
                _check_okp_pair(key, str(data["x"]))
    except InvalidKey:
        raise
    except (_LibError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise InvalidKey(f"invalid {kty} key: {exc.__class__.__name__}") from exc
    return Jwk(
        key=key,
        kid=kid or str(key.thumbprint()),
        kty=kty,
        crv=crv,
        alg=alg,
        use=data.get("use"),
        key_ops=frozenset(key_ops_raw) if key_ops_raw is not None else None,
        created_at=created_at,
    )


def x25519_agreement_ok(private: Jwk, public: Jwk) -> bool:
    """False when X25519 with ``public`` yields the all-zero secret (a low-order point, RFC 7748 §6.1)."""
    mine, theirs = private.key.raw_value, public.key.raw_value
    if not isinstance(mine, x25519.X25519PrivateKey) or not isinstance(theirs, x25519.X25519PublicKey):
        return False
    try:
        mine.exchange(theirs)
    except ValueError:
        return False
    return True


def _same_alg(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b or {a, b} == {"EdDSA", "Ed25519"}


def _conflict(a: Jwk, b: Jwk) -> bool:
    """Two keys conflict when one ``kid`` could name either of them for the same operation."""
    return (
        a.kid == b.kid
        and a.kty == b.kty
        and a.crv == b.crv
        and bool(a._purposes() & b._purposes())
        and _same_alg(a.alg, b.alg)
    )


@dataclass(frozen=True, slots=True)
class JwkSet:
    """An immutable set of keys; ``select_*`` implement the ``kid`` rules.

    Refusal reasons (``KeyNotFound.reason`` unless noted):

    - ``bad_kid`` (``MalformedToken``): the ``kid`` is not a non-empty string of at most 256 characters
      without control characters;
    - ``unknown_kid``: no key in the set has this ``kid`` (the only case where refreshing a remote set
      can help);
    - ``key_mismatch``: keys with this ``kid`` exist but none fits the algorithm, ``use``, ``key_ops``
      or (for decryption) is private;
    - ``ambiguous``: several fitting keys share this ``kid``;
    - ``kid_required``: the token names no ``kid`` and several keys fit;
    - ``key_not_found``: the token names no ``kid`` and no key fits.
    """

    keys: tuple[Jwk, ...] = ()

    def __post_init__(self) -> None:
        for i, a in enumerate(self.keys):
            if not isinstance(a, Jwk):
                raise InvalidKey("a JwkSet holds Jwk objects only", reason="bad_set")
            for b in self.keys[:i]:
                if _conflict(a, b):
                    raise InvalidKey(
                        "duplicate key id for the same key type and use", reason="duplicate_kid"
                    )

    @classmethod
    def from_dict(cls, data: Any, *, allow_private: bool = False) -> JwkSet:
        """Import a JWK Set (RFC 7517 §5); one bad key refuses the whole set."""
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise InvalidKey('a JWK Set must be an object with a "keys" array', reason="bad_set")
        raw = data["keys"]
        if len(raw) > MAX_KEYS_PER_SET:
            raise InvalidKey(f"a JWK Set may hold at most {MAX_KEYS_PER_SET} keys", reason="too_many_keys")
        return cls(tuple(import_jwk(k, allow_private=allow_private) for k in raw))

    def __iter__(self) -> Iterator[Jwk]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def public_dict(self) -> dict[str, Any]:
        return {"keys": [k.public_dict() for k in self.keys]}

    def has_kid(self, kid: str) -> bool:
        return any(k.kid == kid for k in self.keys)

    def _select(self, kid: object, fits: Sequence[Jwk], purpose: str) -> Jwk:
        if kid is not None:
            if not valid_kid(kid):
                raise MalformedToken("malformed kid", reason="bad_kid")
            named = [k for k in fits if k.kid == kid]
            if len(named) == 1:
                return named[0]
            if named:
                raise KeyNotFound(f"ambiguous {purpose} key id", reason="ambiguous")
            if self.has_kid(str(kid)):
                raise KeyNotFound(
                    f"the {purpose} key named by kid does not fit the algorithm", reason="key_mismatch"
                )
            raise KeyNotFound(f"no {purpose} key with this kid", reason="unknown_kid")
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


def generate_jwk(alg: str, *, use: str | None = None, kid: str | None = None, crv: str | None = None) -> Jwk:
    """Generate a private key for a signing or key-management algorithm; ``kid`` defaults to the thumbprint.

    ``crv`` picks the curve for ECDH-ES keys (P-256 by default; P-384, P-521 or X25519).
    """
    key: AsymmetricKey
    kty: str
    if alg in SIGNING_ALGS:
        kty, want = SIGNING_ALGS[alg]
        if crv is not None and crv != want:
            raise InvalidKey(f"{alg} needs curve {want}, not {crv}", reason="unsupported_curve")
        crv = want
        use = use or "sig"
    elif alg in KEY_MANAGEMENT_ALGS:
        if alg.startswith("RSA"):
            kty, crv = "RSA", None
        else:
            crv = crv or "P-256"
            kty = "OKP" if crv in OKP_CURVES else "EC"
            if (kty, crv) not in KEY_MANAGEMENT_ALGS[alg]:
                raise InvalidKey(f"{alg} cannot use curve {crv}", reason="unsupported_curve")
        use = use or "enc"
    else:
        raise InvalidKey(f"cannot generate a key for {alg!r}", reason="alg")
    if kty == "EC":
        key = ECKey.generate_key(crv)
    elif kty == "RSA":
        key = RSAKey.generate_key(2048)
    else:
        key = OKPKey.generate_key("X25519" if crv == "X25519" else "Ed25519")
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


def import_pem(
    pem: bytes | str, *, alg: str, use: str | None = None, kid: str | None = None, password: bytes | None = None
) -> Jwk:
    """A private key from PEM (PKCS#8, SEC1 or PKCS#1, e.g. ``openssl genpkey``) for ``alg``, validated
    exactly as ``import_jwk`` validates a private JWK (curve, size, alg/use agreement); ``kid`` defaults to
    the RFC 7638 thumbprint."""
    if alg in SIGNING_ALGS:
        kty = SIGNING_ALGS[alg][0]
        use = use or "sig"
    elif alg in KEY_MANAGEMENT_ALGS:
        kty = "RSA" if alg.startswith("RSA") else "EC"
        use = use or "enc"
    else:
        raise InvalidKey(f"unsupported key algorithm {alg!r}", reason="alg")
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    candidates: tuple[type[ECKey] | type[RSAKey] | type[OKPKey], ...]
    candidates = (RSAKey,) if kty == "RSA" else (ECKey, OKPKey) if kty == "EC" else (OKPKey,)
    last: Exception | None = None
    for cls in candidates:
        try:
            key = cls.import_key(data, password=password)
        except (_LibError, ValueError, TypeError) as exc:
            last = exc
            continue
        if not key.is_private:
            raise InvalidKey("the PEM holds a public key; a private key is needed", reason="bad_member")
        jwk: dict[str, Any] = dict(key.as_dict(private=True))
        jwk.update({"alg": alg, "use": use})
        if kid is not None:
            jwk["kid"] = kid
        jwk.pop("key_ops", None)
        return import_jwk(jwk, allow_private=True, created_at=int(time.time()))
    raise InvalidKey(f"not a PEM private key for {alg} ({type(last).__name__})", reason="bad_member")
