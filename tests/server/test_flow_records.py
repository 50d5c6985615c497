"""Flow integrity records written by the server: one event per hop, linked by flow_id from PAR (or the
authorization request) through the code to the token endpoint; every failure kind at PAR, authorize and token
is recorded with its error code and channel; the controls captured are the ones that applied."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from jarmor.governance.chain import verify
from jarmor.governance.flows import FlowSummary, summarize
from jarmor.governance.records import FlowEvent
from jarmor.protocol.authorization import AuthorizationRequest, pushed_request_key
from jarmor.server.accounts import add_user
from jarmor.store import open_store
from tests.kit import REDIRECT, Clock, Kit, TestClient, pkce_pair, response_params

from .conftest import KitFactory
from .test_encryption import critical_client, encrypt_ro, open_jarm

HTTPS_REDIRECT = "https://client.example/cb"


async def events(kit: Kit) -> list[FlowEvent]:
    await kit.server.flows.flush()
    return [FlowEvent.from_payload(orjson.loads(r.body)) for r in await kit.store.flows.scan()]


async def flows(kit: Kit) -> list[FlowSummary]:
    await kit.server.flows.flush()
    return summarize(await kit.store.flows.scan(), kit.env.now())


async def only_flow(kit: Kit) -> FlowSummary:
    found = await flows(kit)
    assert len(found) == 1, [f.as_dict() for f in found]
    return found[0]


async def high_client(kit: Kit, **meta: Any) -> TestClient:
    return await kit.add_client(
        risk_tier="high", redirect_uris=[HTTPS_REDIRECT], response_modes=["jwt", "query.jwt"], **meta
    )


def code_form(code: str, ctx: dict[str, Any], **over: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": ctx["redirect_uri"],
            "code_verifier": ctx["code_verifier"], **over}


# --- success: PAR -> code -> token, with every control captured -------------------------------------------


@pytest.mark.signs_in
async def test_hardened_flow_is_one_transaction_with_every_control(kit: Kit) -> None:
    client = await high_client(kit, scope="openid profile")
    out = await kit.full_flow(client, redirect_uri=HTTPS_REDIRECT, scope="openid profile")
    assert out["token"].status_code == 200, out["token"].text
    evs = await events(kit)
    assert [e.stage for e in evs] == ["par", "authorize", "code", "token"]  # authorize: the sign-in began
    assert len({e.flow_id for e in evs}) == 1 and all(e.client_id == client.client_id for e in evs)
    par, _, code, token = evs
    assert par.outcome == "pushed" and par.expires_at is not None and par.channel is None
    assert par.controls["client_auth"] == {"method": "private_key_jwt", "alg": "ES256", "kid": client.key.kid, "aud": "issuer"}
    ro = par.controls["request_object"]
    assert ro["signed"] and ro["alg"] == "ES256" and ro["kid"] == client.key.kid and ro["encrypted"] is False
    assert ro["nbf"] is True and ro["lifetime"] == 300
    assert code.outcome == "code_issued" and code.subject == "alice" and code.controls["par"] is True
    jarm = code.controls["jarm"]
    assert jarm["signed"] and jarm["alg"] == "ES256" and jarm["encrypted"] is False
    assert jarm["kid"] == kit.server.keyring.signing_key("ES256").kid
    assert code.controls["iss"] == "jwt" and code.controls["pkce"] == "S256"
    assert code.controls["redirect_uri"] == HTTPS_REDIRECT and code.controls["response_mode"] == "query.jwt"
    signed_in = code.controls["authentication"]  # high: a second factor at least (alice used her passkey)
    assert signed_in["methods"] == ["passkey-device"] and signed_in["reached"] == "aal3"
    assert signed_in["required"] == "aal2" and signed_in["tier_enforced"] is True
    assert code.expires_at == code.at + kit.env.policy.tier("high").code_lifetime
    assert token.outcome == "tokens_issued" and token.grant_type == "authorization_code"
    assert token.controls["client_auth"]["method"] == "private_key_jwt"
    assert token.controls["tokens"] == ["access_token", "refresh_token", "id_token"]
    assert token.controls["code_redeemed_at"] == token.at and token.controls["pkce_verified"] == "S256"
    assert token.subject == "alice" and token.scopes == ("openid", "profile")

    f = await only_flow(kit)
    assert f.outcome == "success" and f.decision == "allow" and f.stage == "token" and not f.gaps
    assert f.tier == "high" and f.client_tier == "high" and f.tier_reasons == ("client tier high",)
    assert set(f.required) <= set(f.applied)
    assert {"par", "jarm", "private_key_jwt", "signed_request_object", "pkce_s256",
            "authentication_assurance"} <= set(f.applied)
    assert f.code_issued_at is not None and f.code_redeemed_at == token.at
    assert f.policy == kit.server.capture.policy_id
    assert (await verify(kit.store.flows)).ok


@pytest.mark.signs_in
async def test_flow_id_travels_in_the_par_entry_and_the_code_record(kit: Kit) -> None:
    client = await high_client(kit)
    ro, ctx = client.request_object(redirect_uri=HTTPS_REDIRECT, response_mode="jwt")
    r = await kit.par(client, {"client_id": client.client_id, "request": ro})
    ref = r.json()["request_uri"].rsplit(":", 1)[1]
    key = pushed_request_key(client.client_id, ref)
    pushed = AuthorizationRequest.from_json(await kit.store.ephemeral.get("par", key) or b"")
    assert pushed.flow_id
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    code = kit.jarm(client, response_params(r)["response"])["code"]
    from jarmor.protocol.tokens import token_hash

    record = orjson.loads(await kit.store.ephemeral.get("code", token_hash(code)) or b"{}")
    assert record["flow_id"] == pushed.flow_id
    t = await kit.token(client, code_form(code, ctx))
    assert t.status_code == 200
    assert {e.flow_id for e in await events(kit)} == {pushed.flow_id}


async def test_plain_mode_by_value_records_iss_parameter_and_no_par(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    ro, ctx = client.request_object(response_mode="query")
    r = await kit.authorize({"client_id": client.client_id, "request": ro})
    params = response_params(r)
    assert params["iss"] == kit.env.issuer
    t = await kit.token(client, code_form(params["code"], ctx))
    assert t.status_code == 200
    f = await only_flow(kit)
    assert f.outcome == "success" and f.controls["par"] is False and f.controls["iss"] == "parameter"
    assert "jarm" not in f.controls and "par" not in f.applied and f.tokens == ("access_token", "refresh_token",
                                                                              "id_token")
    assert [h.stage for h in f.hops] == ["code", "token"]


@pytest.mark.signs_in
async def test_encrypted_request_object_and_encrypted_jarm_are_recorded(kit: Kit) -> None:
    client, enc_key = await critical_client(kit, ro=("ECDH-ES+A128KW", "A256GCM"), jarm=("ECDH-ES", "A128GCM"))
    ro, ctx = client.request_object(response_mode="jwt")
    r = await kit.par(client, {"client_id": client.client_id,
                               "request": encrypt_ro(kit, ro, "ECDH-ES+A128KW", "A256GCM")})
    assert r.status_code == 201, r.text
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    claims = open_jarm(kit, client, enc_key, response_params(r)["response"], "ECDH-ES", "A128GCM")
    t = await kit.token(client, code_form(claims["code"], ctx))
    assert t.status_code == 200, t.text
    f = await only_flow(kit)
    ro_ev = f.controls["request_object"]
    assert ro_ev["encrypted"] is True and ro_ev["enc_alg"] == "ECDH-ES+A128KW" and ro_ev["enc"] == "A256GCM"
    jarm = f.controls["jarm"]
    assert jarm == {"signed": True, "alg": "ES256", "kid": jarm["kid"], "encrypted": True, "enc_alg": "ECDH-ES",
                    "enc": "A128GCM"}
    assert {"encrypted_request_object", "encrypted_jarm"} <= set(f.applied)
    # its redirect URI is http on a loopback host: admitted, but not https, and the record says so (issue 12)
    assert f.controls["redirect_uri"].startswith("http://127.0.0.1") and f.tier == "critical"
    assert f.gaps == ("https_redirect_uris",) and "https_redirect_uris" not in f.applied


# --- failures at PAR ------------------------------------------------------------------------------------------


async def test_par_failure_client_authentication(kit: Kit) -> None:
    client = await high_client(kit)
    ro, _ = client.request_object(redirect_uri=HTTPS_REDIRECT)
    r = await kit.http.post("/par", data={"client_id": client.client_id, "request": ro,
                                          "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                          "client_assertion": client.assertion(aud="https://elsewhere.example")})
    assert r.status_code == 401
    f = await only_flow(kit)
    assert f.outcome == "invalid_client" and f.stage == "par" and f.channel == "json" and f.decision == "deny"
    assert f.client_id is None and f.client_claimed == client.client_id
    assert "aud" in (f.error_description or "")


async def test_par_failure_after_authentication_names_the_client_and_the_control(make: KitFactory) -> None:
    kit = await make()
    client = await high_client(kit)
    ro, _ = client.request_object(redirect_uri=HTTPS_REDIRECT, omit=("code_challenge",))
    r = await kit.par(client, {"client_id": client.client_id, "request": ro})
    assert r.status_code == 400
    f = await only_flow(kit)
    assert f.outcome == "invalid_request" and f.stage == "par" and f.channel == "json"
    assert f.client_id == client.client_id and f.tier == "high"
    assert f.controls["par_client_auth"]["method"] == "private_key_jwt" and f.controls["request_object"]["signed"]
    assert "code_challenge" in (f.error_description or "")


async def test_par_pushed_but_never_used_expires_as_par_not_used(kit: Kit, clock: Clock) -> None:
    client = await high_client(kit)
    ro, _ = client.request_object(redirect_uri=HTTPS_REDIRECT)
    assert (await kit.par(client, {"client_id": client.client_id, "request": ro})).status_code == 201
    assert (await only_flow(kit)).outcome == "pending"
    clock.advance(kit.env.policy.tier("high").par_lifetime + 1)
    f = await only_flow(kit)
    assert f.outcome == "par_not_used" and f.outcome_class == "incomplete"


# --- failures at the authorization endpoint --------------------------------------------------------------------


async def test_authorize_failure_before_redirect_verification_goes_to_a_page(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    _, challenge = pkce_pair()
    r = await kit.authorize({"client_id": client.client_id, "response_type": "code", "scope": "openid",
                             "redirect_uri": "https://evil.example/cb", "code_challenge": challenge,
                             "code_challenge_method": "S256"})
    assert r.status_code == 400
    f = await only_flow(kit)
    assert f.outcome == "invalid_request" and f.stage == "authorize" and f.channel == "page"
    assert f.client_id == client.client_id and "redirect_uri" in (f.error_description or "")


async def test_authorize_failure_with_a_verified_target_is_redirected_with_iss(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    ro, _ = client.request_object(scope="openid payments", response_mode="query")
    r = await kit.authorize({"client_id": client.client_id, "request": ro})
    assert r.status_code == 303 and response_params(r)["error"] == "invalid_scope"
    f = await only_flow(kit)
    assert f.outcome == "invalid_scope" and f.channel == "redirect" and f.controls["iss"] == "parameter"


async def test_authorize_failure_in_a_jarm_mode_records_the_signed_error_response(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="elevated", response_modes=["jwt"])
    ro, _ = client.request_object(response_mode="jwt", omit=("jti",))
    r = await kit.authorize({"client_id": client.client_id, "request": ro})
    assert kit.jarm(client, response_params(r)["response"])["error"] == "invalid_request_object"
    f = await only_flow(kit)
    assert f.outcome == "invalid_request_object" and f.channel == "redirect"
    assert f.controls["jarm"]["signed"] is True and f.controls["iss"] == "jwt"


async def test_authorize_without_par_where_the_tier_requires_it(kit: Kit) -> None:
    client = await high_client(kit)
    ro, _ = client.request_object(redirect_uri=HTTPS_REDIRECT, response_mode="jwt")
    r = await kit.authorize({"client_id": client.client_id, "request": ro})
    assert kit.jarm(client, response_params(r)["response"])["error"] == "invalid_request"
    f = await only_flow(kit)
    assert f.outcome == "invalid_request" and f.controls["par"] is False and f.tier == "high"
    assert "control par" in (f.error_description or "") and f.decision == "deny"
    assert any("refused at authorize" in reason for reason in f.reasons)


async def test_unknown_request_uri_and_unknown_client(kit: Kit) -> None:
    client = await high_client(kit)
    await kit.authorize({"client_id": client.client_id, "request_uri": "urn:ietf:params:oauth:request_uri:nope"})
    await kit.authorize({"client_id": "no-such-client", "scope": "openid"})
    found = {f.outcome: f for f in await flows(kit)}
    assert found["invalid_request_uri"].channel == "page" and found["invalid_request_uri"].client_id == client.client_id
    assert found["invalid_request"].client_id is None and found["invalid_request"].client_claimed == "no-such-client"


async def test_interactive_sign_in_consent_denied_and_abandoned(make: KitFactory, clock: Clock) -> None:
    import re
    from html import unescape

    kit = await make(auto_approve=None)
    await add_user(kit.store.users, "bob", "bob's long password")
    client = await kit.add_client(risk_tier="baseline")

    async def start() -> Any:
        ro, _ = client.request_object(response_mode="query")
        r = await kit.authorize({"client_id": client.client_id, "request": ro})
        assert r.status_code == 200 and "password" in r.text
        return r

    def form(r: Any) -> tuple[str, dict[str, str]]:
        first = re.search(r"<form\b.*?</form>", r.text, re.S).group(0)  # type: ignore[union-attr]  # the password form
        action = unescape(re.search(r'action="([^"]+)"', first).group(1))  # type: ignore[union-attr]
        return action, {unescape(k): unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', first)}

    r = await start()
    action, fields = form(r)
    r = await kit.http.post(action, data={**fields, "username": "bob", "password": "bob's long password"})
    r = await kit.http.get(r.headers["location"])  # the consent page (post/redirect/get)
    action, fields = form(r)
    r = await kit.http.post(action, data={**fields, "decision": "deny"})
    assert response_params(r)["error"] == "access_denied"
    await start()  # shown, never completed
    found = await flows(kit)
    by_outcome = {f.outcome: f for f in found}
    denied = by_outcome["access_denied"]
    assert [h.outcome for h in denied.hops] == ["interaction", "access_denied"]
    assert denied.subject == "bob" and denied.channel == "redirect" and denied.stage == "authorize"
    assert by_outcome["pending"].hops[0].outcome == "interaction"
    clock.advance(kit.env.settings.interaction_lifetime + 1)
    assert {f.outcome for f in await flows(kit)} == {"access_denied", "abandoned"}


# --- failures at the token endpoint ----------------------------------------------------------------------------


async def test_token_failure_after_the_code_is_consumed_belongs_to_the_flow(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    ro, ctx = client.request_object(response_mode="query")
    code = response_params(await kit.authorize({"client_id": client.client_id, "request": ro}))["code"]
    t = await kit.token(client, code_form(code, ctx, code_verifier="x" * 43))
    assert t.json()["error"] == "invalid_grant"
    f = await only_flow(kit)
    assert f.outcome == "invalid_grant" and f.stage == "token" and f.channel == "json"
    assert [h.stage for h in f.hops] == ["code", "token"] and "PKCE" in (f.error_description or "")


async def test_code_replay_after_success_is_an_incident_of_the_flow(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    ro, ctx = client.request_object(response_mode="query")
    code = response_params(await kit.authorize({"client_id": client.client_id, "request": ro}))["code"]
    assert (await kit.token(client, code_form(code, ctx))).status_code == 200
    assert (await kit.token(client, code_form(code, ctx))).json()["error"] == "invalid_grant"
    f = await only_flow(kit)
    assert f.outcome == "success" and len(f.incidents) == 1 and "invalid_grant" in f.incidents[0]
    replay = (await events(kit))[-1]
    assert replay.controls["code_replayed"] is True


async def test_unknown_code_and_bad_client_auth_are_flows_of_their_own(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    await kit.token(client, {"grant_type": "authorization_code", "code": "nope", "redirect_uri": REDIRECT,
                             "code_verifier": "x" * 43})
    await kit.http.post("/token", data={"grant_type": "client_credentials", "client_id": "ghost",
                                        "client_secret": "s"})
    await kit.http.post("/token", data={"grant_type": "password"})
    found = {f.outcome: f for f in await flows(kit)}
    assert found["invalid_grant"].client_id == client.client_id and found["invalid_grant"].stage == "token"
    assert found["invalid_grant"].controls["client_auth"]["method"] == "private_key_jwt"
    assert found["invalid_client"].client_claimed == "ghost" and found["invalid_client"].client_id is None
    assert found["unsupported_grant_type"].channel == "json"


async def test_code_issued_but_never_redeemed(kit: Kit, clock: Clock) -> None:
    client = await kit.add_client(risk_tier="baseline")
    ro, _ = client.request_object(response_mode="query")
    await kit.authorize({"client_id": client.client_id, "request": ro})
    assert (await only_flow(kit)).outcome == "pending"
    clock.advance(kit.env.policy.tier("baseline").code_lifetime + 1)
    f = await only_flow(kit)
    assert f.outcome == "code_not_redeemed" and f.decision == "allow" and f.code_redeemed_at is None


async def test_client_credentials_is_a_back_channel_transaction(kit: Kit) -> None:
    machine = await kit.add_client(risk_tier="elevated", grant_types=["client_credentials"], redirect_uris=None,
                                   scope="profile")
    r = await kit.http.post("/token", data={**machine.auth_form(), "grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    f = await only_flow(kit)
    assert f.outcome == "success" and f.grant_type == "client_credentials" and f.tokens == ("access_token",)
    assert f.tier == "elevated" and f.tier_reasons == ("client tier elevated",)
    assert f.applied == ("private_key_jwt",) and not f.gaps  # front-channel controls do not apply


# --- the recorder never fails a flow ---------------------------------------------------------------------------


async def test_a_failing_store_never_fails_a_flow(kit: Kit, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*_: Any, **__: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(kit.store.flows, "append", broken)
    kit.server.flows.retries, kit.server.flows.backoff = 1, 0.0
    client = await kit.add_client(risk_tier="baseline")
    out = await kit.full_flow(client)
    assert out["token"].status_code == 200
    with caplog.at_level(logging.WARNING, logger="jarmor.flows"):
        await kit.server.flows.flush()
    stats = kit.server.flows.stats
    assert stats.dropped == 3 and stats.written == 0 and stats.failed_batches >= 2
    assert any("dropped" in r.message for r in caplog.records)


async def test_records_on_a_sqlite_store_verify(tmp_path: Any) -> None:
    from tests.kit import make_kit

    kit = await make_kit(store=open_store(f"sqlite:///{tmp_path / 'j.db'}"))
    try:
        client = await kit.add_client(risk_tier="baseline")
        for _ in range(3):
            assert (await kit.full_flow(client))["token"].status_code == 200
        found = await flows(kit)
        assert [f.outcome for f in found] == ["success"] * 3
        report = await verify(kit.store.flows)
        assert report.ok and report.records == 9 and report.head_seq == 9
    finally:
        await kit.http.aclose()
        await kit.server.stop()
