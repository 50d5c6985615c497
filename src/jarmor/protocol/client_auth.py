"""Client authentication at the token, PAR, revocation and introspection endpoints.

RFC 6749 §2.3 (one method per request), §2.3.1 (client_secret_basic / _post); RFC 7523 §3 and OIDC Core §9
(``private_key_jwt``); RFC 9126 §2 (PAR accepts the issuer, token endpoint or PAR endpoint as audience);
FAPI 2.0 §5.3.2.1-8 (high tiers: the issuer, as a string, only); RFC 8705 §2 (``tls_client_auth`` and
``self_signed_tls_client_auth``: the certificate of the connection, checked in ``mtls.py``).

Authentication runs before the request's scopes are known (PAR, token endpoint), so it can only apply the
client's own tier. Once the effective tier is known (a scope may raise it), ``check_authentication_for_tier``
holds the evidence gathered here — method, assertion algorithm, audience form — to that tier's rules.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from ..jose import JoseError, peek_claims, verify_jws
from . import errors
from .clients import Client
from .context import Environment
from .mtls import MTLS_METHODS, TLS_CLIENT_AUTH, ClientCertificate, check_self_signed, check_tls_client_auth
from .policy import Control, Tier
from .refetch import using_client_keys
from .vocabulary import CLIENT_ASSERTION_TYPE, REQUEST_OBJECT_TYP

# typ values an assertion may carry; a request object (oauth-authz-req+jwt) is refused (RFC 9101 §10.8).
_ASSERTION_TYP = ("JWT", "client-authentication+jwt")
# Claims only an authorization request carries. A request object travels through the browser: one signed
# without typ but with sub = client_id must not authenticate its client (RFC 9101 §10.8, attack catalog A21).
_AUTHORIZATION_REQUEST_CLAIMS = frozenset(
    {"response_type", "redirect_uri", "code_challenge", "code_challenge_method", "response_mode", "request",
     "request_uri"}
)


# The form of a verified assertion's ``aud``: the issuer as a string (all FAPI 2.0 accepts), one of this
# server's endpoint URLs as a string, or an array (RFC 7523 §3 (3)).
AUD_ISSUER, AUD_ENDPOINT, AUD_ARRAY = "issuer", "endpoint", "array"


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """Who authenticated, how, and (for ``private_key_jwt``) the verified assertion's ``alg`` and ``aud`` form:
    typed facts ``check_authentication_for_tier`` decides on; ``evidence`` is what flow records show."""

    client: Client
    method: str
    evidence: dict[str, Any]
    alg: str | None = None
    audience: str | None = None


def _fail(message: str, *, basic: bool = False) -> errors.OAuthError:
    err = errors.InvalidClient(message)
    if basic:
        err.www_authenticate = 'Basic realm="jarmor"'
    return err


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise errors.InvalidRequest("unsupported Authorization scheme")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise _fail("malformed Basic credentials", basic=True) from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise _fail("malformed Basic credentials", basic=True)
    return unquote_plus(user), unquote_plus(password)


def basic_client_id(header: str) -> str | None:
    """The client an HTTP Basic ``Authorization`` header names, unverified (``None`` if malformed)."""
    try:
        return _basic_credentials(header)[0][:256]
    except errors.OAuthError:
        return None


async def _load(env: Environment, client_id: str, *, basic: bool = False) -> Client:
    if not client_id or len(client_id) > 256:
        raise _fail("unknown client", basic=basic)
    client = await env.clients.get(client_id)
    if client is None:
        raise _fail("unknown client", basic=basic)
    if client.disabled:
        raise _fail("client is disabled", basic=basic)
    return client


def _audiences(env: Environment, endpoint: str, strict: bool) -> tuple[set[str], bool]:
    """Accepted audience values and whether an array is acceptable."""
    if strict:
        return {env.issuer}, False
    accepted = {env.issuer, env.endpoints.token}
    if endpoint == "par":
        accepted.add(env.endpoints.par)
    elif endpoint in ("revocation", "introspection"):
        accepted.add(getattr(env.endpoints, endpoint))
    return accepted, True


async def authenticate_client(
    env: Environment,
    form: Mapping[str, str],
    authorization: str | None,
    *,
    endpoint: str,
    certificate: ClientCertificate | None = None,
) -> AuthenticatedClient:
    """Authenticate the client of a back-channel request; raise ``invalid_client`` (401) on failure.

    ``certificate``: the client certificate of this connection (RFC 8705), when the adapter has one."""
    assertion = form.get("client_assertion")
    secret = form.get("client_secret")
    methods = [m for m, present in (
        ("private_key_jwt", assertion is not None),
        ("client_secret_basic", authorization is not None),
        ("client_secret_post", secret is not None),
    ) if present]
    if len(methods) > 1:
        raise errors.InvalidRequest("use exactly one client authentication method (RFC 6749 §2.3)")
    form_client_id = form.get("client_id")

    if assertion is not None:
        return await _private_key_jwt(env, form, assertion, endpoint)
    if authorization is not None:
        user, password = _basic_credentials(authorization)
        if form_client_id is not None and form_client_id != user:
            raise _fail("client_id does not match the authenticated client", basic=True)
        client = await _load(env, user, basic=True)
        if client.token_endpoint_auth_method != "client_secret_basic" or not client.verify_secret(password):
            raise _fail("client authentication failed", basic=True)
        return AuthenticatedClient(client, "client_secret_basic", {"method": "client_secret_basic"})
    if secret is not None:
        client = await _load(env, form_client_id or "")
        if client.token_endpoint_auth_method != "client_secret_post" or not client.verify_secret(secret):
            raise _fail("client authentication failed")
        return AuthenticatedClient(client, "client_secret_post", {"method": "client_secret_post"})
    if form_client_id is None:
        raise _fail("client authentication is required")
    client = await _load(env, form_client_id)
    if client.token_endpoint_auth_method in MTLS_METHODS and env.mtls:
        return await _mutual_tls(env, client, certificate)
    if client.token_endpoint_auth_method != "none":
        raise _fail("client authentication is required")
    return AuthenticatedClient(client, "none", {"method": "none"})


async def _mutual_tls(env: Environment, client: Client, certificate: ClientCertificate | None) -> AuthenticatedClient:
    """RFC 8705 §2: the client named by ``client_id`` authenticates with the certificate of the connection;
    §2.1 (``tls_client_auth``) against its registered subject, §2.2 (``self_signed_tls_client_auth``) against
    its registered keys (one refetch of a ``jwks_uri`` when the key is not in the cached set)."""
    method = client.token_endpoint_auth_method
    if certificate is None:
        raise _fail("a client certificate is required (RFC 8705 §2)")
    now = env.now()
    if method == TLS_CLIENT_AUTH:
        check_tls_client_auth(client.metadata, certificate, now)
    else:  # a key missing from a cached jwks_uri copy may be a rotation: one refetch (refetch.py)
        await using_client_keys(env, client, lambda keys: check_self_signed(certificate, keys, now),
                                refetch_on=lambda _exc: client.jwks_uri is not None)
    return AuthenticatedClient(client, method, {"method": method, "x5t#S256": certificate.thumbprint})


def _check_assertion_type(form: Mapping[str, str]) -> None:
    """RFC 7523 §2.2: ``client_assertion_type`` names the JWT bearer assertion type."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise _fail("client_assertion_type must be " + CLIENT_ASSERTION_TYPE)


def _claimed_client_id(form: Mapping[str, str], assertion: str) -> str:
    """RFC 7523 §3 (2): the (still unverified) ``sub`` names the client; a ``client_id`` in the form must
    agree with it (RFC 7521 §4.2)."""
    try:
        unverified = peek_claims(assertion)
    except JoseError as exc:
        raise _fail("malformed client assertion") from exc
    client_id = unverified.get("sub")
    if not isinstance(client_id, str):
        raise _fail("client assertion sub must be the client_id")
    form_client_id = form.get("client_id")
    if form_client_id is not None and form_client_id != client_id:
        raise _fail("client_id does not match the client assertion")
    return client_id


async def _verified_assertion(
    env: Environment, client: Client, assertion: str, tier: Tier
) -> tuple[dict[str, Any], dict[str, Any]]:
    """RFC 7523 §3 (9): the signature, by a registered key, with the client's registered algorithm or one the
    client's tier allows; RFC 9101 §10.8: never a request object."""
    algs = (
        (client.token_endpoint_auth_signing_alg,)
        if client.token_endpoint_auth_signing_alg
        else tuple(a for a in env.keys.signing_algs() if tier.allows_alg(a))
    )
    try:  # a rotated key is worth one refetch (refetch.py)
        claims, header = await using_client_keys(env, client, lambda keys: _verify(assertion, keys, algs))
    except JoseError as exc:
        raise _fail(f"client assertion refused: {exc}") from exc
    if _AUTHORIZATION_REQUEST_CLAIMS & set(claims):
        raise _fail("a request object cannot be used as a client assertion")
    return claims, header


def _check_issuer_and_subject(claims: Mapping[str, Any], client_id: str) -> None:
    """RFC 7523 §3 (1), (2): ``iss`` and ``sub`` are both the client_id."""
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise _fail("client assertion iss and sub must both be the client_id")


def _check_audience(env: Environment, claims: Mapping[str, Any], endpoint: str, tier: Tier) -> str:
    """RFC 7523 §3 (3): ``aud`` identifies this server; FAPI 2.0 §5.3.2.1-8: the issuer as a string only when
    the tier demands it. Returns the form of the audience (``AUD_*``)."""
    accepted, array_ok = _audiences(env, endpoint, tier.issuer_only_audience)
    aud = claims.get("aud")
    audience = AUD_ARRAY
    if isinstance(aud, str):
        aud_ok = aud in accepted
        audience = AUD_ISSUER if aud == env.issuer else AUD_ENDPOINT
    elif isinstance(aud, list) and array_ok:
        aud_ok = len(aud) <= 10 and any(isinstance(a, str) and a in accepted for a in aud)
    else:
        aud_ok = False
    if not aud_ok:
        raise _fail("client assertion aud does not identify this server")
    return audience


def _check_times(env: Environment, claims: Mapping[str, Any]) -> float:
    """RFC 7523 §3 (4), (5), (6): ``exp`` present and not past, a bounded lifetime; ``iat`` / ``nbf``, when
    present, numbers not in the future (with ``future_skew``). Returns ``exp``."""
    now = env.now()
    skew = env.settings.future_skew
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise _fail("client assertion exp is missing")
    if now > exp + skew:
        raise _fail("client assertion has expired")
    if exp - now > env.settings.client_assertion_max_lifetime:
        raise _fail("client assertion lifetime is too long")
    for name in ("iat", "nbf"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(f"client assertion {name} must be a number")
        if value > now + skew:
            raise _fail(f"client assertion {name} is in the future")
    return float(exp)


async def _mark_jti(env: Environment, claims: Mapping[str, Any], client_id: str, exp: float) -> None:
    """RFC 7523 §3 (7): ``jti`` used once, counted atomically in the shared store. Called only once everything
    else passed: an invalid assertion leaves no trace."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _fail("client assertion jti is missing")
    ttl = int(exp - env.now()) + env.settings.future_skew + 1
    if not await env.store.ephemeral.add_once("assertion-jti", f"{client_id}\x00{jti}", max(ttl, 1)):
        raise _fail("client assertion jti has already been used")


async def _private_key_jwt(
    env: Environment, form: Mapping[str, str], assertion: str, endpoint: str
) -> AuthenticatedClient:
    """RFC 7523 §3 / OIDC Core §9, as the list of checks above."""
    _check_assertion_type(form)
    client_id = _claimed_client_id(form, assertion)
    client = await _load(env, client_id)
    if client.token_endpoint_auth_method != "private_key_jwt":
        raise _fail("client is not registered for private_key_jwt")
    tier = env.policy.tier(client.risk_tier)  # the scopes are not known yet: check_authentication_for_tier
    claims, header = await _verified_assertion(env, client, assertion, tier)
    _check_issuer_and_subject(claims, client_id)
    audience = _check_audience(env, claims, endpoint, tier)
    exp = _check_times(env, claims)
    await _mark_jti(env, claims, client_id, exp)
    alg = str(header.get("alg"))  # verified: one of the allowed algorithms
    return AuthenticatedClient(
        client,
        "private_key_jwt",
        {"method": "private_key_jwt", "alg": alg, "kid": header.get("kid"), "aud": audience},
        alg=alg,
        audience=audience,
    )


def check_authentication_for_tier(auth: AuthenticatedClient, tier: Tier) -> None:
    """The effective tier's client authentication rules, applied to how the client did authenticate.

    ``private_key_jwt`` when the tier requires it (RFC 7523 §2.2, FAPI 2.0 §5.3.2.1-4); the assertion signed
    with an algorithm in the tier's allowlist (FAPI 2.0 §5.4.1: PS256, ES256 or EdDSA); its ``aud`` the issuer
    as a string when the tier demands it (FAPI 2.0 §5.3.2.1-8, ``Tier.issuer_only_audience``). Raises
    ``invalid_client`` (RFC 6749 §5.2: the authentication does not satisfy what this request needs).
    """
    if tier.requires(Control.PRIVATE_KEY_JWT) and auth.method != "private_key_jwt":
        raise errors.InvalidClient(
            f"tier {tier.name} requires control {Control.PRIVATE_KEY_JWT.value} for client authentication"
        )
    if auth.method != "private_key_jwt":
        return
    if auth.alg is None or not tier.allows_alg(auth.alg):
        raise errors.InvalidClient(
            f"tier {tier.name} does not allow client assertions signed with {auth.alg}; "
            f"allowed: {', '.join(tier.signing_algs)}"
        )
    if tier.issuer_only_audience and auth.audience != AUD_ISSUER:
        raise errors.InvalidClient(
            f"tier {tier.name} requires the client assertion aud to be the issuer identifier as a single string"
        )


def _verify(assertion: str, keys: Any, algs: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    verified = verify_jws(assertion, keys, algorithms=algs, typ=_ASSERTION_TYP)
    typ = verified.header.get("typ")
    if isinstance(typ, str) and typ.lower().endswith(REQUEST_OBJECT_TYP):
        raise _fail("a request object cannot be used as a client assertion")
    return verified.claims, verified.header
