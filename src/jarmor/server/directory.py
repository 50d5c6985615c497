"""Client lookup with a small cache: parsing a client's JWKS costs more than reading its row."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from ..protocol.clients import Client
from ..store.base import ClientRecord, ClientStore


def client_from_record(rec: ClientRecord) -> Client:
    return Client.from_metadata(
        rec.client_id,
        rec.metadata,
        secret_hash=rec.secret_hash,
        disabled=rec.disabled_at is not None,
        updated_at=rec.updated_at,
    )


class ClientDirectory:
    """Caches parsed clients for ``ttl`` seconds; changes made through this process apply at once.

    Across processes (several workers or nodes) a change is seen within ``ttl`` seconds.
    """

    def __init__(
        self, store: ClientStore, *, ttl: float = 2.0, max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, tuple[Client, float]] = OrderedDict()

    async def get(self, client_id: str) -> Client | None:
        now = self._clock()
        hit = self._cache.get(client_id)
        if hit is not None and now - hit[1] < self._ttl:
            self._cache.move_to_end(client_id)
            return hit[0]
        rec = await self._store.get(client_id)
        if rec is None:
            self._cache.pop(client_id, None)
            return None
        if hit is not None and hit[0].updated_at == rec.updated_at and hit[0].disabled == (rec.disabled_at is not None):
            client = hit[0]
        else:
            client = client_from_record(rec)
        self._cache[client_id] = (client, now)
        self._cache.move_to_end(client_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return client

    def invalidate(self, client_id: str | None = None) -> None:
        if client_id is None:
            self._cache.clear()
        else:
            self._cache.pop(client_id, None)
