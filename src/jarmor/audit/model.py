"""What an audit reports: one ``Finding`` per check and client, and the ``Report`` around them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jarmor.protocol.policy import DEFAULT_TIERS


class Verdict(StrEnum):
    """What the server does about one control or hygiene rule, for one client.

    ``enforced``: it refuses the request that omits or breaks the control. ``optional``: the control works
    when used, but a request without it is accepted. ``absent``: the server does not support it.
    ``violated``: the server accepted a request that breaks it. ``not_run``: the auditor could not decide
    (the reason is in the evidence).
    """

    ENFORCED = "enforced"
    OPTIONAL = "optional"
    ABSENT = "absent"
    VIOLATED = "violated"
    NOT_RUN = "not_run"


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's verdict for one client, with the requests that decided it (no secrets in them)."""

    check: str
    client_id: str
    verdict: Verdict
    evidence: str
    requests: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "client_id": self.client_id,
            "verdict": self.verdict.value,
            "evidence": self.evidence,
            "requests": list(self.requests),
            "refs": list(self.refs),
        }


@dataclass(slots=True)
class Report:
    """The JSON document of issue 16: ``tier_met`` is the strictest tier met by any audited client;
    ``tiers_met`` gives it per client, ``tiers_required`` the tier each client is judged against (its file's
    ``tier``, else ``--tier``; ``None``: none) and ``clients_failing`` those that miss it."""

    issuer: str
    started_at: str
    client_ids: list[str]
    tiers_met: dict[str, str | None] = field(default_factory=dict)
    tiers_required: dict[str, str | None] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    setup_requests: list[str] = field(default_factory=list)  # discovery, self-registration and its deletion
    requests_sent: int = 0

    def failing(self) -> dict[str, str]:
        """Per client judged against a tier and missing it: why (tier met, violated checks)."""
        out: dict[str, str] = {}
        for client_id, wanted in self.tiers_required.items():
            if wanted is None:
                continue
            met = self.tiers_met.get(client_id)
            violated = [f.check for f in self.findings if f.client_id == client_id and f.verdict is Verdict.VIOLATED]
            if met is None or DEFAULT_TIERS[met].rank < DEFAULT_TIERS[wanted].rank or violated:
                out[client_id] = f"tier {wanted} not met (met: {met or 'none'}; violated checks: {len(violated)})"
        return out

    @property
    def tier_met(self) -> str | None:
        return strictest(t for t in self.tiers_met.values() if t is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "started_at": self.started_at,
            "client_ids": list(self.client_ids),
            "tier_met": self.tier_met,
            "tiers_met": dict(self.tiers_met),
            "tiers_required": dict(self.tiers_required),
            "clients_failing": self.failing(),
            "requests_sent": self.requests_sent,
            "setup_requests": list(self.setup_requests),
            "findings": [f.to_dict() for f in self.findings],
        }


def strictest(names: Iterable[str]) -> str | None:
    """The highest-ranked of these built-in tier names (``None`` for none)."""
    tiers = [DEFAULT_TIERS[n] for n in names if n in DEFAULT_TIERS]
    return max(tiers, key=lambda t: t.rank).name if tiers else None
