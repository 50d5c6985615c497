"""Liveness and readiness probes for process managers and load balancers.

``GET /healthz`` answers 200 as long as the process serves requests: it touches nothing else, so a
database outage never gets a healthy node restarted. ``GET /readyz`` answers 200 only when this node can
complete a flow: the database answers and is at the schema revision this version needs, Redis (when
configured) answers, and the server keys are loaded; otherwise 503 naming each failing part, so a load
balancer takes the node out of rotation until it recovers. Both are cheap (one round trip per backing
service, bounded by ``READINESS_TIMEOUT``), send ``Cache-Control: no-store``, and leave no flow record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import metrics
from .http import json_response

if TYPE_CHECKING:
    from .app import JarmorServer

log = logging.getLogger("jarmor.server")

# A probe that waits longer than this for a backing service reports it as not answering.
READINESS_TIMEOUT = 2.0


async def readiness(server: JarmorServer) -> dict[str, str | None]:
    """Each part a flow needs, mapped to ``None`` (ready) or what is wrong with it."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            checks = await metrics.timed_roundtrip(server.store_backend, server.store.health())
    except TimeoutError:
        checks = {"database": f"no answer within {READINESS_TIMEOUT:g} s"}
    checks["keys"] = None if server.keys_ready() else "the server keys are not loaded"
    return checks


def health_routes(server: JarmorServer) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = await readiness(server)
        failing = {part: problem for part, problem in checks.items() if problem is not None}
        body = {
            "status": "unavailable" if failing else "ready",
            "checks": {part: problem or "ok" for part, problem in checks.items()},
        }
        return json_response(body, status=503 if failing else 200)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
