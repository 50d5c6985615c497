"""Risk tiers as data (policy.py): the effective tier, configuration, and what each built-in tier requires."""

from __future__ import annotations

import pytest

from jarmor.protocol.policy import (
    DEFAULT_TIERS,
    FAPI_SIGNING_ALGS,
    Control,
    Policy,
    PolicyError,
    Tier,
    policy_from_config,
    tier_from_config,
)

POLICY = Policy(scope_tiers={"payments": "high", "reports": "elevated", "vault": "critical"})


@pytest.mark.parametrize(
    ("client_tier", "scopes", "effective", "raised_by"),
    [
        ("baseline", ["openid"], "baseline", ()),
        ("baseline", ["openid", "reports"], "elevated", ("reports",)),
        ("baseline", ["reports", "payments"], "high", ("payments",)),
        ("elevated", ["payments", "vault"], "critical", ("vault",)),
        ("high", ["reports"], "high", ()),
        ("critical", ["payments"], "critical", ()),
        ("baseline", [], "baseline", ()),
    ],
)
def test_effective_tier_is_the_strictest(client_tier: str, scopes: list[str], effective: str,
                                         raised_by: tuple[str, ...]) -> None:
    eff = POLICY.effective(client_tier, scopes)
    assert eff.tier.name == effective and eff.raised_by == raised_by and eff.client_tier == client_tier
    reasons = eff.reasons()
    assert reasons[0] == f"client tier {client_tier}"
    assert (len(reasons) == 2) == bool(raised_by)


def test_strictest_for_scopes() -> None:
    tier = POLICY.strictest_for_scopes(["reports", "payments"])
    assert tier is not None and tier.name == "high"
    assert POLICY.strictest_for_scopes(["openid"]) is None


def test_built_in_tiers() -> None:
    b, e, h, c = (DEFAULT_TIERS[n] for n in ("baseline", "elevated", "high", "critical"))
    assert b.controls == {Control.PKCE_S256}
    assert e.controls == b.controls | {Control.SIGNED_REQUEST_OBJECT, Control.JARM, Control.PRIVATE_KEY_JWT}
    assert h.controls == e.controls | {Control.PAR, Control.REQUEST_OBJECT_NBF, Control.HTTPS_REDIRECT_URIS,
                                       Control.SENDER_CONSTRAINED_TOKENS,  # FAPI 2.0 §5.3.2.1-6
                                       Control.AUTHENTICATION_ASSURANCE}  # a second factor (issue 14)
    assert c.controls == h.controls | {Control.ENCRYPTED_REQUEST_OBJECT, Control.ENCRYPTED_JARM}
    assert h.signing_algs == FAPI_SIGNING_ALGS and "RS256" in b.signing_algs
    assert (h.code_lifetime, c.code_lifetime) == (60, 30)  # FAPI 2.0: at most 60 s
    assert all(5 <= t.par_lifetime < 600 for t in DEFAULT_TIERS.values())  # RFC 9126 §2.2, FAPI 2.0
    assert all(t.request_object_max_lifetime <= 3600 for t in DEFAULT_TIERS.values())  # FAPI1 5.2.2-13


def test_pkce_is_always_required() -> None:
    bare = Tier(name="bare", rank=0, controls=frozenset())
    assert bare.requires(Control.PKCE_S256)
    assert not bare.requires(Control.PAR)


def test_policy_validation() -> None:
    with pytest.raises(PolicyError):
        Policy(default_client_tier="gold")
    with pytest.raises(PolicyError):
        Policy(scope_tiers={"payments": "gold"})
    with pytest.raises(PolicyError):
        POLICY.tier("gold")
    with pytest.raises(PolicyError):
        POLICY.effective("gold", [])


def test_missing_implementation() -> None:
    partial = Policy(implemented=frozenset(Control) - {Control.ENCRYPTED_JARM})
    assert partial.missing_implementation(DEFAULT_TIERS["critical"]) == {Control.ENCRYPTED_JARM}
    assert partial.missing_implementation(DEFAULT_TIERS["high"]) == frozenset()
    assert Policy().missing_implementation(DEFAULT_TIERS["critical"]) == frozenset()


def test_tier_from_config() -> None:
    high = tier_from_config("high", {"code_lifetime": 30}, DEFAULT_TIERS["high"])
    assert high.code_lifetime == 30 and high.controls == DEFAULT_TIERS["high"].controls
    new = tier_from_config("partner", {"rank": 7, "controls": ["par", "jarm"], "signing_algs": ["ES256"]}, None)
    assert new.controls == {Control.PAR, Control.JARM} and new.signing_algs == ("ES256",)
    for data, base in (
        ({"rank": 1, "controls": ["teleport"]}, None),
        ({"rank": 1, "signing_algs": ["HS256"]}, None),
        ({"rank": 1, "signing_algs": ["none"]}, None),
        ({"colour": "red"}, DEFAULT_TIERS["high"]),
        ({"controls": ["par"]}, None),  # a new tier needs a rank
    ):
        with pytest.raises(PolicyError):
            tier_from_config("x", data, base)


def test_policy_from_config() -> None:
    policy = policy_from_config({
        "tiers": {"high": {"access_token_lifetime": 120}, "partner": {"rank": 5, "controls": ["par"]}},
        "scopes": {"payments": "high", "partner_api": "partner"},
        "default_client_tier": "elevated",
    })
    assert policy.default_client_tier == "elevated"
    assert policy.tier("high").access_token_lifetime == 120
    assert policy.effective("high", ["partner_api"]).tier.name == "partner"
    with pytest.raises(PolicyError):
        policy_from_config({"scopes": {"x": "nowhere"}})


def test_issuer_only_audience_is_a_tier_property_not_a_borrowed_control() -> None:
    """FAPI 2.0 §5.3.2.1-8 is named as a tier property: it defaults in configuration to whether the tier is
    the FAPI 2.0 one (requires PAR), and can be set apart from PAR without changing any control."""
    from jarmor.governance.records import policy_fingerprint

    assert [t.name for t in DEFAULT_TIERS.values() if t.issuer_only_audience] == ["high", "critical"]
    pushed = tier_from_config("pushed", {"rank": 5, "controls": ["par"]}, None)
    assert pushed.issuer_only_audience
    relaxed = tier_from_config("high", {"issuer_only_audience": False}, DEFAULT_TIERS["high"])
    assert relaxed.requires(Control.PAR) and not relaxed.issuer_only_audience
    strict = tier_from_config("baseline", {"issuer_only_audience": True}, DEFAULT_TIERS["baseline"])
    assert strict.issuer_only_audience and not strict.requires(Control.PAR)
    assert not tier_from_config("high", {"controls": ["pkce_s256"]}, DEFAULT_TIERS["high"]).issuer_only_audience
    with pytest.raises(PolicyError, match="issuer_only_audience"):
        tier_from_config("high", {"issuer_only_audience": "yes"}, DEFAULT_TIERS["high"])
    # a policy that does not set it apart keeps the fingerprint it always had; one that does changes it
    assert policy_fingerprint(Policy()) == policy_fingerprint(Policy(tiers=dict(DEFAULT_TIERS)))
    assert policy_fingerprint(Policy(tiers={**DEFAULT_TIERS, "high": relaxed})) != policy_fingerprint(Policy())
