"""Client lookup with a cache of parsed clients that every lookup checks against the store.

Parsing a client (its JWKS above all) costs about 100 µs of CPU; reading two integers of its row
(``ClientStore.state``: ``updated_at``, ``disabled_at``) costs a few µs on SQLite and one small round trip on
PostgreSQL. So every ``get`` reads that pair and reuses the parsed client only while it is unchanged. A change
made by any process or node — an offboarding, keys or metadata replaced through RFC 7592 or an administrator —
applies to the very next lookup in every process, from the moment its transaction commits: there is no cache
lifetime to wait out and no message that could be missed.
"""

from __future__ import annotations

from collections import OrderedDict

from ..protocol.clients import Client
from ..store.base import ClientRecord, ClientStore

Version = tuple[int, int | None]  # (updated_at, disabled_at): see store.base.ClientStore


def client_from_record(rec: ClientRecord) -> Client:
    return Client.from_metadata(
        rec.client_id,
        rec.metadata,
        secret_hash=rec.secret_hash,
        disabled=rec.disabled_at is not None,
        updated_at=rec.updated_at,
    )


class ClientDirectory:
    """``protocol.context.ClientDirectory``: the current client, parsed at most once per version.

    At most ``max_entries`` parsed clients are kept (least recently used first out).
    """

    def __init__(self, store: ClientStore, *, max_entries: int = 10_000) -> None:
        self._store = store
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[Client, Version]] = OrderedDict()

    async def get(self, client_id: str) -> Client | None:
        state = await self._store.state(client_id)
        if state is None:
            self._cache.pop(client_id, None)
            return None
        hit = self._cache.get(client_id)
        if hit is not None and hit[1] == state:
            self._cache.move_to_end(client_id)
            return hit[0]
        rec = await self._store.get(client_id)
        if rec is None:  # deleted between the two reads
            self._cache.pop(client_id, None)
            return None
        client = client_from_record(rec)
        # the record read second is at least as new as ``state``: its own version is the one to check against
        self._cache[client_id] = (client, (rec.updated_at, rec.disabled_at))
        self._cache.move_to_end(client_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return client

    def invalidate(self, client_id: str | None = None) -> None:
        """Drop parsed clients (not needed for correctness: every lookup checks the version; this frees memory)."""
        if client_id is None:
            self._cache.clear()
        else:
            self._cache.pop(client_id, None)
