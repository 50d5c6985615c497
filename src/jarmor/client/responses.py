"""The authorization response and the ID token: the steps of the sans-I/O core that judge what the
authorization server sent back (C1-C12, C23). See ``core`` for the whole client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from .base import CoreBase
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
from .config import JARM_MODES
from .errors import (
    AuthorizationResponseError,
    AuthorizationServerError,
    ClientError,
    ConfigurationError,
    IdTokenValidationError,
    JarmValidationError,
    UnverifiedErrorResponse,
)
from .exchange import Steps
from .id_token import check_id_token_claims
from .models import AuthorizationResult, FlowState
from .validation import check_audience, check_issuer, check_signing_alg, check_times, same


class ResponseSteps(CoreBase):
    """Handling the callback and validating ID tokens."""

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
