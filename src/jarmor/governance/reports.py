"""The governance report: stale clients, old server keys, registration drift, third-party exposure to
high-tier scopes, control coverage, and daily trends.

``build_report`` is pure (records in, report out); ``load_report`` gathers its inputs from a store. The command
line (``jarmor report``) and the dashboard's report page render the same ``Report``.

* **stale clients** — active clients with no flow record and no recorded use (``clients.last_used_at``) in
  ``stale_days``; a client never used at all counts once it is older than that;
* **server keys** — keys not yet retired whose age exceeds ``key_age_days`` (rotate them: ``jarmor keys rotate``);
* **drift** — active clients whose stored registration no longer satisfies the current policy, one row per
  rule broken (``registrations.registration_problems``: the registration checks at the client's own tier and
  at the tier its registered scopes raise its requests to); after a policy change, such a client's requests
  fail at the raised tier's checks;
* **third-party exposure** — clients of kind ``third-party`` that may request, hold or did use scopes whose
  tier ranks at or above ``high``: by registration (their ``scope``, or no ``scope`` at all, which allows every
  scope), by an active grant, or in a recorded flow;
* **coverage** — of the flows in the window, the share per effective tier and per outcome; of the successful
  ones, the share in which each control was applied (front-channel controls counted among
  ``authorization_code`` flows only);
* **trends** — flows per day, by outcome and by tier.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..protocol.addresses import is_loopback_host
from ..protocol.clients import ServerCapabilities
from ..protocol.context import Settings
from ..protocol.controls import REGISTRY
from ..protocol.policy import ALL_SIGNING_ALGS, Policy
from ..store.base import ClientRecord, GrantRecord, ServerKeyRecord, Store
from .flows import FlowSummary, outcome_class
from .query import FlowQuery, find_flows
from .registrations import registration_problems

DAY = 86400
MAX_REPORT_FLOWS = 200_000
OUTCOME_CLASSES = ("success", "error", "incomplete", "pending")


@dataclass(frozen=True, slots=True)
class StaleClient:
    client_id: str
    name: str
    kind: str
    tier: str
    created_at: int
    last_activity: int | None  # newest of its last flow record and last_used_at
    idle_days: int | None  # None: never used


@dataclass(frozen=True, slots=True)
class OldKey:
    kid: str
    alg: str
    use: str
    state: str
    created_at: int
    age_days: int


@dataclass(frozen=True, slots=True)
class Drift:
    client_id: str
    name: str
    tier: str
    error: str
    description: str
    rule: str = "registration"


@dataclass(frozen=True, slots=True)
class Exposure:
    client_id: str
    name: str
    tier: str
    scopes: tuple[str, ...]  # the high-tier scopes it may request, holds or used
    via: tuple[str, ...]


@dataclass(slots=True)
class ControlShare:
    control: str
    applied: int
    eligible: int
    how: dict[str, int] = field(default_factory=dict)  # the entry's ``how`` label -> flows (registry)

    @property
    def share(self) -> float:
        return self.applied / self.eligible if self.eligible else 0.0


@dataclass(slots=True)
class Coverage:
    flows: int = 0
    successful: int = 0
    by_tier: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    controls: list[ControlShare] = field(default_factory=list)
    by_tier_controls: dict[str, list[ControlShare]] = field(default_factory=dict)


@dataclass(slots=True)
class Trends:
    days: list[str] = field(default_factory=list)  # YYYY-MM-DD (UTC), oldest first
    by_outcome: dict[str, list[int]] = field(default_factory=dict)
    by_tier: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class Report:
    generated_at: int
    window_days: int
    stale_days: int
    key_age_days: int
    high_rank_tier: str
    stale_clients: list[StaleClient]
    old_keys: list[OldKey]
    drift: list[Drift]
    exposure: list[Exposure]
    coverage: Coverage
    trends: Trends
    clients: int = 0
    truncated: bool = False  # more flows in the window than were analysed

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["coverage"]["controls"] = [_share(c) for c in self.coverage.controls]
        out["coverage"]["by_tier_controls"] = {
            t: [_share(c) for c in shares] for t, shares in self.coverage.by_tier_controls.items()
        }
        return out


def _share(c: ControlShare) -> dict[str, Any]:
    out: dict[str, Any] = {"control": c.control, "applied": c.applied, "eligible": c.eligible,
                           "share": round(c.share, 4)}
    if c.how:
        out["how"] = dict(c.how)
    return out


def capabilities(
    policy: Policy, settings: Settings, issuer: str, keys: Iterable[ServerKeyRecord]
) -> ServerCapabilities:
    """What the server can do, as registration sees it, from its stored keys (no key is loaded or made).

    A database whose server has never started has no keys: every algorithm jarmor signs with is assumed."""
    algs = tuple(dict.fromkeys(k.alg for k in keys if k.use == "sig" and k.state != "retired"))
    return ServerCapabilities(
        signing_algs=algs or ALL_SIGNING_ALGS,
        scopes=settings.scopes | frozenset(policy.scope_tiers),
        request_uris_supported=settings.request_uri_parameter_supported,
        max_request_uris=settings.max_request_uris,
        loopback_references=is_loopback_host(urlsplit(issuer).hostname),
    )


def high_tier(policy: Policy) -> tuple[str, int]:
    """The tier named ``high`` (or, without one, the highest-ranked) and its rank."""
    tier = policy.tiers.get("high") or max(policy.tiers.values(), key=lambda t: t.rank)
    return tier.name, tier.rank


def high_scopes(policy: Policy) -> frozenset[str]:
    _, rank = high_tier(policy)
    return frozenset(s for s, t in policy.scope_tiers.items() if t in policy.tiers and policy.tiers[t].rank >= rank)


def _name(rec: ClientRecord) -> str:
    return str(rec.metadata.get("client_name") or rec.client_id)


def stale_clients(
    clients: Sequence[ClientRecord], last_seen: Mapping[str, int], now: int, stale_days: int
) -> list[StaleClient]:
    cutoff = now - stale_days * DAY
    out: list[StaleClient] = []
    for rec in clients:
        if rec.disabled_at is not None:
            continue
        seen = [t for t in (last_seen.get(rec.client_id), rec.last_used_at) if t is not None]
        last = max(seen) if seen else None
        if (last is not None and last < cutoff) or (last is None and rec.created_at < cutoff):
            out.append(
                StaleClient(
                    client_id=rec.client_id,
                    name=_name(rec),
                    kind=str(rec.metadata.get("client_kind") or "third-party"),
                    tier=str(rec.metadata.get("risk_tier", "")),
                    created_at=rec.created_at,
                    last_activity=last,
                    idle_days=None if last is None else (now - last) // DAY,
                )
            )
    out.sort(key=lambda c: (c.last_activity or 0, c.client_id))
    return out


def old_keys(keys: Sequence[ServerKeyRecord], now: int, key_age_days: int) -> list[OldKey]:
    out = [
        OldKey(k.kid, k.alg, k.use, k.state, k.created_at, (now - k.created_at) // DAY)
        for k in keys
        if k.state != "retired" and now - k.created_at > key_age_days * DAY
    ]
    out.sort(key=lambda k: (k.created_at, k.kid))
    return out


def drift(clients: Sequence[ClientRecord], policy: Policy, caps: ServerCapabilities) -> list[Drift]:
    out: list[Drift] = []
    for rec in clients:
        if rec.disabled_at is not None:
            continue
        for p in registration_problems(rec.metadata, policy, caps):
            out.append(Drift(rec.client_id, _name(rec), str(rec.metadata.get("risk_tier", "")), p.error, p.reason,
                             p.rule))
    return out


def exposure(
    clients: Sequence[ClientRecord],
    grants: Mapping[str, Sequence[GrantRecord]],
    flows: Sequence[FlowSummary],
    policy: Policy,
    known_scopes: frozenset[str],
) -> list[Exposure]:
    high = high_scopes(policy)
    if not high:
        return []
    used: dict[str, Counter[str]] = defaultdict(Counter)
    for f in flows:
        if f.client_id and f.outcome == "success":
            for s in set(f.scopes) & high:
                used[f.client_id][s] += 1
    out: list[Exposure] = []
    for rec in clients:
        if rec.disabled_at is not None or (rec.metadata.get("client_kind") or "third-party") != "third-party":
            continue
        scopes: set[str] = set()
        via: list[str] = []
        registered = rec.metadata.get("scope")
        if registered:
            allowed = set(str(registered).split()) & high
            if allowed:
                scopes |= allowed
                via.append(f"registered scope: {' '.join(sorted(allowed))}")
        else:
            allowed = set(known_scopes) & high
            if allowed:
                scopes |= allowed
                via.append("no registered scope (may request every scope)")
        for g in grants.get(rec.client_id, ()):
            held = set(g.scope.split()) & high
            if g.revoked_at is None and held:
                scopes |= held
                via.append(f"active grant {g.grant_id} for {g.subject or '-'}: {' '.join(sorted(held))}")
        for scope, n in sorted(used.get(rec.client_id, Counter()).items()):
            scopes.add(scope)
            via.append(f"{n} successful flow(s) with {scope}")
        if scopes:
            out.append(Exposure(rec.client_id, _name(rec), str(rec.metadata.get("risk_tier", "")),
                                tuple(sorted(scopes)), tuple(via)))
    return out


def _shares(flows: Sequence[FlowSummary]) -> list[ControlShare]:
    shares = {c.value: ControlShare(c.value, 0, 0) for c in REGISTRY}
    for f in flows:
        for control, entry in REGISTRY.items():
            if not f.front_channel and not entry.back_channel:
                continue
            shares[control.value].eligible += 1
            if control.value in f.applied:
                shares[control.value].applied += 1
            label = entry.how(f.controls)
            if label is not None:
                shares[control.value].how[label] = shares[control.value].how.get(label, 0) + 1
    return list(shares.values())


def coverage(flows: Sequence[FlowSummary]) -> Coverage:
    cov = Coverage(flows=len(flows))
    cov.by_tier = dict(Counter(f.tier or "unknown" for f in flows).most_common())
    cov.by_outcome = {k: v for k, v in ((c, sum(outcome_class(f.outcome) == c for f in flows)) for c in OUTCOME_CLASSES) if v}
    ok = [f for f in flows if f.outcome == "success"]
    cov.successful = len(ok)
    cov.controls = _shares(ok)
    tiers = sorted({f.tier or "unknown" for f in ok})
    cov.by_tier_controls = {t: _shares([f for f in ok if (f.tier or "unknown") == t]) for t in tiers}
    return cov


def day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def trends(flows: Sequence[FlowSummary], now: int, window_days: int) -> Trends:
    days = [day(now - (window_days - 1 - i) * DAY) for i in range(window_days)]
    index = {d: i for i, d in enumerate(days)}
    by_outcome = {c: [0] * window_days for c in OUTCOME_CLASSES}
    by_tier: dict[str, list[int]] = {}
    for f in flows:
        i = index.get(day(f.started_at))
        if i is None:
            continue
        by_outcome[outcome_class(f.outcome)][i] += 1
        by_tier.setdefault(f.tier or "unknown", [0] * window_days)[i] += 1
    return Trends(days, {k: v for k, v in by_outcome.items() if any(v)}, dict(sorted(by_tier.items())))


def build_report(
    *,
    now: int,
    policy: Policy,
    caps: ServerCapabilities,
    clients: Sequence[ClientRecord],
    keys: Sequence[ServerKeyRecord],
    grants: Mapping[str, Sequence[GrantRecord]],
    last_seen: Mapping[str, int],
    flows: Sequence[FlowSummary],
    window_days: int = 30,
    stale_days: int = 90,
    key_age_days: int = 180,
    truncated: bool = False,
) -> Report:
    since = now - window_days * DAY
    window = [f for f in flows if f.started_at >= since]
    return Report(
        generated_at=now,
        window_days=window_days,
        stale_days=stale_days,
        key_age_days=key_age_days,
        high_rank_tier=high_tier(policy)[0],
        stale_clients=stale_clients(clients, last_seen, now, stale_days),
        old_keys=old_keys(keys, now, key_age_days),
        drift=drift(clients, policy, caps),
        exposure=exposure(clients, grants, window, policy, caps.scopes),
        coverage=coverage(window),
        trends=trends(window, now, window_days),
        clients=len(clients),
        truncated=truncated,
    )


async def load_report(
    store: Store,
    *,
    now: int,
    policy: Policy,
    caps: ServerCapabilities,
    window_days: int = 30,
    stale_days: int = 90,
    key_age_days: int = 180,
) -> Report:
    clients = await store.clients.list()
    grants = {c.client_id: await store.grants.list_for_client(c.client_id) for c in clients}
    flows = await find_flows(store.flows, FlowQuery(since=now - window_days * DAY, limit=MAX_REPORT_FLOWS), now)
    return build_report(
        now=now,
        policy=policy,
        caps=caps,
        clients=clients,
        keys=await store.keys.list(),
        grants=grants,
        last_seen=await store.flows.last_seen(),
        flows=flows,
        window_days=window_days,
        stale_days=stale_days,
        key_age_days=key_age_days,
        truncated=len(flows) >= MAX_REPORT_FLOWS,
    )
