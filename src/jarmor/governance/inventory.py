"""What exists and who holds what: the client inventory and the entitlement review.

* ``client_summary`` / ``inventory``: per client its tier, kind, owner and contacts, authentication method,
  registered scopes, keys with their ages (first seen at registration or update, ``store.client_key_history``),
  created / last used, active grants and tokens, and whether (by whom, why) it was disabled.
* ``entitlements``: per client the scopes it holds — every unrevoked grant (a user's consent: who, when,
  which scopes, how many live tokens) and, for machine clients, the ``client_credentials`` scopes (granted by
  whoever last registered or updated the client, from the audit log).
* ``entitlement_review`` / ``review_groups``: the same, one row per client, user and set of scopes — a user
  who signed in to a client seven times holds seven grants of the same scopes, which a reviewer judges once —
  with the number of grants, the first and last grant time, who granted them and the grant ids (each grant
  is still revoked on its own: ``jarmor review revoke GRANT_ID...`` takes every id of a group).

Read-only and store-only; the command line and the admin dashboard render the same values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..store.base import AdminEvent, ClientKeyRecord, ClientRecord, Store

REGISTRATION_ACTIONS = ("client.register", "client.update")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    kid: str
    thumbprint: str
    first_seen_at: int
    removed_at: int | None
    age: int  # seconds since first seen

    @property
    def current(self) -> bool:
        return self.removed_at is None


@dataclass(frozen=True, slots=True)
class ClientSummary:
    client_id: str
    name: str
    risk_tier: str
    client_kind: str
    owner: str | None
    contacts: list[str]
    auth_method: str
    grant_types: list[str]
    scopes: list[str] | None  # None: no scope registered
    redirect_uris: list[str]
    resource_server: bool
    key_source: str | None  # "jwks" | "jwks_uri" | None
    jwks_uri: str | None
    keys: list[KeyInfo]
    created_at: int
    updated_at: int
    last_used_at: int | None
    disabled_at: int | None
    disabled_reason: str | None
    disabled_by: str | None
    active_grants: int
    active_tokens: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "disabled" if self.disabled_at is not None else "active"

    @property
    def current_keys(self) -> list[KeyInfo]:
        return [k for k in self.keys if k.current]

    def to_json(self, *, with_metadata: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status
        if not with_metadata:
            out.pop("metadata")
        return out


@dataclass(frozen=True, slots=True)
class Entitlement:
    """Scopes a client holds: through a grant (``kind="grant"``) or by registration (``client_credentials``)."""

    client_id: str
    client_name: str
    kind: str
    scopes: list[str] | None  # None: any scope the server knows (a machine client with no registered scope)
    granted_at: int
    granted_by: str | None
    grant_id: str | None = None
    subject: str | None = None
    active_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EntitlementGroup:
    """The entitlements of one client for one user (``subject``; ``None`` for ``client_credentials``) and one
    set of scopes: how many grants, granted first and last when, by whom, and their ids."""

    client_id: str
    client_name: str
    kind: str
    subject: str | None
    scopes: list[str] | None
    grants: int
    first_granted_at: int
    last_granted_at: int
    granted_by: list[str]
    grant_ids: list[str]
    active_tokens: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def review_groups(items: list[Entitlement]) -> list[EntitlementGroup]:
    """Group ``items`` by client, kind, user and scopes (as a set); groups keep the order of their first item,
    grant ids are listed oldest first."""
    groups: dict[tuple[str, str, str | None, frozenset[str] | None], list[Entitlement]] = {}
    for e in items:
        scopes = frozenset(e.scopes) if e.scopes is not None else None
        groups.setdefault((e.client_id, e.kind, e.subject, scopes), []).append(e)
    out: list[EntitlementGroup] = []
    for members in groups.values():
        members = sorted(members, key=lambda e: (e.granted_at, e.grant_id or ""))
        first = members[0]
        out.append(EntitlementGroup(
            client_id=first.client_id,
            client_name=first.client_name,
            kind=first.kind,
            subject=first.subject,
            scopes=first.scopes,
            grants=len(members),
            first_granted_at=first.granted_at,
            last_granted_at=members[-1].granted_at,
            granted_by=sorted({e.granted_by for e in members if e.granted_by}),
            grant_ids=[e.grant_id for e in members if e.grant_id],
            active_tokens=sum(e.active_tokens for e in members),
        ))
    return out


def _name(record: ClientRecord) -> str:
    return str(record.metadata.get("client_name") or record.client_id)


def _scopes(record: ClientRecord) -> list[str] | None:
    scope = record.metadata.get("scope")
    return str(scope).split() if scope else None


def _summary(
    record: ClientRecord, keys: list[ClientKeyRecord], grants: int, tokens: int, now: int
) -> ClientSummary:
    meta = record.metadata
    source = "jwks" if meta.get("jwks") else "jwks_uri" if meta.get("jwks_uri") else None
    return ClientSummary(
        client_id=record.client_id,
        name=_name(record),
        risk_tier=str(meta.get("risk_tier", "")),
        client_kind=str(meta.get("client_kind") or "third-party"),
        owner=meta.get("owner"),
        contacts=list(meta.get("contacts") or []),
        auth_method=str(meta.get("token_endpoint_auth_method", "")),
        grant_types=list(meta.get("grant_types") or []),
        scopes=_scopes(record),
        redirect_uris=list(meta.get("redirect_uris") or []),
        resource_server=meta.get("resource_server") is True,
        key_source=source,
        jwks_uri=meta.get("jwks_uri"),
        keys=[KeyInfo(k.kid, k.thumbprint, k.first_seen_at, k.removed_at, max(0, now - k.first_seen_at)) for k in keys],
        created_at=record.created_at,
        updated_at=record.updated_at,
        last_used_at=record.last_used_at,
        disabled_at=record.disabled_at,
        disabled_reason=record.disabled_reason,
        disabled_by=record.disabled_by,
        active_grants=grants,
        active_tokens=tokens,
        metadata=dict(meta),
    )


async def client_summary(store: Store, record: ClientRecord, now: int) -> ClientSummary:
    keys = await store.client_key_history.list_for_client(record.client_id)
    grants = [g for g in await store.grants.list_for_client(record.client_id) if g.revoked_at is None]
    tokens = await store.tokens.list_for_client(record.client_id, active_at=now)
    return _summary(record, keys, len(grants), len(tokens), now)


async def inventory(store: Store, now: int) -> list[ClientSummary]:
    """Every client's summary in four queries (clients, key records, grant and token counts), however many
    clients there are: ``bench/inventory.py`` times it at 100,000 clients."""
    records = await store.clients.list()
    keys: dict[str, list[ClientKeyRecord]] = {}
    for k in await store.client_key_history.list_all():
        keys.setdefault(k.client_id, []).append(k)
    grants = await store.grants.active_counts()
    tokens = await store.tokens.active_counts(now)
    return [
        _summary(r, keys.get(r.client_id, []), grants.get(r.client_id, 0), tokens.get(r.client_id, 0), now)
        for r in records
    ]


@dataclass(frozen=True, slots=True)
class InventoryQuery:
    """Filters and paging over the inventory (CLI, dashboard, admin API): every filter given must hold."""

    tier: str | None = None
    kind: str | None = None
    owner: str | None = None  # "-": clients without an owner
    disabled: bool | None = None
    stale_days: int | None = None  # no use (flow, token) for at least this many days
    text: str | None = None  # a substring of the client_id, name, owner or a contact, case-insensitive
    offset: int = 0
    limit: int = 100

    def matches(self, c: ClientSummary, now: int) -> bool:
        if self.tier is not None and c.risk_tier != self.tier:
            return False
        if self.kind is not None and c.client_kind != self.kind:
            return False
        if self.owner is not None and (c.owner or "-") != self.owner:
            return False
        if self.disabled is not None and (c.disabled_at is not None) != self.disabled:
            return False
        if self.stale_days is not None:
            last = c.last_used_at or c.created_at
            if now - last < self.stale_days * 86400:
                return False
        if self.text:
            needle = self.text.casefold()
            if not any(needle in t.casefold() for t in (c.client_id, c.name, c.owner or "", *c.contacts)):
                return False
        return True


def select_page(summaries: list[ClientSummary], query: InventoryQuery, now: int) -> tuple[list[ClientSummary], int]:
    """The page ``query`` asks for, and how many clients match in all."""
    matching = [c for c in summaries if query.matches(c, now)]
    return matching[query.offset : query.offset + max(0, query.limit)], len(matching)


async def last_registration_event(store: Store, client_id: str) -> AdminEvent | None:
    """The newest registration or RFC 7592 update of the client (who last set its metadata)."""
    for event in await store.audit.list(target=f"client:{client_id}", limit=200):
        if event.action in REGISTRATION_ACTIONS:
            return event
    return None


async def client_entitlements(store: Store, record: ClientRecord, now: int) -> list[Entitlement]:
    if record.disabled_at is not None:
        return []
    name = _name(record)
    live = Counter(t.grant_id for t in await store.tokens.list_for_client(record.client_id, active_at=now))
    out: list[Entitlement] = []
    if "client_credentials" in (record.metadata.get("grant_types") or ()):
        event = await last_registration_event(store, record.client_id)
        out.append(
            Entitlement(
                client_id=record.client_id,
                client_name=name,
                kind="client_credentials",
                scopes=_scopes(record),
                granted_at=event.at if event else record.updated_at,
                granted_by=event.actor if event else None,
                active_tokens=live.get(None, 0),
            )
        )
    for grant in await store.grants.list_for_client(record.client_id):
        if grant.revoked_at is not None:
            continue
        out.append(
            Entitlement(
                client_id=record.client_id,
                client_name=name,
                kind="grant",
                scopes=grant.scope.split(),
                granted_at=grant.created_at,
                granted_by=grant.granted_by,
                grant_id=grant.grant_id,
                subject=grant.subject,
                active_tokens=live.get(grant.grant_id, 0),
            )
        )
    return out


async def entitlements(store: Store, now: int, *, client_id: str | None = None) -> list[Entitlement]:
    """Every active entitlement, or those of one client (``LookupError`` if it does not exist)."""
    if client_id is not None:
        record = await store.clients.get(client_id)
        if record is None:
            raise LookupError(f"no client {client_id!r}")
        records = [record]
    else:
        records = await store.clients.list()
    out: list[Entitlement] = []
    for record in records:
        out.extend(await client_entitlements(store, record, now))
    return out


async def entitlement_review(store: Store, now: int, *, client_id: str | None = None) -> list[EntitlementGroup]:
    """``entitlements`` grouped for review (``review_groups``)."""
    return review_groups(await entitlements(store, now, client_id=client_id))
