"""The built-in tiers' authentication assurance, as shipped (issue 14: secure by default): every default tier, by
every way of approving a flow (a password, a password and a TOTP code, a device-bound passkey, the loopback
auto-approve setting), by the hops a flow takes (the authorization request by value or pushed, the token
endpoint, a refresh, introspection). ``high`` needs a second factor, ``critical`` a device-bound passkey; what
is accepted carries the methods and the ``acr`` reached into the flow record, the ID token and introspection;
what is not is never completed with a weaker sign-in. The tier's maximum authentication age is what the
request is held to (recorded with the flow)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jarmor.governance.flows import summarize
from jarmor.governance.render import controls_brief
from jarmor.jose import JwkSet, verify_jws
from jarmor.protocol.policy import DEFAULT_TIERS, Control
from tests.kit import Kit, TestClient, page_forms, response_params

from .conftest import KitFactory
from .test_encryption import critical_client, encrypt_ro, open_jarm

# how the user approves -> (methods the kit's user picks, in order; None: the server's auto-approve)
APPROVALS: dict[str, tuple[str, ...] | None] = {
    "password": ("password",),
    "password+totp": ("password", "totp"),
    "passkey": ("passkey",),
    "auto-approve": None,
}
# what each approval reaches: (methods recorded, acr reached)
REACHED = {
    "password": (["password"], "aal1"),
    "password+totp": (["password", "totp"], "aal2"),
    "passkey": (["passkey-device"], "aal3"),
    "auto-approve": ([], None),
}
LEVEL = {None: 0, "aal1": 1, "aal2": 2, "aal3": 3}
CASES = [(tier, approval, hop) for tier in DEFAULT_TIERS for approval in APPROVALS
         for hop in (("value", "par") if not DEFAULT_TIERS[tier].requires(Control.PAR) else ("par",))]


def needed(tier: str) -> str | None:
    """The built-in tier's acr, when it requires the control (the policy as data)."""
    t = DEFAULT_TIERS[tier]
    return t.authentication.acr if t.requires(Control.AUTHENTICATION_ASSURANCE) else None


def accepted(tier: str, approval: str) -> bool:
    return LEVEL[REACHED[approval][1]] >= LEVEL[needed(tier)]


def reached(tier: str, approval: str) -> tuple[list[str], str | None]:
    """What the sign-in records: no more factors than the tier asks for (a password is enough below high)."""
    if approval == "password+totp" and LEVEL[needed(tier)] < LEVEL["aal2"]:
        return REACHED["password"]
    return REACHED[approval]


def test_the_expectations_are_the_product_promise() -> None:
    """Read plainly: high takes a second factor or a passkey, critical only a passkey, nothing takes
    auto-approve at either."""
    table = {(t, a) for t in DEFAULT_TIERS for a in APPROVALS if accepted(t, a)}
    assert {a for t, a in table if t == "high"} == {"password+totp", "passkey"}
    assert {a for t, a in table if t == "critical"} == {"passkey"}
    assert {a for t, a in table if t in ("baseline", "elevated")} == set(APPROVALS)


async def _client(kit: Kit, tier: str) -> tuple[TestClient, Any]:
    if tier == "critical":
        return await critical_client(kit)
    modes = ["query", "jwt"] if tier == "baseline" else ["jwt"]
    return await kit.add_client(risk_tier=tier, response_modes=modes), None


async def _authorize(kit: Kit, client: TestClient, enc: Any, tier: str, hop: str,
                     methods: tuple[str, ...] | None) -> tuple[httpx.Response, dict[str, Any]]:
    ro, ctx = client.request_object(response_mode="query" if tier == "baseline" else "jwt")
    if enc is not None:
        ro = encrypt_ro(kit, ro, "ECDH-ES", "A128GCM")
    if hop == "par":
        pushed = await kit.par(client, {"request": ro, "client_id": client.client_id})
        assert pushed.status_code == 201, pushed.text
        params = {"client_id": client.client_id, "request_uri": pushed.json()["request_uri"]}
    else:
        params = {"client_id": client.client_id, "request": ro}
    if methods is None:
        return await kit.authorize(params), ctx
    return await kit.authorize(params, methods=methods), ctx


def _delivered(kit: Kit, client: TestClient, enc: Any, r: httpx.Response) -> dict[str, Any]:
    params: dict[str, Any] = response_params(r)
    if "response" in params:
        params = (open_jarm(kit, client, enc, params["response"], "ECDH-ES", "A128GCM") if enc is not None
                  else kit.jarm(client, params["response"]))
    return params


@pytest.mark.parametrize(("tier", "approval", "hop"), CASES, ids=[f"{t}-{a}-{h}" for t, a, h in CASES])
async def test_default_tiers_by_sign_in_method(make: KitFactory, tier: str, approval: str, hop: str) -> None:
    methods = APPROVALS[approval]
    kit = await make(auto_approve="alice") if methods is None else await make(user="alice")
    client, enc = await _client(kit, tier)
    r, ctx = await _authorize(kit, client, enc, tier, hop, methods)
    want_methods, want_acr = reached(tier, approval)
    if not accepted(tier, approval):
        if approval == "auto-approve":  # it signs nobody in: refused at once, delivered to the client
            assert _delivered(kit, client, enc, r)["error"] == "access_denied"
        else:  # the sign-in page asks for what the user did not give, and offers nothing weaker
            assert r.status_code == 200 and 'action="/interaction/' in r.text, r.text[:300]
            offered = {f.method for f in page_forms(r.text)}
            assert offered and not offered <= set(methods or ()), offered
        await kit.server.flows.flush()
        assert not [f for f in summarize(await kit.store.flows.scan(), kit.env.now()) if f.code_issued_at]
        return
    params = _delivered(kit, client, enc, r)
    assert "code" in params, params
    t = await kit.token(client, {"grant_type": "authorization_code", "code": params["code"],
                                 "redirect_uri": ctx["redirect_uri"], "code_verifier": ctx["code_verifier"]})
    assert t.status_code == 200, t.text
    body = t.json()
    claims = verify_jws(body["id_token"], JwkSet.from_dict(kit.server.keyring.public_jwks()),
                        algorithms=["ES256"]).claims
    assert claims.get("acr") == want_acr
    refreshed = await kit.token(client, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    seen = (await kit.http.post("/introspect", data={**client.auth_form(),
                                                      "token": refreshed.json()["access_token"]})).json()
    assert seen["active"] and seen.get("acr") == want_acr, "a refresh keeps how the user authenticated"
    await kit.server.flows.flush()
    [flow] = [f for f in summarize(await kit.store.flows.scan(), kit.env.now())
              if f.grant_type == "authorization_code" and f.outcome == "success"]
    signed_in = flow.controls["authentication"]
    assert signed_in["methods"] == want_methods and signed_in["reached"] == want_acr
    enforced = DEFAULT_TIERS[tier].requires(Control.AUTHENTICATION_ASSURANCE)
    assert signed_in["tier_enforced"] is enforced
    if enforced:  # the tier's level and maximum authentication age, and an authentication within it
        assert signed_in["required"] == DEFAULT_TIERS[tier].authentication.acr
        assert signed_in["max_age"] == DEFAULT_TIERS[tier].authentication.max_age
        assert 0 <= kit.env.now() - signed_in["auth_time"] <= signed_in["max_age"]
    assert ("authentication_assurance" in flow.applied) is enforced
    assert flow.tier == tier
    assert controls_brief(flow).endswith(f" {want_acr.upper()}" if want_acr else "pkjwt"), controls_brief(flow)
