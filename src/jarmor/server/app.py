"""The ASGI application: routes -> protocol calls -> responses. No OAuth decision is made here."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ..config import ServerConfig
from ..governance.capture import Capture
from ..governance.checkpoints import Checkpointer, preferred_alg
from ..governance.lifecycle import offboard
from ..governance.recorder import FlowRecorder
from ..governance.records import AUTHORIZE, CODE, INTERACTION, PAR, PUSHED, FlowEvent, new_flow_id
from ..jose import JoseError, Jwk
from ..protocol import errors
from ..protocol.addresses import is_loopback_host
from ..protocol.authorization import (
    AUTHORIZATION_ENDPOINT,
    AuthorizationRequest,
    AuthorizationState,
    run_checks,
)
from ..protocol.clients import Client
from ..protocol.context import Endpoints, Environment
from ..protocol.introspection import introspect_token
from ..protocol.management import authorize_registration, consume_for_delete, read_client, update_client
from ..protocol.metadata import server_metadata
from ..protocol.par import push_authorization_request
from ..protocol.params import parse_parameters
from ..protocol.policy import PolicyError, Tier
from ..protocol.registration import check_initial_access_token, parse_metadata, register
from ..protocol.responses import check_code_response, error_response, render
from ..protocol.revocation import revoke_token
from ..protocol.tokens import issue_code, token_endpoint
from ..store.base import Store, StoreUnavailable
from . import metrics, signin
from .account import account_routes
from .accounts import authenticate
from .admin import admin_routes
from .consent import ClientDisplay, describe_scopes, destination
from .csrf import csrf_token, csrf_valid
from .directory import ClientDirectory
from .fetch import Fetcher, FetchLimits
from .health import health_routes
from .http import (
    NO_STORE,
    authorization_http_response,
    json_error,
    json_response,
    media_type,
    read_body,
    read_form,
)
from .keyprotect import KeyProtector
from .keys import Keyring, KeyTimings, LoadedKey, ensure_keys, load_keyring, sweep_keys
from .outage import StoreOutage, guarded, json_unavailable, plain_unavailable, unavailable
from .pages import csp_source, page
from .problems import InteractionProblem, exception_handlers, interaction_problem_page
from .ratelimit import limited
from .references import RemoteClientKeys, RequestUriFetcher

log = logging.getLogger("jarmor.server")

INTERACTION_COOKIE = "jarmor_interaction"
_INTERACTION_GONE = "this sign-in request has expired or was already completed"
NOT_THIS_BROWSER = "this sign-in page was not opened in this browser"
REOPENED = "This sign-in is still open: enter your username and password to continue."


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(slots=True)
class Interaction:
    """A validated authorization request waiting for the user to sign in and consent."""

    request: AuthorizationRequest
    bind: str
    subject: str | None = None
    auth_time: int | None = None

    def dump(self) -> bytes:
        return orjson.dumps(
            {
                "request": self.request.to_json().decode(),
                "bind": self.bind,
                "subject": self.subject,
                "auth_time": self.auth_time,
            }
        )

    @classmethod
    def load(cls, raw: bytes) -> Interaction:
        data = orjson.loads(raw)
        data.pop("attempts", None)  # written by earlier versions; attempts are counted in signin.py now
        data["request"] = AuthorizationRequest.from_json(data["request"].encode())
        return cls(**data)


class JarmorServer:
    """Holds the environment and implements each endpoint as a thin adapter over ``jarmor.protocol``."""

    def __init__(self, config: ServerConfig, store: Store, protector: KeyProtector | None = None) -> None:
        self.config = config
        self.store = store
        self.protector = protector or KeyProtector.from_env()
        self.directory = ClientDirectory(store.clients)
        self.outage = StoreOutage(store)
        self._env: Environment | None = None
        self._keys_loaded_at = 0.0
        self._keys_clock_at: float | None = None  # env.clock() at the last load (a test clock may jump)
        self._loaded_keys: dict[str, LoadedKey] = {}
        self._refresh_lock = asyncio.Lock()
        settings = config.settings
        self.key_timings = KeyTimings.from_settings(settings, config.policy)
        self.fetcher = Fetcher(FetchLimits.for_server(settings, config.issuer))
        self.client_keys = RemoteClientKeys(
            self.fetcher, ttl=settings.client_jwks_ttl, refetch_interval=settings.client_jwks_refetch_interval
        )
        self.request_objects = RequestUriFetcher(self.fetcher)
        # flow integrity records: each hop's event is queued here and written in batches (governance/)
        self.capture = Capture.for_policy(config.policy)
        self.checkpointer = (
            Checkpointer(
                store.flows, self._checkpoint_signer, every=settings.flow_checkpoint_every,
                interval=settings.flow_checkpoint_interval,
            )
            if settings.flow_records and settings.flow_checkpoint_interval > 0 else None
        )
        self.flows = FlowRecorder(
            store.flows,
            capacity=settings.flow_record_queue,
            batch_size=settings.flow_record_batch,
            interval=settings.flow_record_interval,
            enabled=settings.flow_records,
            after_write=self._after_write,
            observe=metrics.observe_event,
        )
        self._recorder_metrics = metrics.RecorderMetrics()

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self, *, keyring: Keyring | None = None) -> None:
        """Generate missing keys and load them; ``keyring``: use this one instead (tests share one)."""
        if keyring is None:
            await ensure_keys(self.store.keys, self.protector, lock=self.store.ephemeral)
            keyring = await load_keyring(self.store.keys, self.protector, cache=self._loaded_keys)
        else:
            self._loaded_keys.update((k.record.kid, k) for k in keyring.loaded())
        self._env = Environment(
            issuer=self.config.issuer,
            endpoints=Endpoints.for_issuer(self.config.issuer),
            policy=self.config.policy,
            settings=self.config.settings,
            store=self.store,
            clients=self.directory,
            keys=keyring,
            client_keys=self.client_keys,
            request_objects=self.request_objects,
        )
        self._keys_loaded_at = time.monotonic()
        self._keys_clock_at = self._env.clock()
        metrics.observe_keys(keyring, self._keys_clock_at)

    async def _after_write(self) -> None:
        """After each flow-record batch: update the writer's metrics, sign the chain head when due."""
        self._recorder_metrics.update(self.flows.stats, self.flows.pending)
        if self.checkpointer is not None:
            await self.checkpointer.after_write()

    def _checkpoint_signer(self) -> tuple[Jwk, str] | None:
        if self._env is None:
            return None
        alg = preferred_alg(self.keyring.signing_algs())
        return (self.keyring.signing_key(alg), alg) if alg else None

    async def stop(self) -> None:
        try:
            # write the flow records still queued (SIGTERM: uvicorn has let requests in flight finish)
            await self.flows.close(timeout=self.config.settings.shutdown_grace)
            if self.checkpointer is not None:  # and sign the head they end at
                with contextlib.suppress(Exception):
                    await self.checkpointer.maybe_checkpoint(force=True)
        finally:
            await self.store.close()

    @property
    def env(self) -> Environment:
        if self._env is None:
            raise RuntimeError("server not started")
        return self._env

    @property
    def store_backend(self) -> str:
        """``sqlite``, ``postgresql``, ``memory`` (+ ``redis``): a metrics label."""
        kind = self.config.database.partition(":")[0].partition("+")[0].lower()
        return kind + ("+redis" if self.config.redis else "")

    def keys_ready(self) -> bool:
        """Started, with at least one key to sign with (readiness)."""
        return self._env is not None and bool(self.keyring.signing_algs())

    @property
    def keyring(self) -> Keyring:
        keys = self.env.keys
        assert isinstance(keys, Keyring)
        return keys

    def _keys_stale(self) -> bool:
        settings = self.config.settings
        interval = min(settings.key_check_interval, settings.key_refresh_interval)
        clock_moved = abs(self.env.clock() - (self._keys_clock_at or 0.0))
        return time.monotonic() - self._keys_loaded_at >= interval or clock_moved >= interval

    async def refresh_keys(self, *, force: bool = False) -> None:
        """Pick up keys rotated or retired by another process (``jarmor keys rotate | retire``) within
        ``key_check_interval`` of serving requests (and ``key_refresh_interval`` when idle), and record due
        lifecycle transitions (``sweep_keys``). Every process does this, so they converge on the key store's
        state. A reload costs about 0.1 ms of CPU and re-imports no key (``cache``). A failed reload keeps the
        current keyring (and is logged).
        """
        if not force and not self._keys_stale():
            return
        async with self._refresh_lock:
            if not force and not self._keys_stale():
                return  # another request refreshed while this one waited
            now = self.env.clock()
            try:
                await sweep_keys(self.store.keys, self.key_timings, now=int(now))
                self.env.keys = await load_keyring(
                    self.store.keys, self.protector, now=now, cache=self._loaded_keys
                )
                metrics.observe_keys(self.keyring, now)
            except StoreUnavailable as exc:
                self.outage.failed(exc)  # logged once per outage; the loaded keyring serves meanwhile
            except Exception:
                log.exception("reloading the server keys failed; keeping the loaded keyring")
            self._keys_loaded_at = time.monotonic()
            self._keys_clock_at = now

    async def maintain_keys(self) -> None:
        """Background loop: refresh the keyring every ``key_refresh_interval`` even when no request asks."""
        while True:
            await asyncio.sleep(self.config.settings.key_refresh_interval)
            await self.refresh_keys(force=True)
            if self.checkpointer is not None:  # a quiet chain gets its tail signed too
                await self.checkpointer.after_write()

    # -- discovery -----------------------------------------------------------------------------------

    async def metadata(self, request: Request) -> Response:
        return json_response(server_metadata(self.env), headers={"Cache-Control": "max-age=300"})

    async def jwks(self, request: Request) -> Response:
        await self.refresh_keys()
        return Response(
            orjson.dumps(self.keyring.public_jwks()),
            media_type="application/jwk-set+json",
            headers={"Cache-Control": f"max-age={self.config.settings.jwks_max_age}"},
        )

    # -- PAR -----------------------------------------------------------------------------------------

    async def par(self, request: Request) -> Response:
        await self.refresh_keys()
        env = self.env
        st = AuthorizationState(env=env, outer={}, endpoint="par", now=env.now(), flow_id=new_flow_id())
        form: dict[str, str] = {}
        try:
            form = await read_form(request)
            pushed = await push_authorization_request(env, form, request.headers.get("authorization"), state=st)
        except errors.OAuthError as err:
            self.flows.record(self.capture.from_state(
                st, stage=PAR, outcome=err.error, error=err, channel="json", claimed=form.get("client_id")
            ))
            return json_error(err)
        expires_at = st.now + int(pushed.body["expires_in"])
        self.flows.record(self.capture.from_state(st, stage=PAR, outcome=PUSHED, expires_at=expires_at))
        return json_response(pushed.body, status=201)

    # -- authorization endpoint ----------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        await self.refresh_keys()
        env = self.env
        st = AuthorizationState(env=env, outer={}, endpoint="authorization", now=env.now(), flow_id=new_flow_id())
        try:
            if request.method == "POST":
                outer = await read_form(request)
            else:
                outer = parse_parameters(request.url.query)
        except errors.OAuthError as err:
            self.flows.record(self.capture.from_state(st, stage=AUTHORIZE, outcome=err.error, error=err, channel="page"))
            return self.error_page(err)
        st.outer = outer
        try:
            req = await run_checks(AUTHORIZATION_ENDPOINT, st)
        except errors.OAuthError as err:
            event = self.capture.from_state(st, stage=AUTHORIZE, outcome=err.error, error=err)
            return await self.authorization_error(st.client, err, event, tier=st.response_tier())
        try:
            return await self._authorized(st, req, request)
        except StoreUnavailable as exc:
            # the redirect URI is verified: the client hears temporarily_unavailable (RFC 6749 §4.1.2.1)
            self.outage.failed(exc)
            refusal = unavailable().with_target(req.target())
            return await self.authorization_error(st.client, refusal, self.capture.from_request(
                req, st.client, stage=AUTHORIZE, outcome=refusal.error, at=env.now(), error=refusal
            ), tier=st.response_tier())

    async def _authorized(self, st: AuthorizationState, req: AuthorizationRequest, request: Request) -> Response:
        """A valid request: approve it (auto-approve), refuse ``prompt=none``, or start the interaction."""
        env = self.env
        if env.settings.auto_approve and _from_loopback(request):
            return await self.complete(req, env.settings.auto_approve, env.now(), client=st.client)
        if "none" in req.prompt:
            refusal = errors.LoginRequired("no signed-in session").with_target(req.target())
            event = self.capture.from_request(
                req, st.client, stage=AUTHORIZE, outcome=refusal.error, at=env.now(), error=refusal
            )
            return await self.authorization_error(st.client, refusal, event, tier=self.request_tier(req))
        interaction = Interaction(request=req, bind=secrets.token_urlsafe(16))
        ia_id = secrets.token_urlsafe(24)
        await env.store.ephemeral.put("interaction", ia_id, interaction.dump(), env.settings.interaction_lifetime)
        response = self.login_page(ia_id, interaction, st.client.name if st.client else req.client_id)
        self._set_interaction_cookie(response, ia_id, interaction.bind)
        self.flows.record(self.capture.from_request(
            req, st.client, stage=AUTHORIZE, outcome=INTERACTION, at=env.now(),
            expires_at=env.now() + env.settings.interaction_lifetime,
        ))
        return response

    def request_tier(self, req: AuthorizationRequest) -> Tier | None:
        """The effective tier a validated request recorded (its responses, errors included, must satisfy it)."""
        try:
            return self.env.policy.tier(req.tier)
        except PolicyError:
            return None

    async def authorization_error(
        self, client: Any, err: errors.OAuthError, event: FlowEvent | None = None, *, tier: Tier | None = None
    ) -> Response:
        """Deliver ``err`` (redirected when it has a verified target that ``tier`` allows, else on the error
        page); ``event``: the flow record of the refusal, completed with how it was delivered."""
        rendered = await error_response(self.env, client, err, tier=tier)
        if event is not None:
            self.flows.record(self.capture.delivered(event, rendered[1] if rendered else None))
        if rendered is None:
            return self.error_page(err)
        return authorization_http_response(rendered[0])

    def error_page(self, err: errors.OAuthError) -> Response:
        status = err.status if err.status in (400, 405, 413, 503) else 400
        return page(
            "error.html",
            {"issuer": self.env.issuer, "error": err.error, "description": err.description},
            status=status,
        )

    async def complete(
        self, req: AuthorizationRequest, subject: str, auth_time: int, *, client: Client | None = None
    ) -> Response:
        """Issue the code and deliver it in the request's response mode. ``client``: as this same request
        looked it up (auto-approve); else it is looked up now. Issuing re-reads it in any case."""
        env = self.env
        req = req if req.flow_id else replace(req, flow_id=new_flow_id())
        if client is None:
            client = await env.clients.get(req.client_id)
        err: errors.OAuthError
        if client is None or client.disabled:
            err = errors.InvalidClient("this client has been disabled", status=400)
            self.flows.record(self.capture.from_request(
                req, client, stage=CODE, outcome=err.error, at=env.now(), subject=subject, error=err
            ))
            return self.error_page(err)
        try:
            tier = check_code_response(env, client, req.tier, req.response_mode)
        except errors.OAuthError as refused:
            self.flows.record(self.capture.from_request(
                req, client, stage=CODE, outcome=refused.error, at=env.now(), subject=subject, error=refused
            ))
            return self.error_page(refused)
        try:
            issued = await issue_code(env, req, subject=subject, auth_time=auth_time, flow_id=req.flow_id)
        except errors.OAuthError as withdrawn:  # the client was offboarded, or the user disabled, meanwhile
            event = self.capture.from_request(
                req, client, stage=CODE, outcome=withdrawn.error, at=env.now(), subject=subject, error=withdrawn
            )
            if isinstance(withdrawn, errors.InvalidClient):
                self.flows.record(event)
                return self.error_page(withdrawn)
            return await self.authorization_error(client, withdrawn.with_target(req.target()), event, tier=tier)
        try:
            rendered, evidence = await render(env, client, req.target(), {"code": issued.code}, tier=tier)
        except JoseError:  # e.g. no usable encryption key at the client's jwks_uri
            err = errors.InvalidRequest("the response cannot be encrypted to this client")
            self.flows.record(self.capture.from_request(
                req, client, stage=CODE, outcome=err.error, at=env.now(), subject=subject, error=err
            ))
            return self.error_page(err)
        self.flows.record(self.capture.code_issued(req, client, subject=subject, at=env.now(), response=evidence))
        return authorization_http_response(rendered)

    # -- login and consent ---------------------------------------------------------------------------

    def _csrf(self, ia_id: str, bind: str, stage: str) -> str:
        return csrf_token(self.keyring.secret(), ia_id, bind, stage)

    def _csrf_ok(self, ia_id: str, bind: str, stage: str, token: str) -> bool:
        """Any live secret verifies: a page made before a secret rotation still submits."""
        return csrf_valid(self.keyring.secrets(), token, ia_id, bind, stage)

    def _set_interaction_cookie(self, response: Response, ia_id: str, bind: str) -> None:
        response.set_cookie(
            INTERACTION_COOKIE,
            f"{ia_id}.{bind}",
            max_age=self.env.settings.interaction_lifetime,
            path="/interaction",
            httponly=True,
            samesite="lax",
            secure=self.env.issuer.startswith("https://"),
        )

    def login_page(self, ia_id: str, ia: Interaction, client_name: str, *, error: str = "",
                   username: str = "", status: int | None = None, notice: str = "") -> Response:
        return page(
            "login.html",
            {
                "issuer": self.env.issuer,
                "client_name": client_name,
                "action": f"/interaction/{ia_id}/login",
                "csrf_token": self._csrf(ia_id, ia.bind, "login"),
                "error": error,
                "username": username,
                "notice": notice,
            },
            status=status or (200 if not error else 401),
            form_action=csp_source(ia.request.redirect_uri),  # too many failures redirect to the client
        )

    def consent_page(self, ia_id: str, ia: Interaction, client: Client | None) -> Response:
        """Written for the person deciding (``server/consent.py``): who asks, what each scope allows, whether
        the application is a third party's; the logo's origin, and only it, joins the CSP as ``img-src``."""
        req = ia.request
        display = ClientDisplay.of(client, req.client_id)
        return page(
            "consent.html",
            {
                "issuer": self.env.issuer,
                "client": display,
                "subject": ia.subject,
                "scopes": describe_scopes(req.scope, self.env.settings.scope_descriptions),
                "destination": destination(req.redirect_uri),
                "action": f"/interaction/{ia_id}/consent",
                "csrf_token": self._csrf(ia_id, ia.bind, "consent"),
            },
            form_action=csp_source(req.redirect_uri),  # the decision redirects to the client
            img_src=display.logo_source,
        )

    async def _load_interaction(self, request: Request) -> tuple[str, Interaction, str]:
        """The interaction named in the path if the cookie names it: (id, interaction, the cookie's bind)."""
        ia_id = request.path_params["ia_id"]
        # existence first, so Back after the decision (the cookie is gone by then) reads "finished"; ids are
        # 192-bit random, so this tells a browser without the cookie nothing it could use
        raw = await self.env.store.ephemeral.get("interaction", ia_id) if len(ia_id) <= 64 else None
        if raw is None:
            raise InteractionProblem(_INTERACTION_GONE, problem="finished")
        cookie = request.cookies.get(INTERACTION_COOKIE, "")
        cookie_id, _, bind = cookie.partition(".")
        if not hmac.compare_digest(cookie_id.encode(), ia_id.encode()) or not bind:
            raise InteractionProblem(NOT_THIS_BROWSER, problem="other-browser")
        return ia_id, Interaction.load(raw), bind

    async def _interaction(self, request: Request, stage: str) -> tuple[str, Interaction, dict[str, str]]:
        """Load the interaction named in the path and check the cookie binding and the CSRF token."""
        form = await read_form(request)
        ia_id, ia, bind = await self._load_interaction(request)
        if not hmac.compare_digest(bind.encode(), ia.bind.encode()) or not self._csrf_ok(
            ia_id, ia.bind, stage, form.get("csrf_token", "")
        ):
            raise InteractionProblem("invalid CSRF token", problem="form")
        return ia_id, ia, form

    async def interaction_page(self, request: Request) -> Response:
        """``GET`` of a sign-in URL (a reload, Back after a decision, a copied link): the step the interaction
        is at when it is still open in this browser, otherwise a page saying what happened and how to start
        again. Changes nothing: the forms it shows carry the usual CSRF tokens."""
        await self.refresh_keys()
        try:
            ia_id, ia, bind = await self._load_interaction(request)
            if not hmac.compare_digest(bind.encode(), ia.bind.encode()):
                raise InteractionProblem(NOT_THIS_BROWSER, problem="other-browser")
        except errors.OAuthError as err:
            return self.interaction_problem(err)
        client = await self.env.clients.get(ia.request.client_id)
        if ia.subject is None:
            return self.login_page(ia_id, ia, client.name if client else ia.request.client_id, notice=REOPENED)
        return self.consent_page(ia_id, ia, client)

    def interaction_problem(self, err: errors.OAuthError) -> Response:
        return interaction_problem_page(self.env.issuer, err)

    async def login(self, request: Request) -> Response:
        """Check a sign-in, after counting it (``signin.py``): per interaction, per client address and per
        account name, atomically and before the password is checked. The interaction's last attempt ends the
        flow with ``access_denied``; a locked address or account is refused without checking the password."""
        await self.refresh_keys()  # the CSRF MAC: a retired secret stops verifying here too
        env = self.env
        try:
            ia_id, ia, form = await self._interaction(request, "login")
        except errors.OAuthError as err:
            return self.interaction_problem(err)
        client = await env.clients.get(ia.request.client_id)
        name = client.name if client else ia.request.client_id
        username = form.get("username", "")
        limits = signin.UserLimits.from_settings(env.settings)
        ephemeral = env.store.ephemeral
        attempt = await signin.reserve(
            ephemeral,
            [(limits.interaction, ia_id), (limits.address, _client_address(request)), (limits.account, username)],
        )
        if attempt.refused is None:
            user = await authenticate(env.store.users, username, form.get("password", ""))
            if user is not None:
                await signin.succeeded(ephemeral, attempt)
                # taken, not read: an interaction a concurrent attempt has just ended stays ended
                if await ephemeral.take("interaction", ia_id) is None:
                    return self.interaction_problem(InteractionProblem(_INTERACTION_GONE, problem="finished"))
                ia.subject, ia.auth_time = user.username, env.now()
                await ephemeral.put("interaction", ia_id, ia.dump(), env.settings.interaction_lifetime)
                # post/redirect/get: the consent page lives at a GET URL, so Back or a reload after the
                # decision lands on ``interaction_page`` (which explains) instead of re-posting the password
                return RedirectResponse(f"/interaction/{ia_id}/consent", status_code=303, headers=NO_STORE)
        if attempt.count(signin.Per.INTERACTION) >= limits.interaction.max_attempts:
            # this attempt used the interaction's last one: the flow ends, delivered once
            if await ephemeral.take("interaction", ia_id) is None:
                return self.interaction_problem(InteractionProblem(_INTERACTION_GONE, problem="finished"))
            refusal = errors.AccessDenied("too many failed sign-in attempts").with_target(ia.request.target())
            event = self.capture.from_request(
                ia.request, client, stage=AUTHORIZE, outcome=refusal.error, at=env.now(), error=refusal
            )
            return await self.authorization_error(client, refusal, event, tier=self.request_tier(ia.request))
        if attempt.refused is not None:
            return self.login_page(
                ia_id, ia, name, username=username, status=429,
                error="Too many failed sign-in attempts. Try again later.",
            )
        return self.login_page(ia_id, ia, name, error="Wrong username or password.", username=username)

    async def consent(self, request: Request) -> Response:
        await self.refresh_keys()
        env = self.env
        try:
            ia_id, ia, form = await self._interaction(request, "consent")
        except errors.OAuthError as err:
            return self.interaction_problem(err)
        if ia.subject is None:
            return self.interaction_problem(InteractionProblem("sign in first", problem="not-signed-in"))
        # single use: whoever takes the interaction completes it
        if await env.store.ephemeral.take("interaction", ia_id) is None:
            return self.interaction_problem(
                InteractionProblem("this sign-in request was already completed", problem="finished")
            )
        client = await env.clients.get(ia.request.client_id)
        if form.get("decision") != "approve":
            refusal = errors.AccessDenied("the user denied the request").with_target(ia.request.target())
            event = self.capture.from_request(
                ia.request, client, stage=AUTHORIZE, outcome=refusal.error, at=env.now(), subject=ia.subject,
                error=refusal,
            )
            return await self.authorization_error(client, refusal, event, tier=self.request_tier(ia.request))
        response = await self.complete(ia.request, ia.subject, ia.auth_time or env.now())
        response.delete_cookie(INTERACTION_COOKIE, path="/interaction")
        return response

    # -- token, registration, revocation, introspection -----------------------------------------------

    async def token(self, request: Request) -> Response:
        await self.refresh_keys()
        evidence: dict[str, Any] = {}
        form: dict[str, str] = {}
        try:
            form = await read_form(request)
            result = await token_endpoint(self.env, form, request.headers.get("authorization"), evidence=evidence)
        except errors.OAuthError as err:
            self.flows.record(self.capture.token(evidence, at=self.env.now(), error=err, claimed=form.get("client_id")))
            return json_error(err)
        await self.store.clients.touch(result.client.client_id, self.env.now())  # inventory: last used
        self.flows.record(self.capture.token(
            evidence, at=self.env.now(), result_evidence=result.evidence, id_token="id_token" in result.body
        ))
        return json_response(result.body)

    async def register(self, request: Request) -> Response:
        try:
            if request.method != "POST":
                raise errors.MethodNotAllowed("use POST")
            check_initial_access_token(request.headers.get("authorization"), self.config.registration_token)
            ctype = media_type(request.headers.get("content-type"))
            if ctype != "application/json":
                raise errors.InvalidClientMetadata("content type must be application/json")
            metadata = parse_metadata(await read_body(request))
            body = await register(self.env, metadata, actor="dynamic-registration", dynamic=True)
        except errors.OAuthError as err:
            return json_error(err)
        return json_response(body, status=201)

    async def manage_client(self, request: Request) -> Response:
        """RFC 7592 client configuration endpoint: GET / PUT / DELETE ``{registration endpoint}/{client_id}``."""
        env = self.env
        client_id = request.path_params["client_id"]
        authorization = request.headers.get("authorization")
        try:
            if request.method == "GET":
                body = await read_client(env, client_id, authorization)
            elif request.method == "PUT":
                await authorize_registration(env, client_id, authorization)  # 401/403 before body errors
                ctype = media_type(request.headers.get("content-type"))
                if ctype != "application/json":
                    raise errors.InvalidClientMetadata("content type must be application/json")
                metadata = parse_metadata(await read_body(request))
                body = await update_client(env, client_id, authorization, metadata)
                self.directory.invalidate(client_id)  # new keys and metadata apply to the next request
            elif request.method == "DELETE":
                await consume_for_delete(env, client_id, authorization)
                await offboard(
                    self.store, client_id, reason="deleted by the client (RFC 7592 §2.3)",
                    by=f"client:{client_id}", now=env.now(),
                )
                self.directory.invalidate(client_id)
                return Response(status_code=204, headers={"Cache-Control": "no-store"})
            else:
                raise errors.MethodNotAllowed("use GET, PUT or DELETE")
        except errors.OAuthError as err:
            return json_error(err)
        return json_response(body)

    async def revoke(self, request: Request) -> Response:
        """RFC 7009 (``protocol/revocation.py``): 200 unless the request itself is wrong."""
        try:
            form = await read_form(request)
            await revoke_token(self.env, form, request.headers.get("authorization"))
        except errors.OAuthError as err:
            return json_error(err)
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    async def introspect(self, request: Request) -> Response:
        """RFC 7662 (``protocol/introspection.py``)."""
        try:
            form = await read_form(request)
            body = await introspect_token(self.env, form, request.headers.get("authorization"))
        except errors.OAuthError as err:
            return json_error(err)
        return json_response(body)


def build_routes(server: JarmorServer) -> list[Route]:
    """Every route, guarded against an unreachable store (``outage``): the OAuth back channel answers JSON
    ``temporarily_unavailable``, the front channel the error page, the rest a plain 503."""
    json_channel = {"/par", "/token", "/register", "/register/{client_id:path}", "/revoke", "/introspect"}
    front_channel = {"/authorize", "/interaction/{ia_id}/login", "/interaction/{ia_id}/consent"}
    routes = [
        Route("/.well-known/oauth-authorization-server", server.metadata, methods=["GET"]),
        Route("/.well-known/openid-configuration", server.metadata, methods=["GET"]),
        Route("/jwks", server.jwks, methods=["GET"]),
        Route("/par", server.par, methods=["POST"]),
        Route("/authorize", server.authorize, methods=["GET", "POST"]),
        Route("/interaction/{ia_id}/login", server.login, methods=["POST"]),
        Route("/interaction/{ia_id}/consent", server.consent, methods=["POST"]),
        Route("/interaction/{ia_id}/login", server.interaction_page, methods=["GET"]),
        Route("/interaction/{ia_id}/consent", server.interaction_page, methods=["GET"]),
        Route("/token", server.token, methods=["POST"]),
        Route("/register", server.register, methods=["POST"]),
        Route("/register/{client_id:path}", server.manage_client, methods=["GET", "PUT", "DELETE", "POST"]),
        Route("/revoke", server.revoke, methods=["POST"]),
        Route("/introspect", server.introspect, methods=["POST"]),
        *admin_routes(server),
        *account_routes(server),
        *health_routes(server),
        *([metrics.metrics_route(server.config.settings.metrics_token)] if server.config.metrics_port is None else []),
    ]

    # rate limits (ratelimit.py): per address on these, and per client on the back channel's client endpoints
    by_client = {"/par", "/token", "/revoke", "/introspect"}
    by_address = by_client | {
        "/register", "/interaction/{ia_id}/login", "/admin/login", "/account/login", "/account/login/code",
        "/account/login/passkey",
    }
    routes = [
        Route(r.path, limited(server, r.path, r.endpoint, by_client=r.path in by_client), methods=r.methods,
              name=r.name)
        if r.path in by_address else r
        for r in routes
    ]

    def answer(path: str) -> Callable[[], Response]:
        if path in json_channel:
            return json_unavailable
        if path in front_channel:
            return lambda: _unavailable_page(server)
        return plain_unavailable

    return [
        Route(r.path, guarded(r.endpoint, server.outage, answer(r.path)), methods=r.methods, name=r.name)
        for r in routes
    ]


def _unavailable_page(server: JarmorServer) -> Response:
    response = server.error_page(unavailable())
    response.headers["Retry-After"] = "5"
    return response


def create_app(config: ServerConfig, store: Store, *, protector: KeyProtector | None = None) -> Starlette:
    server = JarmorServer(config, store, protector)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        maintenance = asyncio.create_task(server.maintain_keys())
        try:
            yield
        finally:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            await server.stop()
            metrics.process_exit()

    routes = build_routes(server)
    middleware = [Middleware(metrics.RequestMetrics, routes=routes)]
    if config.trusted_proxies:  # the client address a trusted proxy reports (rate limits, sign-in limits)
        middleware.insert(0, Middleware(ProxyHeadersMiddleware, trusted_hosts=list(config.trusted_proxies)))
    app = Starlette(
        routes=routes, lifespan=lifespan, middleware=middleware, exception_handlers=exception_handlers()
    )
    app.state.jarmor = server
    return app


def _from_loopback(request: Request) -> bool:
    """Auto-approve serves only connections from this machine: the configuration already refuses a
    non-loopback ``--host``, and this holds it when the app runs under a process manager that binds
    elsewhere (the peer is the TCP peer: proxy headers are not trusted)."""
    return request.client is not None and is_loopback_host(request.client.host)
