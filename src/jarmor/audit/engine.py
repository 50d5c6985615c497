"""``run_audit``: discover the issuer, then run every probe for every client, within one request budget."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import httpx

from .clients import AuditClient
from .flows import discover
from .model import Report
from .register import register_client, unregister
from .signin import LoginScript
from .suite import run_client
from .transport import AuditAborted, AuditHttp

DEFAULT_MAX_REQUESTS = 300
DEFAULT_RATE = 5.0


def run_audit(
    issuer: str,
    clients: Sequence[AuditClient],
    *,
    registration_token: str | None = None,
    self_register_tier: str | None = None,
    self_register: bool = False,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    rate: float = DEFAULT_RATE,
    only: frozenset[str] | None = None,
    http_client: httpx.Client | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    follow_interactions: bool = False,
    login_script: LoginScript | None = None,
    mix_up_issuer: str | None = None,
    mix_up_client: AuditClient | None = None,
) -> Report:
    """Audit ``issuer`` with ``clients`` (and, with ``self_register``, a client it registers itself with
    ``registration_token``, asking for ``self_register_tier``); each client is judged against its own ``tier``. Raises ``AuditAborted`` when discovery or
    self-registration fails."""
    http = AuditHttp(issuer, max_requests=max_requests, rate=rate, client=http_client, sleep=sleep,
                     clock=monotonic, follow_interactions=follow_interactions, login_script=login_script)
    report = Report(
        issuer=issuer,
        started_at=datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        client_ids=[c.client_id for c in clients],
    )
    try:
        target = discover(http, issuer, clock)
        target.registration_token = registration_token
        target.mix_up_issuer = mix_up_issuer
        if mix_up_issuer is not None and mix_up_client is not None:
            http.add_origin(mix_up_issuer)
            try:
                target.second = (discover(http, mix_up_issuer, clock), mix_up_client)
            except AuditAborted as exc:
                target.second_error = f"the second issuer: {exc}"
        report.setup_requests = list(http.log)
        for client in clients:
            findings, met = run_client(target, client, only)
            report.findings.extend(findings)
            report.tiers_met[client.client_id] = met
            report.tiers_required[client.client_id] = client.tier
        if self_register:
            mark = http.sent
            own, registration = register_client(target, self_register_tier)
            own = replace(own, tier=self_register_tier)
            report.setup_requests += http.log[mark:]
            report.client_ids.append(own.client_id)
            report.tiers_required[own.client_id] = own.tier
            try:
                findings, met = run_client(target, own, only)
                report.findings.extend(findings)
                report.tiers_met[own.client_id] = met
            finally:
                mark = http.sent
                unregister(target, registration)
                report.setup_requests += http.log[mark:]
    finally:
        report.requests_sent = http.sent
        http.close()
    return report
