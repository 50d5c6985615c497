"""Authorization-server metadata and its JWKS: where they live, and what makes them acceptable (C13).

RFC 8414 §3.3 / OIDC Discovery §4.3: the ``issuer`` in the document must be identical to the issuer the
client was configured with; FAPI2 §5.3.3.1: only endpoints from validated metadata are used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jarmor.jose import JoseError, JwkSet, loads_object

from .config import check_url
from .errors import DiscoveryError

MAX_METADATA_BYTES = 64 * 1024
MAX_JWKS_BYTES = 64 * 1024

_ALG_LISTS = (
    "authorization_signing_alg_values_supported",
    "authorization_encryption_alg_values_supported",
    "authorization_encryption_enc_values_supported",
    "request_object_signing_alg_values_supported",
    "request_object_encryption_alg_values_supported",
    "request_object_encryption_enc_values_supported",
    "id_token_signing_alg_values_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "token_endpoint_auth_methods_supported",
    "code_challenge_methods_supported",
    "dpop_signing_alg_values_supported",
    "response_modes_supported",
    "response_types_supported",
    "grant_types_supported",
    "scopes_supported",
)


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The validated subset of the metadata the client acts on. A missing list is an empty tuple."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    pushed_authorization_request_endpoint: str | None
    require_pushed_authorization_requests: bool
    authorization_response_iss_parameter_supported: bool
    lists: Mapping[str, tuple[str, ...]]
    raw: Mapping[str, Any] = field(repr=False)

    def supported(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())

    @property
    def response_modes_supported(self) -> tuple[str, ...]:
        # RFC 8414 §2: omitted means ["query", "fragment"].
        return self.lists.get("response_modes_supported") or ("query", "fragment")


def discovery_urls(issuer: str) -> tuple[str, str]:
    """RFC 8414 §3.1 (well-known segment inserted before the issuer's path), then OIDC Discovery §4."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit(
        (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")
    )
    oidc = urlunsplit((parts.scheme, parts.netloc, path + "/.well-known/openid-configuration", "", ""))
    return rfc8414, oidc


def _special_ip(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not ip.is_global


def endpoint(
    raw: Mapping[str, Any], name: str, *, issuer_host: str | None, allow_insecure_http: bool
) -> str:
    url = check_url(raw.get(name), what=name, allow_insecure_http=allow_insecure_http, error=DiscoveryError)
    host = urlsplit(url).hostname
    # A private or special-use IP literal is refused unless it is the configured issuer's own host
    # (attack catalog A69/A70: metadata must not steer the client's fetches into internal networks).
    if host and host != issuer_host and _special_ip(host) and not allow_insecure_http:
        raise DiscoveryError(f"{name} points to a special-use address", reason="insecure_endpoint")
    return url


def parse_metadata(body: bytes, *, expected_issuer: str, allow_insecure_http: bool) -> ServerMetadata:
    """Validate a discovery document; ``issuer`` must be *identical* to the configured one (RFC 8414 §3.3)."""
    try:
        raw = loads_object(body)
    except JoseError as exc:
        raise DiscoveryError("metadata is not a JSON object", reason="not_json") from exc
    issuer = raw.get("issuer")
    if not isinstance(issuer, str) or issuer != expected_issuer:
        raise DiscoveryError("metadata issuer differs from the configured issuer", reason="issuer_mismatch")
    issuer_host = urlsplit(issuer).hostname
    try:
        endpoints = {
            name: endpoint(raw, name, issuer_host=issuer_host, allow_insecure_http=allow_insecure_http)
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        }
        par = None
        if raw.get("pushed_authorization_request_endpoint") is not None:
            par = endpoint(
                raw,
                "pushed_authorization_request_endpoint",
                issuer_host=issuer_host,
                allow_insecure_http=allow_insecure_http,
            )
    except DiscoveryError as exc:
        if exc.reason == DiscoveryError.reason:
            exc.reason = "invalid_endpoint"
        raise
    lists: dict[str, tuple[str, ...]] = {}
    for name in _ALG_LISTS:
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DiscoveryError(f"metadata {name} must be an array of strings", reason="invalid_metadata")
        lists[name] = tuple(value)
    flags: dict[str, bool] = {}
    for name in ("require_pushed_authorization_requests", "authorization_response_iss_parameter_supported"):
        value = raw.get(name, False)
        if not isinstance(value, bool):
            raise DiscoveryError(f"metadata {name} must be a boolean", reason="invalid_metadata")
        flags[name] = value
    return ServerMetadata(
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        pushed_authorization_request_endpoint=par,
        require_pushed_authorization_requests=flags["require_pushed_authorization_requests"],
        authorization_response_iss_parameter_supported=flags[
            "authorization_response_iss_parameter_supported"
        ],
        lists=lists,
        raw=raw,
    )


def parse_jwks(body: bytes) -> JwkSet:
    """The server's public keys; private material, symmetric keys and weak keys are refused by ``jose``."""
    try:
        return JwkSet.from_dict(loads_object(body), allow_private=False)
    except JoseError as exc:
        raise DiscoveryError(f"server JWKS refused: {exc}", reason="invalid_jwks") from exc
