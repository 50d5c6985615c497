"""The client model and client metadata validation (RFC 7591 §2, OIDC Registration §2, JARM §3, RFC 9101 §10.5).

Registration is where a tier's controls are first enforced: metadata that the client's tier forbids is
refused with ``invalid_client_metadata`` naming the control, so a registered client can never be configured
below its tier. Every request is checked again against the *effective* tier (client + scopes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..jose import JoseError, JwkSet
from . import errors
from .addresses import address_allowed, ip_literal, is_loopback_host
from .controls import INVALID_REDIRECT_URI, required_specs
from .mtls import parse_mtls_metadata
from .policy import Policy, Tier
from .redirect_uris import check_redirect_uri_value, uri_characters
from .vocabulary import (
    AUTH_METHODS,
    DEFAULT_JWE_ENC,
    GRANT_TYPES,
    JWE_ALGS_SUPPORTED,
    JWE_ENCS_SUPPORTED,
    RESPONSE_MODES,
    SECRET_METHODS,
)

MAX_REDIRECT_URIS = 20
MAX_URI_LENGTH = 2000
MAX_REQUEST_URI_LENGTH = 512  # RFC 9101 §5.2: the request_uri value must not exceed 512 ASCII characters
MAX_STRING = 1000
_CONTACT = re.compile(r"[^@\s<>\"':/\\]{1,64}@[A-Za-z0-9.-]{1,253}")
CLIENT_KINDS = ("machine", "first-party", "third-party")
# Members that govern a client rather than describe it (its controls; how the report and the inventory
# classify it). Set once at registration, by an administrator or by rule; never by an RFC 7592 update.
GOVERNANCE_LABELS = ("risk_tier", "client_kind", "owner", "resource_server")


BINDING_FLAGS = ("dpop_bound_access_tokens", "tls_client_certificate_bound_access_tokens")


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client, as the protocol core sees it (built from the stored metadata)."""

    client_id: str
    metadata: Mapping[str, Any]
    risk_tier: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str
    jwks: JwkSet | None
    grant_types: frozenset[str]
    response_modes: frozenset[str]
    scopes: frozenset[str] | None
    request_object_signing_alg: str | None
    authorization_signed_response_alg: str
    id_token_signed_response_alg: str
    token_endpoint_auth_signing_alg: str | None
    require_signed_request_object: bool
    require_pushed_authorization_requests: bool
    request_object_encryption: tuple[str, str] | None = None
    authorization_encryption: tuple[str, str] | None = None
    secret_hash: str | None = None
    disabled: bool = False
    updated_at: int = 0
    jwks_uri: str | None = None
    request_uris: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return str(self.metadata.get("client_name") or self.client_id)

    @property
    def client_kind(self) -> str:
        return str(self.metadata.get("client_kind") or "third-party")

    @property
    def dpop_bound_access_tokens(self) -> bool:
        """RFC 9449 §5.2: every token request of this client must carry a DPoP proof."""
        return self.metadata.get("dpop_bound_access_tokens") is True

    @property
    def resource_server(self) -> bool:
        """A resource server may introspect access tokens issued to any client (RFC 7662 §4: callers are
        authorized specifically); other clients only their own tokens."""
        return self.metadata.get("resource_server") is True

    def verify_secret(self, secret: str) -> bool:
        """Generated client secrets carry 256 bits of entropy, so a SHA-256 digest suffices (no stretching)."""
        if not self.secret_hash:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    @classmethod
    def from_metadata(
        cls,
        client_id: str,
        metadata: Mapping[str, Any],
        *,
        secret_hash: str | None = None,
        disabled: bool = False,
        updated_at: int = 0,
    ) -> Client:
        jwks = JwkSet.from_dict(metadata["jwks"]) if metadata.get("jwks") else None
        scope = metadata.get("scope")
        return cls(
            client_id=client_id,
            metadata=dict(metadata),
            risk_tier=str(metadata["risk_tier"]),
            redirect_uris=tuple(metadata.get("redirect_uris") or ()),
            token_endpoint_auth_method=str(metadata["token_endpoint_auth_method"]),
            jwks=jwks,
            grant_types=frozenset(metadata.get("grant_types") or ("authorization_code",)),
            response_modes=frozenset(metadata.get("response_modes") or RESPONSE_MODES),
            scopes=frozenset(str(scope).split()) if scope else None,
            request_object_signing_alg=metadata.get("request_object_signing_alg"),
            authorization_signed_response_alg=str(metadata.get("authorization_signed_response_alg", "RS256")),
            id_token_signed_response_alg=str(metadata.get("id_token_signed_response_alg", "RS256")),
            token_endpoint_auth_signing_alg=metadata.get("token_endpoint_auth_signing_alg"),
            require_signed_request_object=bool(metadata.get("require_signed_request_object", False)),
            require_pushed_authorization_requests=bool(
                metadata.get("require_pushed_authorization_requests", False)
            ),
            request_object_encryption=_pair(metadata, "request_object_encryption"),
            authorization_encryption=_pair(metadata, "authorization_encrypted_response"),
            secret_hash=secret_hash,
            disabled=disabled,
            updated_at=updated_at,
            jwks_uri=metadata.get("jwks_uri"),
            request_uris=tuple(metadata.get("request_uris") or ()),
        )


def _pair(metadata: Mapping[str, Any], prefix: str) -> tuple[str, str] | None:
    alg = metadata.get(f"{prefix}_alg")
    return (str(alg), str(metadata.get(f"{prefix}_enc") or DEFAULT_JWE_ENC)) if alg else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _bad(message: str) -> errors.OAuthError:
    return errors.InvalidClientMetadata(message)


def _string(meta: Mapping[str, Any], name: str, *, limit: int = MAX_STRING) -> str | None:
    value = meta.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(f"{name} must be a non-empty string of at most {limit} characters")
    return value


def _bool(meta: Mapping[str, Any], name: str) -> bool | None:
    value = meta.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _bad(f"{name} must be a boolean")
    return value


def _string_list(meta: Mapping[str, Any], name: str, *, limit: int = 50) -> list[str] | None:
    value = meta.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > limit
        or not all(isinstance(v, str) and 0 < len(v) <= MAX_URI_LENGTH for v in value)
    ):
        raise _bad(f"{name} must be an array of at most {limit} non-empty strings")
    if len(set(value)) != len(value):
        raise _bad(f"{name} contains duplicates")
    return list(value)


def check_reference_uri(uri: object, name: str, *, loopback: bool, limit: int, fragment: bool = False) -> str:
    """A URL the server will fetch (``jwks_uri``, ``request_uris``): absolute https, no credentials.

    Plain http is accepted only on a loopback host and only when the server itself runs on loopback
    (development). An IP literal must be a public address (A69: refused statically here); the fetcher
    enforces the same rules again on every address a name resolves to.
    """
    if not isinstance(uri, str) or not uri or len(uri) > limit or not uri.isascii():
        raise _bad(f"{name} must be an ASCII URL of at most {limit} characters")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise _bad(f"{name} is not a valid URL") from exc
    if not host or "@" in parts.netloc:
        raise _bad(f"{name} must be an absolute URL without credentials")
    if (parts.fragment or "#" in uri) and not fragment:
        raise _bad(f"{name} must not contain a fragment")
    literal = ip_literal(host)
    special_name = host.lower() == "localhost" or host.lower().endswith(".localhost")
    if (literal is not None and not address_allowed(literal, allow_loopback=loopback)) or (
        special_name and not loopback
    ):
        raise _bad(f"{name} must not name a private, loopback or special-use address")
    if parts.scheme == "https" or (parts.scheme == "http" and loopback and is_loopback_host(host)):
        return uri
    raise _bad(f"{name} must use https")


@dataclass(frozen=True, slots=True)
class ServerCapabilities:
    """What this server can do; registration refuses metadata outside it."""

    signing_algs: tuple[str, ...]
    scopes: frozenset[str]
    grant_types: tuple[str, ...] = GRANT_TYPES
    auth_methods: tuple[str, ...] = AUTH_METHODS
    response_modes: tuple[str, ...] = RESPONSE_MODES
    request_uris_supported: bool = False
    max_request_uris: int = 10
    loopback_references: bool = False  # the issuer is loopback: http://localhost references are allowed


@dataclass(slots=True)
class Registration:
    """What the registration steps read (the submitted metadata, the policy, the server) and build (``out``,
    the metadata to store: only known members, defaults filled in)."""

    meta: Mapping[str, Any]
    policy: Policy
    server: ServerCapabilities
    out: dict[str, Any] = field(default_factory=dict)
    tier: Tier | None = None

    @property
    def client_tier(self) -> Tier:
        assert self.tier is not None, "load_risk_tier must run first"
        return self.tier


def load_risk_tier(r: Registration) -> None:
    """``risk_tier`` (this server's RFC 7591 §2 extension): a defined tier whose controls this server
    implements; the policy's default tier when absent."""
    name = _string(r.meta, "risk_tier", limit=64) or r.policy.default_client_tier
    if name not in r.policy.tiers:
        raise _bad(f"unknown risk_tier; known: {', '.join(r.policy.tiers)}")
    tier = r.policy.tiers[name]
    missing = r.policy.missing_implementation(tier)
    if missing:
        raise _bad(
            f"risk_tier {name} requires {', '.join(sorted(missing))}, which this server does not "
            "implement yet; register the client in another tier"
        )
    r.tier, r.out["risk_tier"] = tier, name


def parse_grant_and_response_types(r: Registration) -> None:
    """RFC 7591 §2: ``grant_types`` (default ``authorization_code``) the server supports, and
    ``response_types`` (only ``code``, RFC 6749 §3.1.1; none without the front channel)."""
    grant_types = _string_list(r.meta, "grant_types") or ["authorization_code"]
    for g in grant_types:
        if g not in r.server.grant_types:
            raise _bad(f"grant_types holds a grant type that is not supported; supported: {', '.join(r.server.grant_types)}")
    r.out["grant_types"] = grant_types
    response_types = _string_list(r.meta, "response_types") or (["code"] if _front_channel(r) else [])
    if any(rt != "code" for rt in response_types):
        raise _bad("only response type 'code' is supported")
    r.out["response_types"] = response_types


def _front_channel(r: Registration) -> bool:
    return "authorization_code" in r.out["grant_types"]


def parse_redirect_uris(r: Registration) -> None:
    """RFC 6749 §3.1.2 / RFC 7591 §2: at least one for the ``authorization_code`` grant, each absolute,
    without fragment (``check_redirect_uri_value``); the tier's https rule is a control (``controls``)."""
    redirect_uris = _string_list(r.meta, "redirect_uris", limit=MAX_REDIRECT_URIS) or []
    if _front_channel(r) and not redirect_uris:
        raise errors.InvalidRedirectUri("redirect_uris is required for the authorization_code grant")
    for uri in redirect_uris:
        check_redirect_uri_value(uri, https_only=False)
    r.out["redirect_uris"] = redirect_uris


def parse_token_endpoint_auth_method(r: Registration) -> None:
    """RFC 7591 §2: a method the server supports (by default the one the tier's controls name, else
    ``client_secret_basic``); RFC 6749 §4.4: a public client cannot use ``client_credentials``."""
    method = _string(r.meta, "token_endpoint_auth_method", limit=64) or str(
        registration_defaults(r.client_tier).get("token_endpoint_auth_method", "client_secret_basic")
    )
    if method not in r.server.auth_methods:
        raise _bad(f"this token_endpoint_auth_method is not supported; supported: {', '.join(r.server.auth_methods)}")
    if method == "none" and "client_credentials" in r.out["grant_types"]:
        raise _bad("public clients (token_endpoint_auth_method none) cannot use client_credentials")
    r.out["token_endpoint_auth_method"] = method


def parse_keys(r: Registration) -> None:
    """RFC 7591 §2: ``jwks_uri`` or ``jwks`` (not both; public keys only); RFC 7523 §2.2: required for
    ``private_key_jwt``."""
    meta, out = r.meta, r.out
    if meta.get("jwks_uri") is not None:
        if meta.get("jwks") is not None:
            raise _bad("jwks_uri and jwks must not both be present (RFC 7591 §2)")
        out["jwks_uri"] = check_reference_uri(
            meta["jwks_uri"], "jwks_uri", loopback=r.server.loopback_references, limit=MAX_URI_LENGTH
        )
    if meta.get("jwks") is not None:
        try:
            jwks = JwkSet.from_dict(meta["jwks"], allow_private=False)
        except JoseError as exc:
            raise _bad(f"jwks: {exc}") from exc
        if not jwks.keys:
            raise _bad("jwks holds no keys")
        out["jwks"] = jwks.public_dict()
    if out["token_endpoint_auth_method"] == "private_key_jwt" and "jwks" not in out and "jwks_uri" not in out:
        raise _bad("jwks or jwks_uri is required for private_key_jwt and signed request objects")


def parse_request_uris(r: Registration) -> None:
    """RFC 9101 §5.2, §10.4 (OIDC Registration §2): ``request_uris`` only when the server fetches request
    objects by reference, never for a client that must push its requests (RFC 9126 §6); https, at most
    ``max_request_uris``, no duplicates."""
    request_uris = r.meta.get("request_uris")
    if request_uris is None:
        return
    if not r.server.request_uris_supported:
        raise _bad("request_uris: this server does not accept request objects by reference")
    if r.meta.get("require_pushed_authorization_requests") is True:
        raise _bad("request_uris cannot be used with require_pushed_authorization_requests: requests must "
                   "be pushed (RFC 9126 §6)")
    if not isinstance(request_uris, list) or len(request_uris) > r.server.max_request_uris:
        raise _bad(f"request_uris must be an array of at most {r.server.max_request_uris} URLs")
    for uri in request_uris:
        check_reference_uri(
            uri, "request_uris", loopback=r.server.loopback_references, limit=MAX_REQUEST_URI_LENGTH,
            fragment=True,
        )
    if len(set(request_uris)) != len(request_uris):
        raise _bad("request_uris contains duplicates")
    if request_uris:
        r.out["request_uris"] = list(request_uris)


def parse_signing_algs(r: Registration) -> None:
    """OIDC Registration §2, JARM §3, RFC 7591 §2: signing algorithms the server supports and the tier
    allows, never ``none``. JARM §3 and OIDC Registration default response and ID token signing to RS256;
    tiers that forbid RS256 default to PS256 instead — always one this server signs with, so that stored
    metadata is always metadata it would accept."""
    tier, server = r.client_tier, r.server
    default_alg = next(
        (a for a in ("RS256", "PS256", *server.signing_algs) if a in server.signing_algs and tier.allows_alg(a)),
        None,
    )
    if default_alg is None:
        raise _bad(f"this server has no signing algorithm that risk_tier {tier.name} allows")
    for name, default in (
        ("request_object_signing_alg", None),
        ("token_endpoint_auth_signing_alg", None),
        ("authorization_signed_response_alg", default_alg),
        ("id_token_signed_response_alg", default_alg),
    ):
        alg = _string(r.meta, name, limit=32)
        if alg is not None:
            if alg.lower() == "none":
                raise _bad(f"{name} must not be 'none'")
            if alg not in server.signing_algs:
                raise _bad(f"this {name} is not supported; supported: {', '.join(server.signing_algs)}")
            if not tier.allows_alg(alg):
                raise _bad(f"risk_tier {tier.name} does not allow {name} {alg}")
        value = alg or default
        if value is not None:
            r.out[name] = value


def parse_encryption(r: Registration) -> None:
    """OIDC Registration §2, JARM §3: ``*_enc`` only with its ``*_alg``; supported algorithms, ``enc``
    defaulting to A128CBC-HS256; JARM encryption needs an encryption key in ``jwks`` (or a ``jwks_uri``)."""
    meta, out = r.meta, r.out
    for alg_name, enc_name in (
        ("request_object_encryption_alg", "request_object_encryption_enc"),
        ("authorization_encrypted_response_alg", "authorization_encrypted_response_enc"),
    ):
        alg = _string(meta, alg_name, limit=32)
        enc = _string(meta, enc_name, limit=32)
        if enc is not None and alg is None:
            raise _bad(f"{enc_name} requires {alg_name} (OIDC Registration §2, JARM §3)")
        if alg is None:
            continue
        if alg not in JWE_ALGS_SUPPORTED:
            raise _bad(f"this {alg_name} is not supported; supported: {', '.join(JWE_ALGS_SUPPORTED)}")
        enc = enc or DEFAULT_JWE_ENC
        if enc not in JWE_ENCS_SUPPORTED:
            raise _bad(f"this {enc_name} is not supported; supported: {', '.join(JWE_ENCS_SUPPORTED)}")
        if alg_name.startswith("authorization") and "jwks_uri" not in out:
            keys = JwkSet.from_dict(out["jwks"]) if "jwks" in out else None
            try:
                if keys is None:
                    raise JoseError("no jwks")
                keys.select_encryption_key(alg)
            except JoseError as exc:
                raise _bad(f"{alg_name} {alg} needs an encryption key (use enc) for it in jwks") from exc
        out[alg_name], out[enc_name] = alg, enc


def parse_request_flags(r: Registration) -> None:
    """RFC 9101 §10.5 ``require_signed_request_object`` and RFC 9126 §6
    ``require_pushed_authorization_requests``: booleans, false when absent."""
    for flag in ("require_signed_request_object", "require_pushed_authorization_requests"):
        r.out[flag] = bool(_bool(r.meta, flag))
    # RFC 9449 §5.2 / RFC 8705 §3.4: the client asks for bound access tokens (kept only when given)
    for flag in BINDING_FLAGS:
        value = _bool(r.meta, flag)
        if value is not None:
            r.out[flag] = value


def parse_response_modes(r: Registration) -> None:
    """OAuth 2.0 Multiple Response Types §2.1 / JARM §3: modes the server supports; the tier's controls
    may fill in a default (JARM's modes)."""
    modes = _string_list(r.meta, "response_modes")
    if modes is not None:
        for m in modes:
            if m not in r.server.response_modes:
                raise _bad(f"response_modes holds a mode that is not supported; supported: {', '.join(r.server.response_modes)}")
    defaults = registration_defaults(r.client_tier)
    if modes is None and "response_modes" in defaults:
        modes = list(defaults["response_modes"])
    if modes is not None:
        r.out["response_modes"] = modes


def check_tier_controls(r: Registration) -> None:
    """Refuse metadata that contradicts a control the client's tier requires (each control's registration
    rule, ``controls.REGISTRY``), and set the flag that declares it (RFC 9101 §10.5, RFC 9126 §6): a
    submitted ``false`` is refused, since the tier will hold every request to the control anyway."""
    tier = r.client_tier
    for entry in required_specs(tier):
        why = f"risk_tier {tier.name} requires control {entry.name}"
        if entry.declared_by is not None:
            if _bool(r.meta, entry.declared_by) is False:
                raise _bad(f"{why}: {entry.declared_by} cannot be false")
            r.out[entry.declared_by] = True
        issue = entry.registration(r.out)
        if issue is not None:
            error = errors.InvalidRedirectUri if entry.registration_error == INVALID_REDIRECT_URI else _bad
            raise error(f"{why}: {issue.text}")


def parse_scope(r: Registration) -> None:
    """RFC 7591 §2: ``scope``, space-separated scopes this server knows (deduplicated)."""
    scope = _string(r.meta, "scope", limit=MAX_STRING)
    if scope is not None:
        unknown = [s for s in scope.split() if s not in r.server.scopes]
        if unknown:
            raise _bad("scope names a scope this server does not know")
        r.out["scope"] = " ".join(dict.fromkeys(scope.split()))


def parse_descriptive_members(r: Registration) -> None:
    """RFC 7591 §2: names, and URLs shown to end users and administrators (only https: no javascript:,
    data:, ...); ``contacts`` are e-mail addresses of people responsible for the client."""
    meta, out = r.meta, r.out
    for name in ("client_name", "owner", "software_id"):
        value = _string(meta, name)
        if value is not None:
            out[name] = value
    for name in ("client_uri", "logo_uri", "policy_uri", "tos_uri"):
        value = _string(meta, name, limit=MAX_URI_LENGTH)
        if value is not None:
            try:
                parts = urlsplit(value)
                https = parts.scheme == "https" and bool(parts.hostname)
            except ValueError:  # e.g. an unbalanced "[" in the authority
                https = False
            if not https or not uri_characters(value):
                raise _bad(f"{name} must be an https URL")
            out[name] = value
    contacts = _string_list(meta, "contacts", limit=20)
    if contacts is not None:
        for contact in contacts:
            if _CONTACT.fullmatch(contact) is None:
                raise _bad("contacts must be e-mail addresses")
        out["contacts"] = contacts


def parse_governance_labels(r: Registration) -> None:
    """This server's governance members (not RFC 7591): ``client_kind`` (by rule when absent) and
    ``resource_server``, which must authenticate (RFC 7662 §2.1) to introspect."""
    kind = _string(r.meta, "client_kind", limit=32)
    if kind is not None:
        if kind not in CLIENT_KINDS:
            raise _bad(f"client_kind must be one of {', '.join(CLIENT_KINDS)}")
        r.out["client_kind"] = kind
    else:
        r.out["client_kind"] = client_kind_by_rule(r.out["grant_types"])
    if _bool(r.meta, "resource_server"):
        if r.out["token_endpoint_auth_method"] == "none":
            raise _bad("a resource_server must authenticate: token_endpoint_auth_method none is not allowed")
        r.out["resource_server"] = True


# Registration (RFC 7591 §2, §3.2.2) as an ordered list of checks: parsing, then the tier's controls, then
# the members no control concerns.
REGISTRATION_STEPS: tuple[Callable[[Registration], None], ...] = (
    load_risk_tier,
    parse_grant_and_response_types,
    parse_redirect_uris,
    parse_token_endpoint_auth_method,
    parse_keys,
    parse_mtls_metadata,
    parse_request_uris,
    parse_signing_algs,
    parse_encryption,
    parse_request_flags,
    parse_response_modes,
    check_tier_controls,
    parse_scope,
    parse_descriptive_members,
    parse_governance_labels,
)


def validate_client_metadata(
    meta: Mapping[str, Any],
    *,
    policy: Policy,
    server: ServerCapabilities,
) -> dict[str, Any]:
    """Validate and normalise client metadata (``REGISTRATION_STEPS``); raise ``invalid_client_metadata``
    / ``invalid_redirect_uri`` (RFC 7591 §3.2.2) at the first problem.

    Returns the metadata to store (only known members, defaults filled in).
    """
    if not isinstance(meta, Mapping):
        raise _bad("client metadata must be a JSON object")
    r = Registration(meta=meta, policy=policy, server=server)
    for step in REGISTRATION_STEPS:
        step(r)
    return r.out


def registration_defaults(tier: Tier) -> dict[str, Any]:
    """The metadata the controls ``tier`` requires fill in when a registration leaves it out."""
    out: dict[str, Any] = {}
    for entry in required_specs(tier):
        out.update(entry.registration_default)
    return out


def client_kind_by_rule(grant_types: Sequence[str]) -> str:
    """The kind a client gets when no administrator chose one: ``machine`` without a front channel (no
    authorization code grant), otherwise ``third-party`` (the conservative default: it is reported)."""
    return "third-party" if "authorization_code" in grant_types else "machine"


def governance_labels(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The effective governance labels of stored (or proposed) metadata: an absent ``client_kind`` is
    ``third-party`` (``Client.client_kind``), an absent ``resource_server`` is ``False``."""
    return {
        "risk_tier": metadata.get("risk_tier"),
        "client_kind": metadata.get("client_kind") or "third-party",
        "owner": metadata.get("owner"),
        "resource_server": False if metadata.get("resource_server") in (None, False) else metadata["resource_server"],
    }


def uses_secret(metadata: Mapping[str, Any]) -> bool:
    return metadata.get("token_endpoint_auth_method") in SECRET_METHODS


def registered_redirect(client: Client, uri: str | None) -> str | None:
    """RFC 6749 §3.1.2.3: exact string match; the only registered URI when none is given."""
    if uri is None:
        return client.redirect_uris[0] if len(client.redirect_uris) == 1 else None
    return uri if uri in client.redirect_uris else None
