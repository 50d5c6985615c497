"""Policy dry-run: a proposed tier/scope policy against every registration and the recorded flows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jarmor.governance.policy_check import check_policy, flow_problems, policy_changes
from jarmor.governance.reports import capabilities
from jarmor.protocol.policy import DEFAULT_TIERS, Control, Policy, policy_from_config

from .test_reports import CLIENTS, ISSUER, KEYS, NOW, POLICY, SETTINGS, fixture_flows, flow, summaries


def run(proposed: Policy, flows: Any, current: Policy = POLICY) -> Any:
    return check_policy(
        current=current, proposed=proposed, clients=CLIENTS, flows=flows,
        caps_current=capabilities(current, SETTINGS, ISSUER, KEYS),
        caps_proposed=capabilities(proposed, SETTINGS, ISSUER, KEYS),
    )


async def test_same_policy_breaks_nothing() -> None:
    result = run(POLICY, await fixture_flows())
    assert not result.breaks and result.findings == [] and result.changes == []
    assert result.current == result.proposed and result.clients_checked == 9 and result.flows_checked == 5


async def test_scope_newly_high_breaks_flows_that_did_not_use_its_controls() -> None:
    proposed = policy_from_config({"scopes": {"payments": "high", "accounts": "elevated", "openid": "high"}})
    result = run(proposed, await fixture_flows())
    assert result.breaks and result.changes == ["scope openid: (no tier) -> high"]
    inhouse = [f for f in result.findings if f.client_id == "inhouse"]
    reasons = {f.reason for f in inhouse}
    # flow c used neither PAR, a signed request object, JARM nor private_key_jwt... it had PKCE and https
    assert "scope(s) openid require tier high: control par was not used" in reasons
    assert "scope(s) openid require tier high: control jarm was not used" in reasons
    assert all(f.kind == "flow" and f.new and f.flow_ids == ["c"] for f in inhouse)
    assert not [f for f in result.findings if f.client_id == "shop"]  # its flows already met tier high
    # registrations do not carry scopes' tiers: nothing to report there
    assert not [f for f in result.findings if f.kind == "registration"]


async def test_tier_requiring_more_breaks_registrations() -> None:
    tiers = dict(DEFAULT_TIERS)
    tiers["baseline"] = replace(tiers["baseline"], controls=tiers["baseline"].controls | {Control.JARM})
    result = run(Policy(tiers=tiers, scope_tiers=POLICY.scope_tiers), [])
    regs = [f for f in result.findings if f.kind == "registration"]
    assert [f.client_id for f in regs] == ["plain"] and regs[0].new
    assert "requires control jarm" in regs[0].reason and result.changes == ["tier baseline: requires jarm"]
    # the same policy as current: still reported, but not as something the change would break
    again = run(Policy(tiers=tiers, scope_tiers=POLICY.scope_tiers), [], current=Policy(tiers=tiers))
    assert [f.new for f in again.findings if f.kind == "registration"] == [False] and not again.breaks


async def test_algorithm_and_lifetime_limits() -> None:
    flows = await summaries(flow("slow", "shop", NOW - 100, tier="high", scopes=("payments",), code_after=45))
    tiers = dict(DEFAULT_TIERS)
    tiers["high"] = replace(tiers["high"], signing_algs=("ES256",), code_lifetime=30, request_object_max_lifetime=120)
    problems = flow_problems(flows[0], Policy(tiers=tiers, scope_tiers=POLICY.scope_tiers))
    assert "scope(s) payments require tier high: request object algorithm PS256 is not allowed" in problems
    assert "scope(s) payments require tier high: JARM response algorithm PS256 is not allowed" in problems
    assert "scope(s) payments require tier high: client assertion algorithm PS256 is not allowed" in problems
    assert any("request object lifetime 300 s exceeds 120 s" in p for p in problems)
    assert any("redeemed after 45 s, beyond the code lifetime 30 s" in p for p in problems)


async def test_only_flows_that_passed_are_checked_and_findings_group() -> None:
    flows = await summaries(*(flow(f"c{i}", "inhouse", NOW - i, controls={"pkce": "S256"}) for i in range(5)),
                            flow("bad", "inhouse", NOW, outcome="invalid_request"))
    proposed = policy_from_config({"scopes": {"openid": "elevated"}})
    result = run(proposed, flows)
    assert result.flows_checked == 5
    grouped = [f for f in result.findings if "signed_request_object" in f.reason]
    assert len(grouped) == 1 and grouped[0].count == 5 and len(grouped[0].flow_ids) == 3


def test_policy_changes_reads_like_a_diff() -> None:
    tiers = dict(DEFAULT_TIERS)
    tiers["high"] = replace(tiers["high"], controls=tiers["high"].controls - {Control.PAR}, code_lifetime=20)
    changes = policy_changes(POLICY, Policy(tiers=tiers, default_client_tier="elevated"))
    assert changes == [
        "default client tier: baseline -> elevated",
        "scope accounts: elevated -> (no tier)",
        "scope payments: high -> (no tier)",
        "tier high: code_lifetime 60 -> 20",
        "tier high: no longer requires par",
    ]
