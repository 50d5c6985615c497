"""The interaction's state machine (protocol/interaction): the transition table as data, every event from
every state, and the lifecycle driven over fake ports (no HTTP)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from jarmor.protocol.authorization import AuthorizationState
from jarmor.protocol.interaction import limits
from jarmor.protocol.interaction.lifecycle import (
    Deliver,
    GoTo,
    Lifecycle,
    Ports,
    Problem,
    ShowConsent,
    ShowSignIn,
    Transition,
    Verified,
)
from jarmor.protocol.interaction.machine import (
    TERMINAL,
    TRANSITIONS,
    Event,
    IllegalTransition,
    State,
    allowed,
    rule,
)
from jarmor.protocol.interaction.record import Interaction
from jarmor.protocol.responses import Redirect
from tests.kit import Kit
from tests.server.conftest import KitFactory
from tests.server.support import plain_request

PAIRS = [(s, e) for s in State for e in Event]


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s.value}-{e.value}" for s, e in PAIRS])
def test_each_event_from_each_state_is_allowed_exactly_when_the_table_says(state: State, event: Event) -> None:
    if (state, event) in TRANSITIONS:
        assert rule(state, event) is TRANSITIONS[(state, event)]
        assert event in allowed(state)
    else:
        with pytest.raises(IllegalTransition) as refused:
            rule(state, event)
        assert refused.value.state is state and refused.value.event is event
        assert event not in allowed(state)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_accept_nothing(state: State) -> None:
    assert allowed(state) == frozenset()


def test_illegal_moves_named_in_the_brief_are_refused() -> None:
    for state, event in [
        (State.SIGNING_IN, Event.CONSENT_GIVEN),  # a consent form before sign-in
        (State.SIGNING_IN, Event.CODE_ISSUED),
        (State.REQUESTED, Event.CONSENT_GIVEN),
        (State.COMPLETED, Event.CONSENT_DENIED),  # a second decision
        (State.REFUSED, Event.SIGNED_IN),
        (State.CONSENTING, Event.CODE_ISSUED),  # no code without the decision
        (State.RECEIVED, Event.SIGN_IN_REQUIRED),  # no interaction before the checks pass
    ]:
        with pytest.raises(IllegalTransition):
            rule(state, event)


def test_every_rule_cites_its_clause_and_terminal_moves_are_recorded() -> None:
    for (_state, event), found in TRANSITIONS.items():
        assert "§" in found.clause or "auto_approve" in found.clause, event
        if found.target in TERMINAL:
            assert found.recorded, f"{event.value} ends a flow without a flow record"
        assert found.stage in ("authorize", "code")


def test_every_state_is_reachable_and_every_live_state_can_end() -> None:
    reached = {State.RECEIVED}
    while True:
        more = {r.target for (s, _e), r in TRANSITIONS.items() if s in reached} - reached
        if not more:
            break
        reached |= more
    assert reached == set(State)
    for state in set(State) - TERMINAL:
        seen, frontier = {state}, {state}
        while frontier:
            frontier = {r.target for (s, _e), r in TRANSITIONS.items() if s in frontier} - seen
            seen |= frontier
        assert seen & TERMINAL, state


# --- the lifecycle over fake ports ---------------------------------------------------------------------


@dataclass
class FakePassword:
    """A ``Verifier``: ``alice`` / ``right``."""

    calls: int = 0

    def account(self, form: Mapping[str, str], interaction: Interaction) -> str | None:
        return form.get("username", "")

    async def verify(self, form: Mapping[str, str], interaction: Interaction) -> Verified | None:
        self.calls += 1
        if form.get("username") == "alice" and form.get("password") == "right":
            return Verified("alice", "password")
        return None

    async def enrolled(self, subject: str) -> bool:
        return True


@dataclass
class Driven:
    kit: Kit
    life: Lifecycle
    verifier: FakePassword
    recorded: list[Transition] = field(default_factory=list)

    async def start(self, **overrides: str) -> ShowSignIn:
        tc = await self.kit.add_client(risk_tier="baseline")
        params, _ = plain_request(tc, **overrides)
        env = self.kit.env
        st = AuthorizationState(env=env, outer=params, endpoint="authorization", now=env.now(), flow_id="f1")
        shown = await self.life.authorize(st)
        assert isinstance(shown, ShowSignIn), shown
        return shown

    async def reload(self, ia_id: str) -> Interaction:
        ia = await self.life.load(ia_id)
        assert ia is not None
        return ia


@pytest.fixture
async def driven(make: KitFactory) -> Driven:
    kit = await make(auto_approve=None)
    verifier = FakePassword()
    recorded: list[Transition] = []
    life = Lifecycle(kit.env, Ports(verifiers={"password": verifier}, record=recorded.append))
    return Driven(kit, life, verifier, recorded)


def events(d: Driven) -> list[Event]:
    return [t.event for t in d.recorded]


async def test_sign_in_consent_complete(driven: Driven) -> None:
    shown = await driven.start()
    assert shown.started and [m.name for m in shown.methods] == ["password"]
    assert shown.interaction.state is State.SIGNING_IN
    out = await driven.life.sign_in(shown.ia_id, shown.interaction, "password",
                                    {"username": "alice", "password": "right"}, "192.0.2.1")
    assert out == GoTo(shown.ia_id, "consent")
    ia = await driven.reload(shown.ia_id)
    assert ia.state is State.CONSENTING and ia.subject == "alice"
    assert ia.authentication.amr == ["pwd"] and ia.authentication.acr == "aal1"
    assert isinstance(await driven.life.current_page(shown.ia_id, ia), ShowConsent)
    done = await driven.life.decide(shown.ia_id, ia, approve=True)
    assert isinstance(done, Deliver) and isinstance(done.response, Redirect) and "code=" in done.response.location
    assert events(driven) == [Event.SIGN_IN_REQUIRED, Event.CODE_ISSUED]
    issued = driven.recorded[-1]
    assert issued.subject == "alice" and issued.authentication is not None
    assert await driven.life.load(shown.ia_id) is None, "a completed interaction is gone"


async def test_consent_before_sign_in_is_an_illegal_transition(driven: Driven) -> None:
    shown = await driven.start()
    out = await driven.life.decide(shown.ia_id, shown.interaction, approve=True)
    assert isinstance(out, Problem) and out.kind == "not-signed-in"
    assert await driven.life.load(shown.ia_id) is not None, "nothing changed"
    assert events(driven) == [Event.SIGN_IN_REQUIRED]


async def test_denied_consent_is_refused_and_recorded(driven: Driven) -> None:
    shown = await driven.start()
    await driven.life.sign_in(shown.ia_id, shown.interaction, "password",
                              {"username": "alice", "password": "right"}, "192.0.2.1")
    ia = await driven.reload(shown.ia_id)
    out = await driven.life.decide(shown.ia_id, ia, approve=False)
    assert isinstance(out, Deliver) and "error=access_denied" in getattr(out.response, "location", "")
    assert events(driven)[-1] is Event.CONSENT_DENIED and driven.recorded[-1].subject == "alice"
    again = await driven.life.decide(shown.ia_id, ia, approve=True)
    assert isinstance(again, Problem) and again.kind == "finished"


async def test_failed_sign_ins_then_locked_out(driven: Driven) -> None:
    shown = await driven.start()
    bad = {"username": "alice", "password": "wrong"}
    for _ in range(limits.MAX_INTERACTION_ATTEMPTS - 1):
        out = await driven.life.sign_in(shown.ia_id, shown.interaction, "password", bad, "192.0.2.1")
        assert isinstance(out, ShowSignIn) and out.failure == "failed"
    out = await driven.life.sign_in(shown.ia_id, shown.interaction, "password", bad, "192.0.2.1")
    assert isinstance(out, Deliver) and "error=access_denied" in getattr(out.response, "location", "")
    assert events(driven) == [Event.SIGN_IN_REQUIRED, Event.LOCKED_OUT]
    assert driven.verifier.calls == limits.MAX_INTERACTION_ATTEMPTS
    assert await driven.life.load(shown.ia_id) is None


async def test_unknown_method_is_refused_without_counting(driven: Driven) -> None:
    shown = await driven.start()
    out = await driven.life.sign_in(shown.ia_id, shown.interaction, "carrier-pigeon", {}, "192.0.2.1")
    assert isinstance(out, Problem) and out.kind == "form"
    assert driven.verifier.calls == 0


async def test_prompt_none_is_login_required(driven: Driven) -> None:
    tc = await driven.kit.add_client(risk_tier="baseline")
    params, _ = plain_request(tc, prompt="none")
    env = driven.kit.env
    st = AuthorizationState(env=env, outer=params, endpoint="authorization", now=env.now(), flow_id="f2")
    out = await driven.life.authorize(st)
    assert isinstance(out, Deliver) and "error=login_required" in getattr(out.response, "location", "")
    assert events(driven) == [Event.PROMPT_NONE]


async def test_a_refused_request_is_recorded_once(driven: Driven) -> None:
    env = driven.kit.env
    st = AuthorizationState(env=env, outer={"client_id": "nobody"}, endpoint="authorization", now=env.now())
    out = await driven.life.authorize(st)
    assert not isinstance(out, ShowSignIn)
    assert events(driven) == [Event.REQUEST_REFUSED] and driven.recorded[0].checks is st


async def test_interactions_stored_before_the_state_machine_still_load() -> None:
    from jarmor.protocol.authorization_state import AuthorizationRequest

    req = AuthorizationRequest("c", "https://rp/cb", "code", "query", ("openid",), None, None, "x" * 43, "S256",
                               "baseline", ())
    import orjson

    old = orjson.dumps({"request": req.to_json().decode(), "bind": "b", "subject": "bob", "auth_time": 7})
    ia = Interaction.load(old)
    assert ia.state is State.CONSENTING and ia.subject == "bob" and ia.authentication.auth_time == 7
    fresh = Interaction.load(orjson.dumps({"request": req.to_json().decode(), "bind": "b", "subject": None,
                                           "auth_time": None}))
    assert fresh.state is State.SIGNING_IN and fresh.subject is None
    assert Interaction.load(ia.dump()) == ia
