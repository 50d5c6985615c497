"""The part of the sans-I/O core every operation shares: metadata, the server's keys, client
authentication and the back-channel POST with its DPoP proof (RFC 9449).

``ClientCore`` (``core``) builds on this class with the authorization request and the token endpoint, and
``ResponseSteps`` (``responses``) with the authorization response; the split only keeps modules short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

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

from .config import ClientConfig
from .dpop import DPoP, as_nonce_challenge, response_nonces
from .endpoints import client_authentication, form_post
from .errors import ClientError, DiscoveryError, TransportError
from .exchange import HttpRequest, HttpResponse, Steps
from .metadata import (
    MAX_JWKS_BYTES,
    MAX_METADATA_BYTES,
    ServerMetadata,
    discovery_urls,
    parse_jwks,
    parse_metadata,
)
from .mtls import with_mtls_aliases
from .pkce import new_jti
from .request_object import check_advertised
from .store import FlowStateStore
from .trace import TraceHook

Form = tuple[dict[str, str], tuple[tuple[str, str], ...]]  # form fields and extra headers of one POST


def _get(hop: str, url: str, max_body: int) -> HttpRequest:
    return HttpRequest(
        hop=hop, method="GET", url=url, headers=(("accept", "application/json"),), max_body=max_body
    )


class CoreBase:
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
        self.dpop: DPoP | None = None
        if config.dpop:  # one proof key per client, kept for its life (RFC 9449 §5)
            self.dpop = DPoP(config.dpop_private_key, config.dpop_signing_alg)

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


    def _client_auth(self, md: ServerMetadata) -> Form:
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

    # -- back-channel POSTs with DPoP (RFC 9449 §5, §8, §10.1) -----------------------------------------

    def _post(
        self, hop: str, url: str, build: Callable[[], Steps[Form]], max_body: int, md: ServerMetadata
    ) -> Steps[HttpResponse]:
        """POST a form built by ``build`` (rebuilt for a retry: fresh assertion, fresh request object),
        with a DPoP proof when the client uses DPoP. A ``use_dpop_nonce`` answer is retried once with
        the server's nonce (C31); a second one goes back to the caller, which reports it."""
        dpop = self.dpop
        if dpop is not None:
            check_advertised(
                dpop.alg, md.supported("dpop_signing_alg_values_supported") or (dpop.alg,), "DPoP proof alg"
            )
        for attempt in (1, 2):
            form, headers = yield from build()
            if dpop is not None:
                headers = (*headers, ("dpop", dpop.proof("POST", url, now=self.now())))
            response = yield form_post(hop, url, form, headers, max_body)
            if dpop is None:
                return response
            dpop.remember(url, response_nonces(response))
            if attempt == 2 or not as_nonce_challenge(response):
                return response
            self._trace(hop, f"POST {url} -> 400 use_dpop_nonce: retrying once with the server's nonce")
        raise AssertionError("unreachable")  # pragma: no cover
