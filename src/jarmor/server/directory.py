"""Client lookup with a cache of parsed clients that never serves a client changed elsewhere.

Parsing a client (its JWKS above all) costs about 100 µs of CPU, so each process keeps parsed clients. A change
made by another process or node — an offboarding, keys or metadata replaced through RFC 7592 or an
administrator — must apply to the next lookup everywhere, so the cache trusts an entry only while it knows
the client is unchanged:

* **SQLite** (and the in-memory store): every lookup reads the client's version, ``(updated_at,
  disabled_at)`` (``ClientStore.state``: two integers by primary key, a few µs), and re-parses when it moved.
  A change applies from the moment its transaction commits.
* **PostgreSQL**: that read would be a network round trip per lookup, so the store's ``ChangeFeed``
  (``LISTEN/NOTIFY``: each change notifies in its own transaction) evicts changed clients as the commits are
  announced, and a cached client is served without a read. Between a commit and the arrival of its
  notification (milliseconds) a node may still serve the old client to requests that issue nothing (PAR,
  revocation); issuing a code or tokens re-reads the client from the database in any case
  (``protocol.standing``). While the feed is not listening (starting, connection lost) the cache falls back
  to reading the version on every lookup, and it drops everything when the feed is live again.
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


class CachedClientDirectory:
    """The server's ``protocol.context.ClientDirectory`` (the port): the current client, parsed at most once
    per version.

    At most ``max_entries`` parsed clients are kept (least recently used first out).
    """

    def __init__(self, store: ClientStore, *, max_entries: int = 10_000) -> None:
        self._store = store
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[Client, Version]] = OrderedDict()
        self._feed = store.changes
        self._feed_started = False
        self._live = False  # the feed is listening: cached entries are evicted when they change
        self._generation = 0  # moves on every notification and feed state change

    @property
    def live(self) -> bool:
        """Whether lookups currently trust the change feed instead of reading each client's version."""
        return self._live

    def _on_change(self, client_id: str) -> None:
        self._generation += 1
        if client_id:
            self._cache.pop(client_id, None)
        else:
            self._cache.clear()

    def _on_live(self, live: bool) -> None:
        self._generation += 1
        if live:
            self._cache.clear()  # whatever changed while nobody listened is unknown
        self._live = live  # not live: entries stay, each lookup checks its version again

    async def get(self, client_id: str) -> Client | None:
        if self._feed is not None and not self._feed_started:
            self._feed_started = True
            self._feed.start(self._on_change, self._on_live)
        hit = self._cache.get(client_id)
        if self._live:
            if hit is not None:
                self._cache.move_to_end(client_id)
                return hit[0]
            generation = self._generation
            rec = await self._store.get(client_id)
            if rec is None:
                return None
            client = client_from_record(rec)
            if self._generation == generation:  # no change announced while reading: the record is current
                self._remember(client_id, client, (rec.updated_at, rec.disabled_at))
            return client
        generation = self._generation
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
        # the record read second is at least as new as ``state``: its own version is the one to check against;
        # read before the feed went live, it may predate a change nobody announced: not kept then
        if self._generation == generation:
            self._remember(client_id, client, (rec.updated_at, rec.disabled_at))
        return client

    def _remember(self, client_id: str, client: Client, version: Version) -> None:
        self._cache[client_id] = (client, version)
        self._cache.move_to_end(client_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    def invalidate(self, client_id: str | None = None) -> None:
        """Drop parsed clients (never needed for correctness; this frees memory)."""
        if client_id is None:
            self._cache.clear()
        else:
            self._cache.pop(client_id, None)
