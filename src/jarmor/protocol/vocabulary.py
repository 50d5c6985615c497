"""Names shared by the server and the client library: response modes, grant types, parameters."""

from __future__ import annotations

from typing import Final

JARM_MODES: Final = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")
PLAIN_MODES: Final = ("query", "fragment", "form_post")
RESPONSE_MODES: Final = PLAIN_MODES + JARM_MODES
RESPONSE_TYPES: Final = ("code",)
GRANT_TYPES: Final = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS: Final = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")
# RFC 8705 §2: offered only when the server can see client certificates (direct TLS or a trusted proxy)
MTLS_AUTH_METHODS: Final = ("tls_client_auth", "self_signed_tls_client_auth")
SECRET_METHODS: Final = frozenset({"client_secret_basic", "client_secret_post"})

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PAR_URN_PREFIX: Final = "urn:ietf:params:oauth:request_uri:"
REQUEST_OBJECT_TYP: Final = "oauth-authz-req+jwt"

# Claims of a request object that are JWT claims, not authorization parameters (RFC 9101 §4).
JWT_CLAIMS: Final = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti", "sub"})
# Authorization parameters whose value must be a JSON string inside a request object.
STRING_PARAMETERS: Final = frozenset(
    {
        "client_id",
        "response_type",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "response_mode",
        "prompt",
        "login_hint",
        "acr_values",
        "ui_locales",
        "display",
        "id_token_hint",
        "resource",
    }
)
NUMERIC_PARAMETERS: Final = frozenset({"max_age"})
OBJECT_PARAMETERS: Final = frozenset({"claims"})
ARRAY_PARAMETERS: Final = frozenset({"authorization_details"})
# Every parameter name an endpoint of this server understands: the only names an error message may repeat.
KNOWN_PARAMETERS: Final = STRING_PARAMETERS | NUMERIC_PARAMETERS | OBJECT_PARAMETERS | ARRAY_PARAMETERS | {
    "request", "request_uri", "grant_type", "code", "code_verifier", "refresh_token", "client_secret",
    "client_assertion", "client_assertion_type", "token", "token_type_hint", "username", "password",
    "csrf_token", "decision", "dpop_jkt",
}

# JWE for request objects (RFC 9101 §6.1) and JARM (JARM §2.2). RSA1_5, PBES2, dir and A*KW are never offered.
JWE_ALGS_SUPPORTED: Final = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW", "RSA-OAEP-256")
JWE_ENCS_SUPPORTED: Final = ("A128GCM", "A256GCM", "A128CBC-HS256", "A256CBC-HS512")
DEFAULT_JWE_ENC: Final = "A128CBC-HS256"  # OIDC Registration §2 / JARM §3 default for *_enc


def resolve_response_mode(mode: str, response_type: str = "code") -> str:
    """JARM §2.3.4: ``jwt`` means ``query.jwt`` for response type ``code``."""
    if mode == "jwt":
        return "query.jwt" if response_type == "code" else "fragment.jwt"
    return mode


def is_jarm(mode: str) -> bool:
    return mode in JARM_MODES
