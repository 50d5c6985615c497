"""One table for the request pipeline (``authorization.STEPS``): what runs in which situation is declared
there, not by steps that return early, and decisions read typed state, never flow-record evidence."""

from __future__ import annotations

import inspect

import pytest

from jarmor.protocol import authorization as az
from jarmor.protocol import errors
from jarmor.protocol.vocabulary import PAR_URN_PREFIX
from tests.kit import REDIRECT, Kit

Situation = az.Situation


def test_the_endpoints_are_columns_of_the_one_table() -> None:
    assert az.steps_for(Situation.PAR) == az.PAR_ENDPOINT
    assert az.steps_for(Situation.BY_VALUE, Situation.PUSHED_URI) == az.AUTHORIZATION_ENDPOINT
    assert all(where for _, where in az.STEPS), "every step runs somewhere"
    assert len({step for step, _ in az.STEPS}) == len(az.STEPS), "each step is listed once"
    pushed = [s.__name__ for s in az.steps_for(Situation.PUSHED_URI)]
    # a pushed request was validated at PAR: redeeming it never re-reads request parameters ...
    for name in ("load_request_object", "check_redirect_uri", "check_scope", "check_pkce", "check_max_age"):
        assert name not in pushed
    # ... but every hop is held to its effective tier
    for name in ("resolve_effective_tier", "check_response_mode_for_tier", "check_par_required",
                 "check_signed_request_object_required", "check_client_authentication_for_tier"):
        assert name in pushed


def test_no_step_decides_where_it_runs() -> None:
    for step, _ in az.STEPS:
        source = inspect.getsource(step)
        assert "st.pushed is not None" not in source and 'st.endpoint ==' not in source, step.__name__


def test_the_situation_is_read_from_the_endpoint_and_the_request_uri(kit: Kit) -> None:
    def st(endpoint: str, **outer: str) -> az.AuthorizationState:
        return az.AuthorizationState(env=kit.env, outer=dict(outer), endpoint=endpoint, now=0)

    assert st("par").situation is Situation.PAR
    assert st("par", request_uri=PAR_URN_PREFIX + "x").situation is Situation.PAR
    assert st("authorization").situation is Situation.BY_VALUE
    assert st("authorization", request_uri="https://rp.example/ro").situation is Situation.BY_VALUE
    assert st("authorization", request_uri=PAR_URN_PREFIX + "x").situation is Situation.PUSHED_URI


async def test_decisions_read_typed_state_not_the_evidence(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="elevated", redirect_uris=[REDIRECT])
    st = az.AuthorizationState(env=kit.env, outer={"client_id": client.client_id}, endpoint="authorization",
                               now=kit.env.now())
    st.client = await kit.env.clients.get(client.client_id)
    az.resolve_effective_tier(st)
    st.evidence["request_object"] = {"signed": True, "encrypted": True}  # evidence alone proves nothing
    with pytest.raises(errors.InvalidRequest, match="requires control signed_request_object"):
        az.check_signed_request_object_required(st)
    st.request_signed = True
    az.check_signed_request_object_required(st)
