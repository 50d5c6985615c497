"""Loading a client's private key from a PEM file (README "Client library"): validated like a private JWK."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from jarmor.jose import InvalidKey, import_pem, sign_jws, verify_jws
from jarmor.jose.keys import JwkSet, import_jwk

PKCS8 = serialization.PrivateFormat.PKCS8
PEM = serialization.Encoding.PEM


def _pem(key: object, fmt: serialization.PrivateFormat = PKCS8, password: bytes | None = None) -> bytes:
    enc = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(PEM, fmt, enc)  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(
    ("key", "alg", "fmt"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ES256", PKCS8),
        (ec.generate_private_key(ec.SECP256R1()), "ES256", serialization.PrivateFormat.TraditionalOpenSSL),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA", PKCS8),
        (rsa.generate_private_key(65537, 2048), "PS256", serialization.PrivateFormat.TraditionalOpenSSL),
        (ec.generate_private_key(ec.SECP256R1()), "ECDH-ES+A128KW", PKCS8),
    ],
)
def test_pem_keys_sign_and_verify(key: object, alg: str, fmt: serialization.PrivateFormat) -> None:
    jwk = import_pem(_pem(key, fmt), alg=alg, kid="k1")
    assert jwk.is_private and jwk.kid == "k1" and jwk.alg == alg
    if jwk.use == "sig":
        token = sign_jws({"a": 1}, jwk, alg)
        public = JwkSet((import_jwk(jwk.public_dict(), allow_private=False),))
        assert verify_jws(token, public, algorithms=[alg]).claims == {"a": 1}


def test_encrypted_pem_needs_its_password() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1()), password=b"pw")
    assert import_pem(pem, alg="ES256", password=b"pw").kty == "EC"
    with pytest.raises(InvalidKey):
        import_pem(pem, alg="ES256")


@pytest.mark.parametrize(
    ("pem", "alg"),
    [
        (_pem(ec.generate_private_key(ec.SECP384R1())), "ES256"),  # wrong curve for the alg
        (_pem(ed25519.Ed25519PrivateKey.generate()), "ES256"),
        (_pem(rsa.generate_private_key(65537, 1024)), "PS256"),  # too small
        (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            "ES256",
        ),  # a public key
        (b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", "ES256"),
        (_pem(ec.generate_private_key(ec.SECP256R1())), "HS256"),
    ],
)
@pytest.mark.filterwarnings("ignore:Key size should be:UserWarning")
def test_pem_refusals(pem: bytes, alg: str) -> None:
    with pytest.raises(InvalidKey):
        import_pem(pem, alg=alg)
