"""Client material the server fetches by reference: ``jwks_uri`` (RFC 7591 §2) and ``request_uri``
(RFC 9101 §5.2). Both go through the hardened ``Fetcher``; the protocol core only sees the interfaces
``ClientKeys`` and ``RequestObjectFetcher`` (protocol/context.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..jose import JoseError, JwkSet, loads_object
from ..protocol import errors
from ..protocol.clients import Client
from ..protocol.vocabulary import REQUEST_OBJECT_TYP
from .fetch import Fetcher, FetchError, TtlCache

log = logging.getLogger("jarmor.references")

JWKS_MEDIA_TYPES = ("application/jwk-set+json", "application/json")
REQUEST_OBJECT_MEDIA_TYPE = "application/" + REQUEST_OBJECT_TYP  # RFC 9101 §10.2


class RemoteClientKeys:
    """``ClientKeys``: keys registered by value as they are; ``jwks_uri`` fetched and cached.

    A fetched set is used for ``ttl`` seconds. An unknown ``kid`` makes the protocol ask again with
    ``refresh=True``; that refetches at most once per ``refetch_interval`` per client, so a client can
    rotate its keys without re-registering while a flood of bad ``kid`` values cannot turn the server into
    a request amplifier. When a fetch fails the last good set keeps serving; with none, the set is empty and
    verification fails with the usual error for its channel (``invalid_request_object``, ``invalid_client``).
    """

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        ttl: float = 300,
        refetch_interval: float = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._cache: TtlCache[tuple[str, str], JwkSet] = TtlCache(
            ttl=ttl, refetch_interval=refetch_interval, clock=clock
        )

    async def keys_for(self, client: Client, *, refresh: bool = False) -> JwkSet:
        if client.jwks is not None or not client.jwks_uri:
            return client.jwks or JwkSet()
        uri = client.jwks_uri

        async def load() -> JwkSet:
            return await self.fetch_jwks(uri)

        try:
            return await self._cache.get((client.client_id, uri), load, refresh=refresh)
        except (FetchError, JoseError) as exc:
            log.warning("jwks_uri of client %r unusable: %s", client.client_id, exc)
            return JwkSet()

    async def fetch_jwks(self, uri: str) -> JwkSet:
        doc = await self._fetcher.get(uri, accept=JWKS_MEDIA_TYPES)
        keys = JwkSet.from_dict(loads_object(doc.body), allow_private=False)
        log.info("fetched %d client keys from %s", len(keys), uri)
        return keys

    def invalidate(self) -> None:
        self._cache.invalidate()


class RequestUriFetcher:
    """``RequestObjectFetcher``: GET a registered ``request_uri`` (no cache: each request is one use).

    Every failure gives the same ``invalid_request_uri`` description (attack catalog A34: no network
    oracle — which names resolve to private addresses, which ports answer); the cause is logged.
    """

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher

    async def fetch_request_object(self, client: Client, uri: str) -> str:
        url = uri.split("#", 1)[0]  # OIDC Registration §2: the fragment is for the client, not sent
        try:
            doc = await self._fetcher.get(url, accept=(REQUEST_OBJECT_MEDIA_TYPE,))
            token = doc.body.decode("ascii").strip()
            if token.count(".") not in (2, 4):
                raise FetchError("the document is not a compact JWT", reason="not_jwt")
        except (FetchError, UnicodeDecodeError) as exc:
            log.info("request_uri %s of client %r refused: %s", url, client.client_id, exc)
            raise errors.InvalidRequestUri(UNAVAILABLE) from exc
        return token


UNAVAILABLE = "the request object could not be retrieved from request_uri"
