"""The sans-I/O client: every decision, no sockets.

Each public operation is a generator (``Steps[T]``, see ``exchange``) that yields the HTTP requests it
needs and returns its result; ``OAuthClient`` and ``AsyncOAuthClient`` only carry the bytes. The object
holds the caches a client needs between calls (validated metadata, the server JWKS and its refetch rate
limit, the DPoP key and the servers' nonces) and the pending-flow store; the checks themselves are the pure
functions in ``authorization``, ``callback``, ``validation``, ``id_token``, ``request_object``,
``endpoints`` and ``dpop``. The class is layered only to keep modules short: ``base.CoreBase`` (metadata,
keys, client authentication, DPoP on the back channel), ``responses.ResponseSteps`` (the authorization
response, ID tokens), and here the authorization request, the token endpoint and protected resources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .authorization import (
    AuthorizationArgs,
    authorization_params,
    check_authorization_args,
    check_server_support,
    new_flow,
)
from .base import Form
from .config import check_url
from .dpop import rs_nonce_challenge, step_up_challenge
from .endpoints import (
    MAX_PAR_RESPONSE_BYTES,
    MAX_TOKEN_RESPONSE_BYTES,
    parse_par_response,
    parse_token_response,
)
from .errors import ConfigurationError, IdTokenValidationError
from .exchange import Steps
from .metadata import ServerMetadata
from .models import AuthorizationResult, AuthorizationStart, CompletedAuthorization, TokenResponse
from .pkce import new_jti, new_nonce, new_pkce, new_state
from .request_object import (
    authorization_url,
    check_advertised,
    encrypt_request_object,
    plain_parameters,
    request_object_claims,
    sign_request_object,
)
from .responses import ResponseSteps

_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")  # RFC 9110 §9.1 token
_ACCESS_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{1,8192}=*")  # RFC 6750 §2.1 b64token


class ClientCore(ResponseSteps):
    """Protocol state for one client registered at one issuer."""

    # -- the authorization request (C10, C14-C22; RFC 9449 §10) ----------------------------------------

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
        (``auth_time``, ``acr``). A DPoP client binds the code to its key: by the proof on the PAR
        request, or by ``dpop_jkt`` without PAR when ``send_dpop_jkt`` is set (RFC 9449 §10). Keep
        ``AuthorizationStart.state`` in the user agent's session: the callback is only accepted with it.
        """
        cfg = self.config
        args = check_authorization_args(
            cfg,
            scope=scope,
            response_mode=response_mode,
            use_par=use_par,
            encrypt_request=encrypt_request,
            max_age=max_age,
            acr_values=acr_values,
            claims=claims,
            extra=extra,
        )
        md = yield from self._metadata()
        check_server_support(md, cfg, args)
        now = self.now()
        pkce = new_pkce()
        state = new_state()
        nonce = new_nonce() if args.openid else None
        bound = self.dpop.jkt if self.dpop is not None and (use_par or cfg.send_dpop_jkt) else None
        params = authorization_params(
            cfg, args, state=state, nonce=nonce, pkce=pkce, dpop_jkt=None if use_par else bound
        )
        flow = new_flow(
            cfg, args, issuer=md.issuer, state=state, nonce=nonce, pkce=pkce, now=now, dpop_jkt=bound
        )
        request_uri: str | None = None
        if use_par:
            request_uri, expires_at = yield from self._push(md, args, params, state)
            url = authorization_url(
                md.authorization_endpoint, [("client_id", cfg.client_id), ("request_uri", request_uri)]
            )
        else:
            carried = yield from self._carried(md, args, params, state)
            pairs = carried
            if cfg.signs_requests:
                pairs = [("client_id", cfg.client_id), *carried]
                if args.openid:  # OIDC Core §6.1 / FAPI1 Adv 5.2.3-9: duplicate response_type and scope
                    pairs += [("response_type", "code"), ("scope", scope)]
            url = authorization_url(md.authorization_endpoint, pairs)
            lifetime = cfg.request_object_lifetime if cfg.signs_requests else cfg.flow_lifetime
            expires_at = now + lifetime
        self.store.put(flow)
        what = (
            "client_id + request_uri"
            if use_par
            else ("client_id + request" if cfg.signs_requests else "plain parameters")
        )
        self._trace(
            "authorization_request",
            f"redirect the user agent to {md.authorization_endpoint}",
            [f"query carries only {what}" if use_par or cfg.signs_requests else f"query carries {what}"],
        )
        return AuthorizationStart(url=url, state=state, expires_at=expires_at, request_uri=request_uri)

    def _carried(
        self, md: ServerMetadata, args: AuthorizationArgs, params: Mapping[str, object], state: str
    ) -> Steps[list[tuple[str, str]]]:
        """The parameters as they travel: one signed (optionally encrypted) request object, or plain."""
        if self.config.signs_requests:
            request, _ = yield from self._request_object(md, params, self.now(), state, args.encrypt_request)
            return [("request", request)]
        checks = ["no signing_key: plain parameters (PKCE S256, state, nonce)"]
        self._trace("authorization_request", f"built for state {state[:8]}…", checks)
        return plain_parameters(params)

    def _push(
        self, md: ServerMetadata, args: AuthorizationArgs, params: Mapping[str, object], state: str
    ) -> Steps[tuple[str, int]]:
        """RFC 9126 §2: push the request; returns ``request_uri`` and when it expires."""
        cfg = self.config
        endpoint = md.pushed_authorization_request_endpoint or ""
        sent: list[str] = []

        def build() -> Steps[Form]:
            carried = yield from self._carried(md, args, params, state)
            auth_form, headers = self._client_auth(md)
            form = {**dict(carried), "client_id": cfg.client_id, **auth_form}
            sent[:] = sorted(form)
            return form, headers

        now = self.now()
        response = yield from self._post("par", endpoint, build, MAX_PAR_RESPONSE_BYTES, md)
        par = parse_par_response(response)
        checks = [f"form fields: {', '.join(sent)}", "client authenticated: " + cfg.token_endpoint_auth_method]
        if self.dpop is not None:
            checks.append(f"DPoP proof {self.dpop.alg}: code bound to jkt {self.dpop.jkt}")
        self._trace(
            "par", f"POST {endpoint} -> 201, request_uri expires in {par.expires_in}s", checks
        )
        return par.request_uri, now + par.expires_in

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

    # -- the token endpoint (C12, C23, C24; RFC 9449 §5) -----------------------------------------------

    def exchange_code(self, result: AuthorizationResult) -> Steps[TokenResponse]:
        """Redeem a validated code at the flow issuer's ``token_endpoint`` with PKCE (C12, C21), and with
        a proof of the DPoP key the code is bound to."""
        flow = result.flow
        if flow.issuer != self.config.issuer or flow.client_id != self.config.client_id:
            raise ConfigurationError("this authorization result belongs to another client")
        if flow.dpop_jkt is not None and (self.dpop is None or self.dpop.jkt != flow.dpop_jkt):
            raise ConfigurationError("this code is bound to another DPoP key than this client's (RFC 9449 §10)")
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
        """Every grant carries a DPoP proof when the client uses DPoP (RFC 9449 §5), and the answer must
        then be a DPoP-bound token (C32)."""
        cfg = self.config
        md = yield from self._metadata()

        def build() -> Steps[Form]:
            auth_form, headers = self._client_auth(md)
            return {**form, **auth_form}, headers
            yield  # pragma: no cover - a generator that sends nothing itself

        response = yield from self._post("token", md.token_endpoint, build, MAX_TOKEN_RESPONSE_BYTES, md)
        tokens = parse_token_response(
            response,
            requested_scope=requested_scope,
            now=self.now(),
            dpop=self.dpop is not None,
            allow_bearer=cfg.allow_bearer_downgrade,
        )
        checks = [f"token_type {tokens.token_type}", f"expires_in {tokens.expires_in}", f"scope {tokens.scope!r}"]
        if self.dpop is not None:
            checks.insert(0, f"DPoP proof {self.dpop.alg} jkt={self.dpop.jkt}")
        self._trace("token", f"POST {md.token_endpoint} ({form['grant_type']}) -> 200", checks)
        return tokens

    # -- protected resources (RFC 6750 §2.1; RFC 9449 §7, §9) ------------------------------------------

    def resource_headers(self, method: str, url: str, token: TokenResponse | str) -> list[tuple[str, str]]:
        """``Authorization`` (and ``DPoP``) headers for one request to a protected resource.

        A DPoP-bound token (``token_type`` DPoP, or a bare string when the client uses DPoP) goes with the
        ``DPoP`` scheme and a fresh proof carrying ``ath`` and the nonce last seen from that origin
        (RFC 9449 §7.1); it never falls back to ``Bearer`` (§7.2).
        """
        cfg = self.config
        check_url(url, what="resource URL", allow_insecure_http=cfg.allow_insecure_http, error=ConfigurationError)
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            raise ConfigurationError("method must be an HTTP method name")
        if isinstance(token, TokenResponse):
            access_token, scheme = token.access_token, token.token_type
        else:
            access_token, scheme = token, "DPoP" if self.dpop is not None else "Bearer"
        if not isinstance(access_token, str) or not _ACCESS_TOKEN.fullmatch(access_token):
            raise ConfigurationError("the access token is not an RFC 6750 b64token")
        if scheme != "DPoP":
            return [("authorization", f"Bearer {access_token}")]
        if self.dpop is None:
            raise ConfigurationError("a DPoP-bound token needs a client configured with dpop=True")
        proof = self.dpop.proof(method, url, now=self.now(), access_token=access_token)
        return [("authorization", f"DPoP {access_token}"), ("dpop", proof)]

    def resource_response(
        self, url: str, status: int, www_authenticate: Iterable[str], dpop_nonce: Iterable[str]
    ) -> bool:
        """Read a protected resource's answer: remember its ``DPoP-Nonce`` (§8.2, §9) and say whether the
        request should be sent once more with it (401 ``use_dpop_nonce``, §9). Drivers retry only once."""
        if self.dpop is None:
            return False
        nonces = list(dpop_nonce)
        self.dpop.remember(url, nonces)
        retry = rs_nonce_challenge(status, www_authenticate, nonces)
        if retry:
            self._trace("resource", f"{url[:128]} -> 401 use_dpop_nonce: retrying once with the nonce")
        return retry

    def resource_step_up(self, url: str, status: int, www_authenticate: Iterable[str]) -> None:
        """Raise ``StepUpRequired`` for a 401 ``insufficient_user_authentication`` (RFC 9470 §3); the
        caller starts a new authorization with ``err.authorization_kwargs()`` (§4)."""
        err = step_up_challenge(status, www_authenticate)
        if err is not None:
            wanted = f"acr_values={' '.join(err.acr_values)!r} max_age={err.max_age}"
            self._trace("resource", f"{url[:128]} -> 401 insufficient_user_authentication: {wanted}")
            raise err
