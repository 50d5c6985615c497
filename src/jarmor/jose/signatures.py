"""JWS signature primitives with the ``cryptography`` key objects prepared once per key and algorithm.

Why this exists: performance. Through the JOSE library, every signature re-ran its key checks (``use``,
``alg``, ``key_ops``, curve), rebuilt the padding and ``ECDSA`` objects and converted R‖S through Python
integer helpers; on a hardened flow that was a large share of the JOSE cost above the bare ECDSA floor
(``docs/performance.md``). Here those checks run once, when a key is first used with an algorithm, and the
result (``SignatureOps``) is kept on the ``Jwk`` (``Jwk.signature_ops``); each call is then only the
``cryptography`` operation. Nothing is hand-rolled: the cryptography is ``cryptography``'s (the same
OpenSSL calls the JOSE library makes), and the R‖S <-> DER step is ``cryptography``'s
``encode_dss_signature``/``decode_dss_signature``.

Behaviour is the JOSE library's, exactly:

* the key checks are the library's own (``JWSAlgModel.check_key`` and ``get_op_key``: key type, curve,
  the key's ``use``/``alg``/``key_ops`` if it carries them, private key for signing), run once: a key they
  refuse gets no ``SignatureOps`` (verification fails, signing raises as before);
* the parameters are those of RFC 7518 §3.3-§3.5 and RFC 8037 §3.1 (RFC 9864 for ``Ed25519``), as the
  library uses them: ECDSA with SHA-256/384/512 and R‖S of the curve's fixed width; RSASSA-PKCS1-v1_5 with
  SHA-256; RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash; Ed25519;
* a signature that does not verify is ``False``; every other decision (algorithm allowlist, the key's
  binding to one algorithm, signature length) stays with the callers in ``tokens`` and ``embedded``.

``tests/jose/test_signature_ops.py`` checks the two against each other for every algorithm, in both
directions.

The JOSE library stays in charge of everything else: key import and export, thumbprints, JWE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from joserfc.errors import JoseError as _LibError
from joserfc.jwa import JWSAlgModel
from joserfc.jws import JWSRegistry

from .algorithms import SIGNING_ALGS

__all__ = ["SIGNERS", "SignatureOps", "build_signature_ops"]

# The JOSE library's model of each signing algorithm jarmor allows (its registry holds more): its key checks
# decide which keys may be used, and ``jarmor.jose.testing`` signs hostile tokens with it.
SIGNERS: Final[dict[str, JWSAlgModel]] = {name: JWSRegistry.algorithms[name] for name in SIGNING_ALGS}

_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_EC_WIDTH: Final = {"ES256": 32, "ES384": 48, "ES512": 66}  # RFC 7518 §3.4: R and S, each of this width


@dataclass(frozen=True, slots=True)
class SignatureOps:
    """One key prepared for one algorithm. ``verify``/``sign`` are ``None`` when the key cannot do that."""

    alg: str
    length: int  # every valid signature has exactly this many bytes
    verify: Callable[[bytes, bytes], bool] | None  # (signing input, signature) -> valid
    sign: Callable[[bytes], bytes] | None  # signing input -> signature


def _op_key(key: Any, operation: str) -> Any:
    try:
        return key.get_op_key(operation)
    except (_LibError, ValueError, TypeError, AssertionError):
        return None


def _ecdsa(alg: str, public: Any, private: Any) -> SignatureOps:
    width = _EC_WIDTH[alg]
    algorithm = ec.ECDSA(_HASHES[alg[2:]]())
    verify = sign = None
    if isinstance(public, ec.EllipticCurvePublicKey):

        def verify(message: bytes, signature: bytes) -> bool:
            if len(signature) != 2 * width:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:width], "big"), int.from_bytes(signature[width:], "big")
            )
            try:
                public.verify(der, message, algorithm)
            except InvalidSignature:
                return False
            return True

    if isinstance(private, ec.EllipticCurvePrivateKey):

        def sign(message: bytes) -> bytes:
            r, s = decode_dss_signature(private.sign(message, algorithm))
            return r.to_bytes(width, "big") + s.to_bytes(width, "big")

    return SignatureOps(alg, 2 * width, verify, sign)


def _rsa(alg: str, public: Any, private: Any) -> SignatureOps:
    algorithm = _HASHES[alg[2:]]()
    pad: padding.AsymmetricPadding
    if alg.startswith("PS"):
        pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
    else:
        pad = padding.PKCS1v15()
    verify = sign = None
    length = 0
    if isinstance(public, rsa.RSAPublicKey):
        length = (public.key_size + 7) // 8

        def verify(message: bytes, signature: bytes) -> bool:
            try:
                public.verify(signature, message, pad, algorithm)
            except InvalidSignature:
                return False
            return True

    if isinstance(private, rsa.RSAPrivateKey):

        def sign(message: bytes) -> bytes:
            return bytes(private.sign(message, pad, algorithm))

    return SignatureOps(alg, length, verify, sign)


def _ed25519(alg: str, public: Any, private: Any) -> SignatureOps:
    verify = sign = None
    if isinstance(public, ed25519.Ed25519PublicKey):

        def verify(message: bytes, signature: bytes) -> bool:
            try:
                public.verify(signature, message)
            except InvalidSignature:
                return False
            return True

    if isinstance(private, ed25519.Ed25519PrivateKey):

        def sign(message: bytes) -> bytes:
            return bytes(private.sign(message))

    return SignatureOps(alg, 64, verify, sign)


def build_signature_ops(key: Any, alg: str) -> SignatureOps | None:
    """Prepare a JOSE-library key (``ECKey``/``RSAKey``/``OKPKey``) for ``alg``; ``None`` if the library's
    checks refuse the pair. Callers cache the result: see ``Jwk.signature_ops``."""
    model = SIGNERS.get(alg)
    if model is None:
        return None
    try:
        model.check_key(key)
    except (_LibError, ValueError, TypeError, AttributeError):
        return None
    public, private = _op_key(key, "verify"), _op_key(key, "sign")
    if alg.startswith("ES"):
        return _ecdsa(alg, public, private)
    if alg.startswith(("PS", "RS")):
        return _rsa(alg, public, private)
    return _ed25519(alg, public, private)
