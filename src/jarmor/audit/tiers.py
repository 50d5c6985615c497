"""Which jarmor tier a server meets for a client: the strictest built-in tier whose every control the audit
found ``enforced`` (``jarmor.protocol.policy.DEFAULT_TIERS``, read as data: no tier name is tested here)."""

from __future__ import annotations

from collections.abc import Mapping

from jarmor.protocol.policy import ALWAYS, DEFAULT_TIERS, Tier

from .model import Verdict, strictest

__all__ = ["meets", "required_controls", "strictest", "tier_met"]


def required_controls(tier: Tier) -> frozenset[str]:
    return frozenset(c.value for c in tier.controls | ALWAYS)


ISSUER_ONLY_AUDIENCE = "token_assertion_endpoint_aud"


def _fits(tier: Tier, verdicts: Mapping[str, Verdict]) -> bool:
    """Every control ``enforced``; and where the tier accepts only the issuer as a client assertion's
    audience (``Tier.issuer_only_audience``), the token endpoint URL not accepted."""
    if not all(verdicts.get(c) is Verdict.ENFORCED for c in required_controls(tier)):
        return False
    return not tier.issuer_only_audience or verdicts.get(ISSUER_ONLY_AUDIENCE) not in (
        Verdict.OPTIONAL, Verdict.VIOLATED)


def tier_met(verdicts: Mapping[str, Verdict]) -> str | None:
    """The highest-ranked tier the verdicts satisfy (``_fits``), or ``None``."""
    met = [t for t in DEFAULT_TIERS.values() if _fits(t, verdicts)]
    return max(met, key=lambda t: t.rank).name if met else None


def meets(met: str | None, wanted: str) -> bool:
    """Whether ``met`` is at least as strict as ``wanted`` (``--tier``)."""
    if met is None:
        return False
    return DEFAULT_TIERS[met].rank >= DEFAULT_TIERS[wanted].rank
