"""Access tokens checked by asking the authorization server (RFC 7662), with a bounded cache.

The resource server authenticates to the introspection endpoint with its own client credentials (§2.1;
``client_secret_basic`` per RFC 6749 §2.3.1, or any ``httpx.Auth``). Only ``"active": true`` — the JSON
boolean, never the string — makes a token valid (§2.2); then ``iss`` (when configured) must match exactly,
``aud`` (when the response carries one and an audience is configured) must contain the resource's, and
``exp`` must be in the future.

Results are cached by the SHA-256 of the token, never the token itself: an active result for at most
``cache_ttl`` seconds and **never past its** ``exp`` (a response without ``exp`` is not cached at all); an
inactive one for ``inactive_ttl`` seconds only (a revoked token may otherwise keep working for the cache's
lifetime: keep both short). A 401/403 from the endpoint is the resource server's misconfiguration, raised as
``VerifierUnavailable`` (never "inactive"), as are network failures and malformed answers; a 400
``unsupported_token_type`` or ``invalid_request`` is about the token (a format the AS does not introspect)
and makes it inactive.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ..jose import JoseError, loads_object
from .errors import VerifierUnavailable
from .principal import TokenClaims, valid_shape

__all__ = ["IntrospectionVerifier", "TokenRejected"]

MAX_TOKEN_LENGTH = 8192
MAX_RESPONSE_BYTES = 64 * 1024


# 400 answers about the token rather than the caller (RFC 7662 §2.3 / RFC 7009 §2.2.1): the token is not active
_TOKEN_REFUSALS = frozenset({"unsupported_token_type", "invalid_request"})


def _error_code(resp: httpx.Response) -> str | None:
    try:
        code = loads_object(resp.content[:MAX_RESPONSE_BYTES]).get("error")
    except JoseError:
        return None
    return code if isinstance(code, str) else None


class TokenRejected(Exception):
    """The access token is not valid here (RFC 6750 §3.1 ``invalid_token``). The message is fixed text."""


def basic_auth(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: both parts form-urlencoded before base64 (httpx.BasicAuth does not encode them)."""
    import base64

    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class IntrospectionVerifier:
    """``await verifier.verify(token)`` -> ``TokenClaims`` or ``TokenRejected`` / ``VerifierUnavailable``."""

    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str | None = None,
        auth: httpx.Auth | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        cache_ttl: int = 60,
        inactive_ttl: int = 5,
        max_entries: int = 10_000,
        http: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if client_secret is None and auth is None:
            raise ValueError("IntrospectionVerifier needs client_secret or auth (RFC 7662 §2.1)")
        if cache_ttl < 0 or inactive_ttl < 0:
            raise ValueError("cache lifetimes must not be negative")
        self.endpoint = endpoint
        self.client_id = client_id
        self._secret = client_secret
        self._auth = auth
        self.issuer = issuer
        self.audience = audience
        self.cache_ttl = cache_ttl
        self.inactive_ttl = inactive_ttl
        self._max = max_entries
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, TokenClaims | None]] = OrderedDict()
        self.calls = 0  # introspection requests sent (for tests and metrics)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _cached(self, key: str, now: float) -> tuple[bool, TokenClaims | None]:
        hit = self._cache.get(key)
        if hit is None:
            return False, None
        until, claims = hit
        if until <= now or (claims is not None and claims.expires_at is not None and claims.expires_at <= now):
            del self._cache[key]
            return False, None
        return True, claims

    def _remember(self, key: str, claims: TokenClaims | None, now: float) -> None:
        if claims is None:
            until = now + self.inactive_ttl
        elif claims.expires_at is None:
            return  # never cached past an exp we do not know
        else:
            until = min(now + self.cache_ttl, float(claims.expires_at))
        if until <= now:
            return
        self._cache[key] = (until, claims)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    async def verify(self, token: str) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("the access token is invalid")
        now = self._clock()
        key = hashlib.sha256(token.encode()).hexdigest()
        hit, claims = self._cached(key, now)
        if not hit:
            claims = await self._introspect(token)
            self._remember(key, claims, self._clock())
        if claims is None:
            raise TokenRejected("the access token is invalid, expired or revoked")
        if claims.expires_at is not None and claims.expires_at <= self._clock():
            raise TokenRejected("the access token has expired")
        return claims

    async def _introspect(self, token: str) -> TokenClaims | None:
        """One introspection request; ``None`` for an inactive token (or one not for this resource)."""
        headers = {"Accept": "application/json"}
        if self._auth is None and self._secret is not None:
            headers["Authorization"] = basic_auth(self.client_id, self._secret)
        form = {"token": token, "token_type_hint": "access_token"}
        self.calls += 1
        try:
            resp = await self._http.post(self.endpoint, data=form, headers=headers, auth=self._auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise VerifierUnavailable("the introspection endpoint could not be reached") from exc
        if resp.status_code in (401, 403):
            raise VerifierUnavailable("the introspection endpoint refused the resource server's credentials")
        if resp.status_code == 400 and _error_code(resp) in _TOKEN_REFUSALS:
            return None  # the AS cannot introspect this token (e.g. oidc-provider's JWT access tokens)
        if resp.status_code != 200 or len(resp.content) > MAX_RESPONSE_BYTES:
            raise VerifierUnavailable(f"the introspection endpoint answered HTTP {resp.status_code}")
        try:
            body = loads_object(resp.content)
        except JoseError as exc:
            raise VerifierUnavailable("the introspection response is not a JSON object") from exc
        return self._judge(body)

    def _judge(self, body: Mapping[str, Any]) -> TokenClaims | None:
        if body.get("active") is not True:  # RFC 7662 §2.2: a JSON boolean
            return None
        if not valid_shape(body):
            return None
        if self.issuer is not None and "iss" in body and body["iss"] != self.issuer:
            return None
        claims = TokenClaims.from_claims(body)
        if self.audience is not None and "aud" in body and self.audience not in claims.audience:
            return None
        return claims
