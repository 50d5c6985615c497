"""Risk tiers as data.

A tier is a named set of required controls plus the algorithms and lifetimes it allows. A client has a tier;
a scope can carry a tier; the effective tier of a request is the strictest of them. Checks ask
``tier.requires(Control.X)`` — nothing in the code tests a tier's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


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


# Controls every tier carries whether or not config lists them: they are protocol rules, not options.
ALWAYS = frozenset({Control.PKCE_S256})

ALL_SIGNING_ALGS = ("ES256", "PS256", "EdDSA", "Ed25519", "ES384", "ES512", "PS384", "PS512", "RS256")
FAPI_SIGNING_ALGS = ("PS256", "ES256", "EdDSA", "Ed25519")


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
    par_lifetime: int = 90
    description: str = ""

    def requires(self, control: Control) -> bool:
        return control in self.controls or control in ALWAYS

    def allows_alg(self, alg: str) -> bool:
        return alg in self.signing_algs

    @property
    def issuer_only_audience(self) -> bool:
        """FAPI 2.0 §5.3.2.1-8: a ``private_key_jwt`` client assertion's ``aud`` must be the issuer identifier,
        as a single string (not the token or PAR endpoint, not an array).

        The rule belongs to the FAPI 2.0 profile, which also makes PAR mandatory (FAPI 2.0 §5.3.2.2-1); a tier
        that requires PAR is this policy's FAPI 2.0 tier, so the rule follows that control. It is named here,
        once, so that client authentication asks the *effective* tier for it rather than borrowing a control.
        """
        return self.requires(Control.PAR)


def _tier(name: str, rank: int, controls: Iterable[Control], **kw: Any) -> Tier:
    return Tier(name=name, rank=rank, controls=frozenset(controls), **kw)


_BASELINE = {Control.PKCE_S256}
_ELEVATED = _BASELINE | {Control.SIGNED_REQUEST_OBJECT, Control.JARM, Control.PRIVATE_KEY_JWT}
_HIGH = _ELEVATED | {Control.PAR, Control.REQUEST_OBJECT_NBF, Control.HTTPS_REDIRECT_URIS}
_CRITICAL = _HIGH | {Control.ENCRYPTED_REQUEST_OBJECT, Control.ENCRYPTED_JARM}

DEFAULT_TIERS: Mapping[str, Tier] = {
    "baseline": _tier("baseline", 0, _BASELINE, code_lifetime=300,
                      description="PKCE S256, exact redirect URI, RFC 9207 iss; JAR/JARM verified when used"),
    "elevated": _tier("elevated", 1, _ELEVATED, code_lifetime=120,
                      description="+ signed request object, JARM, private_key_jwt"),
    "high": _tier("high", 2, _HIGH, signing_algs=FAPI_SIGNING_ALGS, request_object_max_lifetime=3600,
                  code_lifetime=60, access_token_lifetime=600,
                  description="FAPI 2.0 Message Signing: + PAR, PS256/ES256/EdDSA only, nbf, short codes"),
    "critical": _tier("critical", 3, _CRITICAL, signing_algs=FAPI_SIGNING_ALGS,
                      request_object_max_lifetime=600, code_lifetime=30, access_token_lifetime=300,
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
    known = {f for f in Tier.__dataclass_fields__ if f not in {"name"}}
    unknown = set(data) - known
    if unknown:
        raise PolicyError(f"tier {name!r}: unknown setting(s) {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = dict(data)
    if "controls" in kwargs:
        try:
            kwargs["controls"] = frozenset(Control(c) for c in kwargs["controls"])
        except ValueError as exc:
            raise PolicyError(f"tier {name!r}: {exc}") from exc
    if "signing_algs" in kwargs:
        algs = tuple(kwargs["signing_algs"])
        bad = [a for a in algs if a not in ALL_SIGNING_ALGS]
        if bad:
            raise PolicyError(f"tier {name!r}: unsupported signing algorithm(s) {bad}")
        kwargs["signing_algs"] = algs
    if base is None:
        if "rank" not in kwargs:
            raise PolicyError(f"new tier {name!r} needs a rank")
        return Tier(name=name, **{"controls": frozenset(), **kwargs})
    return replace(base, **kwargs)


def policy_from_config(data: Mapping[str, Any]) -> Policy:
    """``[tiers.<name>]`` tables, a ``[scopes]`` table mapping scope -> tier, and ``default_client_tier``."""
    tiers = dict(DEFAULT_TIERS)
    for name, table in (data.get("tiers") or {}).items():
        tiers[name] = tier_from_config(name, table, DEFAULT_TIERS.get(name))
    return Policy(
        tiers=tiers,
        scope_tiers=dict(data.get("scopes") or {}),
        default_client_tier=str(data.get("default_client_tier", "baseline")),
    )
