"""``ResourceServer`` for synchronous code (WSGI: Flask, Django ...).

The checks are asynchronous (introspection and JWKS fetches use ``httpx.AsyncClient``; the replay store may
be Redis). Rather than a second implementation, ``SyncResourceServer`` runs them on one private event loop
in a daemon thread: every verifier, cache and connection pool of the wrapped server then lives on that one
loop, as they must, whichever thread calls. Use it only for a server that is not also used from an async
framework's own loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .core import ResourceServer
from .principal import Principal

__all__ = ["SyncResourceServer"]


class SyncResourceServer:
    """``SyncResourceServer(server).authenticate(method=..., url=..., authorization=..., ...)``: the same
    arguments, result and exceptions as ``ResourceServer.authenticate``, without ``await``."""

    def __init__(self, server: ResourceServer, *, timeout: float = 30.0) -> None:
        self.server = server
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jarmor-resource", daemon=True)
        self._thread.start()

    def authenticate(self, **kwargs: Any) -> Principal:
        future = asyncio.run_coroutine_threadsafe(self.server.authenticate(**kwargs), self._loop)
        return future.result(self.timeout)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> SyncResourceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
