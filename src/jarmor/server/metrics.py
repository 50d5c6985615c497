"""Prometheus metrics (``prometheus-client``): what operators graph and alert on.

Every metric is named ``jarmor_*`` and documented in ``docs/operations.md`` (with the Grafana dashboard that
uses them, ``docs/grafana-dashboard.json``). Sources:

* requests — an ASGI middleware counts each request and its latency by route template and status;
* authorization transactions, refusals, controls applied and tokens — every ``FlowEvent`` the server records
  passes through ``observe_event`` (the recorder's hot path: a few counter increments, no I/O);
* the flow-record writer — its queue depth and counters, after each batch;
* server keys — their age, after each keyring (re)load;
* the store — the latency of each readiness round trip, by backend.

Several worker processes report one set: ``jarmor serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before any worker starts (``multiproc.prepare_multiprocess``), each process writes its values there, and the
scrape merges them (``MultiProcessCollector``). Without the variable (tests, embedding) the process-local
default registry is used.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..governance.flows import applied_controls
from ..governance.records import CODE, CODE_ISSUED, PROGRESS, TOKEN, TOKENS_ISSUED, FlowEvent
from .dispatch import RouteTable
from .logs import log_decision, log_request
from .multiproc import MULTIPROC_ENV

if TYPE_CHECKING:
    from ..governance.recorder import RecorderStats
    from .keys import Keyring

T = TypeVar("T")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter("jarmor_http_requests", "HTTP requests by route and status", ["route", "method", "status"])
LATENCY = Histogram(
    "jarmor_http_request_duration_seconds", "Time to answer an HTTP request, by route", ["route"],
    buckets=_LATENCY_BUCKETS,
)
FLOW_EVENTS = Counter(
    "jarmor_flow_events", "Hops of authorization transactions by stage, effective tier and outcome "
    "(a progress value such as code_issued, or the OAuth error code)", ["stage", "tier", "outcome"],
)
REFUSALS = Counter(
    "jarmor_refusals", "Requests refused, by stage, OAuth error code and channel", ["stage", "error", "channel"]
)
CONTROLS = Counter(
    "jarmor_controls_applied", "Controls that applied to issued authorization codes, by effective tier "
    "(with jarmor_flow_events{stage=\"code\",outcome=\"code_issued\"}: control coverage per tier)",
    ["tier", "control"],
)
TOKENS = Counter("jarmor_tokens_issued", "Token responses issued, by grant type and effective tier",
                 ["grant_type", "tier"])
REVOCATIONS = Counter("jarmor_revocation_requests", "Accepted RFC 7009 revocation requests")
RECORDER_QUEUE = Gauge("jarmor_flow_record_queue", "Flow records waiting to be written", multiprocess_mode="livesum")
RECORDER_WRITTEN = Counter("jarmor_flow_records_written", "Flow records appended to the chain")
RECORDER_BATCHES = Counter("jarmor_flow_record_batches", "Flow record batches written (one transaction each)")
RECORDER_DROPPED = Counter("jarmor_flow_records_dropped", "Flow records lost (queue full or store failing)")
STORE_LATENCY = Histogram(
    "jarmor_store_roundtrip_seconds", "Round trip to each backing service (readiness probes)", ["backend"],
    buckets=_LATENCY_BUCKETS,
)
KEY_AGE = Gauge(
    "jarmor_server_key_age_seconds", "Age of the newest live server key of each algorithm and use "
    "(it falls back to zero when a rotation's new key is loaded)", ["alg", "use"], multiprocess_mode="min",
)


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's values (multiprocess mode), or this process's."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def exposition(authorization: str | None, token: str | None) -> tuple[int, bytes, str]:
    """(status, body, content type) of a scrape; with ``token`` set, a matching bearer token is required."""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return 401, b"a bearer token is required\n", "text/plain; charset=utf-8"
    return 200, generate_latest(registry()), CONTENT_TYPE_LATEST


def metrics_route(token: str | None) -> Route:
    async def metrics(request: Request) -> Response:
        status, body, content_type = exposition(request.headers.get("authorization"), token)
        headers = {"Cache-Control": "no-store"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return Response(body, status_code=status, media_type=content_type, headers=headers)

    return Route("/metrics", metrics, methods=["GET"])


_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, kept: ``labels`` validates and locks on every call (a few µs, ~20 times per
    flow). A labelled child lives as long as its metric anyway, so this keeps no label set the metric does
    not already hold."""
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def observe_event(event: FlowEvent) -> None:
    """Count and log one recorded hop (called for every ``FlowEvent``; the recorder shields the caller)."""
    log_decision(event)
    tier = event.tier or event.client_tier or "none"
    child(FLOW_EVENTS, event.stage, tier, event.outcome).inc()
    if event.outcome not in PROGRESS:
        child(REFUSALS, event.stage, event.outcome, event.channel or "none").inc()
    elif event.stage == CODE and event.outcome == CODE_ISSUED:
        for control in applied_controls(event.controls):
            child(CONTROLS, tier, control).inc()
    elif event.stage == TOKEN and event.outcome == TOKENS_ISSUED:
        child(TOKENS, event.grant_type or "none", tier).inc()


class RecorderMetrics:
    """Turns the recorder's running totals into counter increments (each process counts its own)."""

    def __init__(self) -> None:
        self._seen = {"written": 0, "batches": 0, "dropped": 0}

    def update(self, stats: RecorderStats, pending: int) -> None:
        RECORDER_QUEUE.set(pending)
        for name, counter in (("written", RECORDER_WRITTEN), ("batches", RECORDER_BATCHES),
                              ("dropped", RECORDER_DROPPED)):
            value = getattr(stats, name)
            if value > self._seen[name]:
                counter.inc(value - self._seen[name])
                self._seen[name] = value


def observe_keys(keyring: Keyring, now: float) -> None:
    newest: dict[tuple[str, str], int] = {}
    for loaded in keyring.loaded():
        rec = loaded.record
        newest[(rec.alg, rec.use)] = max(newest.get((rec.alg, rec.use), 0), rec.created_at)
    for (alg, use), created in newest.items():
        KEY_AGE.labels(alg, use).set(max(0.0, now - created))


async def timed_roundtrip(backend: str, call: Awaitable[T]) -> T:
    start = time.perf_counter()
    try:
        return await call
    finally:
        STORE_LATENCY.labels(backend).observe(time.perf_counter() - start)


class RequestMetrics:
    """ASGI middleware: one count and one latency observation per HTTP request, labelled with the route's
    template (``/register/{client_id:path}``, never the raw path: label values stay bounded)."""

    def __init__(self, app: ASGIApp, routes: Iterable[Route]) -> None:
        self.app = app
        self.routes = RouteTable(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.routes.template(scope)
        status = 500
        start = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - start
            child(REQUESTS, route, scope.get("method", ""), str(status)).inc()
            child(LATENCY, route).observe(elapsed)
            if route == "/revoke" and status == 200:
                REVOCATIONS.inc()
            log_request(route, scope.get("method", ""), status, elapsed)


def process_exit() -> None:
    """A worker that stops leaves no live gauge value behind in the shared directory."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def start_metrics_listener(host: str, port: int, token: str | None) -> None:
    """``--metrics-port``: a small WSGI listener in the supervising process (a daemon thread), reading the
    values every worker writes to the shared directory. Same bearer-token rule as the main port's route."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        status, body, content_type = exposition(environ.get("HTTP_AUTHORIZATION"), token)
        headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="metrics"'))
        start_response("200 OK" if status == 200 else "401 Unauthorized", headers)
        return [body]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = make_server(host, port, app, handler_class=QuietHandler)
    threading.Thread(target=httpd.serve_forever, name="jarmor-metrics", daemon=True).start()
