"""One row per transaction: how events aggregate into outcomes, decisions and the controls evidenced."""

from __future__ import annotations

from jarmor.governance.flows import applied_controls, matches_outcome, outcome_class, summarize
from jarmor.governance.records import FlowEvent, seal
from jarmor.store.flow_memory import MemoryFlowRecordStore

from .conftest import T0, event

HIGH = ("https_redirect_uris", "jarm", "par", "pkce_s256", "private_key_jwt", "request_object_nbf",
        "signed_request_object")
RO = {"signed": True, "alg": "PS256", "kid": "k1", "encrypted": False, "nbf": True, "lifetime": 300}
AUTH = {"method": "private_key_jwt", "alg": "PS256", "kid": "k1"}


async def rows(*events: FlowEvent) -> list:  # type: ignore[type-arg]
    store = MemoryFlowRecordStore()
    await store.append([e.entry() for e in events], seal)
    return await store.scan()


def hardened(flow_id: str = "f1", at: int = T0, **over: object) -> list[FlowEvent]:
    common = {"tier": "high", "client_tier": "baseline", "required": HIGH, "scopes": ("openid", "payments"),
              "tier_reasons": ("client tier baseline", "scope(s) payments require high"), "grant_type": "authorization_code"}
    common.update(over)
    front = {"par": True, "request_object": RO, "pkce": "S256", "response_mode": "query.jwt", "client_auth": AUTH}
    return [
        event(flow_id, "par", "pushed", at, controls=front, expires_at=at + 90, **common),  # type: ignore[arg-type]
        event(flow_id, "code", "code_issued", at + 1, subject="alice", expires_at=at + 61,
              controls={**front, "jarm": {"signed": True, "alg": "PS256", "kid": "s1", "encrypted": False},
                        "iss": "jwt", "redirect_uri": "https://c.example/cb"}, **common),  # type: ignore[arg-type]
        event(flow_id, "token", "tokens_issued", at + 2, subject="alice",
              controls={"client_auth": AUTH, "code_redeemed_at": at + 2, "tokens": ["access_token", "id_token"]},
              **common),  # type: ignore[arg-type]
    ]


async def test_success_collects_everything() -> None:
    (f,) = summarize(await rows(*hardened()), now=T0 + 10)
    assert f.outcome == "success" and f.stage == "token" and f.decision == "allow" and not f.gaps
    assert f.subject == "alice" and f.client_id == "c1" and f.scopes == ("openid", "payments")
    assert f.applied == ("pkce_s256", "signed_request_object", "par", "jarm", "private_key_jwt",
                         "request_object_nbf", "https_redirect_uris")
    assert f.code_issued_at == T0 + 1 and f.code_redeemed_at == T0 + 2 and f.tokens == ("access_token", "id_token")
    assert f.controls["par_client_auth"] == AUTH and f.controls["client_auth"] == AUTH
    assert f.reasons[0] == "effective tier high (client tier baseline; scope(s) payments require high)"
    assert "required controls evidenced" in f.reasons[1]
    assert [h.stage for h in f.hops] == ["par", "code", "token"]


async def test_a_required_control_not_evidenced_is_a_gap() -> None:
    evs = hardened()
    evs[1] = FlowEvent(**{**{k: getattr(evs[1], k) for k in evs[1].__dataclass_fields__},  # type: ignore[arg-type]
                          "controls": {**evs[1].controls, "jarm": {}}})
    (f,) = summarize(await rows(*evs), now=T0 + 10)
    assert f.outcome == "success" and f.gaps == ("jarm",)
    assert "required control jarm is not evidenced in the records" in f.reasons


async def test_a_loopback_http_redirect_is_not_reported_as_https() -> None:
    """Issue 12, report accuracy: a flow redirected to http://127.0.0.1 did not apply https_redirect_uris."""
    evs = hardened()
    evs[1] = FlowEvent(**{**{k: getattr(evs[1], k) for k in evs[1].__dataclass_fields__},  # type: ignore[arg-type]
                          "controls": {**evs[1].controls, "redirect_uri": "http://127.0.0.1:9999/cb"}})
    (f,) = summarize(await rows(*evs), now=T0 + 10)
    assert "https_redirect_uris" not in f.applied and f.gaps == ("https_redirect_uris",)
    assert ("required control https_redirect_uris is not evidenced: the redirect URI is plain http on a loopback "
            "host (RFC 8252 §7.3), not https") in f.reasons
    assert "https_redirect_uris" not in next(r for r in f.reasons if r.startswith("required controls evidenced"))


async def test_first_error_decides_and_later_events_are_incidents() -> None:
    evs = [*hardened()[:2], event("f1", "token", "invalid_grant", T0 + 3, error_description="PKCE verification failed", channel="json"), event("f1", "token", "invalid_grant", T0 + 4, error_description="already used", channel="json")]
    (f,) = summarize(await rows(*evs), now=T0 + 10)
    assert f.outcome == "invalid_grant" and f.stage == "token" and f.decision == "deny" and f.channel == "json"
    assert f.reasons[0] == "refused at token: invalid_grant: PKCE verification failed"
    assert f.incidents == ["token after the flow ended: invalid_grant: already used"]


async def test_expiry_turns_pending_into_incomplete() -> None:
    par = hardened("p")[:1]
    code = hardened("c")[:2]
    interaction = [event("i", "authorize", "interaction", T0, expires_at=T0 + 600)]
    evs = par + code + interaction
    assert {f.outcome for f in summarize(await rows(*evs), now=T0 + 30)} == {"pending"}
    late = {f.flow_id: f for f in summarize(await rows(*evs), now=T0 + 1000)}
    assert late["p"].outcome == "par_not_used" and late["p"].decision == "allow"
    assert late["c"].outcome == "code_not_redeemed" and late["c"].outcome_class == "incomplete"
    assert late["i"].outcome == "abandoned" and late["i"].decision == "none"


async def test_duplicate_events_from_a_retried_batch_count_once() -> None:
    evs = hardened()
    (f,) = summarize(await rows(*evs, *evs), now=T0 + 10)
    assert len(f.hops) == 3 and not f.incidents


async def test_newest_first_and_outcome_filters() -> None:
    evs = [*hardened("old", T0), event("new", "par", "invalid_client", T0 + 100, client_id=None, client_claimed="x", channel="json")]
    found = summarize(await rows(*evs), now=T0 + 200)
    assert [f.flow_id for f in found] == ["new", "old"]
    assert [f.flow_id for f in found if matches_outcome(f, "error")] == ["new"]
    assert [f.flow_id for f in found if matches_outcome(f, "invalid_client")] == ["new"]
    assert [f.flow_id for f in found if matches_outcome(f, "success")] == ["old"]
    assert all(matches_outcome(f, None) for f in found)
    assert outcome_class("access_denied") == "error" and outcome_class("abandoned") == "incomplete"


def test_applied_controls_from_evidence() -> None:
    assert applied_controls({}) == set()
    # issue 12, report accuracy: a loopback http redirect is not https, whatever a tier admits for it
    assert applied_controls({"redirect_uri": "http://127.0.0.1:9/cb"}) == set()
    assert applied_controls({"redirect_uri": "http://localhost:9/cb"}) == set()
    assert applied_controls({"redirect_uri": "https://client.example/cb"}) == {"https_redirect_uris"}
    assert applied_controls({"redirect_uri": "http://client.example/cb"}) == set()
    assert applied_controls({"request_object": {"signed": True, "encrypted": True},
                             "jarm": {"signed": True, "encrypted": True}}) == {
        "signed_request_object", "encrypted_request_object", "jarm", "encrypted_jarm"}
    assert applied_controls({"par_client_auth": {"method": "private_key_jwt"}}) == {"private_key_jwt"}
    assert applied_controls({"client_auth": {"method": "client_secret_basic"},
                             "par_client_auth": {"method": "private_key_jwt"}}) == set()


async def test_unreadable_rows_are_skipped() -> None:
    good = await rows(*hardened())
    from dataclasses import replace

    broken = [replace(good[0], body="{"), *good[1:]]
    (f,) = summarize(broken, now=T0 + 10)
    assert [h.stage for h in f.hops] == ["code", "token"]


async def test_events_chained_out_of_causal_order_across_nodes() -> None:
    """Node B's recorder may flush the code event before node A flushes the PAR event: the order of the chain
    is not the order of the hops."""
    par, code, token = hardened()
    (f,) = summarize(await rows(token, code, par), now=T0 + 10)
    assert f.outcome == "success" and not f.incidents and [h.stage for h in f.hops] == ["par", "code", "token"]
    shown = event("i", "authorize", "interaction", T0, expires_at=T0 + 600)
    denied = event("i", "authorize", "access_denied", T0, channel="redirect")
    (g,) = summarize(await rows(denied, shown), now=T0 + 10)
    assert g.outcome == "access_denied" and not g.incidents and [h.outcome for h in g.hops] == ["interaction",
                                                                                              "access_denied"]
