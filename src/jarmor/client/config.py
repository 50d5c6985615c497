"""The client's registration as the library needs it: identifiers, keys and the algorithms it registered.

Every algorithm here must equal what the client registered at the authorization server; responses that use
another algorithm are refused (C2, C6, C14, C23), so there is no "accept any of" list to misconfigure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from jarmor.jose import CONTENT_ENCRYPTION_ALGS, KEY_MANAGEMENT_ALGS, SIGNING_ALGS, Jwk, JwkSet
from jarmor.protocol import vocabulary
from jarmor.protocol.addresses import is_loopback_host

from .dpop import dpop_alg, load_dpop_key
from .errors import ConfigurationError

ResponseMode = Literal["jwt", "query.jwt", "fragment.jwt", "form_post.jwt", "query", "fragment", "form_post"]
AuthMethod = Literal[
    "private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "self_signed_tls_client_auth"
]
MTLS_METHODS = frozenset({"tls_client_auth", "self_signed_tls_client_auth"})

RESPONSE_MODES: frozenset[str] = frozenset(vocabulary.RESPONSE_MODES)
JARM_MODES: frozenset[str] = frozenset(vocabulary.JARM_MODES)
assert frozenset(get_args(ResponseMode)) == RESPONSE_MODES, "ResponseMode must list the protocol's modes"
AUTH_METHODS: frozenset[str] = frozenset(get_args(AuthMethod))

# Where each response mode delivers its parameters (JARM §2.3; OAuth 2.0 Form Post Response Mode).
MODE_CHANNEL: dict[str, str] = {
    "jwt": "query",
    "query.jwt": "query",
    "query": "query",
    "fragment.jwt": "fragment",
    "fragment": "fragment",
    "form_post.jwt": "form",
    "form_post": "form",
}

DEFAULT_JWE_ENC = "A128CBC-HS256"  # OIDC Registration / JARM §3: default of *_encrypted_response_enc
DEFAULT_RESPONSE_ALG = "RS256"  # JARM §3 and OIDC Registration §2: the default when none was registered
_NEVER = frozenset({"none", "RSA1_5", "HS256", "HS384", "HS512", "dir"})


def check_certificate_files(certificate: object) -> tuple[str, str] | None:
    """``client_certificate`` (RFC 8705): ``None`` or a pair of file paths (PEM certificate, PEM key)."""
    if certificate is None:
        return None
    if (
        not isinstance(certificate, tuple | list) or len(certificate) != 2
        or not all(isinstance(p, str) and p for p in certificate)
    ):
        raise ConfigurationError("client_certificate must be a pair (certificate file, key file)")
    return (certificate[0], certificate[1])


def check_url(url: object, *, what: str, allow_insecure_http: bool, error: type[Exception]) -> str:
    """An absolute https URL without fragment; http only to a loopback host when explicitly allowed."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise error(f"{what} must be a non-empty URL string")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise error(f"{what} is not a valid URL") from exc
    if parts.fragment or "#" in url:
        raise error(f"{what} must not contain a fragment")
    if not host:
        raise error(f"{what} must be an absolute URL")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_insecure_http and is_loopback_host(host):
        return url
    raise error(
        f"{what} must use https (plain http is accepted only for a loopback host, and only with "
        "allow_insecure_http=True)"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """A registered client of one authorization server (``issuer``).

    Build it with ``ClientConfig.from_registration`` from the registration response (RFC 7591 §3.2.1, or
    what ``jarmor clients add`` prints): the algorithms it must enforce are the ones the server recorded,
    whatever that server's defaults are. Building it by hand, every algorithm must match the registration.

    ``signing_key`` signs request objects (C14) and ``private_key_jwt`` assertions (C20). A client
    authenticated by a secret (``client_secret_basic``/``_post``) may have none: it then pushes plain
    parameters (RFC 9126 §2.1), or sends them in the query without PAR, where its tier allows that.
    ``decryption_keys`` hold the private ``use=enc`` keys for encrypted JARM responses (C2).
    ``trusted_audiences`` are the other audiences an ID token may name besides the client (OIDC Core
    §3.1.3.7-3: empty by default, so any extra audience is refused). Lifetimes and skews are seconds.

    ``dpop=True`` (or ``dpop_bound_access_tokens`` in the registration) asks for DPoP-bound tokens
    (RFC 9449): every PAR and token request carries a proof, and the token response must say
    ``token_type: DPoP`` (a silent downgrade to ``Bearer`` raises, unless ``allow_bearer_downgrade``).
    ``dpop_key`` is the proof key (a ``Jwk``, a private JWK object or a PEM private key); without it the
    client generates one (``dpop_signing_alg``, ES256 by default; EdDSA and PS256 are the other usual
    choices) and keeps it for its life. ``send_dpop_jkt`` binds the code to that key with ``dpop_jkt``
    when PAR is not used (RFC 9449 §10; with PAR the proof on the PAR request binds it).
    """

    issuer: str
    client_id: str
    redirect_uri: str | None = None
    signing_key: Jwk | None = None
    signing_alg: str = "ES256"
    request_object_signing_alg: str | None = None
    request_object_encryption_alg: str | None = None
    request_object_encryption_enc: str | None = None
    request_object_typ: str | None = vocabulary.REQUEST_OBJECT_TYP
    decryption_keys: JwkSet | None = None
    authorization_signed_response_alg: str = "ES256"
    authorization_encrypted_response_alg: str | None = None
    authorization_encrypted_response_enc: str | None = None
    id_token_signed_response_alg: str = "ES256"
    token_endpoint_auth_method: AuthMethod = "private_key_jwt"
    client_secret: str | None = field(default=None, repr=False)
    clock_skew: int = 30
    request_object_lifetime: int = 300
    client_assertion_lifetime: int = 60
    flow_lifetime: int = 600
    max_response_lifetime: int = 600
    max_id_token_age: int = 600
    jwks_refetch_interval: int = 60
    jwks_max_age: int = 3600
    allow_insecure_http: bool = False
    trusted_audiences: frozenset[str] = field(default_factory=frozenset)
    # RFC 8705: (PEM certificate file, PEM key file) presented on every TLS connection; CA file for the server
    client_certificate: tuple[str, str] | None = None
    tls_ca_certs: str | None = None
    # DPoP (RFC 9449): sender-constrained tokens. See the class docstring.
    dpop: bool = False
    dpop_key: Jwk | Mapping[str, Any] | str | bytes | None = field(default=None, repr=False)
    dpop_signing_alg: str | None = None
    send_dpop_jkt: bool = False
    allow_bearer_downgrade: bool = False

    @classmethod
    def from_registration(
        cls,
        registration: Mapping[str, Any],
        *,
        issuer: str,
        signing_key: Jwk | None = None,
        decryption_keys: JwkSet | None = None,
        redirect_uri: str | None = None,
        **settings: Any,
    ) -> ClientConfig:
        """A configuration from a client registration response (RFC 7591 §3.2.1, RFC 7592 §3) or the JSON
        ``jarmor clients add`` prints: ``client_id``, ``client_secret``, the redirect URI (none for a machine
        client that only uses ``client_credentials``) and every
        algorithm the server will use with this client. A member the registration omits takes its
        registration default (``client_secret_basic``, RFC 7591 §2; ``RS256`` for JARM and ID tokens,
        JARM §3 and OIDC Registration §2). ``settings`` are the other ``ClientConfig`` fields (lifetimes,
        ``allow_insecure_http``, ``trusted_audiences`` ...)."""
        if not isinstance(registration, Mapping):
            raise ConfigurationError("registration must be the registration response (a JSON object)")
        reserved = {"client_id", "client_secret", "token_endpoint_auth_method"} | _REGISTERED_ALGS.keys()
        overlap = sorted(reserved & settings.keys())
        if overlap:
            raise ConfigurationError(f"{', '.join(overlap)} come from the registration, not from settings")

        def member(name: str) -> str | None:
            value = registration.get(name)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"registration member {name} must be a string")
            return value

        client_id = member("client_id")
        if not client_id:
            raise ConfigurationError("the registration has no client_id")
        uris = registration.get("redirect_uris", [])
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise ConfigurationError("registration member redirect_uris must be an array of strings")
        if redirect_uri is None and uris:
            if len(uris) != 1:
                raise ConfigurationError("the registration has several redirect_uris: pass redirect_uri=")
            redirect_uri = uris[0]
        elif redirect_uri is not None and redirect_uri not in uris:
            raise ConfigurationError("redirect_uri is not one of the registered redirect_uris")
        algs: dict[str, Any] = {field_name: member(name) for field_name, name in _REGISTERED_ALGS.items()}
        for name in ("authorization_signed_response_alg", "id_token_signed_response_alg"):
            algs[name] = algs[name] or DEFAULT_RESPONSE_ALG
        signing_alg = (
            member("token_endpoint_auth_signing_alg")
            or algs["request_object_signing_alg"]
            or (signing_key.alg if signing_key is not None and signing_key.alg in SIGNING_ALGS else None)
        )
        if signing_alg is not None:
            if settings.get("signing_alg", signing_alg) != signing_alg:
                raise ConfigurationError(
                    f"signing_alg {settings['signing_alg']!r} differs from the registered {signing_alg}"
                )
            settings["signing_alg"] = signing_alg
        bound = registration.get("dpop_bound_access_tokens", False)
        if not isinstance(bound, bool):
            raise ConfigurationError("registration member dpop_bound_access_tokens must be a boolean")
        if bound:  # RFC 9449 §5.2: the server refuses this client's token requests without a proof
            if settings.get("dpop", True) is not True:
                raise ConfigurationError("the registration has dpop_bound_access_tokens: dpop cannot be off")
            settings["dpop"] = True
        method = member("token_endpoint_auth_method") or "client_secret_basic"
        if method not in AUTH_METHODS:
            raise ConfigurationError(f"token_endpoint_auth_method {method!r} is not supported by this library")
        return cls(
            issuer=issuer,
            client_id=client_id,
            redirect_uri=redirect_uri,
            signing_key=signing_key,
            decryption_keys=decryption_keys,
            token_endpoint_auth_method=method,  # type: ignore[arg-type]
            client_secret=member("client_secret"),
            **algs,
            **settings,
        )

    def __post_init__(self) -> None:
        check_url(
            self.issuer, what="issuer", allow_insecure_http=self.allow_insecure_http, error=ConfigurationError
        )
        if urlsplit(self.issuer).query:
            raise ConfigurationError("issuer must not contain a query component (RFC 8414 §2)")
        if self.redirect_uri is not None:  # None: a machine client (client_credentials only)
            check_url(
                self.redirect_uri,
                what="redirect_uri",
                allow_insecure_http=self.allow_insecure_http,
                error=ConfigurationError,
            )
        if not isinstance(self.client_id, str) or not self.client_id or len(self.client_id) > 256:
            raise ConfigurationError("client_id must be a non-empty string")
        for alg in (
            self.signing_alg,
            self.effective_request_object_signing_alg,
            self.authorization_signed_response_alg,
            self.id_token_signed_response_alg,
        ):
            if alg in _NEVER or alg not in SIGNING_ALGS:
                raise ConfigurationError(f"signature algorithm {alg!r} is not allowed")
        key = self.signing_key
        if key is None:
            if self.token_endpoint_auth_method == "private_key_jwt":
                raise ConfigurationError("private_key_jwt needs signing_key (the client's private key)")
            if self.request_object_signing_alg is not None or self.request_object_encryption_alg is not None:
                raise ConfigurationError("signed request objects need signing_key (the client's private key)")
        else:
            if not isinstance(key, Jwk) or not key.is_private:
                raise ConfigurationError("signing_key must be a private key (jarmor.jose.Jwk)")
            for alg in (self.signing_alg, self.effective_request_object_signing_alg):
                if not key.fits_signing_alg(alg):
                    raise ConfigurationError(f"signing_key {key.kid!r} cannot sign with {alg}")
        audiences: object = self.trusted_audiences
        if isinstance(audiences, str | bytes) or not isinstance(audiences, frozenset | set | list | tuple):
            raise ConfigurationError("trusted_audiences must be a set of audience strings")
        if not all(isinstance(a, str) and a for a in audiences):
            raise ConfigurationError("trusted_audiences must be a set of non-empty strings")
        object.__setattr__(self, "trusted_audiences", frozenset(audiences))
        if self.client_id in self.trusted_audiences:
            raise ConfigurationError("trusted_audiences lists the other audiences, not the client_id")
        self._check_encryption(
            "request_object_encryption",
            self.request_object_encryption_alg,
            self.request_object_encryption_enc,
        )
        self._check_encryption(
            "authorization_encrypted_response",
            self.authorization_encrypted_response_alg,
            self.authorization_encrypted_response_enc,
        )
        if self.authorization_encrypted_response_alg is not None:
            keys = self.decryption_keys
            alg = self.authorization_encrypted_response_alg
            if keys is None or not any(k.is_private and k.fits_encryption_alg(alg) for k in keys.keys):
                raise ConfigurationError(f"decryption_keys hold no private key for {alg}")
        if self.token_endpoint_auth_method not in AUTH_METHODS:
            raise ConfigurationError(
                f"unsupported token_endpoint_auth_method {self.token_endpoint_auth_method!r}"
            )
        object.__setattr__(self, "client_certificate", check_certificate_files(self.client_certificate))
        if self.token_endpoint_auth_method in MTLS_METHODS:
            if self.client_certificate is None:
                raise ConfigurationError(f"{self.token_endpoint_auth_method} needs client_certificate")
        elif self.token_endpoint_auth_method != "private_key_jwt" and not self.client_secret:
            raise ConfigurationError(f"{self.token_endpoint_auth_method} needs client_secret")
        if not 0 <= self.clock_skew <= 300:
            raise ConfigurationError("clock_skew must be between 0 and 300 seconds")
        if not 1 <= self.request_object_lifetime <= 3600:
            raise ConfigurationError("request_object_lifetime must be 1..3600 s (FAPI1 5.2.3-11)")
        if not 1 <= self.client_assertion_lifetime <= 300:
            raise ConfigurationError("client_assertion_lifetime must be 1..300 s")
        for name in ("flow_lifetime", "max_response_lifetime", "max_id_token_age", "jwks_max_age"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.jwks_refetch_interval < 0:
            raise ConfigurationError("jwks_refetch_interval must not be negative")
        self._check_dpop()

    def _check_dpop(self) -> None:
        for name in ("dpop", "send_dpop_jkt", "allow_bearer_downgrade"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be a boolean")
        if not self.dpop:
            for name in ("dpop_key", "dpop_signing_alg"):
                if getattr(self, name) is not None:
                    raise ConfigurationError(f"{name} needs dpop=True")
            for name in ("send_dpop_jkt", "allow_bearer_downgrade"):
                if getattr(self, name):
                    raise ConfigurationError(f"{name} needs dpop=True")
            return
        key = None if self.dpop_key is None else load_dpop_key(self.dpop_key, self.dpop_signing_alg)
        object.__setattr__(self, "dpop_key", key)
        object.__setattr__(self, "dpop_signing_alg", dpop_alg(key, self.dpop_signing_alg))

    @staticmethod
    def _check_encryption(name: str, alg: str | None, enc: str | None) -> None:
        if alg is None:
            if enc is not None:
                raise ConfigurationError(f"{name}_enc requires {name}_alg (OIDC Registration §2)")
            return
        if alg in _NEVER or alg not in KEY_MANAGEMENT_ALGS:
            raise ConfigurationError(f"{name}_alg {alg!r} is not allowed")
        if enc is not None and enc not in CONTENT_ENCRYPTION_ALGS:
            raise ConfigurationError(f"{name}_enc {enc!r} is not allowed")

    @property
    def signs_requests(self) -> bool:
        """Whether authorization requests travel as signed request objects (JAR) or as plain parameters."""
        return self.signing_key is not None

    @property
    def dpop_private_key(self) -> Jwk | None:
        """The given DPoP key, normalised to a ``Jwk`` (``None``: the client generates one)."""
        key = self.dpop_key
        return key if isinstance(key, Jwk) else None

    @property
    def effective_request_object_signing_alg(self) -> str:
        return self.request_object_signing_alg or self.signing_alg

    @property
    def effective_request_object_encryption_enc(self) -> str:
        return self.request_object_encryption_enc or DEFAULT_JWE_ENC

    @property
    def effective_authorization_encrypted_response_enc(self) -> str:
        return self.authorization_encrypted_response_enc or DEFAULT_JWE_ENC


# ClientConfig field -> registration metadata member (RFC 7591 §2, OIDC Registration §2, JARM §3, RFC 9101 §10.1)
_REGISTERED_ALGS: dict[str, str] = {
    "request_object_signing_alg": "request_object_signing_alg",
    "request_object_encryption_alg": "request_object_encryption_alg",
    "request_object_encryption_enc": "request_object_encryption_enc",
    "authorization_signed_response_alg": "authorization_signed_response_alg",
    "authorization_encrypted_response_alg": "authorization_encrypted_response_alg",
    "authorization_encrypted_response_enc": "authorization_encrypted_response_enc",
    "id_token_signed_response_alg": "id_token_signed_response_alg",
}
