"""Mutual TLS for the client library (RFC 8705): the client certificate on every connection, and the
``mtls_endpoint_aliases`` a server advertises for it (§5).

A client configured with ``client_certificate=(cert_file, key_file)`` presents it on every TLS connection
(httpx with an ``ssl.SSLContext`` that holds the chain): the server then authenticates the client by it
(``tls_client_auth`` / ``self_signed_tls_client_auth``, §2) and/or binds the tokens to it (§3). When the
server's metadata names ``mtls_endpoint_aliases``, the token and PAR requests go there instead (§5: a server
may request client certificates on other hosts or ports only).
"""

from __future__ import annotations

import ssl
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError, DiscoveryError
from .metadata import ServerMetadata, endpoint

# The aliased endpoints this library calls (RFC 8705 §5); the others are used as advertised.
_ALIASED = ("token_endpoint", "pushed_authorization_request_endpoint")


def tls_context(certificate: tuple[str, str] | None, ca_file: str | None) -> ssl.SSLContext | None:
    """An SSL context presenting ``certificate`` (PEM certificate file, PEM key file) and trusting ``ca_file``
    (default: the system store); ``None`` when neither is configured (httpx's defaults apply)."""
    if certificate is None and ca_file is None:
        return None
    try:
        context = ssl.create_default_context(cafile=ca_file)
        if certificate is not None:
            context.load_cert_chain(certificate[0], certificate[1])
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(f"cannot load the TLS files: {exc}") from exc
    return context


def with_mtls_aliases(md: ServerMetadata, *, allow_insecure_http: bool) -> ServerMetadata:
    """``md`` with its token and PAR endpoints replaced by the ``mtls_endpoint_aliases`` it advertises
    (each validated like any other endpoint: https, no special-use address)."""
    aliases: Any = md.raw.get("mtls_endpoint_aliases")
    if aliases is None:
        return md
    if not isinstance(aliases, dict):
        raise DiscoveryError("metadata mtls_endpoint_aliases must be a JSON object", reason="invalid_metadata")
    issuer_host = urlsplit(md.issuer).hostname
    found = {
        name: endpoint(aliases, name, issuer_host=issuer_host, allow_insecure_http=allow_insecure_http)
        for name in _ALIASED if aliases.get(name) is not None
    }
    return replace(
        md,
        token_endpoint=found.get("token_endpoint", md.token_endpoint),
        pushed_authorization_request_endpoint=found.get(
            "pushed_authorization_request_endpoint", md.pushed_authorization_request_endpoint
        ),
    )
