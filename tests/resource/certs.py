"""A self-signed client certificate (and another) for the certificate-binding tests, made per session."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jarmor.resource import certificate_thumbprint


def make_cert(name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    )


CERT = make_cert("client")
CERT_DER = CERT.public_bytes(serialization.Encoding.DER)
CERT_PEM = CERT.public_bytes(serialization.Encoding.PEM).decode()
CERT_THUMBPRINT = certificate_thumbprint(CERT_DER)
OTHER_CERT_DER = make_cert("other").public_bytes(serialization.Encoding.DER)
