"""Operating a real ``jarmor serve --workers 2``: ``/metrics`` (one set for all workers, bearer-protected, moving
with traffic), ``/metrics`` on a separate port, and JSON logs that carry each request and decision but never a
token, code, assertion, request object or secret the run produced."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..kit import REDIRECT, TestClient
from ..scale.cluster import _authorization_params, http_client, register
from .conftest import RunningServer, free_port, start_server, stop_server

pytestmark = pytest.mark.e2e

TOKEN = "metrics-scrape-token-for-tests"
FLOWS = 12


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("operations")
    (workdir / "jarmor.toml").write_text(f'[settings]\nmetrics_token = "{TOKEN}"\nflow_record_interval = 0.05\n')
    running = start_server(
        workdir, "--workers", "2", "--config", str(workdir / "jarmor.toml"), "--log-format", "json",
        "--log-level", "info",
    )
    try:
        yield running
    finally:
        stop_server(running)


def scrape(url: str, token: str | None = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(url, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


async def one_flow(http: httpx.AsyncClient, node: RunningServer, client: TestClient) -> list[str]:
    """PAR + signed request object + private_key_jwt, authorization, token: returns every secret it saw."""
    ro, ctx = client.request_object()
    par_form = {**client.auth_form(), "request": ro, "client_id": client.client_id}
    r = await http.post(node.issuer + "/par", data=par_form)
    assert r.status_code == 201, r.text
    request_uri = r.json()["request_uri"]
    r = await http.get(node.issuer + "/authorize", params={"client_id": client.client_id, "request_uri": request_uri})
    assert r.status_code in (302, 303), r.text
    code = str(_authorization_params(r)["code"])
    token_form = {**client.auth_form(), "grant_type": "authorization_code", "code": code,
                  "redirect_uri": REDIRECT, "code_verifier": ctx["code_verifier"]}
    r = await http.post(node.issuer + "/token", data=token_form)
    assert r.status_code == 200, r.text
    body = r.json()
    return [par_form["client_assertion"], ro, request_uri, code, token_form["client_assertion"],
            ctx["code_verifier"], body["access_token"], body.get("refresh_token", ""), body.get("id_token", "")]


@pytest.fixture(scope="module")
def traffic(server: RunningServer) -> list[str]:
    async def run() -> list[str]:
        async with http_client() as http:
            client = await register(http, server, server.issuer)
            batches = await asyncio.gather(*(one_flow(http, server, client) for _ in range(FLOWS)))
            refused = await http.post(server.issuer + "/token", data={"grant_type": "password", "client_id": "x"})
            assert refused.status_code in (400, 401)
        return [s for batch in batches for s in batch if s]

    return asyncio.run(run())


def test_metrics_need_the_bearer_token(server: RunningServer) -> None:
    r = httpx.get(server.issuer + "/metrics", timeout=10)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(server.issuer + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_metrics_are_one_set_for_all_workers_and_move_with_traffic(server: RunningServer, traffic: list[str]) -> None:
    deadline = time.monotonic() + 30
    while True:  # flow records are written in batches off the request path: wait for them
        samples = scrape(server.issuer + "/metrics")
        if value(samples, "jarmor_flow_records_written_total") >= 3 * FLOWS or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    # every scrape, whichever worker answers it, sees the same totals of the flows all workers served
    assert value(samples, "jarmor_flow_events_total", stage="token", outcome="tokens_issued") == FLOWS
    assert value(samples, "jarmor_flow_events_total", stage="code", outcome="code_issued") == FLOWS
    assert value(samples, "jarmor_tokens_issued_total", grant_type="authorization_code") == FLOWS
    assert value(samples, "jarmor_http_requests_total", route="/token", status="200") == FLOWS
    assert value(samples, "jarmor_http_requests_total", route="/par", status="201") == FLOWS
    assert value(samples, "jarmor_http_request_duration_seconds_count", route="/authorize") == FLOWS
    assert value(samples, "jarmor_controls_applied_total", control="par") == FLOWS
    assert value(samples, "jarmor_controls_applied_total", control="signed_request_object") == FLOWS
    assert value(samples, "jarmor_refusals_total", stage="token") >= 1
    assert value(samples, "jarmor_flow_records_written_total") >= 3 * FLOWS
    assert value(samples, "jarmor_flow_records_dropped_total") == 0
    assert value(samples, "jarmor_server_key_age_seconds", alg="ES256") >= 0
    assert any(n == "jarmor_server_key_age_seconds" for n, _ in samples)
    before = value(samples, "jarmor_http_requests_total", route="/.well-known/openid-configuration")
    for _ in range(4):
        httpx.get(server.issuer + "/.well-known/openid-configuration", timeout=10)
    after = scrape(server.issuer + "/metrics")
    assert value(after, "jarmor_http_requests_total", route="/.well-known/openid-configuration") == before + 4


def test_json_logs_carry_requests_and_decisions_but_no_secret(server: RunningServer, traffic: list[str]) -> None:
    log_path = next(server.workdir.glob("serve-*.log"))
    deadline = time.monotonic() + 30
    while True:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        decisions = [x for x in lines if x.get("logger") == "jarmor.decision"]
        if len([d for d in decisions if d.get("outcome") == "tokens_issued"]) >= FLOWS or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    access = [x for x in lines if x.get("logger") == "jarmor.access"]
    assert {"/par", "/authorize", "/token"} <= {x["route"] for x in access}
    assert all(isinstance(x["duration_ms"], float | int) and x["status"] for x in access)
    issued = [d for d in decisions if d["outcome"] == "tokens_issued"]
    assert len(issued) == FLOWS and all(d["flow_id"] and d["client_id"] and d["tier"] for d in issued)
    assert any(d["error"] for d in decisions)  # the refused token request
    text = log_path.read_text()
    leaked = [s[:12] for s in traffic if s in text]
    assert not leaked, f"secrets in the logs: {leaked}"


def test_metrics_on_a_separate_port(tmp_path: Path) -> None:
    port = free_port()
    running = start_server(tmp_path, "--metrics-port", str(port))
    try:
        assert httpx.get(running.issuer + "/metrics", timeout=10).status_code == 404  # not on the main port
        samples = scrape(f"http://127.0.0.1:{port}/metrics", token=None)
        assert value(samples, "jarmor_http_requests_total", route="/.well-known/oauth-authorization-server") >= 1
    finally:
        stop_server(running)
