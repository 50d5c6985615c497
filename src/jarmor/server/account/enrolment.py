"""One-time passkey enrolment links (``jarmor users add NAME --passkey-only``): bootstrap without a password.

A link is ``{issuer}/account/enrol/{token}`` with a 256-bit random token; the short-lived store keeps only the
token's SHA-256 digest, the account it enrols and its expiry (``[settings] enrolment_link_lifetime``, one day by
default, 5 minutes to 7 days; the store drops the record then, and the link answers 410 "Link expired"). Opening
the link reads it (a link preview or prefetch spends nothing); registering the passkey *takes* it, atomically,
before the passkey is stored: of any number of concurrent registrations through one link exactly one
succeeds, and the link is dead afterwards. The page's ceremony is bound to the token's digest.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...protocol import errors
from ...protocol.context import Settings
from ...store.base import AdminEvent, AlreadyExists, EphemeralStore, Store
from .. import passkeys
from ..http import read_form
from . import common

if TYPE_CHECKING:
    from ..app import JarmorServer

ENROLMENT_NS = "enrolment-link"
_GONE = "This enrolment link has expired or was already used. Ask your administrator for a new one."


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


async def issue_link(store: EphemeralStore, settings: Settings, issuer: str, population: str, username: str) -> str:
    """A new link for ``population``:``username``, valid ``settings.enrolment_link_lifetime`` seconds."""
    token = secrets.token_urlsafe(32)
    record = orjson.dumps({"population": population, "username": username})
    await store.put(ENROLMENT_NS, _digest(token), record, settings.enrolment_link_lifetime)
    return f"{issuer.rstrip('/')}{common.PREFIX}/enrol/{token}"


def announce(link: str, settings: Settings) -> str:
    """The line the CLI prints a link with, naming its lifetime (exact: ``90 min``, not ``1 h``)."""
    return f"one-time passkey enrolment link (valid {_duration(settings.enrolment_link_lifetime)}, single use): {link}"


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


async def _pending(store: EphemeralStore, token: str) -> dict[str, str] | None:
    if not 0 < len(token) <= 64:
        return None
    raw = await store.get(ENROLMENT_NS, _digest(token))
    return None if raw is None else dict(orjson.loads(raw))


async def show(server: JarmorServer, request: Request) -> Response:
    await server.refresh_keys()
    token = request.path_params["token"]
    pending = await _pending(server.store.ephemeral, token)
    if pending is None:
        return common.notice(server, "Link expired", _GONE, status=410)
    rp = passkeys.RelyingParty.for_issuer(server.env.issuer)
    ceremony = await passkeys.start_registration(
        server.store.ephemeral, rp, pending["username"], [], f"enrol:{_digest(token)}"
    )
    return common.account_page(server, "account/passkey_new.html", {
        "ceremony": ceremony, "csrf_token": common.csrf(server, "enrol", _digest(token)),
        "action": f"{common.PREFIX}/enrol/{token}", "username": pending["username"], "enrolment": True,
    })


async def complete(server: JarmorServer, request: Request) -> Response:
    await server.refresh_keys()
    token = request.path_params["token"]
    try:
        form = await read_form(request)
    except errors.OAuthError:
        return common.notice(server, "Refused", "This form could not be read.")
    if len(token) > 64 or not common.csrf_ok(server, request, form.get("csrf_token", ""), "enrol", _digest(token)):
        return common.notice(server, "Refused", "This form is not from this enrolment page.", status=403)
    store: Store = server.store
    rp = passkeys.RelyingParty.for_issuer(server.env.issuer)
    pending = await _pending(store.ephemeral, token)
    if pending is None:
        return common.notice(server, "Link expired", _GONE, status=410)
    try:
        record = await passkeys.finish_registration(
            store.ephemeral, rp, form.get("ceremony", ""), form.get("credential", ""),
            bound_to=f"enrol:{_digest(token)}", population=pending["population"], username=pending["username"],
            label="Passkey", now=server.env.now(),
        )
    except passkeys.PasskeyError:
        return common.notice(server, "Passkey not added", "The passkey could not be registered. Try again.")
    if await store.ephemeral.take(ENROLMENT_NS, _digest(token)) is None:  # the single use
        return common.notice(server, "Link expired", _GONE, status=410)
    try:
        await store.accounts.add(record)
    except AlreadyExists:
        return common.notice(server, "Passkey not added", "This passkey is already registered.")
    who = f"{record.population}:{record.username}"
    await store.audit.append(AdminEvent(
        at=server.env.now(), actor=who, action=f"{record.population}.passkey_add", target=who,
        details={"authenticator_id": record.authenticator_id, "via": "enrolment link"},
    ))
    where = "/admin/login" if record.population == "admin" else f"{common.PREFIX}/login"
    return common.account_page(server, "account/notice.html", {
        "title": "Passkey added", "message": "Your passkey is ready: sign in with it.", "link": where,
    })
