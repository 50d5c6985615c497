"""Authentication assurance as policy (protocol/interaction/authentication.py, assurance.py; the control
``authentication_assurance``): tier properties, levels and amr, the request's acr/claims/max_age, and the
step-up through the lifecycle with a second sign-in method plugged in as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest

from jarmor.protocol import errors
from jarmor.protocol.authorization import AuthorizationState
from jarmor.protocol.interaction import authentication as authn
from jarmor.protocol.interaction.assurance import asserted_acr, check_authentication_request
from jarmor.protocol.interaction.authentication import (
    PASSWORD,
    Authentication,
    Factor,
    Level,
    Method,
    Requirement,
    Use,
    level_of,
    next_methods,
)
from jarmor.protocol.interaction.lifecycle import (
    Deliver,
    GoTo,
    Lifecycle,
    Ports,
    Problem,
    ShowSignIn,
    Transition,
    Verified,
)
from jarmor.protocol.interaction.machine import Event, State
from jarmor.protocol.interaction.record import Interaction
from jarmor.protocol.policy import (
    DEFAULT_TIERS,
    PHISHING_RESISTANT,
    SECOND_FACTOR,
    Control,
    Policy,
    PolicyError,
    Tier,
    TierAuthentication,
    policy_from_config,
)
from jarmor.protocol.responses import Redirect
from tests.kit import Kit
from tests.server.conftest import KitFactory
from tests.server.support import plain_request

OTP = Method("otp", ("otp",), frozenset({Factor.POSSESSION}), identifies=False)
PASSKEY = Method("passkey", ("hwk", "user"), frozenset({Factor.POSSESSION, Factor.INHERENCE}),
                 phishing_resistant=True, hardware_bound=True)


# --- tier properties ----------------------------------------------------------------------------------


def test_tier_authentication_defaults_and_high_and_critical_require_it() -> None:
    """Secure by default: a high flow needs a second factor within 24 hours, a critical one a device-bound
    passkey within 12 hours; baseline and elevated any sign-in."""
    assert DEFAULT_TIERS["baseline"].authentication == TierAuthentication()
    assert DEFAULT_TIERS["high"].authentication == SECOND_FACTOR == TierAuthentication("aal2", 86400)
    assert DEFAULT_TIERS["critical"].authentication == PHISHING_RESISTANT == TierAuthentication("aal3", 43200)
    assured = {n for n, t in DEFAULT_TIERS.items() if t.requires(Control.AUTHENTICATION_ASSURANCE)}
    assert assured == {"high", "critical"}


def test_an_operator_keeps_the_old_high_tier_by_listing_its_controls() -> None:
    """The upgrade note's recipe: ``[policy.tiers.high] controls`` without authentication_assurance is the
    explicit loosening that restores approving high flows with any sign-in."""
    old = [c.value for c in DEFAULT_TIERS["high"].controls if c is not Control.AUTHENTICATION_ASSURANCE]
    policy = policy_from_config({"tiers": {"high": {"controls": old}}})
    high = policy.tiers["high"]
    assert not high.requires(Control.AUTHENTICATION_ASSURANCE)
    assert high.controls == DEFAULT_TIERS["high"].controls - {Control.AUTHENTICATION_ASSURANCE}
    assert policy.tiers["critical"].requires(Control.AUTHENTICATION_ASSURANCE), "only the tier named changes"


def test_tier_authentication_is_read_strictly() -> None:
    tier = policy_from_config({"tiers": {"high": {"authentication": {"acr": "aal1", "max_age": 60},
                                                  "controls": ["authentication_assurance"]}}}).tiers["high"]
    assert tier.authentication == TierAuthentication("aal1", 60)
    assert tier.requires(Control.AUTHENTICATION_ASSURANCE)
    for bad, said in [
        ({"acr": "aal4"}, "acr 'aal4' is not one of aal1, aal2, aal3 (did you mean 'aal3'?)"),
        ({"acr": 2}, "acr must be"),
        ({"maxage": 5}, "unknown key 'maxage' (did you mean 'max_age'?)"),
        ({"max_age": -1}, "max_age must be at least 0"),
        ({"max_age": "60"}, "max_age must be"),
        ("aal2", "authentication must be a table"),
    ]:
        with pytest.raises(PolicyError) as refused:
            policy_from_config({"tiers": {"high": {"authentication": bad}}})
        assert said in str(refused.value), refused.value


# --- levels, amr, auth_time ----------------------------------------------------------------------------


def test_levels_follow_nist_sp_800_63b() -> None:
    assert level_of([]) is Level.NONE
    assert level_of([PASSWORD]) is Level.AAL1
    assert level_of([OTP]) is Level.AAL1
    assert level_of([PASSWORD, OTP]) is Level.AAL2  # two distinct factors
    assert level_of([PASSKEY]) is Level.AAL3  # a hardware-bound phishing-resistant multi-factor authenticator
    assert level_of([PASSWORD, replace(PASSWORD, name="pin")]) is Level.AAL1  # two of the same factor


def test_amr_and_auth_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(authn.METHODS, "otp", OTP)
    auth = Authentication().with_use("alice", "password", 100).with_use("alice", "otp", 130)
    assert auth.amr == ["pwd", "otp", "mfa"] and auth.acr == "aal2"
    assert auth.auth_time == 100, "auth_time is the oldest factor's: max_age holds every factor to it"
    assert auth.with_use("bob", "password", 140) == Authentication("bob", (Use("password", 140),))


def test_requirement_met_by_level_age_and_freshness() -> None:
    auth = Authentication("alice", (Use("password", 100),))
    assert Requirement().met_by(auth, now=1000)
    assert not Requirement().met_by(Authentication(), now=1000), "someone must have signed in"
    assert not Requirement(level=Level.AAL2).met_by(auth, now=1000)
    assert not Requirement(max_age=60).met_by(auth, now=1000, since=500), "brought by a session, too old"
    assert Requirement(max_age=60).met_by(auth, now=1000, since=100), "verified during this interaction"
    assert Requirement(max_age=950).met_by(auth, now=1000, since=500)
    assert not Requirement(fresh=True).met_by(auth, now=101, since=101), "prompt=login: only this interaction"


def test_next_methods_are_what_moves_towards_the_need(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(authn.METHODS, "otp", OTP)
    start, aal2 = Authentication(), Requirement(level=Level.AAL2)
    assert next_methods(start, Requirement(), ["password"]) == [PASSWORD]
    assert next_methods(start, aal2, ["password"]) == [], "password alone cannot reach AAL2"
    assert next_methods(start, aal2, ["password", "otp"]) == [PASSWORD], "otp cannot identify"
    signed = start.with_use("alice", "password", 1)
    assert next_methods(signed, aal2, ["password", "otp"]) == [OTP]
    assert next_methods(signed, aal2, ["password", "otp"], enrolled=["password"]) == [], "no OTP enrolled"


# --- the request's acr_values and claims ------------------------------------------------------------------


def _state(**params: Any) -> AuthorizationState:
    return AuthorizationState(env=None, outer={}, endpoint="authorization", now=0, params=params)  # type: ignore[arg-type]


@pytest.mark.parametrize(("params", "acr_values", "essential"), [
    ({"acr_values": "aal2 aal1"}, ("aal2", "aal1"), ()),
    ({"acr_values": "urn:other:gold"}, ("urn:other:gold",), ()),
    ({"claims": '{"id_token": {"acr": {"essential": true, "values": ["aal2"]}}}'}, (), ("aal2",)),
    ({"claims": {"id_token": {"acr": {"essential": True, "value": "aal1"}}}}, (), ("aal1",)),
    ({"claims": {"id_token": {"acr": {"essential": True}}}}, (), ("aal1",)),
    ({"claims": {"id_token": {"acr": {"values": ["aal2"]}}}}, ("aal2",), ()),
    ({"claims": {"userinfo": {"email": None}}}, (), ()),
])
def test_acr_requests_are_read(params: dict[str, Any], acr_values: tuple[str, ...], essential: tuple[str, ...]) -> None:
    st = _state(**params)
    check_authentication_request(st)
    assert (st.acr_values, st.essential_acr) == (acr_values, essential)


@pytest.mark.parametrize("params", [
    {"acr_values": ""},
    {"acr_values": " ".join(["aal1"] * 11)},
    {"acr_values": 'aal1 "x"'},
    {"acr_values": 5},
    {"claims": "not json"},
    {"claims": '{"id_token": {}, "id_token": {}}'},  # duplicate members
    {"claims": "[1]"},
    {"claims": "{" + '"a":1,' * 1000 + '"b":1}'},
    {"claims": {"id_token": []}},
    {"claims": {"id_token": {"acr": "aal2"}}},
    {"claims": {"id_token": {"acr": {"essential": "yes"}}}},
    {"claims": {"id_token": {"acr": {"value": "aal1", "values": ["aal1"]}}}},
    {"claims": {"id_token": {"acr": {"values": []}}}},
])
def test_bad_acr_requests_are_invalid_request(params: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidRequest) as refused:
        check_authentication_request(_state(**params))
    assert '"' not in refused.value.description and "urn" not in refused.value.description


def test_an_essential_acr_this_server_does_not_define_is_unmet() -> None:
    st = _state(claims={"id_token": {"acr": {"essential": True, "values": ["urn:other:gold"]}}})
    with pytest.raises(errors.UnmetAuthenticationRequirements):
        check_authentication_request(st)


def test_asserted_acr_is_the_most_preferred_requested_value_reached() -> None:
    from jarmor.protocol.authorization_state import AuthorizationRequest

    req = AuthorizationRequest("c", "https://rp/cb", "code", "query", ("openid",), None, None, "x" * 43, "S256",
                               "baseline", (), acr_values=("aal3", "aal1"))
    auth = Authentication("alice", (Use("password", 1),))
    assert asserted_acr(auth, req) == "aal1"
    assert asserted_acr(auth, replace(req, acr_values=())) == "aal1"
    assert asserted_acr(Authentication("alice"), replace(req, acr_values=())) is None


# --- step-up through the lifecycle, a second method plugged in as data ---------------------------------


@dataclass
class Fixed:
    """A ``Verifier`` accepting ``secret`` for ``alice`` (``identifies``: from the form's username)."""

    method: str
    secret: str
    identifies: bool
    enrolled_users: tuple[str, ...] = ("alice",)

    def account(self, form: Mapping[str, str], interaction: Interaction) -> str | None:
        return form.get("username", "") if self.identifies else interaction.subject

    async def verify(self, form: Mapping[str, str], interaction: Interaction) -> Verified | None:
        user = form.get("username") if self.identifies else interaction.subject
        if user == "alice" and form.get("secret") == self.secret:
            return Verified("alice", self.method)
        return None

    async def enrolled(self, subject: str) -> bool:
        return subject in self.enrolled_users


def _policy(acr: str | None, max_age: int | None = None) -> Policy:
    base = DEFAULT_TIERS["baseline"]
    strong = replace(base, controls=base.controls | {Control.AUTHENTICATION_ASSURANCE},
                     authentication=TierAuthentication(acr, max_age))
    return Policy(tiers={**DEFAULT_TIERS, "baseline": strong})


async def _life(make: KitFactory, policy: Policy, *verifiers: Fixed) -> tuple[Kit, Lifecycle, list[Transition]]:
    kit = await make(auto_approve=None, policy=policy)
    recorded: list[Transition] = []
    ports = Ports(verifiers={v.method: v for v in verifiers}, record=recorded.append)
    return kit, Lifecycle(kit.env, ports), recorded


async def _authorize(kit: Kit, life: Lifecycle, **overrides: Any) -> Any:
    tc = await kit.add_client(risk_tier="baseline")
    params, _ = plain_request(tc, **overrides)
    env = kit.env
    return await life.authorize(AuthorizationState(env=env, outer=params, endpoint="authorization", now=env.now()))


def _error(out: Any) -> str:
    assert isinstance(out, Deliver) and isinstance(out.response, Redirect), out
    return out.response.location


PWD = Fixed("password", "right", identifies=True)


async def test_a_second_factor_steps_the_sign_in_up_to_aal2(make: KitFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(authn.METHODS, "otp", OTP)
    kit, life, recorded = await _life(make, _policy("aal2"), PWD, Fixed("otp", "123456", identifies=False))
    shown = await _authorize(kit, life)
    assert isinstance(shown, ShowSignIn) and [m.name for m in shown.methods] == ["password"]
    early = await life.sign_in(shown.ia_id, shown.interaction, "otp", {"secret": "123456"}, "a")
    assert isinstance(early, Problem) and early.kind == "form", "a method the page does not offer is refused"
    out = await life.sign_in(shown.ia_id, shown.interaction, "password", {"username": "alice", "secret": "right"}, "a")
    assert out == GoTo(shown.ia_id, "login"), "a further factor is needed"
    ia = await life.load(shown.ia_id)
    assert ia is not None and ia.state is State.SIGNING_IN and ia.subject == "alice"
    page = await life.current_page(shown.ia_id, ia)
    assert isinstance(page, ShowSignIn) and [m.name for m in page.methods] == ["otp"]
    early = await life.decide(shown.ia_id, ia, approve=True)
    assert isinstance(early, Problem) and early.kind == "not-signed-in", "no consent before the second factor"
    out = await life.sign_in(shown.ia_id, ia, "otp", {"secret": "123456"}, "a")
    assert out == GoTo(shown.ia_id, "consent")
    ia = await life.load(shown.ia_id)
    assert ia is not None and ia.state is State.CONSENTING
    done = await life.decide(shown.ia_id, ia, approve=True)
    assert "code=" in _error(done)
    issued = recorded[-1]
    assert issued.event is Event.CODE_ISSUED and issued.request is not None
    auth = issued.request.evidence["authentication"]
    assert auth["amr"] == ["pwd", "otp", "mfa"] and auth["reached"] == auth["acr"] == auth["required"] == "aal2"
    assert auth["tier_enforced"] is True and auth["methods"] == ["password", "otp"]


async def test_a_user_without_the_second_factor_is_refused_not_accepted(
    make: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(authn.METHODS, "otp", OTP)
    kit, life, recorded = await _life(make, _policy("aal2"), PWD,
                                      Fixed("otp", "123456", identifies=False, enrolled_users=()))
    shown = await _authorize(kit, life)
    assert isinstance(shown, ShowSignIn)
    out = await life.sign_in(shown.ia_id, shown.interaction, "password", {"username": "alice", "secret": "right"}, "a")
    assert "error=access_denied" in _error(out)
    assert recorded[-1].event is Event.ASSURANCE_UNREACHABLE and recorded[-1].subject == "alice"
    assert await life.load(shown.ia_id) is None


@pytest.mark.parametrize(("policy_acr", "overrides", "error"), [
    ("aal2", {}, "access_denied"),  # the tier's level, password only
    (None, {"acr_values": "aal2"}, "access_denied"),
    (None, {"claims": '{"id_token": {"acr": {"essential": true, "values": ["aal3"]}}}'},
     "unmet_authentication_requirements"),
])
async def test_password_only_cannot_reach_aal2_and_says_so(
    make: KitFactory, policy_acr: str | None, overrides: dict[str, str], error: str
) -> None:
    kit, life, recorded = await _life(make, _policy(policy_acr), PWD)
    out = await _authorize(kit, life, **overrides)
    assert f"error={error}" in _error(out)
    assert [t.event for t in recorded] == [Event.ASSURANCE_UNREACHABLE]


async def test_aal1_tier_passes_with_a_password(make: KitFactory) -> None:
    kit, life, recorded = await _life(make, _policy("aal1", 600), PWD)
    shown = await _authorize(kit, life, acr_values="aal1 aal2")
    assert isinstance(shown, ShowSignIn)
    out = await life.sign_in(shown.ia_id, shown.interaction, "password", {"username": "alice", "secret": "right"}, "a")
    assert out == GoTo(shown.ia_id, "consent")
    ia = await life.load(shown.ia_id)
    assert ia is not None
    assert "code=" in _error(await life.decide(shown.ia_id, ia, approve=True))
    assert recorded[-1].request is not None
    auth = recorded[-1].request.evidence["authentication"]
    assert (auth["acr"], auth["amr"], auth["max_age"]) == ("aal1", ["pwd"], 600)


async def test_an_authentication_too_old_for_max_age_is_stepped_up_at_consent(make: KitFactory) -> None:
    """A session's factor (verified before this interaction started) older than max_age is not accepted:
    the approval sends the user back to sign in, and the old factor no longer counts."""
    kit, life, recorded = await _life(make, _policy("aal1", 60), PWD)
    shown = await _authorize(kit, life)
    assert isinstance(shown, ShowSignIn)
    now = kit.env.now()
    ia = shown.interaction
    ia.authentication = Authentication("alice", (Use("password", now - 120),))
    ia.state = State.CONSENTING
    await kit.env.store.ephemeral.put("interaction", shown.ia_id, ia.dump(), 60)
    out = await life.decide(shown.ia_id, ia, approve=True)
    assert out == GoTo(shown.ia_id, "login")
    again = await life.load(shown.ia_id)
    assert again is not None and again.state is State.SIGNING_IN and again.authentication.uses == ()
    assert recorded[-1].event is Event.SIGN_IN_REQUIRED, "no code, no refusal: a sign-in again"


async def test_auto_approve_signs_nobody_in_so_it_cannot_meet_a_level(make: KitFactory) -> None:
    kit = await make(auto_approve="alice", policy=_policy("aal1"))
    recorded: list[Transition] = []
    life = Lifecycle(kit.env, Ports(verifiers={"password": PWD}, record=recorded.append))
    tc = await kit.add_client(risk_tier="baseline")
    params, _ = plain_request(tc)
    env = kit.env
    st = AuthorizationState(env=env, outer=params, endpoint="authorization", now=env.now())
    assert "error=access_denied" in _error(await life.authorize(st, auto_approve="alice"))


def test_tier_dataclass_keeps_its_other_fields() -> None:
    assert isinstance(DEFAULT_TIERS["high"], Tier)
