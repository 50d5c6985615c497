"""The authorization request as values: the caller's arguments checked, the server's support checked, the
parameters and the flow record built. Pure functions; ``ClientCore.start_authorization`` sequences them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import JARM_MODES, RESPONSE_MODES, ClientConfig
from .errors import ConfigurationError, DiscoveryError
from .metadata import ServerMetadata
from .models import FlowState
from .pkce import Pkce
from .request_object import (
    check_acr_values,
    check_advertised,
    check_extra_params,
    check_max_age,
    essential_acr_and_auth_time,
)


@dataclass(frozen=True, slots=True)
class AuthorizationArgs:
    """The caller's arguments to ``start_authorization``, checked."""

    redirect_uri: str
    scope: str
    response_mode: str
    use_par: bool
    encrypt_request: bool
    max_age: int | None
    acr_values: tuple[str, ...] | None
    essential_acr: tuple[str, ...] | None
    auth_time_required: bool
    claims: Mapping[str, Any] | None
    extra: Mapping[str, object]

    @property
    def openid(self) -> bool:
        return "openid" in self.scope.split()


def check_authorization_args(
    cfg: ClientConfig,
    *,
    scope: str,
    response_mode: str,
    use_par: bool,
    encrypt_request: bool,
    max_age: int | None,
    acr_values: Sequence[str] | str | None,
    claims: Mapping[str, Any] | None,
    extra: Mapping[str, object] | None,
) -> AuthorizationArgs:
    """Everything that can be refused before a byte is sent (``ConfigurationError``)."""
    if cfg.redirect_uri is None:
        raise ConfigurationError("this client has no redirect_uri: it can only use client_credentials")
    if response_mode not in RESPONSE_MODES:
        raise ConfigurationError(f"unsupported response_mode {response_mode!r}")
    if not isinstance(scope, str) or any(ord(c) < 0x20 or c in '"\\' for c in scope):
        raise ConfigurationError("scope must be a string of RFC 6749 §3.3 scope tokens")
    params_extra = check_extra_params(extra or {})
    checked_max_age = check_max_age(max_age)
    acr_tuple = check_acr_values(acr_values)
    essential_acr, auth_time_required = essential_acr_and_auth_time(claims)
    openid = "openid" in scope.split()
    if not openid and (checked_max_age is not None or acr_tuple or claims is not None):
        raise ConfigurationError("max_age, acr_values and claims need the openid scope (OIDC Core §3.1.2.1)")
    if encrypt_request and cfg.request_object_encryption_alg is None:
        raise ConfigurationError("encrypt_request needs request_object_encryption_alg")
    if encrypt_request and cfg.signing_key is None:
        raise ConfigurationError("encrypt_request needs signing_key: a request object is signed, then encrypted")
    return AuthorizationArgs(
        redirect_uri=cfg.redirect_uri,
        scope=scope,
        response_mode=response_mode,
        use_par=use_par,
        encrypt_request=encrypt_request,
        max_age=checked_max_age,
        acr_values=acr_tuple,
        essential_acr=essential_acr,
        auth_time_required=auth_time_required,
        claims=claims,
        extra=params_extra,
    )


def check_server_support(md: ServerMetadata, cfg: ClientConfig, args: AuthorizationArgs) -> None:
    """The server advertises what this request needs (``DiscoveryError`` otherwise)."""
    check_advertised("S256", md.supported("code_challenge_methods_supported"), "code_challenge_method")
    check_advertised(args.response_mode, md.response_modes_supported, "response_mode")
    if cfg.signs_requests:
        check_advertised(
            cfg.effective_request_object_signing_alg,
            md.supported("request_object_signing_alg_values_supported"),
            "request object alg",
        )
    if args.response_mode in JARM_MODES:
        check_advertised(
            cfg.authorization_signed_response_alg,
            md.supported("authorization_signing_alg_values_supported"),
            "JARM signing alg",
        )
    if args.use_par and md.pushed_authorization_request_endpoint is None:
        raise DiscoveryError("the server has no PAR endpoint", reason="par_not_supported")
    if not args.use_par and md.require_pushed_authorization_requests:
        raise DiscoveryError("the server requires PAR", reason="par_required")


def authorization_params(
    cfg: ClientConfig,
    args: AuthorizationArgs,
    *,
    state: str,
    nonce: str | None,
    pkce: Pkce,
    dpop_jkt: str | None,
) -> dict[str, object]:
    """Every authorization parameter (RFC 6749 §4.1.1, RFC 7636, OIDC Core §3.1.2.1, RFC 9449 §10)."""
    params: dict[str, object] = {
        "response_type": "code",
        "client_id": cfg.client_id,
        "redirect_uri": args.redirect_uri,
        "scope": args.scope,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
        "response_mode": args.response_mode,
    }
    if nonce is not None:
        params["nonce"] = nonce
    if args.max_age is not None:
        params["max_age"] = args.max_age
    if args.acr_values:
        params["acr_values"] = " ".join(args.acr_values)
    if args.claims is not None:
        params["claims"] = dict(args.claims)
    if dpop_jkt is not None:
        params["dpop_jkt"] = dpop_jkt
    params.update(args.extra)
    return params


def new_flow(
    cfg: ClientConfig,
    args: AuthorizationArgs,
    *,
    issuer: str,
    state: str,
    nonce: str | None,
    pkce: Pkce,
    now: int,
    dpop_jkt: str | None,
) -> FlowState:
    """The record the callback is judged against (C12)."""
    return FlowState(
        issuer=issuer,
        client_id=cfg.client_id,
        state=state,
        nonce=nonce,
        code_verifier=pkce.verifier,
        redirect_uri=args.redirect_uri,
        response_mode=args.response_mode,
        scope=args.scope,
        created_at=now,
        expires_at=now + cfg.flow_lifetime,
        max_age=args.max_age,
        acr_values=args.essential_acr or args.acr_values,
        auth_time_required=args.auth_time_required,
        dpop_jkt=dpop_jkt,
    )
