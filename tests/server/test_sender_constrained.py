"""Control ``sender_constrained_tokens`` (issue #13; FAPI 2.0 §5.3.2.1-6; checklist S91) as a matrix:
tiers (not requiring it, requiring it by the client's tier, requiring it through a scope) x grants
(authorization_code, refresh_token, client_credentials) x binding (present, absent, mismatched).

Then registration, flow records, the report's coverage and the policy dry-run, which know the control from its
registry entry alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from jarmor.governance.chain import verify
from jarmor.governance.flows import summarize
from jarmor.governance.policy_check import flow_rule_problems
from jarmor.governance.registrations import registration_problems
from jarmor.governance.reports import coverage
from jarmor.jose import generate_jwk
from jarmor.protocol.controls import REGISTRY, applied_controls
from jarmor.protocol.policy import Control, Policy, PolicyError, policy_from_config
from tests.kit import Kit, TestClient, all_tokens

from .conftest import KitFactory
from .dpop_support import PAR_URL, code_form, code_via_par, proof, token
from .support import assert_json_error

K1 = generate_jwk("ES256")
K2 = generate_jwk("ES256")
CONTROL = Control.SENDER_CONSTRAINED_TOKENS.value

# "bound": baseline plus the control; scope "payments" raises a baseline client to it
POLICY = policy_from_config({
    "tiers": {"bound": {"rank": 5, "controls": ["pkce_s256", CONTROL]}},
    "scopes": {"payments": "bound"},
})
TIERS = {  # case -> (client tier, scope, required?)
    "baseline": ("baseline", "openid", False),
    "client-tier": ("bound", "openid", True),
    "scope-raised": ("baseline", "openid payments", True),
}
GRANTS = ("authorization_code", "refresh_token", "client_credentials")
BINDINGS = ("present", "absent", "mismatched")


async def _client(kit: Kit, tier: str, grant: str, scope: str) -> TestClient:
    # a client in a tier requiring the control declares a binding (registration refuses it otherwise); the
    # scope-raised one does not: only its requests are held to the control
    declared: dict[str, Any] = {"dpop_bound_access_tokens": True} if tier == "bound" else {}
    if grant == "client_credentials":
        return await kit.add_client(risk_tier=tier, grant_types=["client_credentials"], redirect_uris=[],
                                    scope=scope.replace("openid", "profile"), **declared)
    return await kit.add_client(risk_tier=tier, scope=scope, **declared)


def _access_tokens(kit: Kit) -> int:
    return sum(1 for t in all_tokens(kit) if t.kind == "access_token")


async def _request(kit: Kit, client: TestClient, grant: str, scope: str, binding: str) -> tuple[Any, int]:
    """Run ``grant`` with the binding case: the token response of the request under test and the number of
    access tokens it minted."""
    mark: list[int] = []
    r = await _last_request(kit, client, grant, scope, binding, mark)
    return r, _access_tokens(kit) - mark[0]


async def _last_request(
    kit: Kit, client: TestClient, grant: str, scope: str, binding: str, mark: list[int]
) -> Any:
    good = (proof(K1),) if binding == "present" else ()
    if grant == "client_credentials":
        bad = (proof(K1, PAR_URL),)  # a proof that does not match this request
        mark.append(_access_tokens(kit))
        return await token(kit, client, {"grant_type": "client_credentials",
                                         "scope": scope.replace("openid", "profile")},
                           *(bad if binding == "mismatched" else good))
    bind_code = (proof(K1, PAR_URL),) if binding == "mismatched" else ()
    code, verifier = await code_via_par(kit, client, *bind_code, scope=scope)
    if grant == "authorization_code":
        presented = (proof(K2),) if binding == "mismatched" else good
        mark.append(_access_tokens(kit))
        return await token(kit, client, code_form(code, verifier), *presented)
    first = await token(kit, client, code_form(code, verifier), proof(K1))
    assert first.status_code == 200, first.text
    rt = first.json()["refresh_token"]
    bad = (proof(K1, PAR_URL),)
    mark.append(_access_tokens(kit))
    return await token(kit, client, {"grant_type": "refresh_token", "refresh_token": rt},
                       *(bad if binding == "mismatched" else good))


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("grant", GRANTS)
@pytest.mark.parametrize("case", list(TIERS))
async def test_matrix(make: KitFactory, case: str, grant: str, binding: str) -> None:
    kit = await make(policy=POLICY)
    tier, scope, required = TIERS[case]
    client = await _client(kit, tier, grant, scope)
    r, minted = await _request(kit, client, grant, scope, binding)
    if binding == "present":
        assert r.status_code == 200, r.text
        assert r.json()["token_type"] == "DPoP" and minted == 1
    elif binding == "absent" and not required:
        assert r.status_code == 200 and r.json()["token_type"] == "Bearer" and minted == 1
    elif binding == "absent":
        body = assert_json_error(r, "invalid_request")
        assert minted == 0
        if tier != "bound":  # the bound client's own rule (dpop_bound_access_tokens) speaks first
            assert CONTROL in body["error_description"]
    else:
        expected = "invalid_grant" if grant == "authorization_code" else "invalid_dpop_proof"
        assert_json_error(r, expected)
        assert minted == 0


async def test_the_binding_follows_the_tier_recorded_with_the_refresh_token(make: KitFactory) -> None:
    """A refresh under the tier recorded with the grant: a scope-raised grant stays held to the control."""
    kit = await make(policy=POLICY)
    client = await _client(kit, "baseline", "refresh_token", "openid payments")
    code, verifier = await code_via_par(kit, client, scope="openid payments")
    first = (await token(kit, client, code_form(code, verifier), proof(K1))).json()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "openid"}
    body = assert_json_error(await token(kit, client, form), "invalid_request")
    assert CONTROL in body["error_description"]


# --- registration ------------------------------------------------------------------------------------------


async def test_a_tier_requiring_the_control_refuses_registration_without_a_binding(make: KitFactory) -> None:
    kit = await make(policy=POLICY)
    meta = {"redirect_uris": ["http://127.0.0.1:9999/cb"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [K1.public_dict()]}, "risk_tier": "bound"}
    r = await kit.http.post("/register", json=meta, headers={"Authorization": "Bearer initial-token"})
    body = assert_json_error(r, "invalid_client_metadata")
    assert body["error_description"] == (
        f"risk_tier bound requires control {CONTROL}: register dpop_bound_access_tokens or "
        "tls_client_certificate_bound_access_tokens as true")
    for flag in ("dpop_bound_access_tokens", "tls_client_certificate_bound_access_tokens"):
        r = await kit.http.post("/register", json={**meta, flag: True},
                                headers={"Authorization": "Bearer initial-token"})
        assert r.status_code == 201, r.text
        assert r.json()[flag] is True
    r = await kit.http.post("/register", json={**meta, "dpop_bound_access_tokens": "yes"},
                            headers={"Authorization": "Bearer initial-token"})
    assert_json_error(r, "invalid_client_metadata")


async def test_the_drift_check_names_the_control_for_a_stored_registration() -> None:
    from jarmor.governance.reports import capabilities
    from jarmor.protocol.context import Settings

    caps = capabilities(POLICY, Settings(), "https://as.example", [])
    meta = {"redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [K1.public_dict()]}, "risk_tier": "bound"}
    rules = {p.rule for p in registration_problems(meta, POLICY, caps)}
    assert CONTROL in rules
    assert CONTROL not in {p.rule for p in registration_problems({**meta, "dpop_bound_access_tokens": True},
                                                                  POLICY, caps)}


def test_tier_dpop_nonce_is_strictly_validated() -> None:
    assert policy_from_config({}).tier("high").dpop_nonce and policy_from_config({}).tier("critical").dpop_nonce
    assert not policy_from_config({}).tier("baseline").dpop_nonce
    assert not policy_from_config({"tiers": {"high": {"dpop_nonce": False}}}).tier("high").dpop_nonce
    with pytest.raises(PolicyError, match="dpop_nonce must be bool"):
        policy_from_config({"tiers": {"high": {"dpop_nonce": "yes"}}})
    with pytest.raises(PolicyError, match="did you mean 'dpop_nonce'"):
        policy_from_config({"tiers": {"high": {"dpop_nonces": True}}})


def test_default_high_and_critical_require_the_control() -> None:
    """Issue 13: FAPI 2.0 §5.3.2.1 — the tiers that claim FAPI 2.0 require sender-constrained tokens."""
    for name in ("high", "critical"):
        assert Policy().tier(name).requires(Control.SENDER_CONSTRAINED_TOKENS)
    for name in ("baseline", "elevated"):
        assert not Policy().tier(name).requires(Control.SENDER_CONSTRAINED_TOKENS)


# --- flow records, report coverage, dry-run ----------------------------------------------------------------


async def test_flow_records_carry_the_binding_and_governance_reads_it_from_the_registry(make: KitFactory) -> None:
    kit = await make(policy=POLICY)
    bound = await _client(kit, "bound", "authorization_code", "openid")
    code, verifier = await code_via_par(kit, bound)
    assert (await token(kit, bound, code_form(code, verifier), proof(K1))).status_code == 200
    plain = await _client(kit, "baseline", "authorization_code", "openid")
    code, verifier = await code_via_par(kit, plain)
    assert (await token(kit, plain, code_form(code, verifier))).status_code == 200
    refused = await _client(kit, "baseline", "authorization_code", "openid payments")
    code, verifier = await code_via_par(kit, refused, scope="openid payments")
    assert (await token(kit, refused, code_form(code, verifier))).status_code == 400

    await kit.server.flows.flush()
    assert (await verify(kit.store.flows)).ok  # what `jarmor flows verify` checks
    rows = await kit.store.flows.scan()
    flows = {f.client_id: f for f in summarize(rows, kit.env.now())}
    evidence = {"method": "dpop", "thumbprint": K1.thumbprint()}
    assert flows[bound.client_id].controls["sender_constraint"] == evidence
    assert CONTROL in flows[bound.client_id].applied and CONTROL not in flows[bound.client_id].gaps
    assert "sender_constraint" not in flows[plain.client_id].controls
    assert CONTROL not in flows[plain.client_id].applied
    assert flows[refused.client_id].outcome != "success"

    # the dry-run: a policy making baseline require the control flags the bearer flow, not the bound one
    proposed = policy_from_config({"tiers": {"baseline": {"controls": ["pkce_s256", CONTROL]},
                                             "bound": {"rank": 5, "controls": ["pkce_s256", CONTROL]}}})
    assert (CONTROL, f"tier baseline: control {CONTROL} was not used") in flow_rule_problems(
        flows[plain.client_id], proposed)
    assert not [p for p in flow_rule_problems(flows[bound.client_id], proposed) if p[0] == CONTROL]
    shares = {s.control: s for s in coverage([flows[bound.client_id], flows[plain.client_id]]).controls}
    assert shares[CONTROL].applied == 1
    assert REGISTRY[Control.SENDER_CONSTRAINED_TOKENS].back_channel
    assert CONTROL in applied_controls({"sender_constraint": evidence})
