"""Authorization codes and the token endpoint (RFC 6749 §4.1.3, §5, §6; RFC 7636 §4.6; OIDC Core §3.1.3).

Codes are single-use and short-lived (their lifetime comes from the request's risk tier). A code presented
twice is refused and everything issued from it is revoked (RFC 6749 §4.1.2). Access tokens are opaque
256-bit random strings (stored only as SHA-256 digests); refresh tokens rotate on every use and a reused
refresh token revokes its whole grant.

The effective tier of the authorization request travels with what it produced: in the code record, then in
every access and refresh token record (``extra["tier"]``). The token endpoint authenticates the client
before it knows that tier, so it holds the authentication to it afterwards (``grant_tier``,
``check_authentication_for_tier``), and takes the code's and tokens' lifetimes and the ID token's algorithm
from it — for a refresh too, from the grant's tier.

Writes, per request: the code is consumed and its "used" mark left in one atomic step of the short-lived store
(``take_and_mark``; committed even when a later check fails, so a failed attempt still uses the code up);
what is issued — the grant, its tokens, the client's ``last_used_at`` (a refresh: the rotation and the new
access token) — is one durable transaction (``Store.transaction``): one commit, all or nothing, so a failure
leaves no grant without its tokens and answers ``server_error`` / ``temporarily_unavailable``. The standing
re-check (``protocol/standing.py``) reads after that commit, never inside it: its argument needs what was
issued to be visible to a concurrent offboarding before the check.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson

from ..jose import b64url_encode, sign_jws
from ..store.base import GrantRecord, TokenRecord
from . import errors
from .access_tokens import jwt_access_token
from .authorization import AuthorizationRequest
from .binding import TokenBinding, binding_from_cnf, cnf
from .client_auth import AuthenticatedClient, authenticate_client, check_authentication_for_tier
from .clients import Client
from .context import Environment
from .mtls import ClientCertificate, check_refresh_binding
from .policy import PolicyError, Tier
from .sender import Presented, check_sender_constraint
from .signing import check_id_token_signing
from .standing import confirm_code, confirm_tokens

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
CODE_USED_TTL = 3600


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def new_token() -> str:
    """256 bits from the OS CSPRNG (FAPI 2.0 §5.4.1-4 asks for at least 128)."""
    return secrets.token_urlsafe(32)


@dataclass(slots=True)
class IssuedCode:
    code: str
    grant_id: str


async def issue_code(
    env: Environment,
    req: AuthorizationRequest,
    *,
    subject: str,
    auth_time: int,
    flow_id: str,
    acr: str | None = None,
    amr: list[str] | None = None,
) -> IssuedCode:
    """Store a single-use code bound to the client, redirect URI, PKCE challenge and subject, with how the
    user authenticated (``acr``, ``amr``, ``auth_time``: the ID token and the tokens carry them)."""
    code = new_token()
    grant_id = secrets.token_hex(16)  # also a CLI argument (`jarmor review revoke GRANT_ID`): no leading '-'
    tier = env.policy.tier(req.tier)
    record = {
        "client_id": req.client_id,
        "redirect_uri": req.redirect_uri,
        "code_challenge": req.code_challenge,
        "scope": " ".join(req.scope),
        "subject": subject,
        "nonce": req.nonce,
        "auth_time": auth_time,
        "acr": acr,
        "amr": list(amr or ()),
        "tier": req.tier,
        "tier_reasons": list(req.tier_reasons),
        "grant_id": grant_id,
        "flow_id": flow_id,
        "issued_at": env.now(),
        "dpop_jkt": req.dpop_jkt,  # RFC 9449 §10: the key the code is bound to
    }
    await env.store.ephemeral.put("code", token_hash(code), orjson.dumps(record), tier.code_lifetime)
    await confirm_code(env, client_id=req.client_id, subject=subject, code_key=token_hash(code))
    return IssuedCode(code=code, grant_id=grant_id)


@dataclass(slots=True)
class TokenResult:
    body: dict[str, Any]
    client: Client
    grant_type: str
    flow_id: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    grant_id: str | None = None
    subject: str | None = None
    dpop_nonce: str | None = None  # RFC 9449 §8.2: the next nonce, sent in ``DPoP-Nonce``


def _pkce_ok(verifier: str | None, challenge: str) -> bool:
    if verifier is None or _VERIFIER.fullmatch(verifier) is None:
        return False
    digest = b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())
    return hmac.compare_digest(digest, challenge)


def authentication_claims(record: Mapping[str, Any]) -> dict[str, Any]:
    """OIDC Core §2 ``auth_time``, ``acr`` and ``amr`` (RFC 8176) of a code record or a token's ``extra``,
    those that are set: what the ID token, the tokens' records and introspection carry."""
    out: dict[str, Any] = {}
    if isinstance(record.get("auth_time"), int):
        out["auth_time"] = record["auth_time"]
    if isinstance(record.get("acr"), str):
        out["acr"] = record["acr"]
    if record.get("amr"):
        out["amr"] = [str(a) for a in record["amr"]]
    return out


def id_token(
    env: Environment, client: Client, *, tier: Tier, subject: str, nonce: str | None,
    authentication: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """OIDC Core §2 / §3.1.3.3 (with ``authentication_claims``: ``auth_time``, ``acr``, ``amr``), signed with the client's registered algorithm, which ``tier`` must allow
    (``signing.check_id_token_signing``; the token endpoint checks it before minting anything). Returns the
    token and what was applied (flow records)."""
    check_id_token_signing(client, tier)
    now = env.now()
    claims: dict[str, Any] = {
        "iss": env.issuer,
        "sub": subject,
        "aud": client.client_id,
        "iat": now,
        "exp": now + env.settings.id_token_lifetime,
    }
    claims.update(authentication_claims(authentication))
    if nonce is not None:
        claims["nonce"] = nonce
    alg = client.id_token_signed_response_alg
    key = env.keys.signing_key(alg)
    return sign_jws(claims, key, alg), {"alg": alg, "kid": key.kid}


def _bound_extra(tier: Tier, binding: TokenBinding | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"tier": tier.name}
    if binding is not None:
        extra["cnf"] = cnf(binding)
    return extra


async def _mint(
    env: Environment,
    auth: AuthenticatedClient,
    *,
    subject: str | None,
    scope: str,
    grant_id: str | None,
    tier: Tier,
    refresh: bool,
    binding: TokenBinding | None = None,
    authentication: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[TokenRecord]]:
    """RFC 6749 §5.1; RFC 9449 §5 (``token_type`` ``DPoP``, the access token bound to the proof key, a public
    client's refresh token too); RFC 8705 §3 (certificate-bound access tokens stay ``Bearer``); the records keep
    how the user authenticated (``authentication_claims``: introspection, refresh, RFC 9470)."""
    now = env.now()
    claims = authentication_claims(authentication or {})
    client = auth.client
    access = jwt_access_token(env, client, tier, subject=subject, scope=scope, now=now, binding=binding,
                              authentication=claims) or new_token()
    records = [
        TokenRecord(
            token_hash=token_hash(access), kind="access_token", client_id=client.client_id, subject=subject,
            scope=scope, grant_id=grant_id, created_at=now, expires_at=now + tier.access_token_lifetime,
            extra={**_bound_extra(tier, binding), **claims},
        )
    ]
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "DPoP" if binding is not None and binding.method == "dpop" else "Bearer",
        "expires_in": tier.access_token_lifetime,
        "scope": scope,
    }
    if refresh:
        rt = new_token()
        public_binding = binding if auth.method == "none" else None  # confidential: bound to the client
        records.append(
            TokenRecord(
                token_hash=token_hash(rt), kind="refresh_token", client_id=client.client_id, subject=subject,
                scope=scope, grant_id=grant_id, created_at=now, expires_at=now + tier.refresh_token_lifetime,
                extra={**_bound_extra(tier, public_binding), **claims},
            )
        )
        body["refresh_token"] = rt
    return body, records


def grant_tier(
    env: Environment, recorded: str | None, client: Client, scope: str, recorded_reasons: list[str] | None = None
) -> tuple[Tier, list[str]]:
    """The tier a code redemption or refresh runs under, and why: the effective tier recorded when the request
    was authorized — or, when the client's tier or the policy has since become stricter, the tier the client
    and the grant's scopes get now. Never weaker than either (a tier since removed from the policy is ignored).
    """
    try:
        current = env.policy.effective(client.risk_tier, scope.split())
    except PolicyError as exc:
        raise errors.UnauthorizedClient("the client's risk tier is not defined by the current policy") from exc
    try:
        then = env.policy.tier(recorded) if recorded else None
    except PolicyError:
        then = None
    if then is not None and then.rank >= current.tier.rank:
        return then, list(recorded_reasons or ()) or [f"tier {then.name} recorded with the grant"]
    return current.tier, current.reasons()


def _lifetimes(tier: Tier, refresh: bool) -> dict[str, int]:
    out = {"access_token": tier.access_token_lifetime}
    if refresh:
        out["refresh_token"] = tier.refresh_token_lifetime
    return out



def _refresh_jkt(old: TokenRecord) -> str | None:
    """RFC 9449 §5: the key a public client's refresh token is bound to (None: not bound)."""
    bound = binding_from_cnf(old.extra.get("cnf"))
    return bound.thumbprint if bound is not None and bound.method == "dpop" else None


def _refresh_x5t(old: TokenRecord) -> str | None:
    """RFC 8705 §4: the certificate a public client's refresh token is bound to (None: not bound)."""
    bound = binding_from_cnf(old.extra.get("cnf"))
    return bound.thumbprint if bound is not None and bound.method == "mtls" else None


async def check_subject_enabled(env: Environment, subject: str | None) -> None:
    """A code whose user was disabled or removed since sign-in (``jarmor users disable | remove``) is
    refused: the grant would otherwise be created after the account's grants were revoked (RFC 6749
    §5.2 ``invalid_grant``: the authorization grant is revoked). A subject with no account record
    (auto-approve) is not an account to check."""
    if subject is None:
        return
    user = await env.store.users.get(subject)
    if user is not None and user.disabled:
        raise errors.InvalidGrant("authorization code is invalid or expired")

async def _refuse_unavailable_code(env: Environment, key: str, evidence: dict[str, Any]) -> NoReturn:
    """RFC 6749 §4.1.2: a code used twice revokes what it issued; an unknown or expired one is refused."""
    used = await env.store.ephemeral.get("code-used", key)
    if used is not None:
        replayed, _, flow_id = used.decode().partition("\x00")
        evidence.update(flow_id=flow_id or None, replay=True)
        # Mark first, then revoke: a concurrent winner that stores its tokens after our revoke_grant
        # sees the mark (it checks after storing) and revokes them itself.
        await env.store.ephemeral.put("grant-revoked", replayed, b"1", CODE_USED_TTL)
        await env.store.tokens.revoke_grant(replayed, env.now())
        await env.store.grants.revoke(replayed, env.now(), "authorization code replayed")
        raise errors.InvalidGrant("authorization code has already been used; its tokens are revoked")
    raise errors.InvalidGrant("authorization code is invalid or expired")


async def load_code(env: Environment, form: Mapping[str, str], evidence: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Read (without consuming) the code's record: its key and what it was issued for."""
    code = form.get("code")
    if not code:
        raise errors.InvalidRequest("code is required")
    if len(code) > 256:
        raise errors.InvalidGrant("authorization code is invalid or expired")
    key = token_hash(code)
    raw = await env.store.ephemeral.get("code", key)
    if raw is None:
        await _refuse_unavailable_code(env, key, evidence)
    record: dict[str, Any] = orjson.loads(raw)
    evidence.update(
        flow_id=record.get("flow_id"), subject=record["subject"], scope=record["scope"], tier=record["tier"],
        tier_reasons=record.get("tier_reasons") or [],
    )
    return key, record


async def consume_code(env: Environment, key: str, record: Mapping[str, Any], evidence: dict[str, Any]) -> None:
    """RFC 6749 §4.1.2: single use — exactly one of any number of concurrent redemptions takes the code, and
    the "used" mark takes its place in the same atomic step, so a replay always finds one or the other."""
    used_value = f"{record['grant_id']}\x00{record.get('flow_id') or ''}"
    if await env.store.ephemeral.take_and_mark("code", key, "code-used", used_value.encode(), CODE_USED_TTL) is None:
        await _refuse_unavailable_code(env, key, evidence)


def check_code_matches(record: Mapping[str, Any], client: Client, form: Mapping[str, str]) -> None:
    """RFC 6749 §4.1.3 (the same client and ``redirect_uri``) and RFC 7636 §4.6 (the PKCE verifier)."""
    if record["client_id"] != client.client_id:
        raise errors.InvalidGrant("authorization code was issued to another client")
    if form.get("redirect_uri") != record["redirect_uri"]:
        raise errors.InvalidGrant("redirect_uri does not match the authorization request")
    if not _pkce_ok(form.get("code_verifier"), record["code_challenge"]):
        raise errors.InvalidGrant("PKCE verification failed (code_verifier)")


def check_code_age(env: Environment, record: Mapping[str, Any], tier: Tier) -> None:
    """The store expires a code after its request's tier's lifetime; a stricter tier since is held here."""
    issued_at = record.get("issued_at")
    if isinstance(issued_at, int) and env.now() - issued_at > tier.code_lifetime:
        raise errors.InvalidGrant("authorization code is invalid or expired")


def _grant(env: Environment, client: Client, record: Mapping[str, Any], grant_id: str) -> GrantRecord:
    return GrantRecord(
        grant_id=grant_id, client_id=client.client_id, subject=record["subject"], scope=record["scope"],
        created_at=env.now(), granted_by=record["subject"],
    )


async def _revoke_if_replayed(env: Environment, grant_id: str) -> None:
    """The code was replayed while this redemption was in flight: this request still won the code (exactly
    one redemption succeeds), but what it issued is revoked at once (RFC 6749 §4.1.2)."""
    if await env.store.ephemeral.get("grant-revoked", grant_id) is not None:
        await env.store.tokens.revoke_grant(grant_id, env.now())
        await env.store.grants.revoke(grant_id, env.now(), "authorization code replayed")


async def _authorization_code(
    env: Environment, form: Mapping[str, str], auth: AuthenticatedClient, evidence: dict[str, Any],
    presented: Presented,
) -> TokenResult:
    client = auth.client
    if "authorization_code" not in client.grant_types:
        raise errors.UnauthorizedClient("client is not registered for the authorization_code grant")
    key, record = await load_code(env, form, evidence)
    tier, reasons = grant_tier(env, record["tier"], client, record["scope"], record.get("tier_reasons"))
    sender = None
    if record["client_id"] == client.client_id:  # before consuming: a nonce retry or the right key still works
        sender = await check_sender_constraint(env, presented, client=client, tier=tier,
                                               bound_jkt=record.get("dpop_jkt"), evidence=evidence)
    await consume_code(env, key, record, evidence)
    check_code_matches(record, client, form)
    assert sender is not None
    evidence.update(tier=tier.name, tier_reasons=reasons)
    check_code_age(env, record, tier)
    check_authentication_for_tier(auth, tier)
    await check_subject_enabled(env, record["subject"])
    openid = "openid" in str(record["scope"]).split()
    if openid:
        check_id_token_signing(client, tier)  # before anything is minted
    grant_id: str = record["grant_id"]
    body, tokens = await _mint(env, auth, subject=record["subject"], scope=record["scope"], grant_id=grant_id,
                               tier=tier, refresh="refresh_token" in client.grant_types, binding=sender.binding,
                               authentication=record)
    async with env.store.transaction() as tx:  # the grant and its tokens: one commit, all or nothing
        await tx.create_grant(_grant(env, client, record, grant_id))
        for rec in tokens:
            await tx.create_token(rec)
        await tx.touch_client(client.client_id, env.now())  # inventory: last used
    await _revoke_if_replayed(env, grant_id)
    result_evidence: dict[str, Any] = {
        "code_redeemed_at": env.now(), "tokens": [r.kind for r in tokens], "client_auth": auth.evidence,
        "lifetimes": _lifetimes(tier, any(r.kind == "refresh_token" for r in tokens)),
    }
    if openid:
        body["id_token"], result_evidence["id_token"] = id_token(
            env, client, tier=tier, subject=record["subject"], nonce=record.get("nonce"), authentication=record,
        )
    return TokenResult(body=body, client=client, grant_type="authorization_code", flow_id=record.get("flow_id"),
                       grant_id=grant_id, subject=record["subject"], evidence=result_evidence,
                       dpop_nonce=sender.nonce)


async def _refresh_token(
    env: Environment, form: Mapping[str, str], auth: AuthenticatedClient, evidence: dict[str, Any],
    presented: Presented,
) -> TokenResult:
    client = auth.client
    if "refresh_token" not in client.grant_types:
        raise errors.UnauthorizedClient("client is not registered for the refresh_token grant")
    given = form.get("refresh_token")
    if not given or len(given) > 256:
        raise errors.InvalidRequest("refresh_token is required")
    now = env.now()
    old = await env.store.tokens.get(token_hash(given))
    if old is None or old.kind != "refresh_token" or old.client_id != client.client_id:
        raise errors.InvalidGrant("refresh token is invalid")
    if old.rotated_to is not None and old.grant_id:
        # RFC 9700 §4.14.2: reuse of a rotated refresh token revokes the grant.
        await env.store.tokens.revoke_grant(old.grant_id, now)
        await env.store.grants.revoke(old.grant_id, now, "refresh token reused")
        raise errors.InvalidGrant("refresh token has already been used; the grant is revoked")
    if old.revoked_at is not None or old.expires_at <= now:
        raise errors.InvalidGrant("refresh token is revoked or expired")
    recorded = old.extra.get("tier")
    tier, reasons = grant_tier(env, recorded if isinstance(recorded, str) else None, client, old.scope)
    evidence.update(subject=old.subject, scope=old.scope, tier=tier.name, tier_reasons=reasons)
    check_authentication_for_tier(auth, tier)
    check_refresh_binding(_refresh_x5t(old), presented.client_certificate_thumbprint)
    sender = await check_sender_constraint(env, presented, client=client, tier=tier,
                                           bound_jkt=_refresh_jkt(old), evidence=evidence)
    scope = old.scope
    requested = form.get("scope")
    if requested is not None:
        wanted = requested.split()
        if not set(wanted) <= set(scope.split()):
            raise errors.InvalidScope("a refresh cannot widen the scope")
        scope = " ".join(wanted)
    body, tokens = await _mint(env, auth, subject=old.subject, scope=scope, grant_id=old.grant_id, tier=tier,
                               refresh=True, binding=sender.binding,
                               authentication=old.extra)  # a refresh keeps how the user authenticated (RFC 9470 §5)
    new_refresh = next(r for r in tokens if r.kind == "refresh_token")
    new_refresh.scope = old.scope
    async with env.store.transaction() as tx:  # the rotation and the new access token: one commit
        rotated = await tx.rotate_token(old.token_hash, new_refresh, now)
        if rotated:
            for rec in tokens:
                if rec.kind != "refresh_token":
                    await tx.create_token(rec)
            await tx.touch_client(client.client_id, now)
    if not rotated:
        if old.grant_id:
            await env.store.tokens.revoke_grant(old.grant_id, now)
        raise errors.InvalidGrant("refresh token has already been used")
    return TokenResult(body=body, client=client, grant_type="refresh_token", grant_id=old.grant_id,
                       subject=old.subject, dpop_nonce=sender.nonce,
                       evidence={"client_auth": auth.evidence, "scope": scope, "tokens": [r.kind for r in tokens],
                                 "lifetimes": _lifetimes(tier, True)})


async def _client_credentials(
    env: Environment, form: Mapping[str, str], auth: AuthenticatedClient, evidence: dict[str, Any],
    presented: Presented,
) -> TokenResult:
    """RFC 6749 §4.4: machine clients; the effective tier of the requested scopes applies."""
    client = auth.client
    if "client_credentials" not in client.grant_types:
        raise errors.UnauthorizedClient("client is not registered for the client_credentials grant")
    if auth.method == "none":
        raise errors.InvalidClient("public clients cannot use client_credentials")
    requested = form.get("scope")
    scopes = requested.split() if requested else sorted(client.scopes or ())
    known = env.all_scopes()
    if any(s not in known for s in scopes):
        raise errors.InvalidScope("the request names a scope this server does not know")
    bad = [s for s in scopes if client.scopes is not None and s not in client.scopes]
    if bad:  # configured scopes only: these may be named
        raise errors.InvalidScope(f"scope(s) not allowed: {', '.join(bad)}")
    effective = env.policy.effective(client.risk_tier, scopes)
    evidence.update(scope=" ".join(scopes), tier=effective.tier.name, tier_reasons=effective.reasons())
    check_authentication_for_tier(auth, effective.tier)
    sender = await check_sender_constraint(env, presented, client=client, tier=effective.tier, bound_jkt=None,
                                           evidence=evidence)
    body, tokens = await _mint(env, auth, subject=None, scope=" ".join(scopes), grant_id=None,
                               tier=effective.tier, refresh=False, binding=sender.binding)
    async with env.store.transaction() as tx:
        for rec in tokens:
            await tx.create_token(rec)
        await tx.touch_client(client.client_id, env.now())
    return TokenResult(body=body, client=client, grant_type="client_credentials", dpop_nonce=sender.nonce,
                       evidence={"client_auth": auth.evidence, "tier": effective.tier.name,
                                 "tokens": [r.kind for r in tokens], "lifetimes": _lifetimes(effective.tier, False)})


# The token endpoint's named checks (a control's ``step`` may name one, ``controls.REGISTRY``), in the order a
# code redemption runs them; refresh and client_credentials run the sender check and the tier's authentication.
TOKEN_CHECKS = (load_code, check_sender_constraint, consume_code, check_code_matches, check_code_age,
                check_authentication_for_tier, check_subject_enabled)

GRANTS = {
    "authorization_code": _authorization_code,
    "refresh_token": _refresh_token,
    "client_credentials": _client_credentials,
}


async def token_endpoint(
    env: Environment,
    form: Mapping[str, str],
    authorization: str | None,
    *,
    evidence: dict[str, Any] | None = None,
    certificate: ClientCertificate | None = None,
    dpop: Sequence[str] = (),
    client_certificate_thumbprint: str | None = None,
    authority: str | None = None,
) -> TokenResult:
    """``evidence``: filled in as facts are established (grant type, authenticated client, the redeemed
    code's ``flow_id``, subject, scope and tier), so that a refused request can be recorded too.

    ``dpop``: every ``DPoP`` header of the request; ``certificate``: the TLS client certificate of the
    connection (RFC 8705 §2 client authentication; its thumbprint binds tokens, §3), or only its
    ``client_certificate_thumbprint`` (base64url SHA-256), from the adapter (``protocol/sender.py``);
    ``authority``: the request's ``Host``, which tells a request to the mTLS alias (RFC 8705 §5) from one to
    the main endpoint: a DPoP proof's ``htu`` must name the one it was sent to (RFC 9449 §4.3)."""
    evidence = {} if evidence is None else evidence
    grant_type = form.get("grant_type")
    if not grant_type:
        raise errors.InvalidRequest("grant_type is required")
    handler = GRANTS.get(grant_type)
    if handler is None:
        raise errors.UnsupportedGrantType("unsupported grant_type")
    evidence["grant_type"] = grant_type
    auth = await authenticate_client(env, form, authorization, endpoint="token", certificate=certificate)
    evidence.update(client_id=auth.client.client_id, client_auth=auth.evidence, client_tier=auth.client.risk_tier)
    thumbprint = client_certificate_thumbprint or (certificate.thumbprint if certificate else None)
    result = await handler(env, form, auth, evidence, Presented(tuple(dpop), thumbprint, authority))
    # the last step: the tokens are stored, so a concurrent offboarding or revocation either shows here or
    # revokes them after (protocol/standing.py)
    issued = [token_hash(result.body[k]) for k in ("access_token", "refresh_token") if k in result.body]
    await confirm_tokens(env, client_id=result.client.client_id, version=result.client.updated_at, issued=issued,
                         grant_id=result.grant_id, subject=result.subject,
                         check_grant=result.grant_type == "refresh_token")
    return result
