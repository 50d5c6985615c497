"""Metrics in-process: what each recorded hop adds, and that the shipped Grafana dashboard only queries metrics
that exist (a renamed metric must not leave a silently empty panel)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

from jarmor.governance.records import FlowEvent
from jarmor.server import metrics

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_events_count_transactions_refusals_controls_and_tokens() -> None:
    code = FlowEvent(flow_id="f", stage="code", outcome="code_issued", at=1, tier="zz-test-tier",
                     controls={"par": True, "request_object": {"signed": True, "alg": "ES256"}})
    before = sample("jarmor_controls_applied_total", tier="zz-test-tier", control="par")
    metrics.observe_event(code)
    assert sample("jarmor_controls_applied_total", tier="zz-test-tier", control="par") == before + 1
    assert sample("jarmor_flow_events_total", stage="code", tier="zz-test-tier", outcome="code_issued") >= 1
    refused = FlowEvent(flow_id="f", stage="par", outcome="invalid_request", at=1, tier="zz-test-tier", channel="json")
    before = sample("jarmor_refusals_total", stage="par", error="invalid_request", channel="json")
    metrics.observe_event(refused)
    assert sample("jarmor_refusals_total", stage="par", error="invalid_request", channel="json") == before + 1
    tokens = FlowEvent(flow_id="f", stage="token", outcome="tokens_issued", at=1, tier="zz-test-tier",
                       grant_type="refresh_token")
    before = sample("jarmor_tokens_issued_total", grant_type="refresh_token", tier="zz-test-tier")
    metrics.observe_event(tokens)
    assert sample("jarmor_tokens_issued_total", grant_type="refresh_token", tier="zz-test-tier") == before + 1


def test_the_bearer_token_guards_the_exposition() -> None:
    assert metrics.exposition(None, "s3cret")[0] == 401
    assert metrics.exposition("Bearer nope", "s3cret")[0] == 401
    assert metrics.exposition("Basic s3cret", "s3cret")[0] == 401
    status, body, _ = metrics.exposition("Bearer s3cret", "s3cret")
    assert status == 200 and b"jarmor_http_requests_total" in body
    assert metrics.exposition(None, None)[0] == 200


def _exported_names() -> set[str]:
    """Every sample name the registered jarmor metrics can produce, whether or not they have values yet."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("", "_bucket", "_count", "_sum", "_created"),
                "gauge": ("",)}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("jarmor_")
        for suffix in suffixes[family.type]
    }


def test_the_dashboard_and_the_docs_name_only_real_metrics() -> None:
    exported = _exported_names()
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"jarmor_[a-z_]+", t["expr"])}
    assert queried and queried <= exported, queried - exported
    documented = set(re.findall(r"`(jarmor_[a-z_]+)`", OPERATIONS.read_text()))
    assert documented <= exported, documented - exported
    # every metric is documented (a counter by its _total name)
    for family in REGISTRY.collect():
        if family.name.startswith("jarmor_"):
            shown = family.name + "_total" if family.type == "counter" else family.name
            assert shown in documented, shown
