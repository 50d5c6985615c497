"""Authorization server metadata (RFC 8414; RFC 9101 §10.5; RFC 9126 §5; JARM §4; RFC 9207 §3)."""

from __future__ import annotations

from typing import Any

from .context import Environment
from .interaction.authentication import ACR, METHODS, level_of
from .vocabulary import AUTH_METHODS, GRANT_TYPES, JWE_ALGS_SUPPORTED, JWE_ENCS_SUPPORTED, RESPONSE_MODES


def server_metadata(env: Environment) -> dict[str, Any]:
    algs = list(env.keys.signing_algs())
    ep = env.endpoints
    return {
        "issuer": env.issuer,
        "authorization_endpoint": ep.authorization,
        "token_endpoint": ep.token,
        "pushed_authorization_request_endpoint": ep.par,
        "jwks_uri": ep.jwks,
        "registration_endpoint": ep.registration,
        "revocation_endpoint": ep.revocation,
        "introspection_endpoint": ep.introspection,
        "scopes_supported": sorted(env.all_scopes()),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["public"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
        # RFC 7662 §4: introspection callers authenticate, so public clients ("none") cannot use it
        "introspection_endpoint_auth_methods_supported": [m for m in AUTH_METHODS if m != "none"],
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "request_parameter_supported": env.settings.request_parameter_supported,
        "request_uri_parameter_supported": env.settings.request_uri_parameter_supported,  # RFC 9101 §5.2
        "require_request_uri_registration": True,
        "require_pushed_authorization_requests": False,
        "require_signed_request_object": False,
        "request_object_signing_alg_values_supported": algs,
        "request_object_encryption_alg_values_supported": list(JWE_ALGS_SUPPORTED),
        "request_object_encryption_enc_values_supported": list(JWE_ENCS_SUPPORTED),
        "authorization_signing_alg_values_supported": algs,
        "authorization_encryption_alg_values_supported": list(JWE_ALGS_SUPPORTED),
        "authorization_encryption_enc_values_supported": list(JWE_ENCS_SUPPORTED),
        "id_token_signing_alg_values_supported": algs,
        "authorization_response_iss_parameter_supported": True,
        # OIDC Discovery §3: the levels the sign-in methods of this build can reach (docs/assurance.md)
        "acr_values_supported": [v for level, v in ACR.items() if level <= level_of(METHODS.values())],
        "claims_parameter_supported": True,  # for the acr request (OIDC Core §5.5.1.1)
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr"],
        "tls_client_certificate_bound_access_tokens": False,
    }
