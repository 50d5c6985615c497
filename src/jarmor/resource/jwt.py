"""JWT access tokens (RFC 9068) checked locally against the issuer's published keys.

RFC 9068 §4, in order: the header ``typ`` is ``at+jwt`` (or ``application/at+jwt``, case-insensitive) and
nothing else — an ID Token or any other JWT is refused (§4, §5 explicit typing); the token is a JWS (an
encrypted access token is refused: none was negotiated); ``alg`` is in the resource's allowlist (never
``none`` or a MAC: ``jarmor.jose`` refuses them whatever the list says); the signature verifies with a key
from the issuer's JWKS; ``iss`` matches exactly; ``aud`` contains this resource's identifier; ``exp`` is in
the future (with ``leeway`` seconds of clock skew). The other members RFC 9068 §2.2 makes REQUIRED (``sub``,
``client_id``, ``iat``, ``jti``) must be present too.

Keys: the JWKS comes from ``jwks_uri`` (given, or read from the issuer's metadata: RFC 8414 §3 /
OpenID Connect Discovery, whose ``issuer`` must equal the configured one, RFC 8414 §3.3). It is cached for
``jwks_ttl`` seconds; a token naming a ``kid`` the cached set lacks triggers ONE refetch for that token,
and forced refetches are rate-limited to one per ``refetch_interval`` (``server.fetch.TtlCache``), so a
flood of tokens with random ``kid`` values costs the issuer at most one request per interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import httpx

from ..jose import JoseError, JwkSet, KeyNotFound, loads_object, verify_jws
from ..jose.tokens import split_token
from ..server.fetch import TtlCache
from .errors import VerifierUnavailable
from .introspection import TokenRejected
from .principal import TokenClaims, valid_shape

__all__ = ["DEFAULT_ALGORITHMS", "JwtAccessTokenVerifier", "looks_like_jwt"]

DEFAULT_ALGORITHMS = ("ES256", "PS256", "EdDSA", "Ed25519", "ES384", "ES512", "PS384", "PS512", "RS256")
AT_JWT_TYP = ("at+jwt",)
MAX_DOCUMENT_BYTES = 256 * 1024
_REQUIRED_STRINGS = ("sub", "client_id", "jti")
_ROTATED = frozenset({"unknown_kid", "key_not_found"})


def looks_like_jwt(token: str) -> bool:
    """Shaped like a compact JWS or JWE (the cheap test a resource accepting both formats dispatches on)."""
    try:
        split_token(token)
    except JoseError:
        return False
    return True


class JwtAccessTokenVerifier:
    """``await verifier.verify(token)`` -> ``TokenClaims`` or ``TokenRejected`` / ``VerifierUnavailable``."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        jwks_uri: str | None = None,
        jwks_ttl: float = 300.0,
        refetch_interval: float = 30.0,
        leeway: int = 5,
        http: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not audience:
            raise ValueError("a JWT access token verifier needs this resource's audience (RFC 9068 §4)")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.jwks_uri = jwks_uri
        self.leeway = leeway
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
        self._clock = clock
        self._keys: TtlCache[str, JwkSet] = TtlCache(
            ttl=jwks_ttl, refetch_interval=refetch_interval, max_entries=4, clock=clock
        )
        self.fetches = 0  # JWKS documents fetched (for tests and metrics)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            resp = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise VerifierUnavailable("the issuer's metadata or keys could not be fetched") from exc
        if resp.status_code != 200 or len(resp.content) > MAX_DOCUMENT_BYTES:
            raise VerifierUnavailable(f"the issuer answered HTTP {resp.status_code} for its metadata or keys")
        try:
            return loads_object(resp.content)
        except JoseError as exc:
            raise VerifierUnavailable("the issuer's metadata or keys are not a JSON object") from exc

    async def _discover(self) -> str:
        """RFC 8414 §3 (then OpenID Connect Discovery §4): the ``jwks_uri`` of exactly this issuer."""
        base = self.issuer.rstrip("/")
        for url in (f"{base}/.well-known/oauth-authorization-server", f"{base}/.well-known/openid-configuration"):
            try:
                meta = await self._get_json(url)
            except VerifierUnavailable:
                continue
            if meta.get("issuer") != self.issuer:  # RFC 8414 §3.3
                raise VerifierUnavailable("the issuer's metadata names another issuer")
            uri = meta.get("jwks_uri")
            if isinstance(uri, str) and uri:
                return uri
        raise VerifierUnavailable("the issuer publishes no usable metadata with a jwks_uri")

    async def _load_keys(self) -> JwkSet:
        if self.jwks_uri is None:
            self.jwks_uri = await self._discover()
        document = await self._get_json(self.jwks_uri)
        self.fetches += 1
        try:
            return JwkSet.from_dict(document)
        except JoseError as exc:
            raise VerifierUnavailable("the issuer's JWKS could not be read") from exc

    async def verify(self, token: str) -> TokenClaims:
        keys = await self._keys.get("jwks", self._load_keys)
        try:
            claims = self._verify_with(token, keys)
        except KeyNotFound as exc:
            if exc.reason not in _ROTATED:
                raise TokenRejected("the access token's signing key is not the issuer's") from exc
            fresh = await self._keys.get("jwks", self._load_keys, refresh=True)  # one refetch, rate-limited
            try:
                claims = self._verify_with(token, fresh)
            except JoseError as again:
                raise TokenRejected("the access token's signing key is not the issuer's") from again
        except JoseError as exc:
            raise TokenRejected(f"the access token is not a valid JWT access token ({exc.reason})") from exc
        return self._check_claims(claims)

    def _verify_with(self, token: str, keys: JwkSet) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise TokenRejected("the access token is not a signed JWT (RFC 9068 §4)")
        return verify_jws(token, keys, algorithms=self.algorithms, typ=AT_JWT_TYP, typ_required=True).claims

    def _check_claims(self, claims: dict[str, Any]) -> TokenClaims:
        """RFC 9068 §4 and §2.2."""
        if not valid_shape(claims) or "exp" not in claims:
            raise TokenRejected("the access token lacks a valid exp")
        info = TokenClaims.from_claims(claims)
        now = self._clock()
        if claims.get("iss") != self.issuer:
            raise TokenRejected("the access token was issued by another issuer")
        if self.audience not in info.audience:
            raise TokenRejected("the access token is not meant for this resource (aud)")
        if info.expires_at is None or info.expires_at <= now - self.leeway:
            raise TokenRejected("the access token has expired")
        if info.issued_at is None or info.issued_at > now + self.leeway:
            raise TokenRejected("the access token lacks a valid iat")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or isinstance(nbf, bool) or nbf > now + self.leeway):
            raise TokenRejected("the access token is not valid yet (nbf)")
        if any(not isinstance(claims.get(name), str) or not claims[name] for name in _REQUIRED_STRINGS):
            raise TokenRejected("the access token lacks a required claim (RFC 9068 section 2.2)")
        return info
