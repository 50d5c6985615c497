"""Mutual-TLS client authentication and certificate-bound tokens (RFC 8705).

RFC 8705 §2.1 (``tls_client_auth``): the certificate chains to a trust anchor — checked by whoever terminated
TLS (``jarmor serve`` against ``--ssl-ca-certs``, or the trusted proxy) — and it carries exactly the one
subject the client registered (``tls_client_auth_subject_dn`` or one of the SAN members of §2.1.2). RFC 8705
§2.2 (``self_signed_tls_client_auth``): nobody vouches for the certificate; its public key must be one of the
keys the client registered (``jwks`` / ``jwks_uri``). RFC 8705 §3: a certificate-bound token carries
``cnf["x5t#S256"]``, the base64url SHA-256 of the DER certificate.

The adapters hand the core a ``ClientCertificate`` (the DER bytes and whether a trust anchor vouched for it);
the core parses it with ``cryptography`` and decides. Everything here is pure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..jose import JwkSet, b64url_encode
from . import errors

TLS_CLIENT_AUTH = "tls_client_auth"
SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"
MTLS_METHODS = (TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH)
BOUND_TOKENS = "tls_client_certificate_bound_access_tokens"

# RFC 8705 §2.1.2: the registered subject, exactly one of these members for tls_client_auth.
SUBJECT_MEMBERS = (
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
)
MAX_SUBJECT = 1000
_DNS = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                  r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_EMAIL = re.compile(r"[^@\s<>\"\\]{1,64}@[A-Za-z0-9.-]{1,253}")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[!-~]+")
MAX_CERTIFICATE = 16 * 1024  # bytes of DER: a client certificate is a few kilobytes at most
# RFC 9440 §2.1: an RFC 8941 Byte Sequence item, ``:base64:``, and nothing else (no parameters). Read with one
# ``fullmatch`` and strict base64 rather than a Structured Fields library: this bare shape is the only one accepted.
_BYTE_SEQUENCE = re.compile(r":([A-Za-z0-9+/]*={0,2}):")


class CertificateHeaderError(ValueError):
    """A ``Client-Cert`` / ``Client-Cert-Chain`` value that is not what RFC 9440 §2 describes."""


def byte_sequence_item(item: str) -> bytes:
    """The DER bytes of one RFC 9440 certificate item (as sent: ``x5t#S256`` is over them); non-empty and at
    most ``MAX_CERTIFICATE`` bytes. Used by the server's proxy middleware and by ``jarmor.resource``."""
    match = _BYTE_SEQUENCE.fullmatch(item.strip(" \t"))
    if match is None:
        raise CertificateHeaderError("not an RFC 8941 byte sequence")
    try:
        der = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateHeaderError("bad base64") from exc
    if not der or len(der) > MAX_CERTIFICATE:
        raise CertificateHeaderError("empty or too large")
    return der


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The certificate the client presented on this connection (DER) and whether a trust anchor vouched for
    it: ``jarmor serve`` verified it against ``--ssl-ca-certs`` during the handshake, or a trusted proxy that
    forwards only verified certificates did. A proxy running ``optional_no_ca`` forwards unverified ones:
    see ``server/mtls.py`` for how that is configured."""

    der: bytes
    chain_verified: bool

    @property
    def thumbprint(self) -> str:
        """RFC 8705 §3.1: ``x5t#S256``, the base64url SHA-256 of the DER certificate."""
        return b64url_encode(hashlib.sha256(self.der).digest())


def parse_certificate(der: bytes) -> x509.Certificate | None:
    """The certificate in ``der`` (``None`` when it is not one, or too large)."""
    if len(der) > MAX_CERTIFICATE:
        return None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _fail(message: str) -> errors.OAuthError:
    return errors.InvalidClient(message)


def _loaded(presented: ClientCertificate | None) -> x509.Certificate:
    if presented is None:
        raise _fail("a client certificate is required (RFC 8705 §2)")
    cert = parse_certificate(presented.der)
    if cert is None:
        raise _fail("the client certificate cannot be parsed")
    return cert


def check_validity(cert: x509.Certificate, now: int) -> None:
    """RFC 5280 §4.1.2.5: ``now`` lies within notBefore .. notAfter (whoever verified the chain checked this
    too; a proxy's clock or configuration is not relied on)."""
    at = datetime.fromtimestamp(now, UTC)
    if at < cert.not_valid_before_utc:
        raise _fail("the client certificate is not yet valid")
    if at > cert.not_valid_after_utc:
        raise _fail("the client certificate has expired")


def _san_values(cert: x509.Certificate) -> dict[str, list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    except ValueError:  # a malformed extension: no subject can be read from it
        return {}
    return {
        "tls_client_auth_san_dns": [str(v) for v in san.get_values_for_type(x509.DNSName)],
        "tls_client_auth_san_uri": [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)],
        "tls_client_auth_san_ip": [str(v) for v in san.get_values_for_type(x509.IPAddress)],
        "tls_client_auth_san_email": [str(v) for v in san.get_values_for_type(x509.RFC822Name)],
    }


def _same_dn(registered: str, cert: x509.Certificate) -> bool:
    """RFC 8705 §2.1.2: the DN compared as RFC 4514 strings, both sides normalised by ``cryptography``
    (attribute order and escaping as the certificate encodes them)."""
    try:
        wanted = x509.Name.from_rfc4514_string(registered).rfc4514_string()
        return cert.subject.rfc4514_string() == wanted
    except ValueError:
        return False


def subject_matches(metadata: Mapping[str, Any], cert: x509.Certificate) -> bool:
    """RFC 8705 §2.1.2: the certificate carries the one subject the client registered."""
    for member in SUBJECT_MEMBERS:
        wanted = metadata.get(member)
        if not isinstance(wanted, str):
            continue
        if member == "tls_client_auth_subject_dn":
            return _same_dn(wanted, cert)
        values = _san_values(cert).get(member, [])
        if member == "tls_client_auth_san_ip":
            try:
                return ipaddress.ip_address(wanted) in (ipaddress.ip_address(v) for v in values)
            except ValueError:
                return False
        if member == "tls_client_auth_san_dns":
            return wanted.lower() in (v.lower() for v in values)
        return wanted in values
    return False


def check_tls_client_auth(metadata: Mapping[str, Any], presented: ClientCertificate | None, now: int) -> None:
    """RFC 8705 §2.1: a certificate a trust anchor vouched for, valid now, naming the registered subject."""
    cert = _loaded(presented)
    assert presented is not None
    if not presented.chain_verified:
        raise _fail("the client certificate does not chain to a trusted certificate authority")
    check_validity(cert, now)
    if not subject_matches(metadata, cert):
        raise _fail("the client certificate does not carry the registered subject")


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def check_self_signed(presented: ClientCertificate | None, keys: JwkSet, now: int) -> None:
    """RFC 8705 §2.2: the certificate's public key is one of the client's registered keys (the certificate is
    not otherwise trusted, so neither its subject nor its issuer mean anything); it must still be valid now."""
    cert = _loaded(presented)
    check_validity(cert, now)
    try:
        presented_key = _spki(cert.public_key())
    except (ValueError, TypeError) as exc:  # an unsupported key type: matches nothing registered
        raise _fail("the client certificate key is not one of the registered keys") from exc
    if not any(presented_key == spki for spki in registered_spkis(keys)):
        raise _fail("the client certificate key is not one of the registered keys")


def registered_spkis(keys: Iterable[Any]) -> list[bytes]:
    """The SubjectPublicKeyInfo DER of each registered key."""
    out = []
    for jwk in keys:
        public = getattr(jwk.key, "public_key", None)
        if public is not None:
            out.append(_spki(public))
    return out


def check_certificate_binding(client_metadata: Mapping[str, Any], thumbprint: str | None) -> str | None:
    """RFC 8705 §3: the ``x5t#S256`` to bind this client's tokens to, ``None`` when it does not ask for bound
    tokens. A client that declared ``tls_client_certificate_bound_access_tokens`` and reaches the token
    endpoint without a certificate is refused (§3.4 leaves error or unbound token to the server: an unbound
    token would silently downgrade what the client asked for)."""
    if client_metadata.get(BOUND_TOKENS) is not True:
        return None
    if thumbprint is None:
        raise errors.InvalidRequest(
            "this client uses certificate-bound access tokens: a client certificate is required (RFC 8705 §3)"
        )
    return thumbprint


def check_refresh_binding(bound_to: str | None, thumbprint: str | None) -> None:
    """RFC 8705 §4 (public clients): a refresh token bound to a certificate is only usable with it."""
    if bound_to is None:
        return
    if thumbprint is None or not hmac.compare_digest(thumbprint, bound_to):
        raise errors.InvalidGrant("the refresh token is bound to another client certificate (RFC 8705 §4)")


def _registered_subject(member: str, value: str) -> str:
    """One RFC 8705 §2.1.2 member, validated whole (``fullmatch``) and normalised."""
    if member == "tls_client_auth_subject_dn":
        try:
            name = x509.Name.from_rfc4514_string(value)
        except ValueError:
            name = None
        if name is None or not list(name):
            raise errors.InvalidClientMetadata(f"{member} must be a distinguished name in RFC 4514 form")
        return name.rfc4514_string()
    if member == "tls_client_auth_san_ip":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise errors.InvalidClientMetadata(f"{member} must be an IPv4 or IPv6 address") from None
    pattern = {"tls_client_auth_san_dns": _DNS, "tls_client_auth_san_uri": _URI,
               "tls_client_auth_san_email": _EMAIL}[member]
    if pattern.fullmatch(value) is None:
        raise errors.InvalidClientMetadata(f"{member} is not a valid value")
    return value


def parse_mtls_metadata(r: Any) -> None:
    """Registration (RFC 8705 §2.1.2, §2.2, §3.4), one step of ``clients.REGISTRATION_STEPS`` (``r`` is its
    ``Registration``): ``tls_client_auth`` needs exactly one subject member; ``self_signed_tls_client_auth``
    needs registered keys; the subject members are refused for any other method (they would authenticate
    nobody); ``tls_client_certificate_bound_access_tokens`` is a boolean, stored when true."""
    meta, out = r.meta, r.out
    method = out["token_endpoint_auth_method"]
    given = [m for m in SUBJECT_MEMBERS if meta.get(m) is not None]
    if given and method != TLS_CLIENT_AUTH:
        raise errors.InvalidClientMetadata(f"{given[0]} is only used with token_endpoint_auth_method tls_client_auth")
    if method == TLS_CLIENT_AUTH:
        if len(given) != 1:
            raise errors.InvalidClientMetadata(
                "tls_client_auth needs exactly one of " + ", ".join(SUBJECT_MEMBERS) + " (RFC 8705 §2.1.2)"
            )
        value = meta[given[0]]
        if not isinstance(value, str) or not value or len(value) > MAX_SUBJECT:
            raise errors.InvalidClientMetadata(f"{given[0]} must be a non-empty string")
        out[given[0]] = _registered_subject(given[0], value)
    if method == SELF_SIGNED_TLS_CLIENT_AUTH and "jwks" not in out and "jwks_uri" not in out:
        raise errors.InvalidClientMetadata("jwks or jwks_uri is required for self_signed_tls_client_auth (RFC 8705 §2.2)")
    bound = meta.get(BOUND_TOKENS)
    if bound is not None and not isinstance(bound, bool):
        raise errors.InvalidClientMetadata(f"{BOUND_TOKENS} must be a boolean")
    if bound:
        out[BOUND_TOKENS] = True
