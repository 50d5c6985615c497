"""The sans-I/O client: every decision, no sockets.

Each public operation is a generator (``Steps[T]``, see ``exchange``) that yields the HTTP requests it
needs and returns its result; ``OAuthClient`` and ``AsyncOAuthClient`` only carry the bytes. The object
holds the caches a client needs between calls (validated metadata, the server JWKS and its refetch rate
limit) and the pending-flow store; the checks themselves are the pure functions in ``callback``,
``validation``, ``id_token``, ``request_object`` and ``endpoints``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NoReturn

from jarmor.jose import (
    AlgorithmNotAllowed,
    BadSignature,
    JoseError,
    JwkSet,
    KeyNotFound,
    UnsupportedHeader,
    VerifiedJws,
    verify_jws,
)

from .callback import (
    CallbackParams,
    check_code,
    check_flow_binding,
    check_jarm_payload,
    check_plain_issuer,
    check_state,
    decrypt_jarm,
    jarm_response_token,
    parse_callback,
    peek_jws,
)
from .config import JARM_MODES, RESPONSE_MODES, ClientConfig
from .endpoints import (
    MAX_PAR_RESPONSE_BYTES,
    MAX_TOKEN_RESPONSE_BYTES,
    client_authentication,
    form_post,
    parse_par_response,
    parse_token_response,
)
from .errors import (
    AuthorizationResponseError,
    AuthorizationServerError,
    ClientError,
    ConfigurationError,
    DiscoveryError,
    IdTokenValidationError,
    JarmValidationError,
    TransportError,
    UnverifiedErrorResponse,
)
from .exchange import HttpRequest, Steps
from .id_token import check_id_token_claims
from .metadata import (
    MAX_JWKS_BYTES,
    MAX_METADATA_BYTES,
    ServerMetadata,
    discovery_urls,
    parse_jwks,
    parse_metadata,
)
from .models import (
    AuthorizationResult,
    AuthorizationStart,
    CompletedAuthorization,
    FlowState,
    TokenResponse,
)
from .mtls import with_mtls_aliases
from .pkce import new_jti, new_nonce, new_pkce, new_state
from .request_object import (
    authorization_url,
    check_acr_values,
    check_advertised,
    check_extra_params,
    check_max_age,
    encrypt_request_object,
    essential_acr_and_auth_time,
    plain_parameters,
    request_object_claims,
    sign_request_object,
)
from .store import FlowStateStore
from .trace import TraceHook
from .validation import check_audience, check_issuer, check_signing_alg, check_times, same


def _get(hop: str, url: str, max_body: int) -> HttpRequest:
    return HttpRequest(
        hop=hop, method="GET", url=url, headers=(("accept", "application/json"),), max_body=max_body
    )


class ClientCore:
    """Protocol state for one client registered at one issuer."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        store: FlowStateStore,
        clock: Callable[[], float],
        trace: TraceHook | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._clock = clock
        self._trace_hook = trace
        self.metadata: ServerMetadata | None = None
        self._jwks: JwkSet | None = None
        self._jwks_fetched_at = 0
        self._last_forced_refetch: int | None = None

    def now(self) -> int:
        return int(self._clock())

    def _trace(self, hop: str, summary: str, checks: Iterable[str] = (), **extra: Any) -> None:
        if self._trace_hook is not None:
            self._trace_hook(hop, {"summary": summary, "checks": tuple(checks), **extra})

    # -- discovery and keys (C13, C6) -------------------------------------------------------------------

    def discover(self) -> Steps[ServerMetadata]:
        """Fetch RFC 8414 metadata (falling back to OIDC Discovery only when the first URL is not served)
        and require ``issuer`` to be identical to the configured issuer (C13)."""
        cfg = self.config
        url = ""
        response = None
        for url in discovery_urls(cfg.issuer):
            response = yield _get("discovery", url, MAX_METADATA_BYTES)
            if response.status == 200:
                break
            self._trace("discovery", f"GET {url} -> HTTP {response.status}")
        if response is None or response.status != 200:
            raise DiscoveryError("no metadata document is served for the issuer", reason="http_status")
        metadata = parse_metadata(
            response.body, expected_issuer=cfg.issuer, allow_insecure_http=cfg.allow_insecure_http
        )
        if cfg.client_certificate is not None:  # RFC 8705 §5
            metadata = with_mtls_aliases(metadata, allow_insecure_http=cfg.allow_insecure_http)
        if self.metadata is not None and self.metadata.jwks_uri != metadata.jwks_uri:
            self._jwks = None
        self.metadata = metadata
        self._trace(
            "discovery",
            f"GET {url} -> 200",
            [
                "issuer == configured issuer (exact)",
                "endpoints are https" if url.startswith("https:") else "loopback http (allow_insecure_http)",
            ],
            issuer=metadata.issuer,
        )
        return metadata

    def _metadata(self) -> Steps[ServerMetadata]:
        if self.metadata is not None:
            return self.metadata
        return (yield from self.discover())

    def _fetch_jwks(self, metadata: ServerMetadata, why: str) -> Steps[JwkSet]:
        response = yield _get("jwks", metadata.jwks_uri, MAX_JWKS_BYTES)
        if response.status != 200:
            raise DiscoveryError(f"JWKS endpoint answered HTTP {response.status}", reason="jwks_unavailable")
        keys = parse_jwks(response.body)
        self._jwks = keys
        self._jwks_fetched_at = self.now()
        self._trace(
            "jwks", f"GET {metadata.jwks_uri} -> {len(keys)} keys ({why})", kids=[k.kid for k in keys.keys]
        )
        return keys

    def server_keys(self, kid: object = None) -> Steps[JwkSet]:
        """The server's JWKS from ``jwks_uri``. An unknown ``kid`` triggers one refetch, at most once per
        ``jwks_refetch_interval``; a failed refresh keeps the cached set (attack catalog A69)."""
        metadata = yield from self._metadata()
        cfg = self.config
        if self._jwks is None:
            return (yield from self._fetch_jwks(metadata, "initial fetch"))
        keys = self._jwks
        now = self.now()
        if now - self._jwks_fetched_at > cfg.jwks_max_age:
            try:
                keys = yield from self._fetch_jwks(metadata, "cache expired")
            except (DiscoveryError, TransportError) as exc:
                self._trace("jwks", f"refresh failed ({exc.reason}); keeping the cached set")
        if isinstance(kid, str) and not keys.has_kid(kid):
            last = self._last_forced_refetch
            if last is None or now - last >= cfg.jwks_refetch_interval:
                self._last_forced_refetch = now
                try:
                    keys = yield from self._fetch_jwks(metadata, f"unknown kid {kid[:64]!r}")
                except (DiscoveryError, TransportError) as exc:
                    self._trace("jwks", f"refetch failed ({exc.reason}); keeping the cached set")
            else:
                self._trace("jwks", f"unknown kid {kid[:64]!r}; refetch suppressed by the rate limit")
        return keys

    def _verify(
        self, token: str, header: Mapping[str, Any], alg: str, error: type[ClientError]
    ) -> Steps[VerifiedJws]:
        keys = yield from self.server_keys(header.get("kid"))
        try:
            return verify_jws(token, keys, algorithms=[alg])
        except BadSignature as exc:
            raise error("signature verification failed", reason="bad_signature") from exc
        except KeyNotFound as exc:
            raise error(f"no server key fits: {exc}", reason="unknown_kid") from exc
        except AlgorithmNotAllowed as exc:
            raise error(str(exc), reason="alg_mismatch") from exc
        except UnsupportedHeader as exc:
            raise error(str(exc), reason="unsupported_header") from exc
        except JoseError as exc:
            raise error(f"token refused ({exc.reason})", reason="malformed") from exc

    # -- the authorization request (C10, C14-C22) -------------------------------------------------------

    def start_authorization(
        self,
        *,
        scope: str,
        response_mode: str = "jwt",
        use_par: bool = True,
        encrypt_request: bool = False,
        max_age: int | None = None,
        acr_values: Sequence[str] | str | None = None,
        claims: Mapping[str, Any] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> Steps[AuthorizationStart]:
        """Build a signed (optionally encrypted) request object carrying every authorization parameter,
        push it (PAR) or pass it by value, store the flow, and return the URL for the user agent.

        A client without ``signing_key`` (secret only) pushes the plain parameters instead (RFC 9126 §2.1)
        or, without PAR, puts them in the query. ``max_age``, ``acr_values`` and ``claims`` (OIDC Core
        §3.1.2.1, §5.5) are recorded with the flow and checked in the ID token on the way back
        (``auth_time``, ``acr``). Keep ``AuthorizationStart.state`` in the user agent's session: the
        callback is only accepted with it.
        """
        cfg = self.config
        if cfg.redirect_uri is None:
            raise ConfigurationError("this client has no redirect_uri: it can only use client_credentials")
        redirect_uri = cfg.redirect_uri
        if response_mode not in RESPONSE_MODES:
            raise ConfigurationError(f"unsupported response_mode {response_mode!r}")
        if not isinstance(scope, str) or any(ord(c) < 0x20 or c in '"\\' for c in scope):
            raise ConfigurationError("scope must be a string of RFC 6749 §3.3 scope tokens")
        params_extra = check_extra_params(extra or {})
        max_age = check_max_age(max_age)
        acr_tuple = check_acr_values(acr_values)
        essential_acr, auth_time_required = essential_acr_and_auth_time(claims)
        openid = "openid" in scope.split()
        if not openid and (max_age is not None or acr_tuple or claims is not None):
            raise ConfigurationError("max_age, acr_values and claims need the openid scope (OIDC Core §3.1.2.1)")
        if encrypt_request and cfg.request_object_encryption_alg is None:
            raise ConfigurationError("encrypt_request needs request_object_encryption_alg")
        signed = cfg.signing_key is not None
        if encrypt_request and not signed:
            raise ConfigurationError("encrypt_request needs signing_key: a request object is signed, then encrypted")
        md = yield from self._metadata()
        check_advertised("S256", md.supported("code_challenge_methods_supported"), "code_challenge_method")
        check_advertised(response_mode, md.response_modes_supported, "response_mode")
        if signed:
            check_advertised(
                cfg.effective_request_object_signing_alg,
                md.supported("request_object_signing_alg_values_supported"),
                "request object alg",
            )
        if response_mode in JARM_MODES:
            check_advertised(
                cfg.authorization_signed_response_alg,
                md.supported("authorization_signing_alg_values_supported"),
                "JARM signing alg",
            )
        if use_par and md.pushed_authorization_request_endpoint is None:
            raise DiscoveryError("the server has no PAR endpoint", reason="par_not_supported")
        if not use_par and md.require_pushed_authorization_requests:
            raise DiscoveryError("the server requires PAR", reason="par_required")

        now = self.now()
        pkce = new_pkce()
        state = new_state()
        nonce = new_nonce() if openid else None
        params: dict[str, object] = {
            "response_type": "code",
            "client_id": cfg.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": pkce.challenge,
            "code_challenge_method": pkce.method,
            "response_mode": response_mode,
        }
        if nonce is not None:
            params["nonce"] = nonce
        if max_age is not None:
            params["max_age"] = max_age
        if acr_tuple:
            params["acr_values"] = " ".join(acr_tuple)
        if claims is not None:
            params["claims"] = dict(claims)
        params.update(params_extra)
        if signed:
            request, checks = yield from self._request_object(md, params, now, state, encrypt_request)
            carried: list[tuple[str, str]] = [("request", request)]
        else:
            carried = plain_parameters(params)
            checks = ["no signing_key: plain parameters (PKCE S256, state, nonce)"]
            self._trace("authorization_request", f"built for state {state[:8]}…", checks)

        flow = FlowState(
            issuer=md.issuer,
            client_id=cfg.client_id,
            state=state,
            nonce=nonce,
            code_verifier=pkce.verifier,
            redirect_uri=redirect_uri,
            response_mode=response_mode,
            scope=scope,
            created_at=now,
            expires_at=now + cfg.flow_lifetime,
            max_age=max_age,
            acr_values=essential_acr or acr_tuple,
            auth_time_required=auth_time_required,
        )
        request_uri: str | None = None
        if use_par:
            endpoint = md.pushed_authorization_request_endpoint or ""
            auth_form, headers = self._client_auth(md)
            form = {**dict(carried), "client_id": cfg.client_id, **auth_form}
            response = yield form_post("par", endpoint, form, headers, MAX_PAR_RESPONSE_BYTES)
            par = parse_par_response(response)
            request_uri = par.request_uri
            expires_at = now + par.expires_in
            url = authorization_url(
                md.authorization_endpoint, [("client_id", cfg.client_id), ("request_uri", request_uri)]
            )
            self._trace(
                "par",
                f"POST {endpoint} -> 201, request_uri expires in {par.expires_in}s",
                [
                    f"form fields: {', '.join(sorted(form))}",
                    "client authenticated: " + cfg.token_endpoint_auth_method,
                ],
            )
        elif signed:
            pairs = [("client_id", cfg.client_id), *carried]
            if openid:  # OIDC Core §6.1 / FAPI1 Adv 5.2.3-9: duplicate response_type and scope outside
                pairs += [("response_type", "code"), ("scope", scope)]
            url = authorization_url(md.authorization_endpoint, pairs)
            expires_at = now + cfg.request_object_lifetime
        else:
            url = authorization_url(md.authorization_endpoint, carried)
            expires_at = now + cfg.flow_lifetime
        self.store.put(flow)
        what = "client_id + request_uri" if use_par else ("client_id + request" if signed else "plain parameters")
        self._trace(
            "authorization_request",
            f"redirect the user agent to {md.authorization_endpoint}",
            [f"query carries only {what}" if use_par or signed else f"query carries {what}"],
        )
        return AuthorizationStart(url=url, state=state, expires_at=expires_at, request_uri=request_uri)

    def _request_object(
        self, md: ServerMetadata, params: Mapping[str, object], now: int, state: str, encrypt: bool
    ) -> Steps[tuple[str, list[str]]]:
        """C14-C16: sign every authorization parameter into a request object; optionally encrypt it."""
        cfg = self.config
        key = cfg.signing_key
        if key is None:  # checked by the caller; kept for the type checker
            raise ConfigurationError("signed request objects need signing_key")
        ro_alg = cfg.effective_request_object_signing_alg
        jti = new_jti()
        claims = request_object_claims(
            client_id=cfg.client_id,
            issuer=md.issuer,
            params=params,
            now=now,
            lifetime=cfg.request_object_lifetime,
            jti=jti,
        )
        request = sign_request_object(claims, key, ro_alg, typ=cfg.request_object_typ)
        checks = [
            f"signed {ro_alg} kid={key.kid}",
            f"typ={cfg.request_object_typ}",
            "iss=client_id",
            "aud=issuer (string)",
            f"exp=nbf+{cfg.request_object_lifetime}s",
            "PKCE S256",
            f"response_mode={params['response_mode']}",
        ]
        if encrypt:
            enc_alg = cfg.request_object_encryption_alg or ""
            enc = cfg.effective_request_object_encryption_enc
            check_advertised(
                enc_alg,
                md.supported("request_object_encryption_alg_values_supported"),
                "request object enc alg",
            )
            check_advertised(
                enc, md.supported("request_object_encryption_enc_values_supported"), "request object enc"
            )
            keys = yield from self.server_keys()
            request, enc_key = encrypt_request_object(request, keys, enc_alg, enc)
            checks.append(f"encrypted {enc_alg}/{enc} to server kid={enc_key.kid}")
        self._trace("request_object", f"built for state {state[:8]}…", checks)
        return request, checks

    def _client_auth(self, md: ServerMetadata) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
        """Client authentication for PAR and token requests; a fresh assertion each time (C20)."""
        cfg = self.config
        method = cfg.token_endpoint_auth_method
        check_advertised(
            method,
            md.supported("token_endpoint_auth_methods_supported") or ("client_secret_basic",),
            "token endpoint auth method",
        )
        if method == "private_key_jwt":
            check_advertised(
                cfg.signing_alg,
                md.supported("token_endpoint_auth_signing_alg_values_supported"),
                "client assertion alg",
            )
        return client_authentication(cfg, issuer=md.issuer, now=self.now(), jti=new_jti())

    # -- the authorization response (C1-C12) ------------------------------------------------------------

    def handle_callback(
        self, response: Mapping[str, str] | str, *, expected_state: str | None
    ) -> Steps[AuthorizationResult]:
        """Validate the redirect back from the authorization server against the flow of *this* user agent.

        ``expected_state`` is the ``state`` the application kept in the user agent's session when it
        started the flow (``AuthorizationStart.state``); it is required. The flow is looked up by it, never
        by the response's own ``state``, so a validly signed response to someone else's login cannot be
        delivered into this session (login CSRF: RFC 6749 §10.12, JARM §2.4 step 2). ``None`` (no login in
        progress in this session) is refused with reason ``no_session_state``.

        The flow is consumed only by a response that proved authentic for it (JARM: signature, ``iss``,
        ``aud``, ``exp`` and ``state`` verified; plain modes: ``state`` and RFC 9207 ``iss`` match). A
        forged or misdirected callback is refused and leaves the flow for the real response; each flow is
        completed at most once (atomic ``take``).
        """
        now = self.now()
        if expected_state is None or expected_state == "":
            self._trace("callback", "refused: this user agent has no login in progress")
            raise AuthorizationResponseError(
                "no login is in progress in this session (expected_state is empty): a callback is only "
                "accepted in the session that started the flow",
                reason="no_session_state",
            )
        if not isinstance(expected_state, str):
            raise ConfigurationError("expected_state must be the state string kept in the session")
        cb = parse_callback(response)
        if "response" in cb.params:
            return (yield from self._handle_jarm(cb, expected_state, now))
        if "error" in cb.params:
            self._handle_bare_error(cb, expected_state, now)
        return (yield from self._handle_plain(cb, expected_state, now))

    def _pending_flow(self, state: str, now: int, error: type[ClientError]) -> FlowState:
        """The session's pending flow, read without consuming it."""
        if len(state) > 512:
            raise error("state is malformed", reason="state_mismatch")
        flow = self.store.get(state, now)
        if flow is None:
            if self.store.was_consumed(state, now):
                raise error("this flow was already handled", reason="state_replayed")
            raise error("no pending flow has the session's state", reason="state_mismatch")
        if flow.expires_at < now:
            self.store.take(state, now)
            raise error("the flow has expired", reason="flow_expired")
        return flow

    def _consume(self, flow: FlowState, now: int, error: type[ClientError]) -> None:
        """The response is authentic for this flow: consume it, atomically (single use, A77)."""
        if self.store.take(flow.state, now) is None:
            raise error("this flow was already handled", reason="state_replayed")

    def _handle_bare_error(self, cb: CallbackParams, expected_state: str, now: int) -> NoReturn:
        """C1 / RFC 9207 §2.4: a bare ``error=`` is unauthenticated. It ends a plain-mode flow only when its
        ``state`` and ``iss`` are those of the flow (as much as a plain response can prove); a JARM flow
        waits for its signed response."""
        params = cb.params
        flow = self.store.get(expected_state, now)
        consumed = False
        if flow is not None and flow.response_mode not in JARM_MODES:
            state = params.get("state")
            iss = params.get("iss")
            if isinstance(state, str) and same(state, flow.state) and iss == flow.issuer:
                consumed = self.store.take(flow.state, now) is not None
        self._trace(
            "callback",
            "bare error response (no JARM): origin not authenticated; "
            + ("flow ended" if consumed else "flow left for the real response"),
        )
        raise UnverifiedErrorResponse(
            error=params.get("error"),
            description=params.get("error_description"),
            uri=params.get("error_uri"),
            state=params.get("state"),
        )

    def _handle_jarm(
        self, cb: CallbackParams, expected_state: str, now: int
    ) -> Steps[AuthorizationResult]:
        """JARM §2.4, in order. Nothing from the response is used until every check has passed."""
        cfg = self.config
        err = JarmValidationError
        token = jarm_response_token(cb, cfg.issuer)  # C1, C8
        jws = decrypt_jarm(token, cfg)  # C2
        checks: list[str] = []
        if jws is not token:
            checks.append(
                f"decrypted {cfg.authorization_encrypted_response_alg}/"
                f"{cfg.effective_authorization_encrypted_response_enc}"
            )
        header, claims = peek_jws(jws, err)
        flow = self._pending_flow(expected_state, now, err)
        check_flow_binding(flow, cfg, cb, err)
        check_issuer(claims, flow.issuer, err)  # C3: before any key is fetched
        check_audience(claims, flow.client_id, err, allow_azp=False)  # C4
        remaining = check_times(
            claims, now=now, skew=cfg.clock_skew, max_lifetime=cfg.max_response_lifetime, error=err
        )  # C5
        md = yield from self._metadata()
        alg = check_signing_alg(
            header,
            cfg.authorization_signed_response_alg,
            md.supported("authorization_signing_alg_values_supported"),
            err,
            setting="ClientConfig.authorization_signed_response_alg",
        )  # C6
        verified = yield from self._verify(jws, header, alg, err)
        claims = verified.claims
        check_state(claims.get("state"), flow, err)  # C7: the session's flow, not any pending one
        self._consume(flow, now, err)
        check_jarm_payload(claims)
        checks += [
            f"signature {alg} kid={verified.key.kid} verified",
            "iss == issuer",
            "aud == client_id",
            f"exp in {remaining}s",
            "state matches stored flow of this session (consumed)",
        ]
        if "error" in claims:  # C9: a verified error
            self._trace("jarm", "verified error response", checks, error=str(claims.get("error"))[:64])
            raise AuthorizationServerError(
                error=claims.get("error"),
                description=claims.get("error_description"),
                uri=claims.get("error_uri"),
                state=flow.state,
            )
        code = check_code(claims.get("code"), err)
        self._trace("jarm", f"{flow.response_mode} response accepted", checks)
        return AuthorizationResult(code=code, flow=flow, response_mode=flow.response_mode, claims=claims)

    def _handle_plain(
        self, cb: CallbackParams, expected_state: str, now: int
    ) -> Steps[AuthorizationResult]:
        """A plain ``query``/``fragment``/``form_post`` response with RFC 9207 ``iss`` (C11)."""
        err = AuthorizationResponseError
        params = cb.params
        flow = self._pending_flow(expected_state, now, err)
        check_flow_binding(flow, self.config, cb, err)
        check_state(params.get("state"), flow, err)
        required = False
        if "iss" not in params:
            md = yield from self._metadata()
            required = md.authorization_response_iss_parameter_supported
        check_plain_issuer(params, flow, required=required)
        self._consume(flow, now, err)
        code = check_code(params.get("code"), err)
        self._trace(
            "callback",
            f"{flow.response_mode} response accepted",
            [
                "iss == issuer" if "iss" in params else "iss absent (not advertised)",
                "state matches stored flow of this session (consumed)",
            ],
        )
        return AuthorizationResult(code=code, flow=flow, response_mode=flow.response_mode, claims={})

    def complete_authorization(
        self, response: Mapping[str, str] | str, *, expected_state: str | None
    ) -> Steps[CompletedAuthorization]:
        """The callback in, validated tokens and claims out: ``handle_callback``, then ``exchange_code``
        with its ID token validation (nonce, ``max_age``/``auth_time``, ``acr``). A login is complete only
        when this returns; every failure is an ``AuthorizationResponseError`` (or a ``TokenError``,
        ``TransportError``, ``DiscoveryError`` for the back channel)."""
        result = yield from self.handle_callback(response, expected_state=expected_state)
        tokens = yield from self.exchange_code(result)
        return CompletedAuthorization(tokens=tokens, claims=tokens.id_token_claims or {}, flow=result.flow)

    # -- the token endpoint (C12, C23, C24) -------------------------------------------------------------

    def exchange_code(self, result: AuthorizationResult) -> Steps[TokenResponse]:
        """Redeem a validated code at the flow issuer's ``token_endpoint`` with PKCE (C12, C21)."""
        flow = result.flow
        if flow.issuer != self.config.issuer or flow.client_id != self.config.client_id:
            raise ConfigurationError("this authorization result belongs to another client")
        form = {
            "grant_type": "authorization_code",
            "code": result.code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.code_verifier,
        }
        tokens = yield from self._token_request(form, requested_scope=flow.scope)
        if flow.openid and tokens.id_token is None:
            raise IdTokenValidationError("the token response has no id_token", reason="id_token_missing")
        if tokens.id_token is not None:
            claims = yield from self._validate_id_token(
                tokens.id_token,
                nonce=flow.nonce,
                access_token=tokens.access_token,
                code=result.code,
                state=flow.state,
                flow=flow,
            )
            tokens = replace(tokens, id_token_claims=claims)
        return tokens

    def refresh(self, refresh_token: str, *, scope: str | None = None) -> Steps[TokenResponse]:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope is not None:
            form["scope"] = scope
        tokens = yield from self._token_request(form, requested_scope=scope)
        if tokens.id_token is not None:
            claims = yield from self._validate_id_token(
                tokens.id_token, nonce=None, access_token=tokens.access_token, code=None, state=None
            )
            tokens = replace(tokens, id_token_claims=claims)
        return tokens

    def client_credentials(self, scope: str | None = None) -> Steps[TokenResponse]:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        return (yield from self._token_request(form, requested_scope=scope))

    def _token_request(self, form: Mapping[str, str], *, requested_scope: str | None) -> Steps[TokenResponse]:
        md = yield from self._metadata()
        auth_form, headers = self._client_auth(md)
        body = {**form, **auth_form}
        response = yield form_post("token", md.token_endpoint, body, headers, MAX_TOKEN_RESPONSE_BYTES)
        tokens = parse_token_response(response, requested_scope=requested_scope, now=self.now())
        self._trace(
            "token",
            f"POST {md.token_endpoint} ({form['grant_type']}) -> 200",
            ["token_type Bearer", f"expires_in {tokens.expires_in}", f"scope {tokens.scope!r}"],
        )
        return tokens

    def _validate_id_token(
        self,
        token: str,
        *,
        nonce: str | None,
        access_token: str | None,
        code: str | None,
        state: str | None,
        flow: FlowState | None = None,
    ) -> Steps[dict[str, Any]]:
        """OIDC Core §3.1.3.7 (C23): alg, iss, aud/azp, times, nonce before any key; then the signature."""
        cfg = self.config
        err = IdTokenValidationError
        if token.count(".") != 2:
            raise err("ID token is not a signed JWT", reason="malformed")
        header, claims = peek_jws(token, err)
        md = yield from self._metadata()
        alg = check_signing_alg(
            header,
            cfg.id_token_signed_response_alg,
            md.supported("id_token_signing_alg_values_supported"),
            err,
            setting="ClientConfig.id_token_signed_response_alg",
        )
        remaining = check_id_token_claims(
            claims,
            issuer=md.issuer,
            client_id=cfg.client_id,
            nonce=nonce,
            now=self.now(),
            skew=cfg.clock_skew,
            max_age=cfg.max_id_token_age,
            alg=alg,
            access_token=access_token,
            code=code,
            state=state,
            requested_max_age=flow.max_age if flow is not None else None,
            auth_time_required=flow.auth_time_required if flow is not None else False,
            acr_values=flow.acr_values if flow is not None else None,
            trusted_audiences=cfg.trusted_audiences,
        )
        verified = yield from self._verify(token, header, alg, err)
        self._trace(
            "id_token",
            "ID token accepted",
            [
                f"signature {alg} kid={verified.key.kid} verified",
                "iss == issuer",
                "aud/azp == client_id",
                f"exp in {remaining}s",
                "nonce matches flow" if nonce is not None else "no nonce expected",
            ],
        )
        return verified.claims


