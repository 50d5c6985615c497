"""``OAuthClient`` (``httpx.Client``) and ``AsyncOAuthClient`` (``httpx.AsyncClient``): thin drivers that
run the sans-I/O ``ClientCore`` steps. All protocol logic lives in the core; these only move bytes, never
follow redirects and cap response sizes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from .config import ClientConfig, ResponseMode
from .core import ClientCore
from .errors import TransportError
from .exchange import HttpRequest, HttpResponse, Steps
from .metadata import ServerMetadata
from .models import AuthorizationResult, AuthorizationStart, CompletedAuthorization, TokenResponse
from .mtls import tls_context
from .store import FlowStateStore, MemoryFlowStateStore
from .trace import TraceHook

if TYPE_CHECKING:
    from jarmor.jose import Jwk

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(5.0)


def _too_large(request: HttpRequest) -> TransportError:
    return TransportError(
        f"{request.hop}: response larger than {request.max_body} bytes",
        hop=request.hop,
        reason="response_too_large",
    )


def _check_length(request: HttpRequest, response: httpx.Response) -> None:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > request.max_body:
        raise _too_large(request)


def _result(response: httpx.Response, body: bytearray) -> HttpResponse:
    return HttpResponse(
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        body=bytes(body),
    )


def _send(http: httpx.Client, request: HttpRequest) -> HttpResponse:
    try:
        with http.stream(
            request.method,
            request.url,
            headers=list(request.headers),
            content=request.body,
            follow_redirects=False,
        ) as response:
            _check_length(request, response)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > request.max_body:
                    raise _too_large(request)
            return _result(response, body)
    except httpx.HTTPError as exc:
        raise TransportError(f"{request.hop}: {type(exc).__name__}", hop=request.hop) from exc


async def _send_async(http: httpx.AsyncClient, request: HttpRequest) -> HttpResponse:
    try:
        async with http.stream(
            request.method,
            request.url,
            headers=list(request.headers),
            content=request.body,
            follow_redirects=False,
        ) as response:
            _check_length(request, response)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > request.max_body:
                    raise _too_large(request)
            return _result(response, body)
    except httpx.HTTPError as exc:
        raise TransportError(f"{request.hop}: {type(exc).__name__}", hop=request.hop) from exc


def _merge(headers: Any, ours: list[tuple[str, str]]) -> httpx.Headers:
    """The caller's headers with ``Authorization``/``DPoP`` replaced by the library's."""
    merged = httpx.Headers(headers)
    for name, value in ours:
        merged[name] = value
    return merged


def _challenge(core: ClientCore, url: str, response: httpx.Response) -> bool:
    return core.resource_response(
        url,
        response.status_code,
        response.headers.get_list("www-authenticate"),
        response.headers.get_list("dpop-nonce"),
    )


def _checked(core: ClientCore, url: str, response: httpx.Response) -> httpx.Response:
    """The response, unless it is an RFC 9470 step-up challenge (then ``StepUpRequired`` is raised)."""
    core.resource_step_up(url, response.status_code, response.headers.get_list("www-authenticate"))
    return response


def _core(
    config: ClientConfig, store: FlowStateStore | None, clock: Callable[[], float], trace: TraceHook | None
) -> ClientCore:
    return ClientCore(
        config, store=store if store is not None else MemoryFlowStateStore(), clock=clock, trace=trace
    )


def _tls(config: ClientConfig) -> dict[str, Any]:
    """httpx's ``verify``: the client certificate (RFC 8705) and the CA file, when configured."""
    context = tls_context(config.client_certificate, config.tls_ca_certs)
    return {} if context is None else {"verify": context}


class OAuthClient:
    """A relying party of one authorization server, over ``httpx.Client``.

    ``store`` keeps pending flows (default: in memory, single process). ``trace`` receives
    ``(hop, details)`` for every hop (see ``jarmor.client.trace``). ``http`` may be supplied (e.g. with a
    custom transport); it is then not closed by ``close()``.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        http: httpx.Client | None = None,
        store: FlowStateStore | None = None,
        clock: Callable[[], float] = time.time,
        trace: TraceHook | None = None,
    ) -> None:
        self.core = _core(config, store, clock, trace)
        self._http = http if http is not None else httpx.Client(timeout=DEFAULT_TIMEOUT, **_tls(config))
        self._owns_http = http is None

    def _run(self, steps: Steps[T]) -> T:
        try:
            request = next(steps)
            while True:
                try:
                    response = _send(self._http, request)
                except TransportError as exc:
                    request = steps.throw(exc)
                else:
                    request = steps.send(response)
        except StopIteration as done:
            return cast(T, done.value)
        finally:
            steps.close()  # on cancellation or a foreign error, unwind the core's pending step

    @property
    def config(self) -> ClientConfig:
        return self.core.config

    @property
    def metadata(self) -> ServerMetadata | None:
        return self.core.metadata

    def discover(self) -> ServerMetadata:
        return self._run(self.core.discover())

    def start_authorization(
        self,
        *,
        scope: str,
        response_mode: ResponseMode = "jwt",
        use_par: bool = True,
        encrypt_request: bool = False,
        max_age: int | None = None,
        acr_values: Sequence[str] | str | None = None,
        claims: Mapping[str, Any] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> AuthorizationStart:
        """See ``ClientCore.start_authorization``. Keep the returned ``state`` in the user's session."""
        return self._run(
            self.core.start_authorization(
                scope=scope,
                response_mode=response_mode,
                use_par=use_par,
                encrypt_request=encrypt_request,
                max_age=max_age,
                acr_values=acr_values,
                claims=claims,
                extra=extra,
            )
        )

    def complete_authorization(
        self, response: Mapping[str, str] | str, *, expected_state: str | None
    ) -> CompletedAuthorization:
        """The callback in, validated tokens and ID token claims out (``ClientCore.complete_authorization``).
        ``expected_state`` is the state kept in this user's session; it is required."""
        return self._run(self.core.complete_authorization(response, expected_state=expected_state))

    def handle_callback(
        self, response: Mapping[str, str] | str, *, expected_state: str | None
    ) -> AuthorizationResult:
        """Validate the callback only (``ClientCore.handle_callback``); prefer ``complete_authorization``."""
        return self._run(self.core.handle_callback(response, expected_state=expected_state))

    def exchange_code(self, result: AuthorizationResult) -> TokenResponse:
        return self._run(self.core.exchange_code(result))

    def refresh(self, refresh_token: str, *, scope: str | None = None) -> TokenResponse:
        return self._run(self.core.refresh(refresh_token, scope=scope))

    def client_credentials(self, scope: str | None = None) -> TokenResponse:
        return self._run(self.core.client_credentials(scope))

    def request(
        self, method: str, url: str, token: TokenResponse | str, *, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        """Call a protected resource with ``token``: ``Authorization: DPoP`` and a proof with ``ath`` for a
        DPoP-bound token (RFC 9449 §7), ``Bearer`` otherwise. A 401 ``use_dpop_nonce`` is retried once
        with the resource server's nonce (§9). ``kwargs`` go to ``httpx.Client.request`` (``json``,
        ``content``, ``params`` ...); redirects are not followed. A 401 ``insufficient_user_authentication``
        raises ``StepUpRequired`` (RFC 9470 §3); any other response is returned as it is."""
        for attempt in (1, 2):
            ours = self.core.resource_headers(method, url, token)
            response = self._http.request(
                method, url, headers=_merge(headers, ours), follow_redirects=False, **kwargs
            )
            if attempt == 2 or not _challenge(self.core, url, response):
                return _checked(self.core, url, response)
            response.close()
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def dpop_key(self) -> Jwk | None:
        """The DPoP private key (generated when none was configured); keep it to reuse bound tokens."""
        return self.core.dpop.key if self.core.dpop is not None else None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncOAuthClient:
    """``OAuthClient`` over ``httpx.AsyncClient``; the same core, the same checks, ``await``-able methods."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        http: httpx.AsyncClient | None = None,
        store: FlowStateStore | None = None,
        clock: Callable[[], float] = time.time,
        trace: TraceHook | None = None,
    ) -> None:
        self.core = _core(config, store, clock, trace)
        self._http = http if http is not None else httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, **_tls(config))
        self._owns_http = http is None

    async def _run(self, steps: Steps[T]) -> T:
        try:
            request = next(steps)
            while True:
                try:
                    response = await _send_async(self._http, request)
                except TransportError as exc:
                    request = steps.throw(exc)
                else:
                    request = steps.send(response)
        except StopIteration as done:
            return cast(T, done.value)
        finally:
            steps.close()  # on cancellation or a foreign error, unwind the core's pending step

    @property
    def config(self) -> ClientConfig:
        return self.core.config

    @property
    def metadata(self) -> ServerMetadata | None:
        return self.core.metadata

    async def discover(self) -> ServerMetadata:
        return await self._run(self.core.discover())

    async def start_authorization(
        self,
        *,
        scope: str,
        response_mode: ResponseMode = "jwt",
        use_par: bool = True,
        encrypt_request: bool = False,
        max_age: int | None = None,
        acr_values: Sequence[str] | str | None = None,
        claims: Mapping[str, Any] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> AuthorizationStart:
        """See ``ClientCore.start_authorization``. Keep the returned ``state`` in the user's session."""
        return await self._run(
            self.core.start_authorization(
                scope=scope,
                response_mode=response_mode,
                use_par=use_par,
                encrypt_request=encrypt_request,
                max_age=max_age,
                acr_values=acr_values,
                claims=claims,
                extra=extra,
            )
        )

    async def complete_authorization(
        self, response: Mapping[str, str] | str, *, expected_state: str | None
    ) -> CompletedAuthorization:
        """The callback in, validated tokens and ID token claims out (``ClientCore.complete_authorization``).
        ``expected_state`` is the state kept in this user's session; it is required."""
        return await self._run(self.core.complete_authorization(response, expected_state=expected_state))

    async def handle_callback(
        self, response: Mapping[str, str] | str, *, expected_state: str | None
    ) -> AuthorizationResult:
        """Validate the callback only (``ClientCore.handle_callback``); prefer ``complete_authorization``."""
        return await self._run(self.core.handle_callback(response, expected_state=expected_state))

    async def exchange_code(self, result: AuthorizationResult) -> TokenResponse:
        return await self._run(self.core.exchange_code(result))

    async def refresh(self, refresh_token: str, *, scope: str | None = None) -> TokenResponse:
        return await self._run(self.core.refresh(refresh_token, scope=scope))

    async def client_credentials(self, scope: str | None = None) -> TokenResponse:
        return await self._run(self.core.client_credentials(scope))

    async def request(
        self, method: str, url: str, token: TokenResponse | str, *, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        """``OAuthClient.request`` over ``httpx.AsyncClient``."""
        for attempt in (1, 2):
            ours = self.core.resource_headers(method, url, token)
            response = await self._http.request(
                method, url, headers=_merge(headers, ours), follow_redirects=False, **kwargs
            )
            if attempt == 2 or not _challenge(self.core, url, response):
                return _checked(self.core, url, response)
            await response.aclose()
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def dpop_key(self) -> Jwk | None:
        """The DPoP private key (generated when none was configured); keep it to reuse bound tokens."""
        return self.core.dpop.key if self.core.dpop is not None else None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncOAuthClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
