"""Back-channel requests and how their responses are judged: PAR (RFC 9126; C18/C19) and the token
endpoint (RFC 6749 §3.2/§5; C24), with client authentication (RFC 7523 §2.2, RFC 6749 §2.3.1)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

from jarmor.jose import JoseError, loads_object
from jarmor.protocol.vocabulary import CLIENT_ASSERTION_TYPE

from .config import ClientConfig
from .errors import ConfigurationError, ParError, TokenError
from .exchange import HttpRequest, HttpResponse
from .models import TokenResponse
from .request_object import client_assertion_claims, sign_client_assertion

MAX_TOKEN_RESPONSE_BYTES = 256 * 1024
MAX_PAR_RESPONSE_BYTES = 16 * 1024


def client_authentication(
    config: ClientConfig, *, issuer: str, now: int, jti: str
) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """Form fields and headers that authenticate the client. ``private_key_jwt`` makes a fresh assertion
    per call (C20); ``client_secret_basic`` form-encodes id and secret before base64 (RFC 6749 §2.3.1)."""
    method = config.token_endpoint_auth_method
    if method == "private_key_jwt":
        if config.signing_key is None:
            raise ConfigurationError("private_key_jwt needs signing_key")
        claims = client_assertion_claims(
            client_id=config.client_id,
            issuer=issuer,
            now=now,
            lifetime=config.client_assertion_lifetime,
            jti=jti,
        )
        assertion = sign_client_assertion(claims, config.signing_key, config.signing_alg)
        form = {
            "client_id": config.client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        return form, ()
    if method in ("tls_client_auth", "self_signed_tls_client_auth"):  # RFC 8705 §2: the TLS certificate
        return {"client_id": config.client_id}, ()
    secret = config.client_secret or ""
    if method == "client_secret_post":
        return {"client_id": config.client_id, "client_secret": secret}, ()
    basic = f"{quote_plus(config.client_id)}:{quote_plus(secret)}".encode()
    return {}, (("authorization", "Basic " + base64.b64encode(basic).decode("ascii")),)


def form_post(
    hop: str, url: str, form: Mapping[str, str], headers: tuple[tuple[str, str], ...], max_body: int
) -> HttpRequest:
    return HttpRequest(
        hop=hop,
        method="POST",
        url=url,
        headers=(
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
            *headers,
        ),
        body=urlencode(list(form.items())).encode("utf-8"),
        max_body=max_body,
    )


def _json_or_none(body: bytes) -> dict[str, Any] | None:
    try:
        return loads_object(body)
    except JoseError:
        return None


@dataclass(frozen=True, slots=True)
class ParResult:
    request_uri: str
    expires_in: int


_PAR_STATUS_REASONS = {405: "method_not_allowed", 413: "request_too_large", 429: "rate_limited"}


def parse_par_response(response: HttpResponse) -> ParResult:
    """RFC 9126 §2.2: exactly 201 with a JSON ``request_uri`` (non-empty URI string) and a positive integer
    ``expires_in``; §2.3 errors are raised as ``ParError`` (429 carries ``retry_after``; never auto-retry)."""
    status = response.status
    data = _json_or_none(response.body)
    if status != 201:
        error = data.get("error") if data else None
        description = data.get("error_description") if data else None
        reason = _PAR_STATUS_REASONS.get(status)
        if reason is None:
            reason = "par_rejected" if status in (400, 401) and error is not None else "unexpected_status"
        raise ParError(
            f"PAR endpoint answered HTTP {status}",
            reason=reason,
            status=status,
            error=error,
            description=description,
            retry_after=response.headers.get("retry-after"),
        )
    if data is None:
        raise ParError("PAR response is not a JSON object", reason="invalid_response", status=status)
    request_uri = data.get("request_uri")
    expires_in = data.get("expires_in")
    if not isinstance(request_uri, str) or not request_uri or len(request_uri) > 2048:
        raise ParError("PAR response lacks a request_uri", reason="invalid_response", status=status)
    try:
        scheme = urlsplit(request_uri).scheme
    except ValueError:
        scheme = ""
    if not scheme:
        raise ParError("PAR request_uri is not a URI", reason="invalid_response", status=status)
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
        raise ParError("PAR expires_in must be a positive integer", reason="invalid_response", status=status)
    return ParResult(request_uri=request_uri, expires_in=expires_in)


def check_token_type(token_type: object, *, dpop: bool, allow_bearer: bool) -> str:
    """C24/C32: ``Bearer``, or ``DPoP`` when a proof was sent (compared case-insensitively). A client that
    asked for a DPoP-bound token refuses a ``Bearer`` answer (RFC 9449 §5: the server may "elect" not to
    bind; FAPI 2.0 §5.3.2.1 requires sender-constrained tokens) unless ``allow_bearer`` says otherwise."""
    kind = token_type.lower() if isinstance(token_type, str) else None
    if kind == "dpop" and dpop:
        return "DPoP"
    if kind == "bearer":
        if dpop and not allow_bearer:
            raise TokenError(
                "the token endpoint answered token_type Bearer to a DPoP request: the token is not bound "
                "to the client's key (set allow_bearer_downgrade to accept that)",
                reason="dpop_downgraded",
                status=200,
            )
        return "Bearer"
    raise TokenError(f"unsupported token_type {token_type!r}", reason="unsupported_token_type", status=200)


def parse_token_response(
    response: HttpResponse,
    *,
    requested_scope: str | None,
    now: int,
    dpop: bool = False,
    allow_bearer: bool = False,
) -> TokenResponse:
    """RFC 6749 §5.1 with the tolerance of C24: ``token_type`` compared case-insensitively, ``expires_in``
    optional, a missing ``scope`` means the requested one. §5.2 errors raise ``TokenError``."""
    data = _json_or_none(response.body)
    if response.status != 200:
        error = data.get("error") if data else None
        raise TokenError(
            f"token endpoint answered HTTP {response.status}",
            reason="token_rejected" if error is not None else "unexpected_status",
            status=response.status,
            error=error,
            description=data.get("error_description") if data else None,
        )
    if data is None:
        raise TokenError("token response is not a JSON object", reason="invalid_response", status=200)
    access_token = data.get("access_token")
    token_type = data.get("token_type")
    if not isinstance(access_token, str) or not access_token:
        raise TokenError("token response lacks access_token", reason="invalid_response", status=200)
    kind = check_token_type(token_type, dpop=dpop, allow_bearer=allow_bearer)
    expires_in = data.get("expires_in")
    if expires_in is not None and (
        not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in < 0
    ):
        raise TokenError("expires_in must be a non-negative integer", reason="invalid_response", status=200)
    scope = data.get("scope", requested_scope)
    refresh_token = data.get("refresh_token")
    id_token = data.get("id_token")
    for name, value in (("scope", scope), ("refresh_token", refresh_token), ("id_token", id_token)):
        if value is not None and not isinstance(value, str):
            raise TokenError(f"{name} must be a string", reason="invalid_response", status=200)
    return TokenResponse(
        access_token=access_token,
        token_type=kind,
        expires_in=expires_in,
        expires_at=now + expires_in if expires_in is not None else None,
        scope=scope,
        refresh_token=refresh_token,
        id_token=id_token,
        raw=data,
    )
