"""The interaction's lifecycle: authorize → sign-in → consent → complete, one transition at a time.

Ports and adapters: this module decides every step over typed values and awaits the ports it is given — the
environment's stores and client directory, a ``Verifier`` per sign-in method, and a ``record`` callback that
receives each ``Transition`` the table (``machine.TRANSITIONS``) marks as recorded. It never touches HTTP,
cookies or pages: it returns an ``Outcome`` (show the sign-in or consent page, deliver a response, show an
error) and the adapter (``server/``) turns it into bytes. Every state change goes through ``_move``, the one
place that consults the table and records.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ...jose import JoseError
from ...store.base import StoreUnavailable
from .. import errors
from ..authorization import AUTHORIZATION_ENDPOINT, AuthorizationRequest, AuthorizationState, run_checks
from ..clients import Client
from ..context import Environment
from ..policy import PolicyError, Tier
from ..responses import AuthorizationResponse, check_code_response, error_response, render
from ..tokens import issue_code
from . import assurance, limits
from .assurance import asserted_acr, requirement, unreachable
from .authentication import Authentication, Level, Method, Requirement, next_methods
from .machine import Event, IllegalTransition, Rule, State, rule
from .record import Interaction

NAMESPACE = "interaction"
UNAVAILABLE = "the authorization server is temporarily unable to handle the request; try again shortly"

# Why an interaction page cannot go on (the adapter words each for the person; ``server/problems.py``)
FINISHED, OTHER_BROWSER, FORM, NOT_SIGNED_IN = "finished", "other-browser", "form", "not-signed-in"


# --- outcomes: what the adapter shows or sends -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShowSignIn:
    """The sign-in page; ``failure``: ``failed`` (401), ``throttled`` (429), ``reopened`` (a notice) or None;
    ``started``: a new interaction (the adapter binds it to the browser)."""

    ia_id: str
    interaction: Interaction
    client_name: str
    methods: tuple[Method, ...]
    failure: str | None = None
    username: str = ""
    started: bool = False


@dataclass(frozen=True, slots=True)
class GoTo:
    """Post/redirect/get: the next step of the interaction lives at a GET URL (``step``: login | consent)."""

    ia_id: str
    step: str


@dataclass(frozen=True, slots=True)
class ShowConsent:
    ia_id: str
    interaction: Interaction
    client: Client | None


@dataclass(frozen=True, slots=True)
class Deliver:
    """An authorization response (the code or an error) to the client's redirect URI."""

    response: AuthorizationResponse


@dataclass(frozen=True, slots=True)
class ShowError:
    """An error that cannot be redirected: the error page."""

    error: errors.OAuthError


@dataclass(frozen=True, slots=True)
class Problem:
    """The interaction page cannot go on (``kind``: one of ``FINISHED`` ...)."""

    kind: str
    description: str


Outcome = ShowSignIn | GoTo | ShowConsent | Deliver | ShowError | Problem


# --- ports --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    """One move of the machine, as the ``record`` port receives it (only moves the table marks recorded)."""

    event: Event
    source: State
    rule: Rule
    at: int
    request: AuthorizationRequest | None = None
    checks: AuthorizationState | None = None  # a refused request: what its checks established
    client: Client | None = None
    subject: str | None = None
    error: errors.OAuthError | None = None
    response: Mapping[str, Any] | None = None  # how the code or error was delivered (render's evidence)
    expires_at: int | None = None
    authentication: Authentication | None = None


@dataclass(frozen=True, slots=True)
class Verified:
    subject: str
    method: str  # the ``Method`` name the verifier established (it may pick among several it serves)


class Verifier(Protocol):
    """Checks one sign-in method's credentials in a posted form."""

    def account(self, form: Mapping[str, str], interaction: Interaction) -> str | None:
        """The account name this attempt is counted against (before anything is verified)."""
        ...

    async def verify(self, form: Mapping[str, str], interaction: Interaction) -> Verified | None: ...

    async def enrolled(self, subject: str) -> bool:
        """Whether ``subject`` can sign in with this method (has a password, a passkey ...)."""
        ...


@dataclass(frozen=True, slots=True)
class Ports:
    verifiers: Mapping[str, Verifier]  # method name -> verifier, in the order the sign-in page offers them
    record: Callable[[Transition], None]
    store_failed: Callable[[StoreUnavailable], None] = lambda exc: None


# --- the lifecycle ------------------------------------------------------------------------------------


class Lifecycle:
    def __init__(self, env: Environment, ports: Ports) -> None:
        self.env = env
        self.ports = ports

    # -- the one place a transition happens ----------------------------------------------------------

    def _move(self, source: State, event: Event, **facts: Any) -> State:
        """Consult the table (``IllegalTransition`` if it has no row) and record the move if it says so."""
        found = rule(source, event)
        if found.recorded:
            self.ports.record(Transition(event, source, found, at=self.env.now(), **facts))
        return found.target

    def request_tier(self, req: AuthorizationRequest) -> Tier | None:
        """The effective tier a validated request recorded (its responses, errors included, must satisfy it)."""
        try:
            return self.env.policy.tier(req.tier)
        except PolicyError:
            return None

    async def _refuse(
        self, source: State, event: Event, req: AuthorizationRequest, client: Client | None,
        err: errors.OAuthError, *, subject: str | None = None,
    ) -> Outcome:
        """Deliver ``err`` for a validated request (redirected when its tier allows the target, RFC 6749
        §4.1.2.1; else the error page) and make the move it ends the flow with."""
        err = err.with_target(req.target())
        rendered = await error_response(self.env, client, err, tier=self.request_tier(req))
        self._move(source, event, request=req, client=client, subject=subject, error=err,
                   response=rendered[1] if rendered else None)
        return Deliver(rendered[0]) if rendered else ShowError(err)

    # -- authorize -----------------------------------------------------------------------------------

    async def authorize(self, st: AuthorizationState, *, auto_approve: str | None = None) -> Outcome:
        """Run the request's checks (``authorization.AUTHORIZATION_ENDPOINT``), then approve it
        (``auto_approve``: as this subject), refuse ``prompt=none``, or start the interaction."""
        try:
            req = await run_checks(AUTHORIZATION_ENDPOINT, st)
        except errors.OAuthError as err:
            return await self.refused(st, err)
        self._move(State.RECEIVED, Event.REQUEST_VALIDATED)
        try:
            return await self._requested(st, req, auto_approve)
        except StoreUnavailable as exc:
            # the redirect URI is verified: the client hears temporarily_unavailable (RFC 6749 §4.1.2.1)
            self.ports.store_failed(exc)
            refusal = errors.TemporarilyUnavailable(UNAVAILABLE)
            return await self._refuse(State.REQUESTED, Event.UNAVAILABLE, req, st.client, refusal)

    async def refused(self, st: AuthorizationState, err: errors.OAuthError) -> Outcome:
        """A request whose parameters or checks failed: the error on the channel known so far."""
        rendered = await error_response(self.env, st.client, err, tier=st.response_tier())
        self._move(State.RECEIVED, Event.REQUEST_REFUSED, checks=st, error=err,
                   response=rendered[1] if rendered else None)
        return Deliver(rendered[0]) if rendered else ShowError(err)

    async def _requested(self, st: AuthorizationState, req: AuthorizationRequest, auto: str | None) -> Outcome:
        env = self.env
        need = requirement(req)
        if auto and need.level is Level.NONE:
            self._move(State.REQUESTED, Event.AUTO_APPROVED)
            return await self.complete(req, Authentication(auto, ()), client=st.client, auth_time=env.now())
        if "none" in req.prompt:
            # OIDC Core §3.1.2.1: no signed-in session here, and no page may be shown
            refusal = errors.LoginRequired("no signed-in session")
            return await self._refuse(State.REQUESTED, Event.PROMPT_NONE, req, st.client, refusal)
        ia = Interaction(request=req, bind=secrets.token_urlsafe(16), started_at=env.now())
        offered = self.offered(ia, need)
        if not offered or auto:  # auto-approve signs nobody in: it cannot meet a level
            return await self._refuse(State.REQUESTED, Event.ASSURANCE_UNREACHABLE, req, st.client,
                                      unreachable(need))
        ia_id = secrets.token_urlsafe(24)
        ia.state = self._move(State.REQUESTED, Event.SIGN_IN_REQUIRED, request=req, client=st.client,
                              expires_at=env.now() + env.settings.interaction_lifetime)
        await env.store.ephemeral.put(NAMESPACE, ia_id, ia.dump(), env.settings.interaction_lifetime)
        name = st.client.name if st.client else req.client_id
        return ShowSignIn(ia_id, ia, name, tuple(offered), started=True)

    def offered(self, ia: Interaction, need: Requirement, enrolled: list[str] | None = None) -> list[Method]:
        """``authentication.next_methods`` over the methods this server has a verifier for."""
        return next_methods(ia.authentication, need, list(self.ports.verifiers), enrolled)

    async def _accepted(self, ia: Interaction, need: Requirement) -> set[str]:
        """The methods a sign-in form may use: those the page offers for the authentication so far, and
        those that start one afresh (Back to the first step; signing in again replaces the authentication).
        The effective tier's requirement decides both (issue 14: the page offers and accepts only these)."""
        enrolled = await self._enrolled(ia.subject) if ia.subject else None
        fresh = next_methods(Authentication(), need, list(self.ports.verifiers))
        return {m.name for m in (*self.offered(ia, need, enrolled), *fresh)}

    async def _enrolled(self, subject: str) -> list[str]:
        return [name for name, v in self.ports.verifiers.items() if await v.enrolled(subject)]

    # -- the pages: what a GET of the interaction shows ----------------------------------------------

    async def load(self, ia_id: str) -> Interaction | None:
        raw = await self.env.store.ephemeral.get(NAMESPACE, ia_id) if len(ia_id) <= 64 else None
        return Interaction.load(raw) if raw is not None else None

    async def current_page(self, ia_id: str, ia: Interaction) -> Outcome:
        """The step the interaction is at (a reload, Back after a decision, a copied link): changes nothing."""
        client = await self.env.clients.get(ia.request.client_id)
        if ia.state is State.CONSENTING:
            return ShowConsent(ia_id, ia, client)
        need = requirement(ia.request)
        enrolled = await self._enrolled(ia.subject) if ia.subject else None
        failure = "reopened" if ia.subject is None else None
        return ShowSignIn(ia_id, ia, client.name if client else ia.request.client_id,
                          tuple(self.offered(ia, need, enrolled)), failure=failure)

    # -- sign-in -------------------------------------------------------------------------------------

    async def sign_in(self, ia_id: str, ia: Interaction, method: str, form: Mapping[str, str], address: str) -> Outcome:
        """Check one sign-in method's credentials, after counting the attempt (``limits``): per interaction,
        per client address and per account, atomically and before anything is verified. The interaction's
        last attempt ends the flow with ``access_denied``; a locked address or account is refused without
        verifying. A verified method either completes what the request needs (on to consent), or leaves a
        further factor to give, or — when the user has none that would do — ends the flow."""
        env = self.env
        verifier = self.ports.verifiers.get(method)
        need = requirement(ia.request)
        if verifier is None or method not in await self._accepted(ia, need):
            return Problem(FORM, "this sign-in method is not offered here")
        client = await env.clients.get(ia.request.client_id)
        name = client.name if client else ia.request.client_id
        account = verifier.account(form, ia) or ""
        lim = limits.UserLimits.from_settings(env.settings)
        ephemeral = env.store.ephemeral
        attempt = await limits.reserve(
            ephemeral, [(lim.interaction, ia_id), (lim.address, address), (lim.account, account)]
        )
        if attempt.refused is None:
            verified = await verifier.verify(form, ia)
            if verified is not None:
                await limits.succeeded(ephemeral, attempt)
                # taken, not read: an interaction a concurrent attempt has just ended stays ended
                if await ephemeral.take(NAMESPACE, ia_id) is None:
                    return Problem(FINISHED, "this sign-in request has expired or was already completed")
                return await self._verified(ia_id, ia, verified, need, client)
        username = form.get("username", "")
        if attempt.count(limits.Per.INTERACTION) >= lim.interaction.max_attempts:
            # this attempt used the interaction's last one: the flow ends, delivered once
            if await ephemeral.take(NAMESPACE, ia_id) is None:
                return Problem(FINISHED, "this sign-in request has expired or was already completed")
            refusal = errors.AccessDenied("too many failed sign-in attempts")
            return await self._refuse(ia.state, Event.LOCKED_OUT, ia.request, client, refusal)
        enrolled = await self._enrolled(ia.subject) if ia.subject else None
        methods = tuple(self.offered(ia, need, enrolled))  # an identified user: only what they have
        if attempt.refused is not None:
            self._move(ia.state, Event.SIGN_IN_THROTTLED)
            return ShowSignIn(ia_id, ia, name, methods, failure="throttled", username=username)
        self._move(ia.state, Event.SIGN_IN_FAILED)
        return ShowSignIn(ia_id, ia, name, methods, failure="failed", username=username)

    async def _verified(
        self, ia_id: str, ia: Interaction, verified: Verified, need: Requirement, client: Client | None
    ) -> Outcome:
        env = self.env
        ia.authentication = ia.authentication.with_use(verified.subject, verified.method, env.now())
        if need.met_by(ia.authentication, env.now(), ia.started_at):
            ia.state = self._move(ia.state, Event.SIGNED_IN)
            step = "consent"
        elif self.offered(ia, need, await self._enrolled(verified.subject)):
            ia.state = self._move(ia.state, Event.FACTOR_VERIFIED)
            step = "login"
        else:
            return await self._refuse(ia.state, Event.ASSURANCE_UNREACHABLE, ia.request, client,
                                      unreachable(need), subject=verified.subject)
        await env.store.ephemeral.put(NAMESPACE, ia_id, ia.dump(), env.settings.interaction_lifetime)
        return GoTo(ia_id, step)

    # -- consent -------------------------------------------------------------------------------------

    async def decide(self, ia_id: str, ia: Interaction, approve: bool) -> Outcome:
        """The user's decision on the consent page; single use: whoever takes the interaction completes it."""
        event = Event.CONSENT_GIVEN if approve else Event.CONSENT_DENIED
        try:
            rule(ia.state, event)
        except IllegalTransition:
            return Problem(NOT_SIGNED_IN, "sign in first")
        if await self.env.store.ephemeral.take(NAMESPACE, ia_id) is None:
            return Problem(FINISHED, "this sign-in request was already completed")
        client = await self.env.clients.get(ia.request.client_id)
        if not approve:
            refusal = errors.AccessDenied("the user denied the request")
            return await self._refuse(ia.state, event, ia.request, client, refusal, subject=ia.subject)
        need, now = requirement(ia.request), self.env.now()
        if not need.met_by(ia.authentication, now, ia.started_at):
            # OIDC Core §3.1.2.1 max_age: the authentication grew too old meanwhile: sign in again (step-up)
            ia.authentication = need.current(ia.authentication, now, ia.started_at)
            ia.state = self._move(ia.state, Event.STEP_UP_REQUIRED)
            await self.env.store.ephemeral.put(NAMESPACE, ia_id, ia.dump(), self.env.settings.interaction_lifetime)
            return GoTo(ia_id, "login")
        self._move(ia.state, event)
        return await self.complete(ia.request, ia.authentication)

    # -- complete ------------------------------------------------------------------------------------

    def _stop(self, event: Event, req: AuthorizationRequest, client: Client | None, err: errors.OAuthError,
              subject: str | None) -> Outcome:
        self._move(State.APPROVED, event, request=req, client=client, subject=subject, error=err)
        return ShowError(err)

    async def complete(
        self, req: AuthorizationRequest, auth: Authentication, *, client: Client | None = None,
        auth_time: int | None = None,
    ) -> Outcome:
        """Issue the code and deliver it in the request's response mode. ``client``: as this same request
        looked it up (auto-approve); else it is looked up now. Issuing re-reads it in any case."""
        env = self.env
        req = replace(req, flow_id=req.flow_id or secrets.token_urlsafe(16),
                      evidence={**req.evidence, **assurance.evidence(auth, req)})
        subject = auth.subject or ""
        if client is None:
            client = await env.clients.get(req.client_id)
        if client is None or client.disabled:
            err = errors.InvalidClient("this client has been disabled", status=400)
            return self._stop(Event.CLIENT_DISABLED, req, client, err, subject)
        try:
            tier = check_code_response(env, client, req.tier, req.response_mode)
        except errors.OAuthError as refused:
            return self._stop(Event.RESPONSE_REFUSED, req, client, refused, subject)
        when = auth_time if auth_time is not None else (auth.auth_time or env.now())
        try:
            issued = await issue_code(env, req, subject=subject, auth_time=when, flow_id=req.flow_id,
                                      acr=asserted_acr(auth, req), amr=auth.amr)
        except errors.OAuthError as withdrawn:  # the client was offboarded, or the user disabled, meanwhile
            if isinstance(withdrawn, errors.InvalidClient):
                return self._stop(Event.GRANT_WITHDRAWN, req, client, withdrawn, subject)
            err = withdrawn.with_target(req.target())
            rendered = await error_response(env, client, err, tier=tier)
            self._move(State.APPROVED, Event.GRANT_WITHDRAWN, request=req, client=client, subject=subject,
                       error=err, response=rendered[1] if rendered else None)
            return Deliver(rendered[0]) if rendered else ShowError(err)
        try:
            rendered_code, evidence = await render(env, client, req.target(), {"code": issued.code}, tier=tier)
        except JoseError:  # e.g. no usable encryption key at the client's jwks_uri
            err = errors.InvalidRequest("the response cannot be encrypted to this client")
            return self._stop(Event.RESPONSE_REFUSED, req, client, err, subject)
        self._move(State.APPROVED, Event.CODE_ISSUED, request=req, client=client, subject=subject,
                   response=evidence, authentication=auth)
        return Deliver(rendered_code)
