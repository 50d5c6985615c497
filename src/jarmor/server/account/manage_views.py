"""The signed-in account page: passkeys and TOTP (enrol, remove) and third-party access (see, revoke).

Third-party access lists every client holding an unrevoked grant from the user — its name, owner, whether it
is a third party's, the scopes in plain words (``consent.describe_scopes``: the configured scope
descriptions), when the grant was given and when a token was last issued under it — and revokes any of them:
the grant and every token issued under it, recorded in the audit log with the user as the actor (the same
record an administrator's revocation leaves, RFC 7009 §2.1's "related tokens").
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from starlette.responses import Response

from ...governance.lifecycle import revoke_grant
from ...protocol.authn_methods import method_of
from ...store.base import AdminEvent, AlreadyExists, AuthenticatorRecord
from .. import passkeys, totp
from ..consent import ClientDisplay, describe_scopes
from . import common

TOTP_PENDING_NS = "totp-enrolment"
TOTP_PENDING_TTL = 600
MAX_LABEL = 64


def _label(value: str, default: str) -> str:
    text = "".join(c for c in value.strip() if c.isprintable())[:MAX_LABEL]
    return text or default


async def _access(ctx: common.AccountContext) -> list[dict[str, Any]]:
    rows = []
    descriptions = ctx.server.env.settings.scope_descriptions
    for use in await ctx.store.accounts.grants_of(ctx.username):
        client = await ctx.server.env.clients.get(use.grant.client_id)
        display = ClientDisplay.of(client, use.grant.client_id)
        rows.append({
            "grant_id": use.grant.grant_id, "client": display, "granted_at": use.grant.created_at,
            "last_used": use.last_used_at, "scopes": describe_scopes(use.grant.scope.split(), descriptions),
            "csrf_token": ctx.csrf(f"revoke:{use.grant.grant_id}"),
        })
    return rows


async def overview(ctx: common.AccountContext, *, message: str = "") -> Response:
    methods = await ctx.store.accounts.list_for(common.POPULATION, ctx.username)
    rows = [{
        "record": m, "csrf_token": ctx.csrf(f"remove:{m.authenticator_id}"),
        "kind": ("synced passkey" if m.backup_eligible else "device-bound passkey") if m.kind == "passkey"
        else "authenticator app (TOTP)",
    } for m in methods]
    return common.account_page(ctx.server, "account/overview.html", {
        "username": ctx.username, "message": message, "methods": rows,
        "signed_in_with": method_of(ctx.session.amr).name,
        "has_totp": any(m.kind == "totp" for m in methods),
        "access": await _access(ctx),
        "csrf_logout": ctx.csrf("logout"), "csrf_totp": ctx.csrf("totp-new"),
    })


async def show_overview(ctx: common.AccountContext) -> Response:
    return await overview(ctx)


async def new_passkey(ctx: common.AccountContext) -> Response:
    rp = passkeys.RelyingParty.for_issuer(ctx.server.env.issuer)
    existing = await ctx.store.accounts.list_for(common.POPULATION, ctx.username)
    ceremony = await passkeys.start_registration(ctx.store.ephemeral, rp, ctx.username, existing, ctx.sid)
    return common.account_page(ctx.server, "account/passkey_new.html", {
        "ceremony": ceremony, "csrf_token": ctx.csrf("passkey-new"), "action": f"{common.PREFIX}/passkeys",
        "username": ctx.username,
    })


async def add_passkey(ctx: common.AccountContext) -> Response:
    rp = passkeys.RelyingParty.for_issuer(ctx.server.env.issuer)
    try:
        record = await passkeys.finish_registration(
            ctx.store.ephemeral, rp, ctx.form.get("ceremony", ""), ctx.form.get("credential", ""),
            bound_to=ctx.sid, population=common.POPULATION, username=ctx.username,
            label=_label(ctx.form.get("label", ""), "Passkey"), now=ctx.now(),
        )
        await ctx.store.accounts.add(record)
    except (passkeys.PasskeyError, AlreadyExists):
        return common.notice(ctx.server, "Passkey not added", "The passkey could not be registered. Try again.")
    await _log(ctx, "user.passkey_add", {"authenticator_id": record.authenticator_id})
    return await overview(ctx, message="Passkey added.")


async def new_totp(ctx: common.AccountContext) -> Response:
    """Start TOTP enrolment: a new secret, kept (sealed) in the short-lived store until it is confirmed."""
    secret = totp.new_secret()
    pending_id = secrets.token_urlsafe(18)
    value = orjson.dumps({"secret": ctx.server.protector.seal(secret), "username": ctx.username})
    await ctx.store.ephemeral.put(TOTP_PENDING_NS, pending_id, value, TOTP_PENDING_TTL)
    return _totp_page(ctx, pending_id, secret)


def _totp_page(ctx: common.AccountContext, pending_id: str, secret: str, *, error: str = "") -> Response:
    host = ctx.server.env.issuer.split("//", 1)[-1]
    return common.account_page(ctx.server, "account/totp_new.html", {
        "secret": secret, "uri": totp.provisioning_uri(secret, ctx.username, host), "pending_id": pending_id,
        "csrf_token": ctx.csrf("totp-confirm"), "error": error,
    }, status=401 if error else 200)


async def confirm_totp(ctx: common.AccountContext) -> Response:
    pending_id, code = ctx.form.get("pending", ""), ctx.form.get("code", "").strip().replace(" ", "")
    raw = await ctx.store.ephemeral.get(TOTP_PENDING_NS, pending_id) if 0 < len(pending_id) <= 64 else None
    pending = orjson.loads(raw) if raw else None
    if pending is None or pending["username"] != ctx.username:
        return common.notice(ctx.server, "Expired", "This set-up has expired. Start again from your account page.")
    secret = ctx.server.protector.open(pending["secret"])
    now = ctx.now()
    step = totp.matching_step(secret, code, now)
    if step is None:
        return _totp_page(ctx, pending_id, secret, error="That code does not match. Check the app and try again.")
    if await ctx.store.ephemeral.take(TOTP_PENDING_NS, pending_id) is None:
        return common.notice(ctx.server, "Expired", "This set-up was already completed.")
    record = AuthenticatorRecord(
        secrets.token_urlsafe(12), common.POPULATION, ctx.username, "totp", now,
        label=_label(ctx.form.get("label", ""), "Authenticator app"), secret=pending["secret"], last_step=step,
    )
    await ctx.store.accounts.add(record)
    await _log(ctx, "user.totp_add", {"authenticator_id": record.authenticator_id})
    return await overview(ctx, message="Authenticator app added: sign-in with a password now asks for a code.")


async def remove_method(ctx: common.AccountContext) -> Response:
    aid = ctx.request.path_params["aid"]
    if not await ctx.store.accounts.remove(common.POPULATION, ctx.username, aid):
        return common.notice(ctx.server, "Not found", "You have no such sign-in method.", status=404)
    await _log(ctx, "user.authenticator_remove", {"authenticator_id": aid})
    return await overview(ctx, message="Sign-in method removed.")


async def revoke_access(ctx: common.AccountContext) -> Response:
    grant_id = ctx.request.path_params["grant_id"]
    grant = await ctx.store.grants.get(grant_id) if len(grant_id) <= 128 else None
    if grant is None or grant.subject != ctx.username:
        return common.notice(ctx.server, "Not found", "No such access to revoke.", status=404)
    await revoke_grant(ctx.store, grant_id, reason="revoked by the user on the account page",
                       by=f"user:{ctx.username}", now=ctx.now())
    return await overview(ctx, message="Access revoked.")


async def _log(ctx: common.AccountContext, action: str, details: dict[str, Any]) -> None:
    await ctx.store.audit.append(AdminEvent(
        at=ctx.now(), actor=f"user:{ctx.username}", action=action, target=f"user:{ctx.username}", details=details,
    ))
