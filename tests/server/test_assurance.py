"""Authentication assurance over HTTP (issue 14, "Assurance as policy"): a tier that requires the control
``authentication_assurance`` decides what the sign-in must reach; the ID token, introspection and the flow
record carry ``acr``, ``amr`` and ``auth_time``; a level a password cannot reach is refused precisely; the
report shows per tier how flows were authenticated."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest

from jarmor.governance.flows import FlowSummary, summarize
from jarmor.governance.render import report_text
from jarmor.governance.reports import build_report, coverage
from jarmor.jose import JwkSet, verify_jws
from jarmor.protocol.clients import ServerCapabilities
from jarmor.protocol.context import Settings
from jarmor.protocol.policy import DEFAULT_TIERS, Control, Policy, TierAuthentication
from jarmor.server.accounts import add_user
from tests.kit import Kit, TestClient

from .conftest import KitFactory
from .support import assert_redirect_error, plain_request, redeem, split_location

PASSWORD = "correct horse battery"
ASSURED = Control.AUTHENTICATION_ASSURANCE


def _policy(acr: str | None, max_age: int | None = None, *, scope_tier: bool = False) -> Policy:
    base = DEFAULT_TIERS["baseline"]
    strong = replace(base, name="strong", rank=5, controls=base.controls | {ASSURED},
                     authentication=TierAuthentication(acr, max_age))
    if scope_tier:  # the client stays baseline; the scope "payments" raises requests to "strong"
        return Policy(tiers={**DEFAULT_TIERS, "strong": strong}, scope_tiers={"payments": "strong"})
    return Policy(tiers={**DEFAULT_TIERS, "strong": strong}, default_client_tier="strong")


async def _kit(make: KitFactory, policy: Policy) -> Kit:
    kit = await make(auto_approve=None, policy=policy, settings=Settings(scopes=frozenset({"openid", "payments"})))
    await add_user(kit.store.users, "alice", PASSWORD)
    return kit


async def _sign_in_and_allow(kit: Kit, r: httpx.Response) -> httpx.Response:
    assert r.status_code == 200, r.text[:300]
    action = re.search(r'action="([^"]+)"', r.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert action and csrf
    r = await kit.http.post(action.group(1), data={"username": "alice", "password": PASSWORD,
                                                   "csrf_token": csrf.group(1)})
    assert r.status_code == 303, r.text[:300]
    r = await kit.http.get(r.headers["location"])
    action, csrf = re.search(r'action="([^"]+)"', r.text), re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert action and csrf and "consent" in action.group(1)
    return await kit.http.post(action.group(1), data={"decision": "approve", "csrf_token": csrf.group(1)})


async def _password_then(kit: Kit, r: httpx.Response) -> httpx.Response:
    """The sign-in page of a level a password alone cannot reach (a TOTP code or a passkey could): the
    password of an account with neither is refused, never accepted as a weaker sign-in."""
    assert r.status_code == 200 and "jarmor_interaction" in r.headers.get("set-cookie", ""), r.text[:300]
    action = re.search(r'action="([^"]+)"', r.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert action and csrf
    return await kit.http.post(action.group(1), data={"username": "alice", "password": PASSWORD,
                                                       "csrf_token": csrf.group(1)})


async def _flow(kit: Kit, client: TestClient, **overrides: str) -> dict[str, Any]:
    params, verifier = plain_request(client, **overrides)
    r = await _sign_in_and_allow(kit, await kit.authorize(params))
    _, _, got = split_location(r)
    assert "code" in got, got
    t = await redeem(kit, client, got["code"], verifier)
    assert t.status_code == 200, t.text
    body: dict[str, Any] = t.json()
    return body


def _id_token(kit: Kit, body: dict[str, Any]) -> dict[str, Any]:
    keys = JwkSet.from_dict(kit.server.keyring.public_jwks())
    return verify_jws(body["id_token"], keys, algorithms=["ES256"]).claims


async def _flows(kit: Kit) -> list[FlowSummary]:
    await kit.server.flows.flush()
    return summarize(await kit.store.flows.scan(), kit.env.now())


async def test_an_aal1_tier_signs_in_with_a_password_and_says_how(make: KitFactory) -> None:
    kit = await _kit(make, _policy("aal1", 600))
    client = await kit.add_client(risk_tier="strong")
    before = kit.env.now()
    body = await _flow(kit, client)
    claims = _id_token(kit, body)
    assert claims["acr"] == "aal1" and claims["amr"] == ["pwd"]
    assert before <= claims["auth_time"] <= kit.env.now()
    r = await kit.http.post("/introspect", data={**client.auth_form(), "token": body["access_token"]})
    seen = r.json()
    assert (seen["acr"], seen["amr"], seen["auth_time"]) == ("aal1", ["pwd"], claims["auth_time"])
    refreshed = await kit.token(client, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    r = await kit.http.post("/introspect", data={**client.auth_form(), "token": refreshed.json()["access_token"]})
    assert r.json()["acr"] == "aal1", "a refresh keeps how the user authenticated"
    [flow] = [f for f in await _flows(kit) if f.grant_type == "authorization_code"]
    assert "authentication_assurance" in flow.applied
    assert flow.controls["authentication"]["amr"] == ["pwd"]
    assert flow.controls["authentication"]["reached"] == "aal1"
    cov = coverage([flow])
    [share] = [s for s in cov.by_tier_controls["strong"] if s.control == "authentication_assurance"]
    assert (share.applied, share.eligible, share.how) == (1, 1, {"aal1: pwd": 1})


async def test_an_aal2_tier_is_refused_with_a_password_only(make: KitFactory) -> None:
    kit = await _kit(make, _policy("aal2"))
    client = await kit.add_client(risk_tier="strong")
    params, _ = plain_request(client)
    r = await _password_then(kit, await kit.authorize(params))
    assert_redirect_error(kit, r, "access_denied", state=params["state"])
    [flow] = await _flows(kit)
    assert flow.outcome == "access_denied" and "authentication_assurance" not in flow.applied


async def test_a_scope_raising_the_tier_raises_the_assurance(make: KitFactory) -> None:
    """The effective tier (strictest of client and scope tiers) governs the sign-in too."""
    kit = await _kit(make, _policy("aal2", scope_tier=True))
    client = await kit.add_client(risk_tier="baseline")
    params, _ = plain_request(client, scope="openid payments")
    r = await _password_then(kit, await kit.authorize(params))
    assert_redirect_error(kit, r, "access_denied", state=params["state"])
    body = await _flow(kit, client)  # openid alone: baseline, any sign-in
    assert _id_token(kit, body)["acr"] == "aal1"


@pytest.mark.parametrize(("overrides", "error"), [
    ({"acr_values": "aal2"}, "access_denied"),
    ({"claims": orjson.dumps({"id_token": {"acr": {"essential": True, "values": ["aal2"]}}}).decode()},
     "unmet_authentication_requirements"),
    ({"claims": orjson.dumps({"id_token": {"acr": {"essential": True, "value": "urn:x:gold"}}}).decode()},
     "unmet_authentication_requirements"),
    ({"claims": "{not json"}, "invalid_request"),
    ({"acr_values": 'aal1 <b"x">'}, "invalid_request"),
])
async def test_requests_for_more_than_a_password_are_refused_precisely(
    make: KitFactory, overrides: dict[str, str], error: str
) -> None:
    kit = await _kit(make, _policy(None))
    client = await kit.add_client(risk_tier="strong")
    params, _ = plain_request(client, **overrides)
    r = await kit.authorize(params)
    if r.status_code == 200:  # a level TOTP or a passkey reaches: a password-only account is refused
        r = await _password_then(kit, r)
    assert_redirect_error(kit, r, error, state=params["state"])
    _, _, got = split_location(r)
    assert "<" not in got.get("error_description", "") and "gold" not in got.get("error_description", "")


async def test_requested_acr_values_and_max_age_are_honoured(make: KitFactory) -> None:
    kit = await _kit(make, Policy())
    client = await kit.add_client(risk_tier="baseline")
    body = await _flow(kit, client, acr_values="aal2 aal1", max_age="0", prompt="login")
    claims = _id_token(kit, body)
    assert claims["acr"] == "aal1", "the most preferred requested value the sign-in reached"
    assert claims["amr"] == ["pwd"] and isinstance(claims["auth_time"], int)


async def test_essential_acr_from_a_signed_request_object(make: KitFactory) -> None:
    kit = await _kit(make, Policy())
    client = await kit.add_client(risk_tier="baseline")
    ro, _ = client.request_object(claims={"id_token": {"acr": {"essential": True, "values": ["aal3"]}}})
    r = await kit.authorize({"client_id": client.client_id, "request": ro})
    assert r.status_code == 200 and 'name="password"' not in r.text, "AAL3: a device-bound passkey only"
    assert 'name="method" value="passkey-device"' in r.text


async def test_discovery_lists_the_reachable_acr_values(make: KitFactory) -> None:
    kit = await _kit(make, Policy())
    meta = (await kit.http.get("/.well-known/openid-configuration")).json()
    assert meta["acr_values_supported"] == ["aal1", "aal2", "aal3"], "password, +TOTP, device-bound passkey"
    assert meta["claims_parameter_supported"] is True
    assert {"acr", "amr", "auth_time"} <= set(meta["claims_supported"])


async def test_the_report_shows_per_tier_how_flows_were_authenticated(make: KitFactory) -> None:
    kit = await _kit(make, _policy("aal1"))
    client = await kit.add_client(risk_tier="strong")
    await _flow(kit, client)
    await _flow(kit, client)
    flows = await _flows(kit)
    report = build_report(now=kit.env.now(), policy=kit.env.policy, caps=ServerCapabilities(
        signing_algs=("ES256",), scopes=frozenset({"openid"})), clients=[], keys=[], grants={}, last_seen={},
        flows=flows)
    assert "strong authentication_assurance: aal1: pwd 2" in report_text(report)
    assert report.as_dict()["coverage"]["by_tier_controls"]["strong"][-1]["how"] == {"aal1: pwd": 2}
