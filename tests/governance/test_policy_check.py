"""Policy dry-run: a proposed tier/scope policy against every registration and the recorded flows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jarmor.governance import render
from jarmor.governance.policy_check import check_policy, flow_problems, policy_changes
from jarmor.governance.registrations import registration_problems
from jarmor.governance.reports import capabilities
from jarmor.protocol.clients import validate_client_metadata
from jarmor.protocol.policy import DEFAULT_TIERS, Control, Policy, policy_from_config
from jarmor.store.base import ServerKeyRecord
from tests.kit import make_kit

from .test_reports import (
    CLIENTS,
    DAY,
    FRONT,
    ISSUER,
    KEYS,
    NOW,
    POLICY,
    SETTINGS,
    client,
    fixture_flows,
    flow,
    summaries,
)

RS256_KEY = ServerKeyRecord("rsa", "RS256", "sig", "{}", NOW - 10 * DAY, NOW - 10 * DAY)


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
    # a registration is judged at the tier its registered scopes raise it to: "plain" (scope openid) registered
    # the plain query response mode, which tier high's JARM refuses; "open" (no registered scope) is not raised
    regs = [f for f in result.findings if f.kind == "registration"]
    assert [(f.client_id, f.rule, f.tier) for f in regs if f.rule == "jarm"] == [("plain", "jarm", "high")]
    jarm = next(f for f in regs if f.rule == "jarm")
    assert jarm.reason.startswith("registered scope(s) openid raise it to tier high, which requires control jarm")
    # tier high also requires sender-constrained tokens: every openid client registered without a binding
    unbound = {f.client_id for f in regs if f.rule == "sender_constrained_tokens"}
    assert unbound == {"ghost", "newbie", "plain", "recent", "sleepy"}
    assert {f.rule for f in regs} == {"jarm", "sender_constrained_tokens"}


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


# -- issue 12.2: [policy.scopes] profile = "high" -------------------------------------------------------------

PROFILE_HIGH = policy_from_config({"scopes": {"profile": "high"}})
NO_PAR = {k: v for k, v in FRONT.items() if k != "par"}
NO_PAR_NBF = {**NO_PAR, "request_object": {"signed": True, "alg": "PS256", "lifetime": 300}}
PROFILE_CLIENTS = [
    client("web", client_kind="first-party", scope="openid profile"),
    client("portal", client_kind="third-party", scope="openid profile"),
    client("retired", client_kind="third-party", scope="openid profile", disabled=True),
    # a machine client with a shared secret, registered for profile, that never had a flow recorded
    client("batch", grant_types=["client_credentials"], redirect_uris=None, token_endpoint_auth_method=
           "client_secret_basic", jwks=None, scope="profile"),
]


async def profile_flows() -> Any:
    return await summaries(
        flow("w1", "web", NOW - 3600, scopes=("openid", "profile"), controls=NO_PAR_NBF),
        flow("p1", "portal", NOW - 7200, scopes=("openid", "profile"), controls=NO_PAR),
        flow("r1", "retired", NOW - 9000, scopes=("openid", "profile"), controls=NO_PAR),
    )


async def test_profile_raised_to_high_judges_every_active_registration_and_skips_disabled_clients() -> None:
    result = check_policy(
        current=Policy(), proposed=PROFILE_HIGH, clients=PROFILE_CLIENTS, flows=await profile_flows(),
        caps_current=capabilities(Policy(), SETTINGS, ISSUER, KEYS),
        caps_proposed=capabilities(PROFILE_HIGH, SETTINGS, ISSUER, KEYS),
    )
    found = {(f.kind, f.client_id, f.rule) for f in result.findings}
    # the machine client with no recorded flow: its next client_credentials request would be refused
    assert ("registration", "batch", "private_key_jwt") in found
    batch = next(f for f in result.findings if (f.client_id, f.rule) == ("batch", "private_key_jwt"))
    assert batch.verdict == "registration would be refused" and batch.new and batch.tier == "high"
    assert batch.reason == (
        "registered scope(s) profile raise it to tier high, which requires control private_key_jwt: it "
        "authenticates with client_secret_basic, and no jwks or jwks_uri is registered; its client_credentials "
        "token requests would be refused")
    # the disabled client is neither judged nor reported, its flow is counted as skipped
    assert not [f for f in result.findings if f.client_id == "retired"]
    assert (result.clients_checked, result.clients_skipped, result.flows_checked, result.flows_skipped) == (3, 1, 2, 1)
    assert found == {("registration", "batch", "private_key_jwt"), ("flow", "web", "par"),
                     ("flow", "web", "request_object_nbf"), ("flow", "portal", "par"),
                     # tier high requires sender-constrained tokens: none of them registered or used a binding
                     ("registration", "batch", "sender_constrained_tokens"),
                     ("registration", "web", "sender_constrained_tokens"),
                     ("registration", "portal", "sender_constrained_tokens"),
                     ("flow", "web", "sender_constrained_tokens"), ("flow", "portal", "sender_constrained_tokens"),
                     # and a second factor: their users signed in under baseline, with any sign-in
                     ("flow", "web", "authentication_assurance"), ("flow", "portal", "authentication_assurance")}
    web_par = next(f for f in result.findings if (f.client_id, f.rule) == ("web", "par"))
    assert web_par.verdict == "recorded flow would fail" and web_par.flow_ids == ["w1"]
    assert web_par.reason == "scope(s) profile require tier high: control par was not used"
    out = result.as_dict()
    assert {f["verdict"] for f in out["findings"]} == {"registration would be refused", "recorded flow would fail"}
    text = render.policy_text(result)
    assert "registration would be refused  batch" in text.replace("client batch (batch)", "batch")
    assert "skipped 1 disabled client(s)" in text


def test_registration_judged_at_the_raised_tier_reports_every_rule() -> None:
    """One registration breaking several of the raised tier's rules: all of them, each naming its control."""
    meta = validate_client_metadata(
        {"redirect_uris": ["http://127.0.0.1:9000/cb", "https://app.example/cb", "com.example.app:/cb"],
         "response_modes": ["query"],
         "token_endpoint_auth_method": "client_secret_post", "scope": "openid profile",
         "authorization_signed_response_alg": "RS256"},
        policy=Policy(), server=capabilities(Policy(), SETTINGS, ISSUER, [*KEYS, RS256_KEY]))
    caps = capabilities(PROFILE_HIGH, SETTINGS, ISSUER, [*KEYS, RS256_KEY])
    problems = {p.rule: p for p in registration_problems(meta, PROFILE_HIGH, caps)}
    assert set(problems) == {"signed_request_object", "jarm", "private_key_jwt", "https_redirect_uris",
                             "signing_algs", "sender_constrained_tokens"}
    assert problems["https_redirect_uris"].error == "invalid_redirect_uri"
    # what registration refuses under https_redirect_uris: the custom scheme; http on loopback it admits
    assert "redirect URI(s) com.example.app:/cb are not https" in problems["https_redirect_uris"].reason
    assert "authorization_signed_response_alg RS256" in problems["signing_algs"].reason
    # the stored require_signed_request_object/require_pushed_authorization_requests = false are defaults, not
    # refusals: no "cannot be false" finding
    assert not any("cannot be false" in p.reason for p in problems.values())
    # the same metadata under its own tier, no scope raised: nothing
    assert registration_problems(meta, Policy(), caps) == []


async def test_dry_run_verdict_matches_the_token_endpoint() -> None:
    """What the dry-run says of the machine client is what the server does once the policy is live."""
    kit = await make_kit(reuse_server_keys=True)
    batch = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=None,
                                 token_endpoint_auth_method="client_secret_basic", jwks=None, scope="profile")
    form = {"grant_type": "client_credentials", "scope": "profile"}
    assert (await kit.http.post("/token", data=form, headers=batch.basic())).status_code == 200
    keys = await kit.store.keys.list()
    result = check_policy(
        current=Policy(), proposed=PROFILE_HIGH, clients=await kit.store.clients.list(), flows=[],
        caps_current=capabilities(Policy(), SETTINGS, ISSUER, keys),
        caps_proposed=capabilities(PROFILE_HIGH, SETTINGS, ISSUER, keys),
    )
    assert {(f.client_id, f.rule) for f in result.findings} == {
        (batch.client_id, "private_key_jwt"), (batch.client_id, "sender_constrained_tokens")}
    live = await make_kit(policy=PROFILE_HIGH, store=kit.store)
    r = await live.http.post("/token", data=form, headers=batch.basic())
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "private_key_jwt" in r.json()["error_description"]


async def test_a_loopback_redirect_is_judged_by_the_rule_and_reported_as_it_was() -> None:
    """The flow record says a loopback http redirect was not https; the dry-run judges it by what the control
    admits (registration's rule: http on a loopback host is admitted, RFC 8252 §7.3), a custom scheme not."""
    loop = {**FRONT, "redirect_uri": "http://127.0.0.1:9999/cb"}
    native = {**FRONT, "redirect_uri": "com.example.app:/cb"}
    flows = await summaries(flow("loop", "web", NOW - 10, scopes=("openid", "profile"), controls=loop),
                            flow("native", "web", NOW - 20, scopes=("openid", "profile"), controls=native))
    assert all("https_redirect_uris" not in f.applied for f in flows)
    # (these flows carry no token-endpoint or sign-in evidence: sender_constrained_tokens and
    # authentication_assurance are judged elsewhere)
    by_id = {f.flow_id: [p for p in flow_problems(f, PROFILE_HIGH)
                         if "sender_constrained" not in p and "authentication_assurance" not in p] for f in flows}
    assert by_id["loop"] == []
    assert by_id["native"] == ["scope(s) profile require tier high: control https_redirect_uris was not used"]
