"""One row per transaction: flow events (``records``) aggregated by ``flow_id``, and the policy decision.

Pure functions over stored rows and ``now``. A transaction's outcome is

* ``success`` — tokens were issued;
* an OAuth error code — the first hop that refused it (``stage`` says which, ``channel`` where the error went);
* ``pending`` — its last hop's artefact (request_uri, sign-in page, code) is still usable;
* ``par_not_used`` / ``abandoned`` / ``code_not_redeemed`` — that artefact expired unused.

Events after a success (a replayed code, say) do not change the outcome; they are listed as ``incidents``.

A flow's events are put in causal order — by stage (PAR, authorization, code, token), within a stage what
succeeded before what was refused (a code is redeemed before it can be replayed; a sign-in page is shown
before it is denied), then by time and ``seq`` — not in chain order: when the hops of one transaction ran on
different nodes, each node's recorder batches its own writes, so the chain may hold a later hop first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

# ``applied_controls`` and ``ordered`` are re-exported: the flow summaries' readers of the control registry
from ..protocol.controls import applied_controls as applied_controls
from ..protocol.controls import back_channel_controls, by_name
from ..protocol.controls import ordered as ordered
from ..store.base import FlowRecordRow
from .records import (
    AUTHORIZE,
    CODE,
    CODE_ISSUED,
    INTERACTION,
    PAR,
    PUSHED,
    TOKEN,
    TOKENS_ISSUED,
    FlowEvent,
)

SUCCESS = "success"
PENDING = "pending"
EXPIRED = {PUSHED: "par_not_used", INTERACTION: "abandoned", CODE_ISSUED: "code_not_redeemed"}
INCOMPLETE = frozenset(EXPIRED.values())
FRONT_CHANNEL = "authorization_code"
# controls that a back-channel-only grant (client_credentials, refresh_token) can exercise


def outcome_class(outcome: str) -> str:
    """``success``, ``error``, ``incomplete`` (expired unused) or ``pending``."""
    if outcome == SUCCESS:
        return SUCCESS
    if outcome == PENDING:
        return PENDING
    if outcome in INCOMPLETE:
        return "incomplete"
    return "error"


@dataclass(frozen=True, slots=True)
class Hop:
    seq: int
    stage: str
    outcome: str
    at: int


@dataclass(slots=True)
class FlowSummary:
    flow_id: str
    started_at: int
    ended_at: int
    outcome: str
    stage: str
    decision: str  # "allow" | "deny" | "pending" | "none"
    reasons: list[str]
    client_id: str | None = None
    client_claimed: str | None = None
    subject: str | None = None
    scopes: tuple[str, ...] = ()
    grant_type: str | None = None
    client_tier: str | None = None
    tier: str | None = None
    tier_reasons: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()  # required controls the records do not evidence (on success: a finding)
    controls: dict[str, Any] = field(default_factory=dict)
    error_description: str | None = None
    channel: str | None = None
    code_issued_at: int | None = None
    code_redeemed_at: int | None = None
    tokens: tuple[str, ...] = ()
    incidents: list[str] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)
    policy: str | None = None

    @property
    def outcome_class(self) -> str:
        return outcome_class(self.outcome)

    @property
    def front_channel(self) -> bool:
        return (self.grant_type or FRONT_CHANNEL) == FRONT_CHANNEL

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "stage": self.stage,
            "decision": self.decision,
            "reasons": self.reasons,
            "client_id": self.client_id,
            "client_claimed": self.client_claimed,
            "subject": self.subject,
            "scopes": list(self.scopes),
            "grant_type": self.grant_type,
            "client_tier": self.client_tier,
            "tier": self.tier,
            "tier_reasons": list(self.tier_reasons),
            "required_controls": list(self.required),
            "applied_controls": list(self.applied),
            "gaps": list(self.gaps),
            "controls": self.controls,
            "error_description": self.error_description,
            "channel": self.channel,
            "code_issued_at": self.code_issued_at,
            "code_redeemed_at": self.code_redeemed_at,
            "tokens": list(self.tokens),
            "incidents": self.incidents,
            "hops": [{"seq": h.seq, "stage": h.stage, "outcome": h.outcome, "at": h.at} for h in self.hops],
            "policy": self.policy,
        }


def applicable(required: Iterable[str], grant_type: str | None) -> set[str]:
    """Front-channel controls do not apply to a grant that never used the front channel."""
    req = set(required)
    return req if (grant_type or FRONT_CHANNEL) == FRONT_CHANNEL else req & back_channel_controls()


def _merge(merged: dict[str, Any], ev: FlowEvent) -> None:
    for key, value in ev.controls.items():
        if key == "client_auth":
            merged["client_auth" if ev.stage == TOKEN else "par_client_auth"] = value
        elif key == "par":
            merged["par"] = bool(merged.get("par")) or bool(value)
        else:
            merged[key] = value


def events_of(rows: Iterable[FlowRecordRow]) -> list[tuple[int, FlowEvent]]:
    out: list[tuple[int, FlowEvent]] = []
    for row in rows:
        try:
            out.append((row.seq, FlowEvent.from_payload(orjson.loads(row.body))))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # unreadable: ``jarmor flows verify`` reports it
    return out


_STAGE_ORDER = {PAR: 0, AUTHORIZE: 1, CODE: 2, TOKEN: 3}


def causal_key(item: tuple[int, FlowEvent]) -> tuple[int, int, int, int]:
    seq, ev = item
    return (_STAGE_ORDER.get(ev.stage, len(_STAGE_ORDER)), 1 if ev.failed else 0, ev.at, seq)


def summarize(rows: Iterable[FlowRecordRow], now: int) -> list[FlowSummary]:
    """One summary per flow, newest first."""
    by_flow: dict[str, list[tuple[int, FlowEvent]]] = {}
    seen: set[str] = set()
    for seq, ev in events_of(rows):
        if ev.event_id and ev.event_id in seen:
            continue  # a batch retried after an ambiguous failure
        seen.add(ev.event_id)
        by_flow.setdefault(ev.flow_id, []).append((seq, ev))
    out = [summarize_flow(flow_id, sorted(evs, key=causal_key), now) for flow_id, evs in by_flow.items()]
    out.sort(key=lambda s: (s.started_at, max(h.seq for h in s.hops)), reverse=True)
    return out


def summarize_flow(flow_id: str, events: Sequence[tuple[int, FlowEvent]], now: int) -> FlowSummary:
    merged: dict[str, Any] = {}
    first = events[0][1]
    s = FlowSummary(
        flow_id=flow_id,
        started_at=min(ev.at for _, ev in events),
        ended_at=max(ev.at for _, ev in events),
        outcome=PENDING,
        stage=first.stage,
        decision="pending",
        reasons=[],
    )
    terminal: FlowEvent | None = None
    last: FlowEvent = first
    for seq, ev in events:
        s.hops.append(Hop(seq, ev.stage, ev.outcome, ev.at))
        if terminal is not None:
            what = ev.outcome if not ev.failed else f"{ev.outcome}: {ev.error_description or ''}".rstrip(": ")
            s.incidents.append(f"{ev.stage} after the flow ended: {what}")
            continue
        last = ev
        _merge(merged, ev)
        s.client_id = ev.client_id or s.client_id
        s.client_claimed = s.client_claimed or ev.client_claimed
        s.subject = ev.subject or s.subject
        s.scopes = ev.scopes or s.scopes
        s.grant_type = ev.grant_type or s.grant_type
        s.client_tier = ev.client_tier or s.client_tier
        s.tier = ev.tier or s.tier
        s.tier_reasons = ev.tier_reasons or s.tier_reasons
        s.required = ev.required or s.required
        s.policy = ev.policy or s.policy
        if ev.stage == CODE and ev.outcome == CODE_ISSUED:
            s.code_issued_at = ev.at
        if ev.stage == TOKEN and ev.outcome == TOKENS_ISSUED:
            s.code_redeemed_at = ev.controls.get("code_redeemed_at")
            s.tokens = tuple(ev.controls.get("tokens") or ())
        if ev.failed or ev.outcome == TOKENS_ISSUED:
            terminal = ev
    s.controls = merged
    s.stage = last.stage
    applied = applied_controls(merged)
    s.applied = ordered(applied)
    needed = applicable(s.required, s.grant_type)
    tier_line = f"effective tier {s.tier}" + (f" ({'; '.join(s.tier_reasons)})" if s.tier_reasons else "")
    if terminal is not None and terminal.failed:
        s.outcome, s.decision = terminal.outcome, "deny"
        s.error_description, s.channel = terminal.error_description, terminal.channel
        s.reasons.append(f"refused at {terminal.stage}: {terminal.outcome}" + (
            f": {terminal.error_description}" if terminal.error_description else ""))
        if s.tier:
            s.reasons.append(tier_line)
        return s
    if s.tier:
        s.reasons.append(tier_line)
    if terminal is not None:
        s.outcome, s.decision = SUCCESS, "allow"
        s.gaps = ordered(needed - applied)
        if needed & applied:
            s.reasons.append(f"required controls evidenced: {', '.join(ordered(needed & applied))}")
        for gap in s.gaps:
            entry = by_name(gap)
            s.reasons.append(entry.gap_reason(merged) if entry is not None
                             else f"required control {gap} is not evidenced in the records")
        extra = applied - set(s.required)
        if extra:
            s.reasons.append(f"also applied: {', '.join(ordered(extra))}")
        return s
    expired = last.expires_at is not None and now >= last.expires_at
    if expired:
        s.outcome = EXPIRED.get(last.outcome, "abandoned")
        s.decision = "none" if last.outcome == INTERACTION else "allow"
        s.reasons.append({
            PUSHED: "pushed, but the request_uri was never used",
            INTERACTION: "the user never completed sign-in and consent",
            CODE_ISSUED: "authorized, but the code was never redeemed",
        }.get(last.outcome, "the flow stopped"))
    else:
        s.reasons.append(f"waiting after {last.stage}: {last.outcome}")
    return s


def matches_outcome(summary: FlowSummary, wanted: str | None) -> bool:
    """``success``, ``error`` (any OAuth error), ``incomplete``, ``pending``, or one exact outcome."""
    if not wanted:
        return True
    if wanted in (SUCCESS, "error", "incomplete", PENDING):
        return summary.outcome_class == wanted
    return summary.outcome == wanted
