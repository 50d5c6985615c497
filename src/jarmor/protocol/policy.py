"""Risk tiers as data.

A tier is a named set of required controls plus the algorithms and lifetimes it allows. A client has a tier;
a scope can carry a tier; the effective tier of a request is the strictest of them. Checks ask
``tier.requires(Control.X)`` — nothing in the code tests a tier's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from .interaction.authentication import ACR
from .tables import TableError, check_keys, check_table, nearest


class Control(StrEnum):
    """A control a tier can require. Values are the names used in config, errors and flow records."""

    PKCE_S256 = "pkce_s256"
    SIGNED_REQUEST_OBJECT = "signed_request_object"
    ENCRYPTED_REQUEST_OBJECT = "encrypted_request_object"
    PAR = "par"
    JARM = "jarm"
    ENCRYPTED_JARM = "encrypted_jarm"
    PRIVATE_KEY_JWT = "private_key_jwt"
    REQUEST_OBJECT_NBF = "request_object_nbf"
    HTTPS_REDIRECT_URIS = "https_redirect_uris"
    SENDER_CONSTRAINED_TOKENS = "sender_constrained_tokens"
    AUTHENTICATION_ASSURANCE = "authentication_assurance"


# Controls every tier carries whether or not config lists them: they are protocol rules, not options.
ALWAYS = frozenset({Control.PKCE_S256})

ALL_SIGNING_ALGS = ("ES256", "PS256", "EdDSA", "Ed25519", "ES384", "ES512", "PS384", "PS512", "RS256")
FAPI_SIGNING_ALGS = ("PS256", "ES256", "EdDSA", "Ed25519")


@dataclass(frozen=True, slots=True)
class TierAuthentication:
    """The end-user authentication a tier requires, enforced when the tier requires the control
    ``authentication_assurance``: an ``acr`` (a NIST SP 800-63B level, ``interaction.authentication.ACR``;
    ``None``: any sign-in) and a maximum age in seconds of an authentication a session brings (``None``: no
    limit). In configuration: ``authentication = {acr = "aal2", max_age = 43200}``."""

    acr: str | None = field(default=None, metadata={"choices": tuple(ACR.values())})
    max_age: int | None = None


# NIST SP 800-63B rev. 4 reauthentication limits: AAL2 at least every 24 hours, AAL3 every 12 hours
ANY_AUTHENTICATION = TierAuthentication()
SECOND_FACTOR = TierAuthentication(acr="aal2", max_age=24 * 3600)
PHISHING_RESISTANT = TierAuthentication(acr="aal3", max_age=12 * 3600)


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    rank: int
    controls: frozenset[Control]
    signing_algs: tuple[str, ...] = ALL_SIGNING_ALGS
    request_object_max_lifetime: int = 3600
    code_lifetime: int = 60
    access_token_lifetime: int = 3600
    refresh_token_lifetime: int = 30 * 86400
    # "opaque" (random, checked by introspection) or "jwt" (RFC 9068 ``at+jwt``, signed by the server, for
    # resource servers that cannot call introspection; its ``aud`` is ``[settings] access_token_audience``)
    access_token_format: Literal["opaque", "jwt"] = "opaque"
    par_lifetime: int = 90
    # requests per client per rate-limit window on /par, /token, /introspect, /revoke (server/ratelimit.py)
    client_rate_limit: int = 6000
    description: str = ""
    # FAPI 2.0 §5.3.2.1-8: a ``private_key_jwt`` client assertion's ``aud`` must be the issuer identifier, as
    # a single string (not the token or PAR endpoint, not an array). A rule of the FAPI 2.0 profile, named
    # as a tier property so that client authentication asks the *effective* tier for it. In configuration it
    # defaults to whether the tier requires PAR (FAPI 2.0 §5.3.2.2-1 makes PAR part of the same profile).
    issuer_only_audience: bool = False
    # RFC 9449 §8: DPoP proofs at the token and PAR endpoints must carry a nonce this server issued
    # (``use_dpop_nonce`` otherwise). FAPI 2.0 §5.3.2.1 lets the server use them; on for high and critical.
    dpop_nonce: bool = False
    # what the end-user's authentication must reach (enforced when ``controls`` has authentication_assurance)
    authentication: TierAuthentication = ANY_AUTHENTICATION

    def requires(self, control: Control) -> bool:
        return control in self.controls or control in ALWAYS

    def allows_alg(self, alg: str) -> bool:
        return alg in self.signing_algs


def _tier(name: str, rank: int, controls: Iterable[Control], **kw: Any) -> Tier:
    return Tier(name=name, rank=rank, controls=frozenset(controls), **kw)


_BASELINE = {Control.PKCE_S256}
_ELEVATED = _BASELINE | {Control.SIGNED_REQUEST_OBJECT, Control.JARM, Control.PRIVATE_KEY_JWT}
_HIGH = _ELEVATED | {
    Control.PAR, Control.REQUEST_OBJECT_NBF, Control.HTTPS_REDIRECT_URIS, Control.SENDER_CONSTRAINED_TOKENS,
    Control.AUTHENTICATION_ASSURANCE,
}
_CRITICAL = _HIGH | {Control.ENCRYPTED_REQUEST_OBJECT, Control.ENCRYPTED_JARM}

DEFAULT_TIERS: Mapping[str, Tier] = {
    "baseline": _tier("baseline", 0, _BASELINE, code_lifetime=300,
                      description="PKCE S256, exact redirect URI, RFC 9207 iss; JAR/JARM verified when used"),
    "elevated": _tier("elevated", 1, _ELEVATED, code_lifetime=120,
                      description="+ signed request object, JARM, private_key_jwt"),
    "high": _tier("high", 2, _HIGH, signing_algs=FAPI_SIGNING_ALGS, request_object_max_lifetime=3600,
                  code_lifetime=60, access_token_lifetime=600, client_rate_limit=3000, issuer_only_audience=True,
                  dpop_nonce=True, authentication=SECOND_FACTOR,
                  description="FAPI 2.0 Message Signing: + PAR, sender-constrained tokens (DPoP or mTLS), PS256/ES256/EdDSA only, nbf, short codes"),
    "critical": _tier("critical", 3, _CRITICAL, signing_algs=FAPI_SIGNING_ALGS,
                      request_object_max_lifetime=600, code_lifetime=30, access_token_lifetime=300,
                      client_rate_limit=3000, issuer_only_audience=True, dpop_nonce=True,
                      authentication=PHISHING_RESISTANT,
                      description="+ encrypted request object and encrypted JARM"),
}

# Controls this build can enforce. A tier requiring anything else cannot be assigned to a client.
IMPLEMENTED_CONTROLS = frozenset(Control)


@dataclass(frozen=True, slots=True)
class EffectiveTier:
    """The tier a request runs under, and why (for errors and flow records)."""

    tier: Tier
    client_tier: str
    raised_by: tuple[str, ...] = ()  # scopes that raised it above the client's tier

    def reasons(self) -> list[str]:
        out = [f"client tier {self.client_tier}"]
        if self.raised_by:
            out.append(f"scope(s) {', '.join(self.raised_by)} require {self.tier.name}")
        return out


class PolicyError(ValueError):
    """The tier/scope configuration is inconsistent."""


# the smallest value each numeric tier field accepts (every other number: 0)
_TIER_MINIMUMS = {"code_lifetime": 1, "access_token_lifetime": 1, "refresh_token_lifetime": 1, "par_lifetime": 1,
                  "request_object_max_lifetime": 1, "client_rate_limit": 1}


@dataclass(frozen=True, slots=True)
class Policy:
    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    scope_tiers: Mapping[str, str] = field(default_factory=dict)
    default_client_tier: str = "baseline"
    implemented: frozenset[Control] = IMPLEMENTED_CONTROLS

    def __post_init__(self) -> None:
        if self.default_client_tier not in self.tiers:
            raise PolicyError(f"default tier {self.default_client_tier!r} is not defined")
        for scope, tier in self.scope_tiers.items():
            if tier not in self.tiers:
                raise PolicyError(f"scope {scope!r} names unknown tier {tier!r}")

    def tier(self, name: str) -> Tier:
        try:
            return self.tiers[name]
        except KeyError as exc:
            raise PolicyError(f"unknown tier {name!r}") from exc

    def missing_implementation(self, tier: Tier) -> frozenset[Control]:
        return frozenset(c for c in tier.controls if c not in self.implemented)

    def effective(self, client_tier: str, scopes: Iterable[str]) -> EffectiveTier:
        """The strictest of the client's tier and the tiers of the requested scopes."""
        own = self.tier(client_tier)
        scoped = [(s, self.tiers[self.scope_tiers[s]]) for s in scopes if s in self.scope_tiers]
        best = max([own, *(t for _, t in scoped)], key=lambda t: t.rank)
        raised = [s for s, t in scoped if t.name == best.name] if best.rank > own.rank else []
        return EffectiveTier(tier=best, client_tier=client_tier, raised_by=tuple(raised))

    def strictest_for_scopes(self, scopes: Iterable[str]) -> Tier | None:
        tiers = [self.tiers[self.scope_tiers[s]] for s in scopes if s in self.scope_tiers]
        return max(tiers, key=lambda t: t.rank) if tiers else None


def tier_from_config(name: str, data: Mapping[str, Any], base: Tier | None) -> Tier:
    """Build a tier from a TOML table; unspecified fields inherit from ``base`` (the built-in of that name)."""
    section = f"[policy.tiers.{name}]"
    lists = {"controls", "signing_algs"}
    try:
        check_keys(section, data, [f for f in Tier.__dataclass_fields__ if f != "name"])
        kwargs = check_table(section, {k: v for k, v in data.items() if k not in lists}, Tier,
                             exclude={"name", *lists}, minimums=_TIER_MINIMUMS)
    except TableError as exc:
        raise PolicyError(str(exc)) from exc
    for key in lists & set(data):
        values = data[key]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise PolicyError(f"{section}: {key} must be a list of strings")
    if "controls" in data:
        unknown = [c for c in data["controls"] if c not in {x.value for x in Control}]
        if unknown:
            raise PolicyError(f"{section}: unknown control {unknown[0][:64]!r}{nearest(unknown[0], [c.value for c in Control])}")
        kwargs["controls"] = frozenset(Control(c) for c in data["controls"])
    if "signing_algs" in data:
        bad = [a for a in data["signing_algs"] if a not in ALL_SIGNING_ALGS]
        if bad:
            raise PolicyError(f"{section}: unsupported signing algorithm {bad[0][:32]!r}{nearest(bad[0], ALL_SIGNING_ALGS)}")
        kwargs["signing_algs"] = tuple(data["signing_algs"])
    if "issuer_only_audience" not in data:
        controls = kwargs.get("controls", base.controls if base is not None else frozenset())
        kwargs["issuer_only_audience"] = Control.PAR in controls
    if base is None:
        if "rank" not in kwargs:
            raise PolicyError(f"new tier {name!r} needs a rank")
        return Tier(name=name, **{"controls": frozenset(), **kwargs})
    return replace(base, **kwargs)


def policy_from_config(data: Mapping[str, Any]) -> Policy:
    """``[tiers.<name>]`` tables, a ``[scopes]`` table mapping scope -> tier, and ``default_client_tier``;
    any other key, or a value of the wrong type, is refused naming it (a typo must not weaken the policy)."""
    try:
        check_keys("[policy]", data, ("tiers", "scopes", "default_client_tier"))
    except TableError as exc:
        raise PolicyError(str(exc)) from exc
    tables = data.get("tiers") or {}
    scopes = data.get("scopes") or {}
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise PolicyError("[policy.tiers]: each tier must be a table ([policy.tiers.NAME])")
    if not isinstance(scopes, dict) or not all(isinstance(t, str) for t in scopes.values()):
        raise PolicyError("[policy.scopes]: each scope must name a tier (scope = \"tier\")")
    default = data.get("default_client_tier", "baseline")
    if not isinstance(default, str):
        raise PolicyError("[policy]: default_client_tier must be a string")
    tiers = dict(DEFAULT_TIERS)
    for name, table in tables.items():
        tiers[name] = tier_from_config(name, table, DEFAULT_TIERS.get(name))
    for scope, tier in scopes.items():
        if tier not in tiers:
            raise PolicyError(f"[policy.scopes]: {scope[:64]!r} names unknown tier {tier[:64]!r}{nearest(tier, tiers)}")
    if default not in tiers:
        raise PolicyError(f"[policy]: default_client_tier names unknown tier {default[:64]!r}{nearest(default, tiers)}")
    return Policy(tiers=tiers, scope_tiers=dict(scopes), default_client_tier=default)
