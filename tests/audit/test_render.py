"""Report formats carry hostile text safely: tables escape control characters, JUnit stays well-formed XML,
HTML is escaped."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from jarmor.audit import Finding, Report, Verdict, render_html, render_json, render_junit, render_table

HOSTILE = "line\nbreak\x1b[31m<script>alert(1)</script>\x00"


def report() -> Report:
    r = Report(issuer="https://as.example", started_at="2026-01-01T00:00:00Z", client_ids=["c\n1"])
    r.findings = [
        Finding("pkce_s256", "c\n1", Verdict.OPTIONAL, HOSTILE, ("GET https://as.example/authorize -> 303",)),
        Finding("request_object_replay", "c\n1", Verdict.VIOLATED, HOSTILE),
        Finding("code_single_use", "c\n1", Verdict.NOT_RUN, "needs a completed authorization"),
    ]
    r.tiers_met = {"c\n1": None}
    return r


def test_table_neutralises_control_characters() -> None:
    text = render_table(report())
    assert "\x1b" not in text and "\x00" not in text
    assert all("line" not in row or "\\x0a" in row for row in text.splitlines())
    # issuer line, one "tier met" line, a blank line, the column titles, then exactly one line per finding
    assert len(text.splitlines()) == 4 + 3


def test_junit_is_well_formed_and_fails_required_controls() -> None:
    r = report()
    r.tiers_required = {"c\n1": "baseline"}  # baseline requires pkce_s256
    suite = ET.fromstring(render_junit(r).split("\n", 1)[1])
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["pkce_s256"].find("failure") is not None  # optional, but the tier requires it
    assert cases["request_object_replay"].find("failure") is not None
    assert cases["code_single_use"].find("skipped") is not None
    assert suite.get("failures") == "2" and suite.get("skipped") == "1"


def test_html_is_escaped_and_json_is_the_documented_shape() -> None:
    html = render_html(report())
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    body = json.loads(render_json(report()))
    assert set(body) >= {"issuer", "started_at", "client_ids", "tier_met", "findings"}
    assert body["tier_met"] is None
    assert set(body["findings"][0]) == {"check", "client_id", "verdict", "evidence", "requests", "refs"}


def test_html_puts_the_summary_before_the_evidence() -> None:
    from jarmor.audit.model import Finding, Report, Verdict
    from jarmor.audit.render import render_html

    report = Report(issuer="https://as.example", started_at="2026-01-01T00:00:00Z", client_ids=["c1"],
                    tiers_met={"c1": None},
                    findings=[Finding("pkce_s256", "c1", Verdict.ENFORCED, "refused without it"),
                              Finding("request_object_replay", "c1", Verdict.VIOLATED, "accepted twice")])
    html = render_html(report)
    summary, evidence = html.index("<h2>Summary</h2>"), html.index("<h2>Evidence")
    assert summary < evidence
    assert "1 enforced" in html and "1 violated" in html
    assert '<details open><summary>\n<span class="violated">' in html  # violated findings are open


def test_each_client_is_judged_against_its_own_tier() -> None:
    """Two clients, one report: the high client's missing JARM fails it; the baseline client passes with the
    same verdict, and the table, JSON and HTML say which tier each was held to."""
    r = Report(issuer="https://as.example", started_at="2026-01-01T00:00:00Z", client_ids=["low", "top"],
               tiers_met={"low": "baseline", "top": "baseline"}, tiers_required={"low": "baseline", "top": "high"})
    r.findings = [Finding("jarm", cid, Verdict.OPTIONAL, "optional") for cid in ("low", "top")]
    assert r.failing() == {"top": "tier high not met (met: baseline; violated checks: 0)"}
    suite = ET.fromstring(render_junit(r).split("\n", 1)[1])
    failed = {c.get("classname") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"audit.top"}
    table = render_table(r)
    assert "tier met by low: baseline (required: baseline, met)" in table
    assert "tier met by top: baseline (required: high, NOT MET)" in table
    body = json.loads(render_json(r))
    assert body["tiers_required"] == {"low": "baseline", "top": "high"} and list(body["clients_failing"]) == ["top"]
    assert "high (not met)" in render_html(r)
