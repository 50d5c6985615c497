"""The ASGI application: routes -> protocol calls -> responses. No OAuth decision is made here.

This is the adapter of the protocol core's ports: it reads bytes into typed values, hands them to
``jarmor.protocol`` (the interaction's lifecycle included: ``protocol/interaction``), and turns the outcome
into a response, cookies and pages; flow records are written from what the core returns or reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route, Router
from starlette.types import Lifespan
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ..config import ServerConfig
from ..governance.capture import Capture
from ..governance.checkpoints import Checkpointer, preferred_alg
from ..governance.lifecycle import offboard
from ..governance.recorder import FlowRecorder
from ..governance.records import AUTHORIZE, CODE, INTERACTION, PAR, PUSHED, new_flow_id
from ..jose import Jwk
from ..protocol import errors
from ..protocol.addresses import is_loopback_host
from ..protocol.authorization import AuthorizationState
from ..protocol.context import Endpoints, Environment
from ..protocol.interaction.authentication import PASSWORD
from ..protocol.interaction.lifecycle import (
    Deliver,
    GoTo,
    Lifecycle,
    Outcome,
    Ports,
    Problem,
    ShowConsent,
    ShowError,
    Transition,
    Verifier,
)
from ..protocol.interaction.machine import Event
from ..protocol.introspection import introspect_token
from ..protocol.management import authorize_registration, consume_for_delete, read_client, update_client
from ..protocol.metadata import server_metadata
from ..protocol.par import push_authorization_request
from ..protocol.params import parse_parameters
from ..protocol.registration import check_initial_access_token, parse_metadata, register
from ..protocol.revocation import revoke_token
from ..protocol.tokens import token_endpoint
from ..store.base import Store, StoreUnavailable
from . import interaction_methods, metrics
from .account import account_routes
from .accounts import PasswordVerifier
from .admin import admin_routes
from .directory import CachedClientDirectory
from .dispatch import HOT_PATHS, HotPaths
from .fetch import Fetcher, FetchLimits
from .forwarded import ForwardedMiddleware
from .health import health_routes
from .http import (
    NO_STORE,
    authorization_http_response,
    dpop_nonce_header,
    json_error,
    json_response,
    media_type,
    read_body,
    read_form,
)
from .interaction_pages import INTERACTION_COOKIE, NOT_THIS_BROWSER, InteractionPages
from .keyprotect import KeyProtector
from .keys import Keyring, KeyTimings, LoadedKey, ensure_keys, load_keyring, sweep_keys
from .mtls import ClientCertificateMiddleware, request_certificate
from .outage import StoreOutage, guarded, json_unavailable, plain_unavailable, unavailable
from .pages import page
from .problems import InteractionProblem, exception_handlers, interaction_problem_page
from .ratelimit import limited
from .references import RemoteClientKeys, RequestUriFetcher

log = logging.getLogger("jarmor.server")

def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class JarmorServer:
    """Holds the environment and implements each endpoint as a thin adapter over ``jarmor.protocol``."""

    def __init__(self, config: ServerConfig, store: Store, protector: KeyProtector | None = None) -> None:
        self.config = config
        self.store = store
        self.protector = protector or KeyProtector.from_env()
        self.directory = CachedClientDirectory(store.clients)
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
        self.pages = InteractionPages(self)

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
            mtls=self.config.mtls,
            mtls_aliases=Endpoints.for_issuer(self.config.mtls_issuer) if self.config.mtls_issuer else None,
        )
        self.lifecycle = Lifecycle(self._env, Ports(
            verifiers=self.sign_in_verifiers(),
            record=self._record_transition,
            store_failed=self.outage.failed,
        ))
        self._keys_loaded_at = time.monotonic()
        self._keys_clock_at = self._env.clock()
        metrics.observe_keys(keyring, self._keys_clock_at)

    def sign_in_verifiers(self) -> dict[str, Verifier]:
        """The end-user sign-in methods this server verifies (``protocol/interaction``), in the order the
        sign-in page offers them; each name is a ``Method`` of ``interaction.authentication.METHODS``."""
        return {
            PASSWORD.name: PasswordVerifier(self.store.users),
            **interaction_methods.verifiers(self.env, self.protector),  # passkeys, then TOTP
        }

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
            pushed = await push_authorization_request(env, form, request.headers.get("authorization"), state=st,
                                                      dpop=request.headers.getlist("dpop"),
                                                      certificate=request_certificate(request.scope),
                                                      authority=request.headers.get("host"))
        except errors.OAuthError as err:
            self.flows.record(self.capture.from_state(
                st, stage=PAR, outcome=err.error, error=err, channel="json", claimed=form.get("client_id")
            ))
            return json_error(err)
        expires_at = st.now + int(pushed.body["expires_in"])
        self.flows.record(self.capture.from_state(st, stage=PAR, outcome=PUSHED, expires_at=expires_at))
        return json_response(pushed.body, status=201, headers=dpop_nonce_header(pushed.dpop_nonce))

    # -- authorization endpoint and the interaction (protocol/interaction: the state machine) -----------

    async def authorize(self, request: Request) -> Response:
        await self.refresh_keys()
        env = self.env
        st = AuthorizationState(env=env, outer={}, endpoint="authorization", now=env.now(), flow_id=new_flow_id())
        try:
            st.outer = (await read_form(request) if request.method == "POST"
                        else parse_parameters(request.scope["query_string"]))
        except errors.OAuthError as err:
            return self.respond(await self.lifecycle.refused(st, err))
        auto = env.settings.auto_approve if env.settings.auto_approve and _from_loopback(request) else None
        return self.respond(await self.lifecycle.authorize(st, auto_approve=auto))

    def _record_transition(self, t: Transition) -> None:
        """The one place an interaction's transitions become flow records (``Rule.recorded``)."""
        capture = self.capture
        if t.checks is not None:
            event = capture.from_state(t.checks, stage=AUTHORIZE, outcome=t.error.error if t.error else INTERACTION,
                                       error=t.error)
        elif t.request is None:
            return
        elif t.event is Event.CODE_ISSUED and t.client is not None:
            event = capture.code_issued(t.request, t.client, subject=t.subject or "", at=t.at,
                                        response=t.response or {})
        else:
            event = capture.from_request(
                t.request, t.client, stage=CODE if t.rule.stage == "code" else AUTHORIZE,
                outcome=t.error.error if t.error else INTERACTION, at=t.at, subject=t.subject, error=t.error,
                expires_at=t.expires_at,
            )
        self.flows.record(capture.delivered(event, t.response) if t.error is not None else event)

    def respond(self, outcome: Outcome) -> Response:
        """An interaction outcome as HTTP: a page, a post/redirect/get, or the authorization response."""
        if isinstance(outcome, Deliver):
            return authorization_http_response(outcome.response)
        if isinstance(outcome, ShowError):
            return self.error_page(outcome.error)
        if isinstance(outcome, Problem):
            return self.interaction_problem(InteractionProblem(outcome.description, problem=outcome.kind))
        if isinstance(outcome, GoTo):
            # post/redirect/get: the next step lives at a GET URL, so Back or a reload after the decision
            # lands on ``interaction_page`` (which explains) instead of re-posting the credentials
            return RedirectResponse(f"/interaction/{outcome.ia_id}/{outcome.step}", status_code=303,
                                    headers=NO_STORE)
        if isinstance(outcome, ShowConsent):
            return self.pages.consent_page(outcome.ia_id, outcome.interaction, outcome.client)
        response = self.pages.login_page(outcome)
        if outcome.started:
            self.pages.set_cookie(response, outcome.ia_id, outcome.interaction.bind)
        return response

    def error_page(self, err: errors.OAuthError) -> Response:
        status = err.status if err.status in (400, 405, 413, 503) else 400
        return page(
            "error.html",
            {"issuer": self.env.issuer, "error": err.error, "description": err.description},
            status=status,
        )

    async def interaction_page(self, request: Request) -> Response:
        """``GET`` of a sign-in URL (a reload, Back after a decision, a copied link): the step the interaction
        is at when it is still open in this browser, otherwise a page saying what happened and how to start
        again. Changes nothing: the forms it shows carry the usual CSRF tokens."""
        await self.refresh_keys()
        try:
            ia_id, ia, bind = await self.pages.load(request)
            if not hmac.compare_digest(bind.encode(), ia.bind.encode()):
                raise InteractionProblem(NOT_THIS_BROWSER, problem="other-browser")
        except errors.OAuthError as err:
            return self.interaction_problem(err)
        return self.respond(await self.lifecycle.current_page(ia_id, ia))

    def interaction_problem(self, err: errors.OAuthError) -> Response:
        return interaction_problem_page(self.env.issuer, err)

    async def login(self, request: Request) -> Response:
        """A sign-in form: the method it names (``password`` by default) is counted and checked by the
        lifecycle (``protocol/interaction/lifecycle.Lifecycle.sign_in``)."""
        await self.refresh_keys()  # the CSRF MAC: a retired secret stops verifying here too
        try:
            ia_id, ia, form = await self.pages.posted(request, "login")
        except errors.OAuthError as err:
            return self.interaction_problem(err)
        method = form.get("method", PASSWORD.name)
        return self.respond(await self.lifecycle.sign_in(ia_id, ia, method, form, _client_address(request)))

    async def consent(self, request: Request) -> Response:
        await self.refresh_keys()
        try:
            ia_id, ia, form = await self.pages.posted(request, "consent")
        except errors.OAuthError as err:
            return self.interaction_problem(err)
        outcome = await self.lifecycle.decide(ia_id, ia, form.get("decision") == "approve")
        response = self.respond(outcome)
        if not isinstance(outcome, Problem):
            response.delete_cookie(INTERACTION_COOKIE, path="/interaction")
        return response

    # -- token, registration, revocation, introspection -----------------------------------------------

    async def token(self, request: Request) -> Response:
        await self.refresh_keys()
        evidence: dict[str, Any] = {}
        form: dict[str, str] = {}
        try:
            form = await read_form(request)
            result = await token_endpoint(self.env, form, request.headers.get("authorization"), evidence=evidence,
                                          dpop=request.headers.getlist("dpop"),
                                          certificate=request_certificate(request.scope),
                                          authority=request.headers.get("host"))
        except errors.OAuthError as err:
            self.flows.record(self.capture.token(evidence, at=self.env.now(), error=err, claimed=form.get("client_id")))
            return json_error(err)
        await self.store.clients.touch(result.client.client_id, self.env.now())  # inventory: last used
        self.flows.record(self.capture.token(
            evidence, at=self.env.now(), result_evidence=result.evidence, id_token="id_token" in result.body
        ))
        return json_response(result.body, headers=dpop_nonce_header(result.dpop_nonce))

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
            await revoke_token(self.env, form, request.headers.get("authorization"),
                               certificate=request_certificate(request.scope))
        except errors.OAuthError as err:
            return json_error(err)
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    async def introspect(self, request: Request) -> Response:
        """RFC 7662 (``protocol/introspection.py``)."""
        try:
            form = await read_form(request)
            body = await introspect_token(self.env, form, request.headers.get("authorization"),
                                          certificate=request_certificate(request.scope))
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
        reader = ForwardedMiddleware if config.forwarded_header == "forwarded" else ProxyHeadersMiddleware
        middleware.insert(0, Middleware(reader, trusted_hosts=list(config.trusted_proxies)))
    if config.mtls:  # outermost: it judges the TCP peer before the proxy-header reader rewrites it
        middleware.insert(0, Middleware(
            ClientCertificateMiddleware, trusted_proxies=config.trusted_proxies, ca_certs=config.ssl_ca_certs
        ))
    return starlette_app(server, routes, middleware=middleware, lifespan=lifespan)


def starlette_app(
    server: JarmorServer,
    routes: list[Route],
    *,
    middleware: Sequence[Middleware] = (),
    lifespan: Lifespan[Starlette] | None = None,
    hot_paths: Collection[str] = HOT_PATHS,
) -> Starlette:
    """The Starlette application of ``routes``: ``middleware``, the error pages of ``problems``, and a router
    that serves ``hot_paths`` through the thin dispatch (``dispatch.HotPaths``; ``()``: the plain router)."""
    app = Starlette(middleware=middleware, exception_handlers=exception_handlers())
    thin = [Middleware(HotPaths, routes=routes, paths=hot_paths)] if hot_paths else None
    app.router = Router(routes, lifespan=lifespan, middleware=thin)
    app.state.jarmor = server
    return app


def _from_loopback(request: Request) -> bool:
    """Auto-approve serves only connections from this machine: the configuration already refuses a
    non-loopback ``--host``, and this holds it when the app runs under a process manager that binds
    elsewhere (the peer is the TCP peer: proxy headers are not trusted)."""
    return request.client is not None and is_loopback_host(request.client.host)
