"""Authorization responses in every response mode (OAuth 2.0 Multiple Response Types, Form Post, JARM).

Plain modes carry RFC 9207 ``iss``. JWT modes (JARM §2.1) carry everything — ``iss``, ``aud``, ``exp``,
``iat`` and the response or error parameters — inside one signed (and, when the client registered it,
encrypted) JWT, and nothing outside it (FAPI 2.0 MS: ``iss`` only inside the JWT).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..jose import JoseError, encrypt_jwe, sign_jws
from . import errors
from .clients import Client
from .context import Environment
from .errors import RedirectTarget
from .policy import Control, PolicyError, Tier
from .redirect_uris import meets_https_redirect_rule
from .refetch import using_client_keys
from .signing import check_jarm_signing
from .vocabulary import is_jarm


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str


@dataclass(frozen=True, slots=True)
class FormPost:
    """An auto-submitting HTML form POSTing ``fields`` to ``action`` (OAuth 2.0 Form Post Response Mode)."""

    action: str
    fields: Mapping[str, str]


AuthorizationResponse = Redirect | FormPost


def jarm_claims(env: Environment, client_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    now = env.now()
    return {
        "iss": env.issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + env.settings.jarm_lifetime,
        **params,
    }


async def build_jarm(
    env: Environment, client: Client, params: Mapping[str, str], *, tier: Tier | None
) -> tuple[str, dict[str, Any]]:
    """Sign the response parameters as a JARM JWT with the client's registered algorithm (JARM §2.2, §3),
    then, when the client registered ``authorization_encrypted_response_alg``, encrypt the signed JWT to the
    client's encryption key (a Nested JWT, ``cty: JWT``).

    ``tier``: the request's effective tier; a registered algorithm it forbids (or a missing encryption it
    requires) is refused (``signing.check_jarm_signing``), never signed. ``None`` only when no request
    tier exists (nothing was validated).
    """
    if tier is not None:
        check_jarm_signing(client, tier)
    alg = client.authorization_signed_response_alg
    key = env.keys.signing_key(alg)
    token = sign_jws(jarm_claims(env, client.client_id, params), key, alg)
    evidence: dict[str, Any] = {"signed": True, "alg": alg, "kid": key.kid, "encrypted": False}
    if client.authorization_encryption is not None:
        enc_alg, enc = client.authorization_encryption
        recipient = await using_client_keys(  # any key refusal: the client may have replaced its key
            env, client, lambda keys: keys.select_encryption_key(enc_alg),
            refetch_on=lambda exc: isinstance(exc, JoseError),
        )
        token = encrypt_jwe(token, recipient, enc_alg, enc, cty="JWT")
        evidence.update(encrypted=True, enc_alg=enc_alg, enc=enc, enc_kid=recipient.kid)
    return token, {"jarm": evidence}


def check_code_response(env: Environment, client: Client, tier_name: str, response_mode: str) -> Tier:
    """Before a code is issued: the request's tier is still defined and the response that will carry the code
    satisfies it (``signing.check_jarm_signing``) with the client's registration as it is now — the client
    may have changed it (RFC 7592) since the request was validated. Returns the tier for ``render``."""
    try:
        tier = env.policy.tier(tier_name)
    except PolicyError as exc:
        raise errors.UnauthorizedClient("the request's risk tier is not defined by the current policy") from exc
    if is_jarm(response_mode):
        check_jarm_signing(client, tier)
    return tier


def _append(uri: str, sep: str, params: Mapping[str, str]) -> str:
    if sep == "?":
        joiner = "&" if "?" in uri else "?"
        return uri + joiner + urlencode(params)
    return uri + "#" + urlencode(params)


async def render(
    env: Environment,
    client: Client | None,
    target: RedirectTarget,
    params: Mapping[str, str],
    *,
    tier: Tier | None,
) -> tuple[AuthorizationResponse, dict[str, Any]]:
    """Encode ``params`` for ``target`` in its response mode; returns the response and what was applied.

    ``tier``: the effective tier of the request the response belongs to (``build_jarm``)."""
    mode = target.response_mode
    body: dict[str, str] = dict(params)
    if target.state is not None:
        body["state"] = target.state
    evidence: dict[str, Any]
    if is_jarm(mode):
        if client is None:
            raise RuntimeError("JARM needs the client record")
        token, evidence = await build_jarm(env, client, body, tier=tier)
        body = {"response": token}
        evidence["iss_emitted"] = "jwt"
    else:
        body["iss"] = env.issuer  # RFC 9207 §2
        evidence = {"iss_emitted": "parameter"}
    if mode in ("query", "query.jwt"):
        return Redirect(_append(target.redirect_uri, "?", body)), evidence
    if mode in ("fragment", "fragment.jwt"):
        return Redirect(_append(target.redirect_uri, "#", body)), evidence
    if mode in ("form_post", "form_post.jwt"):
        return FormPost(target.redirect_uri, body), evidence
    raise RuntimeError(f"unresolved response mode {mode!r}")


def target_allowed(client: Client | None, target: RedirectTarget, tier: Tier | None) -> bool:
    """Whether a response to ``target`` can satisfy ``tier``: an error response is a response too. A redirect
    URI the tier forbids (``https_redirect_uris``) or a JARM response the tier forbids (its algorithm, a
    missing encryption) is not produced, even to carry an error (RFC 6749 §4.1.2.1 allows the error page)."""
    if tier is None:
        return True
    if tier.requires(Control.HTTPS_REDIRECT_URIS) and not meets_https_redirect_rule(target.redirect_uri):
        return False
    if is_jarm(target.response_mode) and client is not None:
        try:
            check_jarm_signing(client, tier)
        except errors.OAuthError:
            return False
    return True


async def error_response(
    env: Environment, client: Client | None, err: errors.OAuthError, *, tier: Tier | None
) -> tuple[AuthorizationResponse, dict[str, Any]] | None:
    """The redirect carrying ``err`` when it has a verified target, else ``None`` (show an error page).

    ``tier``: the tier the request runs under as far as it is known (``AuthorizationState.response_tier``):
    when the redirect would break one of its rules (``target_allowed``), the error goes to the page."""
    if err.target is None:
        return None
    params = {"error": err.error}
    if err.description:
        params["error_description"] = err.description
    if is_jarm(err.target.response_mode) and client is None:
        return None
    if not target_allowed(client, err.target, tier):
        return None
    try:
        return await render(env, client, err.target, params, tier=tier)
    except JoseError:
        return None  # the client's encryption key is unusable: show the error page instead
