"""Where the client certificate of a request comes from (RFC 8705), for the protocol core's ``ClientCertificate``.

Two sources, never mixed:

* **Direct TLS** (``jarmor serve --ssl-certfile F --ssl-keyfile F [--ssl-ca-certs F]``): the server asks for a
  client certificate (``CERT_OPTIONAL``: a client without one still connects) and OpenSSL verifies the one
  presented against ``--ssl-ca-certs`` during the handshake. uvicorn does not put the peer certificate into
  the ASGI scope, so ``TLSHttpToolsProtocol`` — uvicorn's httptools protocol, passed as ``http=`` — adds the
  ASGI TLS extension (``scope["extensions"]["tls"]["client_cert_chain"]``, the leaf as PEM) from the
  connection's ``ssl_object``. A certificate that reached the application this way chained to the CA file.
  Limit: Python's ``ssl`` has no verify callback, so with ``CERT_OPTIONAL`` and a CA file a certificate that
  does not chain to it ends the handshake; a *self-signed* client certificate (RFC 8705 §2.2) is accepted
  directly only when it is itself listed in the CA file (then it is also a trust anchor: list only
  certificates you would let authenticate ``tls_client_auth`` clients naming their subject). The general
  way for self-signed clients is the proxy below.
* **Behind a TLS-terminating proxy** (nginx ``ssl_verify_client optional_no_ca``): the proxy forwards the
  certificate in the ``Client-Cert`` header of RFC 9440 (and intermediates in ``Client-Cert-Chain``). The
  header is read ONLY when the TCP peer is one of ``[server] trusted_proxies`` (the setting that also lets
  X-Forwarded-For through, ``ProxyHeadersMiddleware``); from any other peer it is ignored. A proxy with
  ``optional_no_ca`` vouches for nothing, so jarmor verifies the chain itself against ``ssl_ca_certs``
  (``cryptography.x509.verification``) and only such a chain counts for ``tls_client_auth``.

``ClientCertificateMiddleware`` runs outermost, before ``ProxyHeadersMiddleware`` replaces ``scope["client"]``
with the forwarded address, so it judges the real TCP peer; it stores its finding under ``SCOPE_KEY``.

RFC 9440 §2.1: ``Client-Cert`` is an RFC 8941 Item holding a Byte Sequence (``:base64:``). It is read here
with one ``fullmatch`` and ``base64.b64decode(validate=True)`` rather than a Structured Fields library: the
one shape accepted is a bare byte sequence (no parameters), and anything else is refused as malformed.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..protocol.addresses import TrustedProxies
from ..protocol.mtls import MAX_CERTIFICATE, CertificateHeaderError, ClientCertificate, byte_sequence_item

SCOPE_KEY = "jarmor.client_certificate"
MALFORMED = "malformed"  # a Client-Cert header from a trusted proxy that is no certificate
_MAX_CHAIN = 5
_MAX_HEADER = 4 * MAX_CERTIFICATE


def parse_client_cert_header(value: str) -> tuple[bytes, x509.Certificate]:
    """RFC 9440 §2.2: ``Client-Cert``, one certificate as an sf-binary item of its DER. Returns the bytes as
    sent (the ``x5t#S256`` thumbprint is over them) and the parsed certificate."""
    if len(value) > _MAX_HEADER:
        raise CertificateHeaderError("too large")
    der = byte_sequence_item(value)
    try:
        return der, x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateHeaderError("not a DER certificate") from exc


def parse_client_cert_chain_header(value: str) -> list[x509.Certificate]:
    """RFC 9440 §2.3: ``Client-Cert-Chain``, a list of sf-binary items (intermediates, leaf excluded)."""
    if len(value) > _MAX_HEADER * _MAX_CHAIN:
        raise CertificateHeaderError("too large")
    items = value.split(",")
    if len(items) > _MAX_CHAIN:
        raise CertificateHeaderError("too many certificates")
    try:
        return [x509.load_der_x509_certificate(byte_sequence_item(item)) for item in items]
    except ValueError as exc:
        raise CertificateHeaderError("not a DER certificate") from exc


def load_trust_anchors(path: str | None) -> list[x509.Certificate]:
    """The certificates of a PEM CA file (``ssl_ca_certs``); empty without one."""
    if not path:
        return []
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


class ChainVerifier:
    """RFC 5280 path validation of a forwarded certificate against the CA file. The end-entity policy is the
    Web PKI one without its subjectAltName requirement: RFC 8705 §2.1.2 lets a client be named by its subject
    DN alone."""

    def __init__(self, anchors: Sequence[x509.Certificate]) -> None:
        self._store = Store(list(anchors)) if anchors else None
        self._ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
        )

    def verified(self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]) -> bool:
        if self._store is None:
            return False
        verifier = (
            PolicyBuilder().store(self._store).time(datetime.now(UTC))
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=self._ee)
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, list(intermediates))
        except (VerificationError, ValueError):
            return False
        return True


def _header(scope: Scope, name: bytes) -> str | bool | None:
    """The one value of header ``name``; ``None`` when absent, ``False`` when repeated."""
    values = [v for k, v in scope.get("headers", ()) if k == name]
    if not values:
        return None
    if len(values) > 1:
        return False
    return bytes(values[0]).decode("latin-1")


class ClientCertificateMiddleware:
    """Puts the request's client certificate (``ClientCertificate``), ``MALFORMED`` or ``None`` under
    ``scope[SCOPE_KEY]``; see the module docstring for which source counts when."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str] = (), ca_certs: str | None = None) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted_proxies)
        self.verifier = ChainVerifier(load_trust_anchors(ca_certs))

    def _forwarded(self, scope: Scope) -> ClientCertificate | str | None:
        leaf_value = _header(scope, b"client-cert")
        if leaf_value is None:
            return None
        chain_value = _header(scope, b"client-cert-chain")
        if leaf_value is False or chain_value is False:
            return MALFORMED
        try:
            der, leaf = parse_client_cert_header(str(leaf_value))
            chain = parse_client_cert_chain_header(chain_value) if isinstance(chain_value, str) else []
        except CertificateHeaderError:
            return MALFORMED
        return ClientCertificate(der, self.verifier.verified(leaf, chain))

    def certificate(self, scope: Scope) -> ClientCertificate | str | None:
        if self.trusted.trusts_peer(scope.get("client")):
            return self._forwarded(scope)
        chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
        if not chain:
            return None
        der = ssl.PEM_cert_to_DER_cert(chain[0])
        return ClientCertificate(der, chain_verified=True)  # OpenSSL verified it against the CA file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SCOPE_KEY] = self.certificate(scope)
        await self.app(scope, receive, send)


def request_certificate(scope: Scope) -> ClientCertificate | None:
    """The request's client certificate for the protocol core (``None``: none, or not one to rely on)."""
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, ClientCertificate) else None


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the ASGI TLS extension's ``client_cert_chain`` (the verified peer
    certificate as PEM), read once per connection from the transport's ``ssl_object``."""

    _client_pem: list[str]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self._client_pem = [ssl.DER_cert_to_PEM_cert(der)] if der else []

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions["tls"] = {"client_cert_chain": list(self._client_pem)}
