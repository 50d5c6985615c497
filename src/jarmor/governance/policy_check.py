"""Policy dry-run: what a proposed tier/scope policy would break, before it is deployed.

Two questions, answered from the database alone (``jarmor policy check``), for **active** clients only (a
disabled client's requests are refused whatever the policy, so neither its registration nor its flows are
judged; their flows are counted as skipped):

* **registrations** — would each active client's stored registration be refused under the proposed policy?
  It is judged (``registrations.registration_problems``) at its own tier *and* at the tier its registered
  scopes would raise its requests to — authentication method, signing algorithms, redirect URIs, JARM and
  encryption registration, request_uris — for every client, whether or not it has recorded flows: a machine
  client registered for a scope that becomes ``high`` with ``client_secret_basic`` has its next
  ``client_credentials`` request refused, though no flow of it was ever recorded;
* **recorded flows** — would each flow that passed (tokens issued, or a code issued) have passed? Its client's
  tier and its scopes give the effective tier under the proposed policy; every control that tier requires
  is judged by its entry in ``protocol.controls.REGISTRY`` (its dry-run rule: the flow's records must
  evidence it, or the control must admit what they show), its algorithms must be in the tier's allowlist,
  and its request object lifetime and code redemption time within the tier's limits.

Each finding says which of the two it is (``verdict``: "registration would be refused" or "recorded flow
would fail"), the client, the rule (a control name, ``signing_algs``, ``code_lifetime`` ...) and why.
Findings are grouped per client, rule and reason; ``new`` tells whether the current policy already fails it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..protocol.clients import ServerCapabilities
from ..protocol.controls import required_specs
from ..protocol.policy import Policy, Tier
from ..store.base import ClientRecord
from .flows import FlowSummary
from .records import policy_fingerprint
from .registrations import registration_problems

MAX_EXAMPLES = 3
VERDICTS = {"registration": "registration would be refused", "flow": "recorded flow would fail"}


@dataclass(slots=True)
class Finding:
    kind: str  # "registration" | "flow"
    client_id: str | None
    reason: str
    new: bool = True  # False: the current policy fails it as well
    count: int = 1
    flow_ids: list[str] = field(default_factory=list)  # examples
    client_name: str | None = None
    rule: str = ""  # the control or limit: par, private_key_jwt, signing_algs, code_lifetime, registration ...
    tier: str | None = None  # the tier it was judged at

    @property
    def verdict(self) -> str:
        return VERDICTS[self.kind]


@dataclass(slots=True)
class PolicyCheck:
    current: str  # fingerprints
    proposed: str
    changes: list[str]
    clients_checked: int
    flows_checked: int
    findings: list[Finding]
    clients_skipped: int = 0  # disabled clients
    flows_skipped: int = 0  # passed flows of disabled or deleted clients

    @property
    def breaks(self) -> bool:
        return any(f.new for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["breaks"] = self.breaks
        for finding, data in zip(self.findings, out["findings"], strict=True):
            data["verdict"] = finding.verdict
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
                     "access_token_lifetime", "refresh_token_lifetime", "par_lifetime", "issuer_only_audience"):
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


def flow_rule_problems(f: FlowSummary, policy: Policy) -> list[tuple[str, str]]:
    """Why ``f`` would not pass under ``policy``, as (rule, reason) pairs (empty: it would)."""
    client_tier = f.client_tier
    if client_tier is None or f.tier is None:
        return []
    if client_tier not in policy.tiers:
        return [("risk_tier", f"client tier {client_tier} is not defined")]
    eff = policy.effective(client_tier, f.scopes)
    tier: Tier = eff.tier
    why = f"scope(s) {', '.join(eff.raised_by)} require tier {tier.name}" if eff.raised_by else f"tier {tier.name}"
    out: list[tuple[str, str]] = []
    missing_impl = policy.missing_implementation(tier)
    if missing_impl:
        out.append(("not_implemented",
                    f"{why}, which needs {', '.join(sorted(c.value for c in missing_impl))} (not implemented)"))
    for entry in required_specs(tier, front_channel=f.front_channel):
        failure = entry.dry_run(f.controls, f.applied)
        if failure is not None:
            out.append((entry.name, f"{why}: {failure}"))
    for what, alg in _algs(f):
        if not tier.allows_alg(alg):
            out.append(("signing_algs", f"{why}: {what} algorithm {alg} is not allowed"))
    lifetime = (f.controls.get("request_object") or {}).get("lifetime")
    if isinstance(lifetime, int) and lifetime > tier.request_object_max_lifetime:
        out.append(("request_object_max_lifetime",
                    f"{why}: request object lifetime {lifetime} s exceeds {tier.request_object_max_lifetime} s"))
    if f.code_issued_at is not None and f.code_redeemed_at is not None:
        took = f.code_redeemed_at - f.code_issued_at
        if took > tier.code_lifetime:
            out.append(("code_lifetime",
                        f"{why}: the code was redeemed after {took} s, beyond the code lifetime {tier.code_lifetime} s"))
    return out


def flow_problems(f: FlowSummary, policy: Policy) -> list[str]:
    """Why ``f`` would not pass under ``policy`` (empty: it would)."""
    return [reason for _, reason in flow_rule_problems(f, policy)]


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
    progress: Callable[[int, int], None] | None = None,
) -> PolicyCheck:
    """``progress(done, total)``: after each registration and recorded flow judged (a terminal's progress)."""
    names: Mapping[str, str] = {c.client_id: str(c.metadata.get("client_name") or c.client_id) for c in clients}
    findings: list[Finding] = []
    active = [c for c in clients if c.disabled_at is None]
    active_ids = {c.client_id for c in active}
    total = len(active) + len(flows)
    for n, rec in enumerate(active, 1):
        if progress is not None:
            progress(n, total)
        problems = registration_problems(rec.metadata, proposed, caps_proposed)
        known = {p.rule for p in registration_problems(rec.metadata, current, caps_current)} if problems else set()
        for p in problems:
            findings.append(Finding("registration", rec.client_id, p.reason, new=p.rule not in known,
                                    client_name=names.get(rec.client_id), rule=p.rule, tier=p.tier))
    checked = skipped = 0
    for n, f in enumerate(flows, len(active) + 1):
        if progress is not None:
            progress(n, total)
        if f.decision != "allow":
            continue
        if f.client_id not in active_ids:
            skipped += 1  # a disabled (or deleted) client: refused whatever the policy
            continue
        checked += 1
        rule_problems = flow_rule_problems(f, proposed)
        known_reasons = {r for _, r in flow_rule_problems(f, current)} if rule_problems else set()
        tier = (proposed.effective(f.client_tier, f.scopes).tier.name
                if f.client_tier is not None and f.client_tier in proposed.tiers else None)
        for rule, reason in rule_problems:
            findings.append(Finding("flow", f.client_id, reason, new=reason not in known_reasons,
                                    flow_ids=[f.flow_id], client_name=names.get(f.client_id or ""), rule=rule,
                                    tier=tier))
    return PolicyCheck(
        current=policy_fingerprint(current),
        proposed=policy_fingerprint(proposed),
        changes=policy_changes(current, proposed),
        clients_checked=len(active),
        flows_checked=checked,
        findings=_group(findings),
        clients_skipped=len(clients) - len(active),
        flows_skipped=skipped,
    )
