"""The authorization pipeline as data: the order of the checks, and single checks called directly.

The endpoint is an ordered list of small checks (ARCHITECTURE.md); these tests pin the ordering invariants
the security argument depends on rather than the exact list, so adding a check does not break them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from jarmor.jose import sign_jws
from jarmor.protocol import authorization as az
from jarmor.protocol import errors
from tests.kit import REDIRECT, Kit, pkce_pair

SPEC = re.compile(r"RFC \d+|JARM|FAPI|OIDC|OAuth")


def names(steps: Sequence[az.Step]) -> list[str]:
    return [s.__name__ for s in steps]


@pytest.mark.parametrize("pipeline", [az.AUTHORIZATION_ENDPOINT, az.PAR_ENDPOINT], ids=["authorize", "par"])
def test_every_check_has_one_job_and_cites_its_clause(pipeline: Sequence[az.Step]) -> None:
    for step in pipeline:
        doc = step.__doc__ or ""
        assert doc.strip(), f"{step.__name__} has no docstring"
        assert re.match(r"(load|check|choose|resolve|record)_", step.__name__), step.__name__
        if "tier" not in step.__name__:
            assert SPEC.search(doc), f"{step.__name__} does not cite the clause it enforces"


def test_authorization_endpoint_order() -> None:
    order = names(az.AUTHORIZATION_ENDPOINT)
    pos = order.index
    assert order[0] == "load_client"
    assert order[1] == "choose_provisional_target", "rule R: the error channel is chosen before any check"
    assert order[-1] == "record_request_object_jti", "A31: a replay mark only for a fully valid request"
    assert pos("load_pushed_request") < pos("load_request_object") < pos("check_redirect_uri")
    for later in ("check_response_type", "check_scope", "check_response_mode", "check_pkce",
                  "check_state_and_nonce"):
        assert pos("check_redirect_uri") < pos(later), f"{later} must run once the redirect URI is verified"
    for tiered in ("check_tier_available", "check_response_mode", "check_par_required",
                   "check_signed_request_object_required", "check_request_object_policy",
                   "check_client_authentication_for_tier"):
        assert pos("check_scope") < pos("resolve_effective_tier") < pos(tiered)


def test_par_endpoint_order() -> None:
    order = names(az.PAR_ENDPOINT)
    assert order[0] == "check_no_request_uri_at_par"
    assert order[-1] == "record_request_object_jti"
    assert not {"load_client", "choose_provisional_target", "load_pushed_request"} & set(order)
    shared = [n for n in names(az.AUTHORIZATION_ENDPOINT) if n in order]
    assert shared == [n for n in order if n in shared], "the shared checks run in the same order"


# --- single checks -------------------------------------------------------------------------------------


async def state(kit: Kit, outer: dict[str, str] | None = None, **params: Any) -> az.AuthorizationState:
    client = await kit.add_client(risk_tier="baseline", redirect_uris=[REDIRECT])
    st = az.AuthorizationState(env=kit.env, outer=outer or {"client_id": client.client_id},
                               endpoint="authorization", now=kit.env.now())
    st.client = await kit.env.clients.get(client.client_id)
    st.params = params
    return st


@pytest.mark.parametrize(
    ("params", "ok"),
    [({"code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}, True),
     ({}, False),
     ({"code_challenge": pkce_pair()[1]}, False),
     ({"code_challenge": pkce_pair()[1], "code_challenge_method": "plain"}, False),
     ({"code_challenge": "short", "code_challenge_method": "S256"}, False),
     ({"code_challenge": "~" * 43, "code_challenge_method": "S256"}, False)],
)
async def test_check_pkce(kit: Kit, params: dict[str, Any], ok: bool) -> None:
    st = await state(kit, **params)
    if ok:
        az.check_pkce(st)
        assert st.evidence["pkce"] == "S256"
    else:
        with pytest.raises(errors.InvalidRequest):
            az.check_pkce(st)


@pytest.mark.parametrize(("params", "ok"), [
    ({"prompt": "login consent"}, True), ({"prompt": "none"}, True), ({"prompt": "none login"}, False),
    ({"prompt": "bogus"}, False), ({"nonce": "n" * 512}, True), ({"nonce": "n" * 513}, False),
    ({"state": "s" * 2048}, True), ({"state": "s" * 2049}, False),
])
async def test_check_state_and_nonce(kit: Kit, params: dict[str, Any], ok: bool) -> None:
    st = await state(kit, **params)
    if ok:
        az.check_state_and_nonce(st)
    else:
        with pytest.raises(errors.InvalidRequest):
            az.check_state_and_nonce(st)


async def test_check_response_type(kit: Kit) -> None:
    st = await state(kit, response_type="code")
    az.check_response_type(st)
    assert st.response_type == "code"
    with pytest.raises(errors.InvalidRequest):
        az.check_response_type(await state(kit))
    with pytest.raises(errors.UnsupportedResponseType):
        az.check_response_type(await state(kit, response_type="code id_token"))


async def test_provisional_target_follows_rule_r(kit: Kit) -> None:
    st = await state(kit)
    assert st.client is not None
    cid = st.client.client_id
    for outer, expected in (
        ({"client_id": cid, "redirect_uri": REDIRECT, "state": "s"}, REDIRECT),
        ({"client_id": cid}, REDIRECT),  # the only registered URI (RFC 6749 §3.1.2.3)
        ({"client_id": cid, "redirect_uri": "https://evil.example/cb"}, None),
        ({"client_id": cid, "redirect_uri": REDIRECT + "/"}, None),
    ):
        st.outer, st.target = outer, None
        az.choose_provisional_target(st)
        assert (st.target.redirect_uri if st.target else None) == expected
    key = (await kit.add_client(risk_tier="baseline")).key
    unverified = sign_jws({"redirect_uri": "https://evil.example/cb", "state": "s"}, key, "ES256")
    st.outer, st.target = {"client_id": cid, "request": unverified, "redirect_uri": REDIRECT}, None
    az.choose_provisional_target(st)
    assert st.target is None, "the object's own (unverified) redirect_uri decides, and it is not registered"
    unverified = sign_jws({"redirect_uri": REDIRECT, "state": "inner", "response_mode": "fragment"}, key, "ES256")
    st.outer = {"client_id": cid, "request": unverified}
    az.choose_provisional_target(st)
    assert st.target is not None
    assert (st.target.state, st.target.response_mode) == ("inner", "fragment")


async def test_request_and_request_uri_are_exclusive(kit: Kit) -> None:
    st = await state(kit, outer={"client_id": "c", "request": "x", "request_uri": "y"})
    with pytest.raises(errors.InvalidRequest):
        az.check_request_and_request_uri_exclusive(st)


async def test_run_checks_attaches_the_target_known_at_the_failure(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    st = az.AuthorizationState(env=kit.env, outer={"client_id": client.client_id, "redirect_uri": REDIRECT,
                                                   "response_type": "token", "state": "s"},
                               endpoint="authorization", now=kit.env.now())
    with pytest.raises(errors.OAuthError) as exc:
        await az.run_checks(az.AUTHORIZATION_ENDPOINT, st)
    assert exc.value.error == "unsupported_response_type"
    assert exc.value.target is not None and exc.value.target.redirect_uri == REDIRECT
    assert exc.value.target.state == "s"
    st = az.AuthorizationState(env=kit.env, outer={"client_id": client.client_id,
                                                   "redirect_uri": "https://evil.example"},
                               endpoint="authorization", now=kit.env.now())
    with pytest.raises(errors.OAuthError) as exc:
        await az.run_checks(az.AUTHORIZATION_ENDPOINT, st)
    assert exc.value.target is None


def test_authorization_request_round_trips_through_json() -> None:
    req = az.AuthorizationRequest(
        client_id="c", redirect_uri=REDIRECT, response_type="code", response_mode="query.jwt",
        scope=("openid", "profile"), state="s", nonce=None, code_challenge="x" * 43, code_challenge_method="S256",
        tier="high", tier_reasons=("client tier high",), prompt=("login",), max_age=0, evidence={"par": True},
    )
    assert az.AuthorizationRequest.from_json(req.to_json()) == req
    assert req.target().response_mode == "query.jwt"


@pytest.mark.parametrize(("value", "ok"), [
    ("0", True), ("600", True), (600, True), (600.0, True), (0, True),
    ("-1", False), ("abc", False), ("1e3", False), (" 6", False), ("9" * 10, False),
    (-1, False), (1.5, False), (True, False), (float("nan"), False), (float("inf"), False), (10**12, False),
    ([1], False),
])
async def test_check_max_age(kit: Kit, value: Any, ok: bool) -> None:
    """Regression: OIDC Core §3.1.2.1 — a non-negative integer; a bad query value used to raise ValueError."""
    st = await state(kit, max_age=value)
    if ok:
        az.check_max_age(st)
    else:
        with pytest.raises(errors.InvalidRequest, match="max_age"):
            az.check_max_age(st)
