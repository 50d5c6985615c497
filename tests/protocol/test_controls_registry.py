"""Controls as data: every ``Control`` has one registry entry, and a new entry is picked up by registration,
the flow-record capture and reader, the coverage report (with how each flow met it), the drift check and the
policy dry-run with no other edit."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest

from jarmor.governance.capture import front_controls
from jarmor.governance.flows import FlowSummary, applied_controls, summarize_flow
from jarmor.governance.policy_check import flow_rule_problems
from jarmor.governance.records import FlowEvent
from jarmor.governance.registrations import registration_problems
from jarmor.governance.reports import coverage
from jarmor.protocol import controls
from jarmor.protocol.authorization import AUTHORIZATION_ENDPOINT, PAR_ENDPOINT
from jarmor.protocol.clients import ServerCapabilities, validate_client_metadata
from jarmor.protocol.controls import REGISTRY, ControlSpec, RegistrationIssue, by_name, ordered
from jarmor.protocol.errors import OAuthError
from jarmor.protocol.policy import ALL_SIGNING_ALGS, DEFAULT_TIERS, Control, Policy, Tier
from jarmor.protocol.tokens import TOKEN_CHECKS


class Fake(StrEnum):
    CONFIDENTIAL_CLIENT = "confidential_client"


FAKE = Fake.CONFIDENTIAL_CLIENT
CAPS = ServerCapabilities(signing_algs=ALL_SIGNING_ALGS, scopes=frozenset({"openid"}))
TIER = Tier(name="guarded", rank=4, controls=frozenset({FAKE}))  # type: ignore[arg-type]
POLICY = Policy(tiers={**DEFAULT_TIERS, "guarded": TIER}, default_client_tier="guarded",
                implemented=frozenset({*Control, FAKE}))  # type: ignore[arg-type]
PUBLIC = {"redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "none"}


def _no_public_clients(meta: Mapping[str, Any]) -> RegistrationIssue | None:
    if meta.get("token_endpoint_auth_method") == "none":
        return RegistrationIssue("public clients are not allowed", "it is a public client")
    return None


FAKE_SPEC = ControlSpec(
    FAKE, "the client authenticates", "RFC 6749 §2.1", "check_client_authentication_for_tier",  # type: ignore[arg-type]
    evidence=lambda ev: bool(ev.get("confidential")), registration=_no_public_clients,
    recorded=lambda ev: {"confidential": bool(ev["confidential"])} if "confidential" in ev else {},
    how=lambda ev: "secret" if ev.get("confidential") else None)


def _flow(evidence: dict[str, Any]) -> FlowSummary:
    return FlowSummary(flow_id="f1", started_at=0, ended_at=1, outcome="success", stage="token", decision="allow",
                       reasons=[], client_id="c1", client_tier="guarded", tier="guarded",
                       grant_type="authorization_code", controls=evidence,
                       applied=ordered(applied_controls(evidence)))


def test_every_control_has_one_entry_enforced_by_a_request_step() -> None:
    steps = {s.__name__ for s in (*AUTHORIZATION_ENDPOINT, *PAR_ENDPOINT, *TOKEN_CHECKS)}
    assert list(REGISTRY) == list(Control)
    for control, entry in REGISTRY.items():
        assert entry.control is control and entry.name == control.value
        assert entry.step in steps, (control, entry.step)
        assert entry.description and entry.clause
        assert by_name(control.value) is entry
    assert by_name("no_such_control") is None


def test_an_empty_flow_record_evidences_no_control_and_the_dry_run_names_each_required_one() -> None:
    strictest = DEFAULT_TIERS["critical"]
    failures = {e.name: e.dry_run({}, ()) for e in REGISTRY.values() if strictest.requires(e.control)}
    assert applied_controls({}) == set()
    assert all(f == f"control {name} was not used" for name, f in failures.items())


def test_a_new_entry_is_picked_up_by_registration_records_reports_and_the_dry_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # without the entry, the control means nothing to any reader
    assert validate_client_metadata(PUBLIC, policy=POLICY, server=CAPS)["token_endpoint_auth_method"] == "none"
    assert "confidential_client" not in applied_controls({"confidential": True})
    assert flow_rule_problems(_flow({"pkce": "S256"}), POLICY) == []
    assert front_controls({"confidential": True}) == {}

    monkeypatch.setitem(REGISTRY, FAKE, FAKE_SPEC)  # type: ignore[index]

    # registration refuses what contradicts it, with the rule's text (never a submitted value)
    with pytest.raises(OAuthError) as info:
        validate_client_metadata(PUBLIC, policy=POLICY, server=CAPS)
    assert info.value.error == "invalid_client_metadata"
    assert info.value.description == "risk_tier guarded requires control confidential_client: public clients are not allowed"
    confidential = {**PUBLIC, "token_endpoint_auth_method": "client_secret_basic"}
    assert validate_client_metadata(confidential, policy=POLICY, server=CAPS)["risk_tier"] == "guarded"

    # the drift check (and the registrations side of the dry-run) judge stored metadata by the same rule
    problems = {p.rule: p for p in registration_problems({**PUBLIC, "risk_tier": "guarded"}, POLICY, CAPS)}
    assert problems["confidential_client"].reason.startswith(
        "tier guarded requires control confidential_client: it is a public client")

    # the flow-record reader reports it from evidence, the dry-run judges a flow without it
    assert "confidential_client" in applied_controls({"confidential": True})
    assert flow_rule_problems(_flow({"pkce": "S256"}), POLICY) == [
        ("confidential_client", "tier guarded: control confidential_client was not used")]
    assert flow_rule_problems(_flow({"pkce": "S256", "confidential": True}), POLICY) == []
    recorded = FlowEvent(flow_id="f2", stage="token", outcome="tokens_issued", at=1, tier="guarded",
                         required=("confidential_client", "pkce_s256"), controls={"pkce": "S256"})
    summary = summarize_flow("f2", [(1, recorded)], now=2)
    assert summary.gaps == ("confidential_client",) and summary.applied == ("pkce_s256",)
    assert "required control confidential_client is not evidenced in the records" in summary.reasons

    # coverage (report and dashboard) counts it
    shares = {s.control: s for s in coverage([_flow({"confidential": True}), _flow({})]).controls}
    assert (shares["confidential_client"].applied, shares["confidential_client"].eligible) == (1, 2)
    assert controls.ordered(["confidential_client", "par"]) == ("par", "confidential_client")
    assert shares["confidential_client"].how == {"secret": 1}  # the report's "how it was met", per tier

    # the flow-record capture keeps the evidence the entry declares, and nothing it does not
    assert front_controls({"confidential": True, "unrelated": "x"}) == {"confidential": True}
