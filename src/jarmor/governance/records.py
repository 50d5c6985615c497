"""Flow integrity records: what each hop of an authorization transaction decided and which controls applied.

Lifecycle — an event log, aggregated by ``flow_id`` (``flows.summarize``) into one row per transaction:

* each hop appends one ``FlowEvent`` when it is done: ``par`` (pushed, or refused), ``authorize`` (refused,
  or waiting for the user to sign in), ``code`` (code issued and delivered), ``token`` (tokens issued, or
  refused). A hardened flow with auto-approval leaves three events (PAR, code, token); a flow refused at PAR
  leaves one;
* the ``flow_id`` is minted where the transaction starts (the PAR or authorization request) and travels with
  it: in the PAR entry (``AuthorizationRequest.flow_id``), the interaction, and the code record; the token
  endpoint reads it back from the code it redeems.

Why events rather than one record written when the transaction ends: with several workers or nodes, the
hops of one transaction run in different processes, so a single end-of-flow record would have to carry every
earlier hop's evidence through the PAR entry and the code record — and a transaction that simply stops (a
code never redeemed, a request_uri never used, a sign-in abandoned) has no "end" at which anything would be
written. An event is written by the hop that knows its facts, when it knows them; a code issued but never
redeemed is its ``code`` event whose ``expires_at`` has passed, which ``summarize`` reports as
``code_not_redeemed`` without any process having to wake up for it. Each event is small, and writing them
costs the flow nothing measurable (``recorder.FlowRecorder`` batches them off the request path).

Integrity — a hash chain. Each stored record's ``body`` is the canonical JSON of its payload plus its ``seq``
(sorted keys, no insignificant whitespace, UTF-8; values are only strings, integers, booleans, null, arrays
and objects, so the encoding is unambiguous), and ``hash = SHA-256(prev_hash || "\\n" || body)``, hex. Editing
a body breaks that record's hash; recomputing the hash breaks the next record's link; deleting, inserting or
reordering records breaks the ``seq`` sequence or a link; deleting from the end is caught by the chain head
(``flow_chain``), and an external anchor (a ``seq:hash`` pair kept outside the database, e.g. by the SIEM
that receives ``jarmor flows export``) catches a rewrite of the head as well. See ``chain.verify``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..protocol.policy import ALWAYS, Control, Policy, Tier
from ..store.base import GENESIS_HASH, FlowEntry

FORMAT_VERSION = 1

# stages, in the order a transaction passes them
PAR, AUTHORIZE, CODE, TOKEN = "par", "authorize", "code", "token"
STAGES = (PAR, AUTHORIZE, CODE, TOKEN)

# what a stage reports when it did its job (anything else is an OAuth error code)
PUSHED, INTERACTION, CODE_ISSUED, TOKENS_ISSUED = "pushed", "interaction", "code_issued", "tokens_issued"
PROGRESS = frozenset({PUSHED, INTERACTION, CODE_ISSUED, TOKENS_ISSUED})

MAX_TEXT = 512
MAX_ID = 256

__all__ = [
    "GENESIS_HASH",
    "FlowEvent",
    "canonical",
    "chain_hash",
    "new_flow_id",
    "node_name",
    "policy_fingerprint",
    "required_controls",
    "seal",
]


def new_flow_id() -> str:
    """128 random bits: flow ids are not secrets, but they must never collide across nodes."""
    return secrets.token_urlsafe(16)


def node_name() -> str:
    """Which process wrote a record (``host:pid``): informational, the chain is shared by all."""
    return f"{socket.gethostname()}:{os.getpid()}"


def clip(value: str | None, limit: int = MAX_TEXT) -> str | None:
    """Strings in records are bounded: some come from requests (a claimed client_id, a kid)."""
    if value is None:
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """One hop of one transaction. ``outcome`` is a ``PROGRESS`` value or the OAuth error code.

    ``required`` are the controls the effective tier required under the policy in force (``policy`` is that
    policy's fingerprint), so a record explains its decision even after the policy changes. ``controls`` is
    the evidence the protocol core collected at this hop (request object, PAR, response mode, JARM, ``iss``,
    PKCE, client authentication, code redemption, tokens). ``expires_at`` is when what this hop produced (a
    request_uri, a sign-in page, a code) stops being usable: past it, a transaction with no later hop is over.
    """

    flow_id: str
    stage: str
    outcome: str
    at: int
    event_id: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    node: str = ""
    client_id: str | None = None
    client_claimed: str | None = None  # an unverified client_id, when the request failed before identifying it
    subject: str | None = None
    scopes: tuple[str, ...] = ()
    grant_type: str | None = None
    client_tier: str | None = None
    tier: str | None = None
    tier_reasons: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    controls: Mapping[str, Any] = field(default_factory=dict)
    error_description: str | None = None
    channel: str | None = None  # where an error went: "redirect", "page" or "json"
    expires_at: int | None = None
    policy: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome not in PROGRESS

    def payload(self) -> dict[str, Any]:
        """The JSON members of this event (``None`` and empty values left out)."""
        out: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "flow_id": self.flow_id,
            "stage": self.stage,
            "outcome": self.outcome,
            "at": self.at,
            "event_id": self.event_id,
        }
        optional: dict[str, Any] = {
            "node": self.node or None,
            "client_id": self.client_id,
            "client_claimed": clip(self.client_claimed, MAX_ID),
            "subject": self.subject,
            "scopes": list(self.scopes) or None,
            "grant_type": self.grant_type,
            "client_tier": self.client_tier,
            "tier": self.tier,
            "tier_reasons": list(self.tier_reasons) or None,
            "required": list(self.required) or None,
            "controls": dict(self.controls) or None,
            "error_description": clip(self.error_description),
            "channel": self.channel,
            "expires_at": self.expires_at,
            "policy": self.policy,
        }
        out.update((k, v) for k, v in optional.items() if v is not None)
        return out

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> FlowEvent:
        return cls(
            flow_id=str(data["flow_id"]),
            stage=str(data["stage"]),
            outcome=str(data["outcome"]),
            at=int(data["at"]),
            event_id=str(data.get("event_id", "")),
            node=str(data.get("node", "")),
            client_id=data.get("client_id"),
            client_claimed=data.get("client_claimed"),
            subject=data.get("subject"),
            scopes=tuple(data.get("scopes") or ()),
            grant_type=data.get("grant_type"),
            client_tier=data.get("client_tier"),
            tier=data.get("tier"),
            tier_reasons=tuple(data.get("tier_reasons") or ()),
            required=tuple(data.get("required") or ()),
            controls=dict(data.get("controls") or {}),
            error_description=data.get("error_description"),
            channel=data.get("channel"),
            expires_at=data.get("expires_at"),
            policy=data.get("policy"),
        )

    def entry(self) -> FlowEntry:
        """What the store needs to chain this event (its indexed columns and its payload)."""
        return FlowEntry(
            at=self.at,
            flow_id=self.flow_id,
            stage=self.stage,
            outcome=self.outcome,
            client_id=self.client_id or None,
            payload=self.payload(),
        )


def canonical(payload: Mapping[str, Any]) -> bytes:
    """Sorted keys, compact, UTF-8. Payloads hold no floats, so every value has exactly one encoding."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + body).hexdigest()


def seal(seq: int, prev_hash: str, entry: FlowEntry) -> tuple[str, str]:
    """The store's ``Seal``: the record's canonical body (payload plus ``seq``) and its chained hash."""
    body = canonical({**entry.payload, "seq": seq})
    return body.decode("utf-8"), chain_hash(prev_hash, body)


def required_controls(tier: Tier) -> tuple[str, ...]:
    return tuple(sorted(c.value for c in tier.controls | ALWAYS))


def _tier_dict(tier: Tier) -> dict[str, Any]:
    return {
        "rank": tier.rank,
        "controls": sorted(c.value for c in tier.controls),
        "signing_algs": list(tier.signing_algs),
        "request_object_max_lifetime": tier.request_object_max_lifetime,
        "code_lifetime": tier.code_lifetime,
        "access_token_lifetime": tier.access_token_lifetime,
        "refresh_token_lifetime": tier.refresh_token_lifetime,
        "par_lifetime": tier.par_lifetime,
        # only when set apart from its default (the tier requires PAR), so earlier fingerprints still hold
        **({"issuer_only_audience": tier.issuer_only_audience}
           if tier.issuer_only_audience != tier.requires(Control.PAR) else {}),
        # only when enforced, so fingerprints of policies that do not require it still hold
        **({"authentication": {"acr": tier.authentication.acr, "max_age": tier.authentication.max_age}}
           if tier.requires(Control.AUTHENTICATION_ASSURANCE) else {}),
    }


def policy_fingerprint(policy: Policy) -> str:
    """A short digest of the tier/scope policy, recorded with each event: which policy version decided."""
    doc = {
        "default_client_tier": policy.default_client_tier,
        "scopes": dict(policy.scope_tiers),
        "tiers": {name: _tier_dict(t) for name, t in policy.tiers.items()},
    }
    return hashlib.sha256(canonical(doc)).hexdigest()[:16]
