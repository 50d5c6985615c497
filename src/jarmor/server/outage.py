"""A store that cannot be reached (Redis or PostgreSQL down) is an outage, not a server error.

Every route is wrapped by ``guarded``: a ``StoreUnavailable`` escaping an endpoint becomes the answer its
channel calls for — ``temporarily_unavailable`` (RFC 6749 §4.1.2.1) as JSON with status 503 on the
back-channel OAuth endpoints (PAR, token, registration, revocation, introspection), the error page with 503 on
the front channel (the authorization endpoint itself redirects it to the client when the redirect URI is
already verified), and a plain 503 elsewhere (discovery, JWKS, the dashboard); each with ``Retry-After``.

``StoreOutage`` logs the outage once, when the first request finds a store unreachable (no traceback: the
cause is the backend, not the code), and once more when it is over: while an outage lasts, each request that
completes triggers one probe (a read of a record that does not exist, on the short-lived and on the durable
store), at most one per ``PROBE_INTERVAL``; the first that succeeds ends the outage. Nothing is retried: a single-use operation may have run
before the connection dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..protocol import errors
from ..store.base import Store, StoreError, StoreUnavailable

log = logging.getLogger("jarmor.server")

RETRY_AFTER = "5"
DESCRIPTION = "the authorization server is temporarily unable to handle the request; try again shortly"
PROBE_KEY = "reachability-probe"
PROBE_INTERVAL = 1.0  # seconds between probes: a store that times out must not slow every request

Endpoint = Callable[[Request], Awaitable[Response]]


def unavailable() -> errors.OAuthError:
    return errors.TemporarilyUnavailable(DESCRIPTION)


class StoreOutage:
    """Whether a store is known to be unreachable, logged once per outage."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self.since: float | None = None
        self.failures = 0  # requests answered 503 during the current outage
        self._probing = False
        self._probed_at: float | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: StoreUnavailable) -> None:
        self.failures += 1
        if self.since is None:
            self.since = self._probed_at = self.clock()
            log.error("storage unavailable, answering temporarily_unavailable until it is back: %s", exc)

    async def probe(self) -> None:
        """During an outage, check whether both stores answer again (one probe at a time)."""
        now = self.clock()
        if self.since is None or self._probing or (
            self._probed_at is not None and now - self._probed_at < PROBE_INTERVAL
        ):
            return
        self._probing, self._probed_at = True, now
        try:
            await self.store.ephemeral.get("probe", PROBE_KEY)
            await self.store.clients.get(PROBE_KEY)
        except StoreError:
            return
        finally:
            self._probing = False
        took = self.clock() - self.since
        log.warning("storage available again after %.0f s (%d request(s) answered 503)", took, self.failures)
        self.since, self.failures = None, 0


def _headers() -> dict[str, str]:
    return {"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"}


def json_unavailable() -> Response:
    from .http import json_error

    response = json_error(unavailable())
    response.headers.update(_headers())
    return response


def plain_unavailable() -> Response:
    return PlainTextResponse("503 service temporarily unavailable\n", status_code=503, headers=_headers())


def guarded(endpoint: Endpoint, outage: StoreOutage, answer: Callable[[], Response]) -> Endpoint:
    """``endpoint``, answering ``answer()`` when a store is unreachable."""

    async def run(request: Request) -> Response:
        try:
            response = await endpoint(request)
        except StoreUnavailable as exc:
            outage.failed(exc)
            return answer()
        if outage.down:
            await outage.probe()
        return response

    run.__name__ = getattr(endpoint, "__name__", "endpoint")
    run.__doc__ = endpoint.__doc__
    return run
