"""The only package that imports the JOSE library. Everything is strict by default; see ``tokens``.

``jarmor.jose.testing`` (not imported here) builds hostile tokens and measures their cost, for tests.
"""

from .algorithms import CONTENT_ENCRYPTION_ALGS, KEY_MANAGEMENT_ALGS, SIGNING_ALGS
from .embedded import jwk_thumbprint, sign_jws_embedded_jwk, verify_jws_embedded_jwk
from .errors import (
    AlgorithmNotAllowed,
    BadSignature,
    DecryptionFailed,
    InvalidKey,
    JoseError,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedHeader,
)
from .keys import Jwk, JwkSet, generate_jwk, import_jwk, import_pem
from .strictjson import loads_object
from .tokens import (
    DecryptedJwe,
    VerifiedJws,
    b64url_decode,
    b64url_encode,
    decrypt_jwe,
    encrypt_jwe,
    is_jwe,
    peek_claims,
    peek_header,
    sign_jws,
    verify_jws,
)

__all__ = [
    "CONTENT_ENCRYPTION_ALGS",
    "KEY_MANAGEMENT_ALGS",
    "SIGNING_ALGS",
    "AlgorithmNotAllowed",
    "BadSignature",
    "DecryptedJwe",
    "DecryptionFailed",
    "InvalidKey",
    "JoseError",
    "Jwk",
    "JwkSet",
    "KeyNotFound",
    "MalformedToken",
    "TokenTooLarge",
    "UnsupportedHeader",
    "VerifiedJws",
    "b64url_decode",
    "b64url_encode",
    "decrypt_jwe",
    "encrypt_jwe",
    "generate_jwk",
    "import_jwk",
    "import_pem",
    "is_jwe",
    "jwk_thumbprint",
    "loads_object",
    "peek_claims",
    "peek_header",
    "sign_jws",
    "sign_jws_embedded_jwk",
    "verify_jws",
    "verify_jws_embedded_jwk",
]
