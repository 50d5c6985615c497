"""What the protocol core needs from the outside world, passed in as plain values and small interfaces."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from ..jose import Jwk, JwkSet
from ..store.base import Store
from .addresses import is_loopback_host
from .clients import Client, ServerCapabilities
from .policy import Policy
from .vocabulary import AUTH_METHODS, MTLS_AUTH_METHODS


def authority_of(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of an absolute URL, the host lowercased and the port defaulted by the scheme; ``None``
    when it has no host or a bad port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port if port is not None else (443 if parts.scheme == "https" else 80)


def same_authority(authority: str, url: str) -> bool:
    """Whether a request's ``Host`` (``host[:port]``, RFC 9110 §7.2) names the host and port of ``url``; a
    ``Host`` without a port means ``url``'s scheme default (the request came the way the URL says)."""
    if not authority or any(c in authority for c in "/?#@\\") or not authority.isprintable() or " " in authority:
        return False
    want = authority_of(url)
    return want is not None and authority_of(f"{urlsplit(url).scheme}://{authority}") == want


@dataclass(frozen=True, slots=True)
class Endpoints:
    issuer: str
    authorization: str
    token: str
    par: str
    jwks: str
    registration: str
    revocation: str
    introspection: str

    @classmethod
    def for_issuer(cls, issuer: str) -> Endpoints:
        base = issuer.rstrip("/")
        return cls(
            issuer=issuer,
            authorization=f"{base}/authorize",
            token=f"{base}/token",
            par=f"{base}/par",
            jwks=f"{base}/jwks",
            registration=f"{base}/register",
            revocation=f"{base}/revoke",
            introspection=f"{base}/introspect",
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Tunable limits. Lifetimes that depend on the risk tier live in the tier (policy.py)."""

    # Clock skew: iat/nbf up to ``future_skew`` ahead are accepted, and exp that long in the past
    # (FAPI 2.0 §5.3.2.1: accept 10 s, reject beyond 60 s).
    future_skew: int = 10
    jarm_lifetime: int = 300  # JARM §2.1 recommends at most 10 minutes
    id_token_lifetime: int = 300
    # RFC 9068 §3: the default resource indicator, the ``aud`` of JWT access tokens (tiers whose
    # ``access_token_format`` is "jwt" need it)
    access_token_audience: str | None = None
    interaction_lifetime: int = 600
    # End-user sign-in (server/signin.py): attempts per account name, and failures per client address
    # (0: no address limit), within a fixed window of ``login_lockout_window`` seconds; counted atomically
    # in the store before the password is checked, so they hold across workers and nodes.
    login_max_failures: int = 5
    login_lockout_window: int = 15 * 60
    login_max_failures_per_address: int = 50
    # The admin dashboard accepts only passkeys (``jarmor admins enrol-link NAME`` enrols them), no passwords.
    admin_require_passkey: bool = False
    # One-time passkey enrolment links (``jarmor users add NAME --passkey-only``, ``users enrol-link``,
    # ``admins enrol-link``): seconds a link stays valid, 5 minutes to 7 days; used once either way.
    enrolment_link_lifetime: int = 24 * 3600
    client_assertion_max_lifetime: int = 600
    # DPoP proofs (RFC 9449 §11.1): accepted until this many seconds after their iat (and ``future_skew``
    # ahead); server nonces (§8) are valid for one to two windows of ``dpop_nonce_window`` seconds
    dpop_proof_max_age: int = 300
    dpop_nonce_window: int = 300
    request_object_max_age: int = 3600  # how old an iat may be
    max_state_length: int = 2048
    max_nonce_length: int = 512
    max_scope_length: int = 1000
    request_parameter_supported: bool = True
    require_request_object_typ: bool = False
    scopes: frozenset[str] = frozenset({"openid", "profile", "email", "offline_access"})
    auto_approve: str | None = None
    # Request objects by reference (RFC 9101 §5.2): off by default; only URLs in the client's request_uris.
    request_uri_parameter_supported: bool = False
    max_request_uris: int = 10
    # Fetching jwks_uri and request_uri documents (server/fetch.py): seconds and bytes.
    fetch_timeout: float = 5.0  # total deadline, name resolution to last byte
    fetch_connect_timeout: float = 2.0
    fetch_read_timeout: float = 2.0
    fetch_max_bytes: int = 64 * 1024
    client_jwks_ttl: int = 300  # how long a fetched client JWKS is used before it is fetched again
    client_jwks_refetch_interval: int = 30  # at most one refetch per client per interval on an unknown kid
    # Server key lifecycle (server/keys.py): publish before use, keep until everything it protects expired.
    key_refresh_interval: int = 30  # every process reloads its keyring at least this often
    # ... and, while it serves requests, re-reads the key store this often: a key retired with
    # ``jarmor keys retire --force`` (a compromised key) stops signing and decrypting everywhere within it
    key_check_interval: float = 1.0
    jwks_max_age: int = 60  # Cache-Control max-age of the server JWKS
    key_publish_delay: int | None = None  # default: 2 * key_refresh_interval + jwks_max_age
    key_encryption_grace: int = 3600  # how long clients may keep encrypting to a replaced encryption key
    # Flow integrity records (governance/recorder.py): queued in memory, written in batches off the request path.
    flow_records: bool = True
    flow_record_queue: int = 10_000  # records waiting to be written; beyond it new records are dropped (counted)
    flow_record_batch: int = 500
    flow_record_interval: float = 0.2  # seconds a batch may wait to fill up
    # SIGTERM: requests in flight get this many seconds to finish, then queued flow records as long again
    shutdown_grace: float = 30.0
    rate_limit_window: int = 60  # seconds per rate-limit window (server/ratelimit.py); 0 turns limits off
    rate_limit_per_address: int = 6000  # requests per source address, endpoint and window
    metrics_token: str | None = None  # when set, GET /metrics needs "Authorization: Bearer <token>"
    flow_checkpoint_every: int = 1000  # sign the chain head at least every this many records ...
    flow_checkpoint_interval: float = 60.0  # ... or seconds (governance/checkpoints.py); 0 turns signing off
    # What the consent page tells the user each scope lets the application do (server/consent.py has the
    # built-in wording for openid, profile, email and offline_access); keys must be scopes the server knows.
    scope_descriptions: Mapping[str, str] = field(default_factory=dict)


class ServerKeyring(Protocol):
    """The server's own keys (adapters load them from storage and handle rotation)."""

    def signing_key(self, alg: str) -> Jwk:
        """The current key to sign with ``alg``."""

    def decryption_keys(self) -> JwkSet:
        """Private keys for decrypting JWEs addressed to this server (request objects)."""

    def public_jwks(self) -> dict[str, object]: ...

    def signing_algs(self) -> tuple[str, ...]: ...

    def secrets(self) -> tuple[bytes, ...]:
        """Every server secret a MAC may still have been made with (current first; DPoP nonces)."""
        ...


class ClientDirectory(Protocol):
    """The port the core finds clients through (the server's adapter: ``server.directory.CachedClientDirectory``)."""

    async def get(self, client_id: str) -> Client | None:
        """The client as it is now (disabled clients included), or ``None`` if there is none."""


class ClientKeys(Protocol):
    async def keys_for(self, client: Client, *, refresh: bool = False) -> JwkSet:
        """The client's registered public keys (``jwks`` by value, or fetched from ``jwks_uri``)."""


class RegisteredKeys:
    """``ClientKeys`` for clients that register their keys by value."""

    async def keys_for(self, client: Client, *, refresh: bool = False) -> JwkSet:
        return client.jwks or JwkSet()


class RequestObjectFetcher(Protocol):
    async def fetch_request_object(self, client: Client, uri: str) -> str:
        """RFC 9101 §5.2: the request object published at ``uri``, a URL the client registered.

        Raises ``InvalidRequestUri`` when it cannot be retrieved; returns (or fails) within a bounded time.
        """


@dataclass(slots=True)
class Environment:
    issuer: str
    endpoints: Endpoints
    policy: Policy
    settings: Settings
    store: Store
    clients: ClientDirectory
    keys: ServerKeyring
    client_keys: ClientKeys = field(default_factory=RegisteredKeys)
    clock: Callable[[], float] = time.time
    request_objects: RequestObjectFetcher | None = None  # request_uri by reference (None: not supported)
    # RFC 8705: client certificates reach the server (direct TLS or a trusted proxy); the endpoints clients
    # use for mutual TLS when they differ from the others (``mtls_endpoint_aliases``, §5)
    mtls: bool = False
    mtls_aliases: Endpoints | None = None

    def now(self) -> int:
        return int(self.clock())

    def endpoints_at(self, authority: str | None) -> Endpoints:
        """The endpoints of a request addressed to ``authority`` (its ``Host``): the mTLS aliases when it names
        theirs, else the main ones. RFC 9449 §4.3 check 9 compares a proof's ``htu`` with the URI of the
        request it came with, so a proof sent to an alias (RFC 8705 §5) is checked against the alias URL.
        Aliases are told apart by host and port only: the configuration refuses an ``mtls_issuer`` with the
        issuer's (``config.py``); a malformed ``Host`` is the main endpoints'."""
        aliases = self.mtls_aliases
        if aliases is None or authority is None:
            return self.endpoints
        return aliases if same_authority(authority, aliases.issuer) else self.endpoints

    def capabilities(self) -> ServerCapabilities:
        return ServerCapabilities(
            signing_algs=self.keys.signing_algs(),
            scopes=self.all_scopes(),
            request_uris_supported=self.settings.request_uri_parameter_supported,
            max_request_uris=self.settings.max_request_uris,
            loopback_references=is_loopback_host(urlsplit(self.issuer).hostname),
            auth_methods=self.auth_methods(),
        )

    def auth_methods(self) -> tuple[str, ...]:
        return AUTH_METHODS + MTLS_AUTH_METHODS if self.mtls else AUTH_METHODS

    def all_scopes(self) -> frozenset[str]:
        return self.settings.scopes | frozenset(self.policy.scope_tiers)
