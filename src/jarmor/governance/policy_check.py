"""Policy dry-run: what a proposed tier/scope policy would break, before it is deployed.

Two questions, answered from the database alone (``jarmor policy check``):

* **registrations** — would each client's stored registration still be accepted? The registration checks run
  on the stored metadata under the proposed policy (as ``reports.drift`` does under the current one). A
  client that fails them gets its requests refused once the policy is live (the raised tier's checks run on
  every request), so it needs a registration update first;
* **recorded flows** — would each flow that passed (tokens issued, or a code issued) have passed? Its client's
  tier and its scopes give the effective tier under the proposed policy; every control that tier requires
  must have been *evidenced* in the flow's records (PAR, signed or encrypted request object, JARM, encrypted
  JARM, ``private_key_jwt``, PKCE, ``nbf``, https redirect URI), its algorithms must be in the tier's
  allowlist, and its request object lifetime and code redemption time within the tier's limits.

Findings are grouped per client and reason; ``new`` tells whether the current policy already fails it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..protocol.clients import ServerCapabilities
from ..protocol.policy import Policy, Tier
from ..store.base import ClientRecord
from .flows import FlowSummary, applicable, ordered
from .records import policy_fingerprint, required_controls
from .reports import registration_problem

MAX_EXAMPLES = 3


@dataclass(slots=True)
class Finding:
    kind: str  # "registration" | "flow"
    client_id: str | None
    reason: str
    new: bool = True  # False: the current policy fails it as well
    count: int = 1
    flow_ids: list[str] = field(default_factory=list)  # examples
    client_name: str | None = None


@dataclass(slots=True)
class PolicyCheck:
    current: str  # fingerprints
    proposed: str
    changes: list[str]
    clients_checked: int
    flows_checked: int
    findings: list[Finding]

    @property
    def breaks(self) -> bool:
        return any(f.new for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["breaks"] = self.breaks
        return out


def policy_changes(current: Policy, proposed: Policy) -> list[str]:
    """A readable diff of two policies: default tier, scope tiers, tier definitions."""
    out: list[str] = []
    if current.default_client_tier != proposed.default_client_tier:
        out.append(f"default client tier: {current.default_client_tier} -> {proposed.default_client_tier}")
    for scope in sorted(set(current.scope_tiers) | set(proposed.scope_tiers)):
        a, b = current.scope_tiers.get(scope), proposed.scope_tiers.get(scope)
        if a != b:
            out.append(f"scope {scope}: {a or '(no tier)'} -> {b or '(no tier)'}")
    for name in sorted(set(current.tiers) | set(proposed.tiers)):
        a_tier, b_tier = current.tiers.get(name), proposed.tiers.get(name)
        if a_tier is None or b_tier is None:
            out.append(f"tier {name}: {'added' if a_tier is None else 'removed'}")
            continue
        for attr in ("rank", "signing_algs", "request_object_max_lifetime", "code_lifetime",
                     "access_token_lifetime", "refresh_token_lifetime", "par_lifetime"):
            if getattr(a_tier, attr) != getattr(b_tier, attr):
                out.append(f"tier {name}: {attr} {getattr(a_tier, attr)} -> {getattr(b_tier, attr)}")
        added = sorted(c.value for c in b_tier.controls - a_tier.controls)
        removed = sorted(c.value for c in a_tier.controls - b_tier.controls)
        if added:
            out.append(f"tier {name}: requires {', '.join(added)}")
        if removed:
            out.append(f"tier {name}: no longer requires {', '.join(removed)}")
    return out


def _algs(f: FlowSummary) -> list[tuple[str, str]]:
    c = f.controls
    out: list[tuple[str, str]] = []
    for what, member in (("request object", "request_object"), ("JARM response", "jarm"),
                         ("client assertion", "client_auth"), ("client assertion at PAR", "par_client_auth")):
        alg = (c.get(member) or {}).get("alg")
        if isinstance(alg, str):
            out.append((what, alg))
    return out


def flow_problems(f: FlowSummary, policy: Policy) -> list[str]:
    """Why ``f`` would not pass under ``policy`` (empty: it would)."""
    client_tier = f.client_tier
    if client_tier is None or f.tier is None:
        return []
    if client_tier not in policy.tiers:
        return [f"client tier {client_tier} is not defined"]
    eff = policy.effective(client_tier, f.scopes)
    tier: Tier = eff.tier
    why = f"scope(s) {', '.join(eff.raised_by)} require tier {tier.name}" if eff.raised_by else f"tier {tier.name}"
    out: list[str] = []
    missing_impl = policy.missing_implementation(tier)
    if missing_impl:
        out.append(f"{why}, which needs {', '.join(sorted(c.value for c in missing_impl))} (not implemented)")
    needed = applicable(required_controls(tier), f.grant_type)
    for control in ordered(needed - set(f.applied)):
        out.append(f"{why}: control {control} was not used")
    for what, alg in _algs(f):
        if not tier.allows_alg(alg):
            out.append(f"{why}: {what} algorithm {alg} is not allowed")
    lifetime = (f.controls.get("request_object") or {}).get("lifetime")
    if isinstance(lifetime, int) and lifetime > tier.request_object_max_lifetime:
        out.append(f"{why}: request object lifetime {lifetime} s exceeds {tier.request_object_max_lifetime} s")
    if f.code_issued_at is not None and f.code_redeemed_at is not None:
        took = f.code_redeemed_at - f.code_issued_at
        if took > tier.code_lifetime:
            out.append(f"{why}: the code was redeemed after {took} s, beyond the code lifetime {tier.code_lifetime} s")
    return out


def _group(findings: list[Finding]) -> list[Finding]:
    grouped: dict[tuple[str, str | None, str], Finding] = {}
    for f in findings:
        key = (f.kind, f.client_id, f.reason)
        have = grouped.get(key)
        if have is None:
            grouped[key] = f
            continue
        have.count += f.count
        have.new = have.new or f.new
        for fid in f.flow_ids:
            if len(have.flow_ids) < MAX_EXAMPLES:
                have.flow_ids.append(fid)
    return sorted(grouped.values(), key=lambda f: (not f.new, f.kind != "registration", f.client_id or "", f.reason))


def check_policy(
    *,
    current: Policy,
    proposed: Policy,
    clients: Sequence[ClientRecord],
    flows: Sequence[FlowSummary],
    caps_current: ServerCapabilities,
    caps_proposed: ServerCapabilities,
) -> PolicyCheck:
    names: Mapping[str, str] = {c.client_id: str(c.metadata.get("client_name") or c.client_id) for c in clients}
    findings: list[Finding] = []
    active = [c for c in clients if c.disabled_at is None]
    for rec in active:
        err = registration_problem(rec.metadata, proposed, caps_proposed)
        if err is not None:
            already = registration_problem(rec.metadata, current, caps_current) is not None
            findings.append(Finding("registration", rec.client_id, f"{err.error}: {err.description}", new=not already,
                                    client_name=names.get(rec.client_id)))
    checked = 0
    for f in flows:
        if f.decision != "allow":
            continue
        checked += 1
        problems = flow_problems(f, proposed)
        known = set(flow_problems(f, current)) if problems else set()
        for reason in problems:
            findings.append(Finding("flow", f.client_id, reason, new=reason not in known, flow_ids=[f.flow_id],
                                    client_name=names.get(f.client_id or "")))
    return PolicyCheck(
        current=policy_fingerprint(current),
        proposed=policy_fingerprint(proposed),
        changes=policy_changes(current, proposed),
        clients_checked=len(active),
        flows_checked=checked,
        findings=_group(findings),
    )
