"""Administrators' passkeys: sign-in to the dashboard with a passkey, and (``[settings]
admin_require_passkey = true``) *only* with one.

Administrators enrol passkeys through a one-time link (``jarmor admins enrol-link NAME``, the same pages as
end users' links: ``server/account/enrolment.py``); their passkeys are stored as the ``admin`` population, so
an end user's passkey never opens the dashboard and an administrator's never signs in to an account page.
The assertion is checked by ``server/passkeys.py`` (user verification required, single-use challenge bound to
the sign-in page's binding cookie, counter advanced atomically); failures are counted per address before the
check (``server/signin.py``) and recorded in the audit log like failed passwords.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse

from ...protocol import errors
from ...store.base import AdminEvent
from .. import passkeys, signin
from ..csrf import csrf_token, csrf_valid
from ..http import read_form
from . import sessions

if TYPE_CHECKING:
    from ..app import JarmorServer

log = logging.getLogger("jarmor.admin")
POPULATION = "admin"
PASSKEY_PURPOSE = "admin-passkey-login"


async def passkey_form(server: JarmorServer, binding: str) -> dict[str, Any]:
    """What the sign-in page needs for its passkey button: a fresh ceremony and its CSRF token."""
    ceremony = await passkeys.start_authentication(
        server.store.ephemeral, passkeys.RelyingParty.for_issuer(server.env.issuer), f"admin:{binding}"
    )
    return {
        "ceremony": ceremony, "passkey_csrf": csrf_token(server.keyring.secret(), PASSKEY_PURPOSE, binding),
        "passkey_only": server.env.settings.admin_require_passkey,
    }


async def passkey_sign_in(server: JarmorServer, request: Request, binding: str) -> str | tuple[str, int]:
    """The administrator the posted assertion proves, else why not and the status to refuse with."""
    env = server.env
    try:
        form = await read_form(request)
    except errors.OAuthError as err:
        return err.description, err.status
    if not binding or not csrf_valid(server.keyring.secrets(), form.get("csrf_token", ""), PASSKEY_PURPOSE, binding):
        return "The sign-in form has expired or was not sent from this site. Open it again.", 403
    address = request.client.host if request.client else "unknown"
    attempt = await signin.reserve(env.store.ephemeral, [(signin.ADMIN_ADDRESS, address)])
    if attempt.refused is not None:
        return "Too many failed sign-in attempts. Try again in 15 minutes.", 429
    try:
        record = await passkeys.finish_authentication(
            env.store.ephemeral, env.store.accounts, passkeys.RelyingParty.for_issuer(env.issuer),
            form.get("ceremony", ""), form.get("credential", ""), bound_to=f"admin:{binding}", now=env.now(),
        )
        admin = await env.store.admins.get(record.username) if record.population == POPULATION else None
        if admin is None or admin.disabled:
            raise passkeys.PasskeyError("not an enabled administrator's passkey")
    except passkeys.PasskeyError as exc:
        log.info("administrator passkey sign-in refused: %s", exc)
        await env.store.audit.append(AdminEvent(
            at=env.now(), actor=f"address:{address}", action="admin.login_failed", target=None,
            reason="passkey not accepted", details={"address": address},
        ))
        return "This passkey could not be used to sign in.", 401
    await signin.succeeded(env.store.ephemeral, attempt)
    return admin.username


async def signed_in(server: JarmorServer, username: str, address: str, method: str) -> tuple[str, RedirectResponse]:
    """A new session (a new id: nothing from before sign-in carries over) and where to go."""
    env = server.env
    now = env.now()
    sid, _session = await sessions.create_session(env.store.ephemeral, username, now)
    await env.store.audit.append(AdminEvent(
        at=now, actor=f"admin:{username}", action="admin.login", target=f"admin:{username}",
        details={"address": address, "method": method},
    ))
    return sid, RedirectResponse("/admin/clients", status_code=303)
