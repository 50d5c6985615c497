"""``run_audit``: discover the issuer, then run every probe for every client, within one request budget."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx

from .clients import AuditClient
from .flows import discover
from .model import Report
from .probes import run_client
from .transport import AuditHttp

DEFAULT_MAX_REQUESTS = 300
DEFAULT_RATE = 5.0


def run_audit(
    issuer: str,
    clients: Sequence[AuditClient],
    *,
    registration_token: str | None = None,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    rate: float = DEFAULT_RATE,
    only: frozenset[str] | None = None,
    http_client: httpx.Client | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Audit ``issuer`` with ``clients``. Raises ``AuditAborted`` when discovery itself fails."""
    http = AuditHttp(issuer, max_requests=max_requests, rate=rate, client=http_client, sleep=sleep)
    report = Report(
        issuer=issuer,
        started_at=datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        client_ids=[c.client_id for c in clients],
    )
    try:
        target = discover(http, issuer, clock)
        target.registration_token = registration_token
        report.discovery = list(http.log)
        for client in clients:
            findings, met = run_client(target, client, only)
            report.findings.extend(findings)
            report.tiers_met[client.client_id] = met
    finally:
        report.requests_sent = http.sent
        http.close()
    return report
