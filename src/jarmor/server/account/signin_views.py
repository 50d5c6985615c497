"""Signing in to the account page: a password (then a TOTP code when the account has one), or a passkey.

Every step is counted before it is checked (``server/signin.py``: atomic increments in the short-lived store,
shared by workers and nodes): passwords per account name and per client address; TOTP codes per account (in
their own count, which a right password does not reset), per address and per second-factor session; passkey
assertions per address. Every answer about a failed step is the same whatever the reason (unknown account,
wrong password, disabled, passkey-only account): "Wrong username or password" — and every such attempt
costs exactly one Argon2 verification (``passwords.py`` checks a dummy hash for accounts without one).
Each completed step starts a new session id (``sessions.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ...protocol import authn_methods, errors
from .. import authn, passkeys, signin
from ..http import read_form
from . import common, sessions

if TYPE_CHECKING:
    from ..app import JarmorServer


WRONG_PASSWORD = "Wrong username or password."
WRONG_CODE = "Wrong or already used code."
WRONG_PASSKEY = "This passkey could not be used to sign in."
TOO_MANY = "Too many failed sign-in attempts. Try again later."
OTP_ACCOUNT_NS = "signin-otp-account"
OTP_SESSION_NS = "signin-otp-session"
MAX_CODES_PER_SESSION = 5


def _otp_limits(server: JarmorServer) -> tuple[signin.AttemptLimit, signin.AttemptLimit]:
    s = server.env.settings
    account = signin.AttemptLimit(signin.Per.ACCOUNT, OTP_ACCOUNT_NS, s.login_max_failures, s.login_lockout_window)
    per_session = signin.AttemptLimit(
        signin.Per.INTERACTION, OTP_SESSION_NS, MAX_CODES_PER_SESSION, sessions.SECOND_FACTOR_TTL
    )
    return account, per_session


async def login_page(server: JarmorServer, request: Request, *, error: str = "", username: str = "",
                     status: int | None = None) -> Response:
    binding, new = common.ensure_login_binding(request)
    ceremony = await passkeys.start_authentication(
        server.store.ephemeral, passkeys.RelyingParty.for_issuer(server.env.issuer), binding
    )
    response = common.account_page(server, "account/login.html", {
        "error": error, "username": username,
        "csrf_password": common.csrf(server, "login", binding),
        "csrf_passkey": common.csrf(server, "passkey-login", binding),
        "ceremony": ceremony,
    }, status=status or (401 if error else 200))
    if new:
        common.set_cookie(server, response, common.LOGIN_COOKIE, binding, 3600)
    return response


async def show_login(server: JarmorServer, request: Request) -> Response:
    await server.refresh_keys()
    session = await sessions.load(server.store.ephemeral, request.cookies.get(common.COOKIE, ""), server.env.now())
    if session is not None and session.stage == sessions.SIGNED_IN:
        return common.redirect(common.PREFIX)
    return await login_page(server, request)


async def _pre_login_form(server: JarmorServer, request: Request, purpose: str) -> dict[str, str] | None:
    """The form of a sign-in step, when its CSRF token matches this browser's login binding."""
    await server.refresh_keys()
    try:
        form = await read_form(request)
    except errors.OAuthError:
        return None
    binding = common.login_binding(request)
    if not binding or not common.csrf_ok(server, request, form.get("csrf_token", ""), purpose, binding):
        return None
    return form


def _refused(server: JarmorServer) -> Response:
    return common.notice(server, "Refused", "This sign-in form has expired. Open the sign-in page again.", status=403)


async def _signed_in(server: JarmorServer, request: Request, username: str, amr: list[str], *,
                     replacing: str) -> Response:
    now = server.env.now()
    session = sessions.AccountSession(username, sessions.SIGNED_IN, now, now, amr=amr, auth_time=now)
    sid = await sessions.start(server.store.ephemeral, session, replacing=replacing)
    response = common.redirect(common.PREFIX)
    common.set_cookie(server, response, common.COOKIE, sid, sessions.LIFETIME)
    return response


async def password_step(server: JarmorServer, request: Request) -> Response:
    form = await _pre_login_form(server, request, "login")
    if form is None:
        return _refused(server)
    env, username = server.env, form.get("username", "")
    limits = signin.UserLimits.from_settings(env.settings)
    attempt = await signin.reserve(
        env.store.ephemeral, [(limits.address, common.client_address(request)), (limits.account, username)]
    )
    if attempt.refused is not None:
        return await login_page(server, request, error=TOO_MANY, username=username, status=429)
    user = await authn.check_password(env.store, username, form.get("password", ""))
    if user is None:
        return await login_page(server, request, error=WRONG_PASSWORD, username=username)
    await signin.succeeded(env.store.ephemeral, attempt)
    old = request.cookies.get(common.COOKIE, "")
    if not await authn.has_totp(env.store, user.username):
        return await _signed_in(server, request, user.username, authn_methods.password_amr(with_otp=False),
                                replacing=old)
    now = env.now()
    pending = sessions.AccountSession(user.username, sessions.SECOND_FACTOR, now, now, amr=[authn_methods.PWD])
    sid = await sessions.start(env.store.ephemeral, pending, replacing=old)
    response = common.redirect(f"{common.PREFIX}/login/code")
    common.set_cookie(server, response, common.COOKIE, sid, sessions.SECOND_FACTOR_TTL)
    return response


async def _second_factor(server: JarmorServer, request: Request) -> tuple[str, sessions.AccountSession] | None:
    sid = request.cookies.get(common.COOKIE, "")
    session = await sessions.load(server.store.ephemeral, sid, server.env.now())
    if session is None or session.stage != sessions.SECOND_FACTOR:
        return None
    return sid, session


def _code_page(server: JarmorServer, sid: str, *, error: str = "", status: int = 200) -> Response:
    return common.account_page(server, "account/code.html", {
        "error": error, "csrf_token": common.csrf(server, sessions.digest(sid), "code"),
    }, status=status)


async def show_code(server: JarmorServer, request: Request) -> Response:
    await server.refresh_keys()
    found = await _second_factor(server, request)
    if found is None:
        return common.redirect(f"{common.PREFIX}/login")
    return _code_page(server, found[0])


async def code_step(server: JarmorServer, request: Request) -> Response:
    await server.refresh_keys()
    found = await _second_factor(server, request)
    if found is None:
        return common.redirect(f"{common.PREFIX}/login")
    sid, session = found
    try:
        form = await read_form(request)
    except errors.OAuthError:
        return _refused(server)
    if not common.csrf_ok(server, request, form.get("csrf_token", ""), sessions.digest(sid), "code"):
        return _refused(server)
    env = server.env
    limits = signin.UserLimits.from_settings(env.settings)
    account, per_session = _otp_limits(server)
    attempt = await signin.reserve(env.store.ephemeral, [
        (per_session, sessions.digest(sid)), (limits.address, common.client_address(request)),
        (account, session.username),
    ])
    if attempt.refused is not None:
        if attempt.refused is per_session:
            await sessions.end(env.store.ephemeral, sid)
            return await login_page(server, request, error=TOO_MANY, status=429)
        return _code_page(server, sid, error=TOO_MANY, status=429)
    if await authn.check_totp(env.store, server.protector, session.username, form.get("code", ""), env.now()):
        if await sessions.take(env.store.ephemeral, sid) is None:
            return common.redirect(f"{common.PREFIX}/login")  # a concurrent submission completed it
        await signin.succeeded(env.store.ephemeral, attempt)
        return await _signed_in(server, request, session.username,
                                authn_methods.password_amr(with_otp=True), replacing="")
    return _code_page(server, sid, error=WRONG_CODE, status=401)


async def passkey_step(server: JarmorServer, request: Request) -> Response:
    form = await _pre_login_form(server, request, "passkey-login")
    if form is None:
        return _refused(server)
    env, binding = server.env, common.login_binding(request)
    limits = signin.UserLimits.from_settings(env.settings)
    attempt = await signin.reserve(env.store.ephemeral, [(limits.address, common.client_address(request))])
    if attempt.refused is not None:
        return await login_page(server, request, error=TOO_MANY, status=429)
    proof = await authn.check_passkey(
        env.store, env.issuer, form.get("ceremony", ""), form.get("credential", ""), bound_to=binding,
        now=env.now(),
    )
    if proof is None:
        return await login_page(server, request, error=WRONG_PASSKEY)
    await signin.succeeded(env.store.ephemeral, attempt)
    return await _signed_in(server, request, proof.username, list(proof.amr),
                            replacing=request.cookies.get(common.COOKIE, ""))


async def logout(ctx: common.AccountContext) -> Response:
    await sessions.end(ctx.store.ephemeral, ctx.sid)
    response = common.redirect(f"{common.PREFIX}/login")
    response.delete_cookie(common.COOKIE, path=common.PREFIX)
    return response
