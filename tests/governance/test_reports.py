"""The governance report on fixture data: stale clients, old keys, registration drift, third-party exposure to
high-tier scopes, coverage and trends; rendered as text, JSON and self-contained HTML with inline SVG."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from jarmor.governance import render
from jarmor.governance.flows import FlowSummary, summarize
from jarmor.governance.records import FlowEvent, seal
from jarmor.governance.reports import DAY, Report, build_report, capabilities, load_report
from jarmor.protocol.clients import validate_client_metadata
from jarmor.protocol.context import Settings
from jarmor.protocol.policy import DEFAULT_TIERS, Control, Policy
from jarmor.store import MemoryStore
from jarmor.store.base import ClientRecord, GrantRecord, ServerKeyRecord
from jarmor.store.flow_memory import MemoryFlowRecordStore

NOW = 1_700_000_000
ISSUER = "https://as.example.com"
POLICY = Policy(scope_tiers={"payments": "high", "accounts": "elevated"})
SETTINGS = Settings()
KEYS = [
    ServerKeyRecord("old-sig", "ES256", "sig", "{}", NOW - 400 * DAY, NOW - 400 * DAY),
    ServerKeyRecord("old-retired", "PS256", "sig", "{}", NOW - 500 * DAY, NOW - 500 * DAY, NOW - 300 * DAY, "retired"),
    ServerKeyRecord("young", "PS256", "sig", "{}", NOW - 10 * DAY, NOW - 10 * DAY),
    ServerKeyRecord("enc", "ECDH-ES", "enc", "{}", NOW - 10 * DAY, NOW - 10 * DAY),
]
CAPS = capabilities(POLICY, SETTINGS, ISSUER, KEYS)
JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                  "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "k1"}]}


def client(client_id: str, *, created: int = NOW - 300 * DAY, last_used: int | None = None,
           disabled: bool = False, **meta: Any) -> ClientRecord:
    base: dict[str, Any] = {"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt",
                            "jwks": JWKS, "client_name": f"client {client_id}"}
    base.update(meta)
    stored = validate_client_metadata(base, policy=POLICY, server=CAPS)
    return ClientRecord(client_id, stored, created, created, last_used_at=last_used,
                        disabled_at=NOW - DAY if disabled else None)


CLIENTS = [
    client("shop", client_kind="third-party", scope="openid payments", created=NOW - 5 * DAY,
           dpop_bound_access_tokens=True),
    client("open", client_kind="third-party", created=NOW - 5 * DAY),  # no scope: may request every scope
    client("robot", grant_types=["client_credentials"], redirect_uris=None, scope="payments",
           dpop_bound_access_tokens=True),  # machine
    client("inhouse", client_kind="first-party", scope="payments", created=NOW - 5 * DAY,
           dpop_bound_access_tokens=True),
    client("sleepy", client_kind="first-party", scope="openid"),  # last flow 100 days ago
    client("ghost", client_kind="first-party", scope="openid"),  # never used, 300 days old
    client("newbie", client_kind="first-party", scope="openid", created=NOW - DAY),  # never used, new
    client("recent", client_kind="first-party", scope="openid", last_used=NOW - 10 * DAY),
    client("plain", client_kind="first-party", scope="openid", response_modes=["query"], created=NOW - 5 * DAY),
    client("gone", client_kind="third-party", disabled=True),
]
GRANTS = {"open": [GrantRecord("g1", "open", "bob", "openid payments", NOW - DAY)],
          "shop": [GrantRecord("g2", "shop", "amy", "openid", NOW - DAY, revoked_at=NOW)]}

FRONT = {"par": True, "pkce": "S256", "request_object": {"signed": True, "alg": "PS256", "nbf": True, "lifetime": 300},
         "jarm": {"signed": True, "alg": "PS256"}, "iss": "jwt", "redirect_uri": "https://app.example/cb"}
BOUND = {"method": "dpop", "thumbprint": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
# what a sign-in with a password and a TOTP code records (``interaction.assurance.evidence``), at a tier
# that enforces a second factor
SECOND_FACTOR = {"methods": ["password", "totp"], "amr": ["pwd", "otp", "mfa"], "reached": "aal2", "acr": "aal2",
                 "required": "aal2", "max_age": 86400, "tier_enforced": True}


def flow(flow_id: str, client_id: str, at: int, *, tier: str = "baseline", scopes: tuple[str, ...] = ("openid",),
         outcome: str = "tokens_issued", controls: dict[str, Any] | None = None, client_tier: str = "baseline",
         grant_type: str = "authorization_code", code_after: int = 1) -> list[FlowEvent]:
    known = POLICY.tiers.get(tier)
    required = tuple(sorted(c.value for c in known.controls | {Control.PKCE_S256})) if known else ()
    common: dict[str, Any] = {"client_id": client_id, "scopes": scopes, "tier": tier, "client_tier": client_tier,
                              "required": required, "grant_type": grant_type}
    ctl = dict(FRONT if controls is None else controls)
    if controls is None and known and known.requires(Control.AUTHENTICATION_ASSURANCE):
        ctl["authentication"] = {**SECOND_FACTOR, "auth_time": at - 30}
    auth = {"method": "private_key_jwt", "alg": "PS256"}
    # the token endpoint's evidence of sender-constrained tokens, where the flow's tier required them
    bound = {"sender_constraint": BOUND} if known and known.requires(Control.SENDER_CONSTRAINED_TOKENS) else {}
    if grant_type != "authorization_code":
        return [FlowEvent(flow_id, "token", outcome, at,
                          controls={"client_auth": auth, "tokens": ["access_token"], **bound}, **common)]
    if outcome != "tokens_issued":
        return [FlowEvent(flow_id, "authorize", outcome, at, controls=ctl, error_description="refused", **common)]
    return [
        FlowEvent(flow_id, "code", "code_issued", at, subject="amy", controls=ctl, expires_at=at + 60, **common),
        FlowEvent(flow_id, "token", "tokens_issued", at + code_after,
                  controls={"client_auth": auth, "code_redeemed_at": at + code_after, "tokens": ["access_token"],
                            **bound},
                  **common),
    ]


async def summaries(*flows: list[FlowEvent]) -> list[FlowSummary]:
    store = MemoryFlowRecordStore()
    await store.append([e.entry() for evs in flows for e in evs], seal)
    return summarize(await store.scan(limit=10_000), NOW)


async def fixture_flows() -> list[FlowSummary]:
    return await summaries(
        flow("a", "shop", NOW - 2 * DAY, tier="high", scopes=("openid", "payments")),
        flow("b", "shop", NOW - 2 * DAY + 60, tier="high", scopes=("openid", "payments")),
        flow("c", "inhouse", NOW - DAY, controls={"pkce": "S256", "iss": "parameter",
                                                  "redirect_uri": "https://app.example/cb"}),
        flow("d", "inhouse", NOW - DAY + 5, outcome="invalid_request"),
        flow("e", "robot", NOW - 3 * DAY, tier="high", scopes=("payments",), grant_type="client_credentials",
             client_tier="baseline"),
        flow("old", "sleepy", NOW - 100 * DAY),  # outside the 30-day window: only in last_seen
    )


def report_for(flows: list[FlowSummary], policy: Policy = POLICY, **kw: Any) -> Report:
    last_seen = {"shop": NOW - 2 * DAY, "inhouse": NOW - DAY, "robot": NOW - 3 * DAY, "sleepy": NOW - 100 * DAY}
    return build_report(now=NOW, policy=policy, caps=capabilities(policy, SETTINGS, ISSUER, KEYS), clients=CLIENTS,
                        keys=KEYS, grants=GRANTS, last_seen=last_seen, flows=flows, **kw)


async def test_stale_clients_and_old_keys() -> None:
    r = report_for(await fixture_flows(), stale_days=90, key_age_days=180)
    stale = {c.client_id: c for c in r.stale_clients}
    assert set(stale) == {"sleepy", "ghost"}
    assert stale["sleepy"].idle_days == 100 and stale["ghost"].last_activity is None
    assert [k.kid for k in r.old_keys] == ["old-sig"] and r.old_keys[0].age_days == 400


async def test_drift_reruns_registration_under_the_current_policy() -> None:
    assert report_for(await fixture_flows()).drift == []
    tiers = dict(DEFAULT_TIERS)
    tiers["baseline"] = replace(tiers["baseline"], controls=tiers["baseline"].controls | {Control.JARM})
    stricter = Policy(tiers=tiers, scope_tiers=POLICY.scope_tiers)
    drift = report_for(await fixture_flows(), policy=stricter).drift
    assert [d.client_id for d in drift] == ["plain"]
    assert drift[0].error == "invalid_client_metadata" and "control jarm" in drift[0].description


async def test_third_party_exposure_to_high_tier_scopes() -> None:
    r = report_for(await fixture_flows())
    exposed = {e.client_id: e for e in r.exposure}
    assert set(exposed) == {"shop", "open"}  # machine, first-party and disabled clients are not third-party
    assert exposed["shop"].scopes == ("payments",)
    assert exposed["shop"].via == ("registered scope: payments", "2 successful flow(s) with payments")
    assert exposed["open"].via[0] == "no registered scope (may request every scope)"
    assert "active grant g1 for bob: payments" in exposed["open"].via
    assert r.high_rank_tier == "high"


async def test_coverage_per_tier_and_control() -> None:
    cov = report_for(await fixture_flows()).coverage
    assert cov.flows == 5 and cov.successful == 4
    assert cov.by_tier == {"high": 3, "baseline": 2}
    assert cov.by_outcome == {"success": 4, "error": 1}
    shares = {s.control: (s.applied, s.eligible) for s in cov.controls}
    assert shares["par"] == (2, 3)  # front-channel controls: authorization_code flows only
    assert shares["private_key_jwt"] == (4, 4)  # the machine flow counts here
    assert shares["pkce_s256"] == (3, 3) and shares["encrypted_jarm"] == (0, 3)
    assert {s.control: (s.applied, s.eligible) for s in cov.by_tier_controls["high"]}["par"] == (2, 2)


async def test_trends_by_day() -> None:
    t = report_for(await fixture_flows(), window_days=7).trends
    assert len(t.days) == 7 and t.days[-1] == "2023-11-14"
    assert t.by_outcome["success"] == [0, 0, 0, 1, 2, 1, 0]  # robot (-3 d), shop x2 (-2 d), inhouse (-1 d)
    assert t.by_outcome["error"] == [0, 0, 0, 0, 0, 1, 0]
    assert t.by_tier["high"] == [0, 0, 0, 1, 2, 0, 0] and t.by_tier["baseline"] == [0, 0, 0, 0, 0, 2, 0]


async def test_renderings() -> None:
    r = report_for(await fixture_flows())
    text = render.report_text(r)
    assert "registration drift (0 client(s), 0 rule(s))" in text and "shop [baseline] payments" in text and "par  " in text
    assert json.loads(json.dumps(r.as_dict()))["coverage"]["controls"][0]["control"] == "pkce_s256"
    html = render.report_html(r, issuer=ISSUER)
    assert html.count("<svg") >= 4 and "<script" not in html
    assert re.search(r"default-src 'none'", html)
    external = [u for u in re.findall(r'(?:src|href)="([^"]*)"', html)]
    assert external == []  # nothing loads from anywhere


async def test_html_escapes_everything_from_the_database() -> None:
    evil = "<script>alert(1)</script>"
    flows = await summaries(flow("x", "shop", NOW - DAY, tier=evil))
    r = report_for(flows)
    r.exposure[0] = replace(r.exposure[0], name=evil)
    html = render.report_html(r, issuer=ISSUER)
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_load_report_from_a_store() -> None:
    store = MemoryStore()
    for rec in CLIENTS:
        await store.clients.create(rec)
    for k in KEYS:
        await store.keys.add(k)
    events = [e for evs in (flow("a", "shop", NOW - DAY, tier="high", scopes=("payments",)),) for e in evs]
    await store.flows.append([e.entry() for e in events], seal)
    r = await load_report(store, now=NOW, policy=POLICY, caps=CAPS, stale_days=90, key_age_days=180)
    assert r.coverage.flows == 1 and r.clients == len(CLIENTS)
    assert "sleepy" in {c.client_id for c in r.stale_clients}  # no flow recorded for it in this store


@pytest.mark.parametrize("days", [1, 30, 90])
def test_empty_report_renders(days: int) -> None:
    r = build_report(now=NOW, policy=POLICY, caps=CAPS, clients=[], keys=[], grants={}, last_seen={}, flows=[],
                     window_days=days)
    assert "no flows in the window" in render.report_text(r)
    assert "No flows in this period." in render.report_html(r, issuer=ISSUER)
