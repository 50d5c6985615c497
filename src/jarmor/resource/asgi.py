"""Starlette / FastAPI (any ASGI app) integration of ``ResourceServer``.

* ``ResourceServerMiddleware``: checks every HTTP request a ``Rule`` protects and puts the ``Principal`` in
  ``scope["state"]["principal"]`` (``request.state.principal``); a refusal is answered here with the status,
  ``WWW-Authenticate`` (and ``DPoP-Nonce``) headers and a small JSON body (RFC 6750 §3, RFC 9449 §7).
* ``requires(...)``: a per-route check usable as a FastAPI dependency (``Depends(requires(...))``) or called
  from a Starlette endpoint; it reuses the middleware's principal when there is one. Install
  ``resource_error_handler`` for ``ResourceError`` and ``VerifierUnavailable``.

The URL the DPoP ``htu`` is compared with is the configured ``public_url`` plus the request path, never the
``Host`` header (a forged ``Host`` would let a proof made for another server pass, RFC 9449 §4.3 check 9).
An access token in the query string is refused (``invalid_request``): FAPI 2.0 §5.3.4 allows the header only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..protocol.addresses import TrustedProxies
from ..protocol.mtls import MAX_CERTIFICATE, CertificateHeaderError, byte_sequence_item
from .core import ResourceServer
from .errors import INVALID_REQUEST, ResourceError, VerifierUnavailable
from .principal import Principal, Requirement

__all__ = [
    "ResourceServerMiddleware",
    "Rule",
    "error_response",
    "proxy_client_certificate",
    "requires",
    "resource_error_handler",
    "tls_client_certificate",
]

ClientCert = Callable[[Scope], "bytes | str | None"]


_ANY_TOKEN = Requirement()


@dataclass(frozen=True, slots=True)
class Rule:
    """Requests whose path is ``path`` or lies under it (``/api`` covers ``/api/x``), for ``methods`` (all
    when None), need ``requirement``; ``None`` marks them public. The first matching rule wins."""

    path: str
    requirement: Requirement | None = _ANY_TOKEN
    methods: frozenset[str] | None = None

    def matches(self, path: str, method: str) -> bool:
        base = self.path.rstrip("/")
        inside = path == self.path or path == base or path.startswith(base + "/")
        return inside and (self.methods is None or method in self.methods)


def error_response(exc: ResourceError | VerifierUnavailable) -> Response:
    if isinstance(exc, VerifierUnavailable):
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503,
                            headers={"Cache-Control": "no-store"})
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def resource_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette/FastAPI exception handler for ``ResourceError`` and ``VerifierUnavailable``."""
    assert isinstance(exc, ResourceError | VerifierUnavailable)
    return error_response(exc)


def tls_client_certificate(scope: Scope) -> str | None:
    """The client certificate from the ASGI TLS extension (``client_cert_chain``, PEM), if the server has it."""
    chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or ()
    return chain[0] if chain and isinstance(chain[0], str) else None



def proxy_client_certificate(trusted_proxies: Sequence[str]) -> ClientCert:
    """``client_cert=`` for an API behind a TLS-terminating proxy: the DER certificate of RFC 9440's
    ``Client-Cert`` header, read ONLY when the TCP peer is in ``trusted_proxies`` (addresses or networks);
    from anyone else, or when malformed or repeated, there is no certificate (a bound token is then refused).

    The proxy must have completed the TLS handshake with the client (proof of possession of the
    certificate's key); the binding check compares the certificate's ``x5t#S256`` only (RFC 8705 §3), so a
    self-signed certificate is fine. The header is decoded by ``protocol.mtls.byte_sequence_item``, as the
    server's own proxy path does.
    """
    trusted = TrustedProxies(trusted_proxies)

    def read(scope: Scope) -> bytes | None:
        if not trusted.trusts_peer(scope.get("client")):
            return None
        values = _headers(scope, b"client-cert")
        if len(values) != 1:
            return None
        if len(values[0]) > 2 * MAX_CERTIFICATE:
            return None
        try:
            return byte_sequence_item(values[0])
        except CertificateHeaderError:
            return None

    return read


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]


def request_url(public_url: str, scope: Scope) -> str:
    """``public_url`` + the request's (still percent-encoded) path; the query is irrelevant to ``htu``."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1").split("?", 1)[0] if isinstance(raw, bytes) else scope.get("path", "/")
    return public_url.rstrip("/") + path


def _token_in_query(scope: Scope) -> bool:
    query = scope.get("query_string", b"").decode("latin-1")
    return any(k == "access_token" for k, _ in parse_qsl(query, keep_blank_values=True))


async def authenticate_scope(
    server: ResourceServer,
    scope: Scope,
    *,
    public_url: str,
    requirement: Requirement | None,
    client_cert: ClientCert | None = tls_client_certificate,
) -> Principal:
    if _token_in_query(scope):
        raise server.refuse(INVALID_REQUEST, "access tokens are accepted in the Authorization header only", None)
    return await server.authenticate(
        method=scope["method"],
        url=request_url(public_url, scope),
        authorization=_headers(scope, b"authorization"),
        dpop=_headers(scope, b"dpop"),
        client_cert=client_cert(scope) if client_cert is not None else None,
        requirement=requirement,
    )


class ResourceServerMiddleware:
    """Protects the paths ``rules`` name (or, with ``default``, every other path too)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        server: ResourceServer,
        public_url: str,
        rules: Sequence[Rule] = (),
        default: Requirement | None = None,
        client_cert: ClientCert | None = tls_client_certificate,
    ) -> None:
        self.app = app
        self.server = server
        self.public_url = public_url
        self.rules = tuple(rules)
        self.default = default
        self.client_cert = client_cert

    def requirement_for(self, path: str, method: str) -> Requirement | None:
        for rule in self.rules:
            if rule.matches(path, method):
                return rule.requirement
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        requirement = self.requirement_for(scope.get("path", "/"), scope["method"])
        if requirement is None:
            await self.app(scope, receive, send)
            return
        try:
            principal = await authenticate_scope(self.server, scope, public_url=self.public_url,
                                                 requirement=requirement, client_cert=self.client_cert)
        except (ResourceError, VerifierUnavailable) as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def requires(
    server: ResourceServer,
    *,
    public_url: str,
    scopes: Sequence[str] = (),
    acr_values: Sequence[str] = (),
    max_age: int | None = None,
    client_cert: ClientCert | None = tls_client_certificate,
) -> Callable[[Request], Awaitable[Principal]]:
    """A check for one route: ``principal = await requires(...)(request)``, or ``Depends(requires(...))``."""
    requirement = Requirement(scopes=tuple(scopes), acr_values=tuple(acr_values), max_age=max_age)

    async def dependency(request: Request) -> Principal:
        known: Any = request.scope.get("state", {}).get("principal")
        if isinstance(known, Principal):
            server.check_requirement(known, requirement)
            request.state.principal = known
            return known
        principal = await authenticate_scope(server, request.scope, public_url=public_url,
                                             requirement=requirement, client_cert=client_cert)
        request.state.principal = principal
        return principal

    return dependency
