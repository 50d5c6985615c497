"""Storage interfaces (typing.Protocol) and the plain records they hold.

Storage is split by lifetime (see ARCHITECTURE.md):

* ``EphemeralStore`` — short-lived, single-use records (PAR entries, interactions, authorization codes,
  ``jti`` replay marks). Its operations are atomic: ``take`` is a get-and-delete (``GETDEL``,
  ``DELETE ... RETURNING``) and ``add_once`` a set-if-absent, so two concurrent redemptions of one code or
  ``request_uri`` can never both succeed; ``incr`` is an atomic counter (``INCRBY``, ``INSERT ... ON CONFLICT
  DO UPDATE ... RETURNING``), so a limit on attempts holds across tasks, workers and nodes; ``take_and_mark``
  takes a record and leaves a mark in its place at once (one transaction, one Redis script).
* Durable stores — clients, users, server keys, tokens and grants — live in a transactional database.
  Flow integrity records (``FlowRecordStore``) are durable too, and append-only (a hash chain).
* ``Store.transaction()`` — what one endpoint issues (a grant and its tokens, a refresh rotation and the new
  access token) written in one durable transaction: all of it or none of it, one commit (one ``fsync`` on
  PostgreSQL) instead of one per record.

All methods are ``async`` so that network-backed implementations (PostgreSQL, Redis) fit the same shape; the
SQLite implementation runs its (sub-millisecond) statements inline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol


class StoreError(Exception):
    """A storage operation failed."""


class AlreadyExists(StoreError):
    """A record with this identifier already exists."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached: connection refused, lost or timed out (Redis or PostgreSQL down).

    Transient, unlike the other ``StoreError`` s: the server answers ``temporarily_unavailable`` (RFC 6749
    §4.1.2.1) or 503 and logs the outage once, and the same request may succeed once the backend is back."""


@dataclass(slots=True)
class ClientRecord:
    client_id: str
    metadata: dict[str, Any]
    created_at: int
    updated_at: int
    secret_hash: str | None = None
    registration_token_hash: str | None = None
    disabled_at: int | None = None
    disabled_reason: str | None = None
    disabled_by: str | None = None
    last_used_at: int | None = None


@dataclass(slots=True)
class UserRecord:
    username: str
    password_hash: str
    created_at: int
    disabled: bool = False


@dataclass(slots=True)
class ServerKeyRecord:
    """A server key. ``private_jwk`` is the serialized private JWK (possibly encrypted at rest)."""

    kid: str
    alg: str
    use: str
    private_jwk: str
    created_at: int
    # signing starts at ``active_at`` (publish first, sign later), verification ends at ``retired_at``
    active_at: int
    retired_at: int | None = None
    state: str = "active"  # "pending" | "active" | "retiring" | "retired"


@dataclass(slots=True)
class TokenRecord:
    token_hash: str
    kind: str  # "access_token" | "refresh_token"
    client_id: str
    subject: str | None
    scope: str
    grant_id: str | None
    created_at: int
    expires_at: int
    revoked_at: int | None = None
    rotated_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class GrantRecord:
    grant_id: str
    client_id: str
    subject: str | None
    scope: str
    created_at: int
    granted_by: str | None = None
    revoked_at: int | None = None
    revoked_reason: str | None = None


@dataclass(slots=True)
class AdminRecord:
    """An administrator of the dashboard (``/admin``); a separate population from end users."""

    username: str
    password_hash: str
    created_at: int
    disabled: bool = False


@dataclass(slots=True)
class AdminEvent:
    """One entry of the append-only administrative audit log: who did what to which record, and why.

    ``seq`` is assigned by the store (increasing); ``target`` names the record the event is about
    (``client:ID`` — grant events name their client —, ``admin:NAME``); ``details`` is a small JSON object.
    """

    at: int
    actor: str
    action: str
    target: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None


@dataclass(slots=True)
class ClientKeyRecord:
    """A public key a client registered (by value), identified by its RFC 7638 thumbprint.

    ``first_seen_at`` survives metadata updates that keep the key, so it is the key's age; ``removed_at`` is
    set when an update drops the key (and cleared if the key comes back).
    """

    client_id: str
    thumbprint: str
    kid: str
    first_seen_at: int
    removed_at: int | None = None


@dataclass(slots=True)
class AuthenticatorRecord:
    """A sign-in method besides the password, enrolled by one account (``population``: ``user`` or ``admin``).

    ``kind`` is ``passkey`` (a WebAuthn credential: ``credential_id`` and ``public_key`` base64url, the
    authenticator's ``sign_count``, ``transports``, the backup-eligible / backed-up flags that tell a synced
    passkey from a device-bound one, and whether it verified the user at registration) or ``totp`` (RFC 6238:
    ``secret`` is the base32 shared secret *sealed* like the server keys, ``last_step`` the newest time step
    accepted, so a code is never accepted twice).
    """

    authenticator_id: str
    population: str
    username: str
    kind: str
    created_at: int
    label: str = ""
    credential_id: str | None = None
    public_key: str | None = None
    sign_count: int = 0
    transports: tuple[str, ...] = ()
    backup_eligible: bool = False
    backup_state: bool = False
    user_verified: bool = False
    secret: str | None = None
    last_step: int | None = None
    last_used_at: int | None = None


@dataclass(frozen=True, slots=True)
class GrantUse:
    """A grant a user gave and when a token was last issued under it (``None``: never)."""

    grant: GrantRecord
    last_used_at: int | None


class EphemeralStore(Protocol):
    async def put(self, namespace: str, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` under ``key``, replacing any previous value, for ``ttl`` seconds."""

    async def get(self, namespace: str, key: str) -> bytes | None:
        """Read without consuming; ``None`` when absent or expired."""

    async def take(self, namespace: str, key: str) -> bytes | None:
        """Atomically read and delete; exactly one of any number of concurrent callers gets the value."""

    async def add_once(self, namespace: str, key: str, ttl: int) -> bool:
        """Record ``key`` if absent and unexpired; ``True`` for the first caller, ``False`` for a replay."""

    async def incr(self, namespace: str, key: str, ttl: int, *, by: int = 1) -> int:
        """Atomically add ``by`` to the counter under ``key`` and return the new count; an absent or expired
        counter starts from zero and lives ``ttl`` seconds from then (later increments do not extend it: a
        fixed window). Of ``n`` concurrent increments by one of a fresh counter, each caller sees a distinct
        count from 1 to ``n``. ``get`` reads a counter as its decimal ASCII digits; a key must hold either a
        counter or a value, never both."""

    async def delete(self, namespace: str, key: str) -> None: ...

    async def take_and_mark(self, namespace: str, key: str, mark: str, value: bytes, ttl: int) -> bytes | None:
        """``take`` and, when it got the record, ``put(mark, key, value, ttl)`` in the same atomic step: no
        reader ever finds the record gone without its mark (a used authorization code and what it issued,
        RFC 6749 §4.1.2). ``None``: the record was absent or expired (nothing is marked)."""


class StoreTransaction(Protocol):
    """Durable writes that commit together or not at all (``Store.transaction``): one ``BEGIN`` .. ``COMMIT``.

    An exception leaving the ``async with`` block rolls every write back. Inside the block await nothing but
    these methods (on SQLite the transaction holds the database write lock)."""

    async def create_grant(self, record: GrantRecord) -> None:
        """``GrantStore.create``: raises ``AlreadyExists`` when the id is taken."""

    async def create_token(self, record: TokenRecord) -> None:
        """``TokenStore.create``: raises ``AlreadyExists`` when the digest is taken."""

    async def rotate_token(self, old_hash: str, new: TokenRecord, now: int) -> bool:
        """``TokenStore.rotate``: ``False`` (and nothing written by it) when ``old_hash`` was already used."""

    async def touch_client(self, client_id: str, now: int) -> None:
        """``ClientStore.touch`` (the client's ``last_used_at``), with the rest: no commit of its own."""


class ChangeFeed(Protocol):
    """Which clients other processes and nodes changed, told as their transactions commit (PostgreSQL
    ``LISTEN/NOTIFY``), so a cache can skip re-reading a client's version on every lookup.

    ``start`` (once, in the event loop that will use it) calls ``on_live(True)`` when it begins listening and
    ``on_live(False)`` whenever it may have missed a change (connection lost, not yet listening): a cache
    must then check every entry against the store again, and drop what it holds when told ``True`` again.
    ``on_change(client_id)`` names a changed client, or ``""`` for "any client".
    """

    def start(self, on_change: Callable[[str], None], on_live: Callable[[bool], None]) -> None: ...

    async def close(self) -> None: ...


class ClientStore(Protocol):
    """Clients. ``updated_at`` doubles as the record's version: every change of its metadata, keys or
    secret stores a larger ``updated_at`` than the one it replaces (the writers see to it), so that
    ``(updated_at, disabled_at)`` — what ``state`` reads — changes whenever anything a cached copy holds does.
    """

    # tells of changes committed elsewhere as they happen; ``None``: none (a cache reads ``state`` instead)
    changes: ChangeFeed | None

    async def get(self, client_id: str) -> ClientRecord | None: ...

    async def state(self, client_id: str) -> tuple[int, int | None] | None:
        """``(updated_at, disabled_at)``, or ``None`` for an unknown client: the cheapest read that tells a
        cache whether its parsed copy of the client is still current and whether the client is disabled."""

    async def standing(self, client_id: str, subject: str | None) -> tuple[int, int | None, bool] | None:
        """``state`` and whether the user account ``subject`` exists and is disabled (``False`` for ``None``
        or no such account), in one read: what issuing a code or tokens re-checks (``protocol.standing``)."""

    async def create(self, record: ClientRecord) -> None:
        """Insert; raises ``AlreadyExists`` when the id is taken."""

    async def update(self, record: ClientRecord) -> None:
        """Replace an existing record; updating a missing client does nothing (it may have been deleted).

        A caller that changes the client raises ``record.updated_at`` above the stored value (the version)."""

    async def delete(self, client_id: str) -> bool: ...

    async def list(self) -> list[ClientRecord]: ...

    async def count(self) -> int: ...

    async def touch(self, client_id: str, now: int) -> None:
        """Record that the client was used (``last_used_at``)."""

    async def replace_registration(self, record: ClientRecord, expected_token_hash: str) -> bool:
        """Atomically store ``record``'s metadata, ``updated_at``, ``secret_hash`` and
        ``registration_token_hash``, only while the stored registration token hash is still
        ``expected_token_hash`` and the client is not disabled (RFC 7592: each registration access token is
        used once; a concurrent offboarding is never undone). ``False`` when nothing was changed.
        """

    async def disable(self, client_id: str, *, at: int, reason: str, by: str) -> bool:
        """Mark the client disabled (``disabled_at``/``_reason``/``_by``); ``False`` if missing or already so."""


class UserStore(Protocol):
    async def get(self, username: str) -> UserRecord | None: ...

    async def create(self, record: UserRecord) -> None: ...

    async def update(self, record: UserRecord) -> None: ...

    async def list(self) -> list[UserRecord]: ...


class KeyStore(Protocol):
    async def list(self) -> list[ServerKeyRecord]: ...

    async def add(self, record: ServerKeyRecord) -> None: ...

    async def update(self, record: ServerKeyRecord) -> None: ...


class TokenStore(Protocol):
    async def create(self, record: TokenRecord) -> None: ...

    async def get(self, token_hash: str) -> TokenRecord | None: ...

    async def revoke(self, token_hash: str, now: int) -> bool: ...

    async def revoke_grant(self, grant_id: str, now: int) -> int:
        """Revoke every token issued under ``grant_id``; returns how many were revoked."""

    async def revoke_client(self, client_id: str, now: int) -> int: ...

    async def rotate(self, old_hash: str, new: TokenRecord, now: int) -> bool:
        """Atomically retire refresh token ``old_hash`` and store ``new``; ``False`` if already used."""

    async def list_for_client(self, client_id: str, *, active_at: int | None = None) -> list[TokenRecord]: ...

    async def active_counts(self, active_at: int) -> dict[str, int]:
        """``client_id`` -> number of unrevoked tokens unexpired at ``active_at`` (one query: the inventory)."""


class GrantStore(Protocol):
    async def create(self, record: GrantRecord) -> None: ...

    async def get(self, grant_id: str) -> GrantRecord | None: ...

    async def revoke(self, grant_id: str, now: int, reason: str | None = None) -> bool: ...

    async def list_for_client(self, client_id: str) -> list[GrantRecord]: ...

    async def active_counts(self) -> dict[str, int]:
        """``client_id`` -> number of unrevoked grants (one query: the inventory)."""


class AdminStore(Protocol):
    """Dashboard administrators (passwords hashed with Argon2id by ``server/admin/accounts.py``)."""

    async def get(self, username: str) -> AdminRecord | None: ...

    async def create(self, record: AdminRecord) -> None:
        """Insert; raises ``AlreadyExists`` when the name is taken."""

    async def update(self, record: AdminRecord) -> None: ...

    async def list(self) -> list[AdminRecord]: ...


class AuditLog(Protocol):
    """Append-only: there is no update and no delete."""

    async def append(self, event: AdminEvent) -> None: ...

    async def list(self, *, target: str | None = None, limit: int = 100) -> list[AdminEvent]:
        """The newest events first, optionally only those about ``target``."""


class ClientKeyHistory(Protocol):
    """When each key a client registered was first seen and removed (``Store.client_key_history``): key ages
    for the inventory. The keys themselves are the client's metadata (``jwks``), resolved for verification by
    ``protocol.context.ClientKeys`` (``Environment.client_keys``); the SQL table keeps its first name,
    ``client_keys``."""

    async def observe(self, client_id: str, keys: Sequence[tuple[str, str]], now: int) -> None:
        """Record the client's current keys, as ``(thumbprint, kid)`` pairs: new ones are first seen at
        ``now``, known ones keep their time, and keys no longer present are marked removed."""

    async def list_for_client(self, client_id: str) -> list[ClientKeyRecord]: ...

    async def list_all(self) -> list[ClientKeyRecord]:
        """Every client's key records, ordered by client then first seen (one query: the inventory)."""


class AccountStore(Protocol):
    """What an account holds beside its password: its authenticators, and the grants its user gave."""

    async def add(self, record: AuthenticatorRecord) -> None:
        """Insert; raises ``AlreadyExists`` when the id (or a passkey's credential id) is taken."""

    async def get(self, authenticator_id: str) -> AuthenticatorRecord | None: ...

    async def by_credential(self, credential_id: str) -> AuthenticatorRecord | None:
        """The passkey with this WebAuthn credential id."""

    async def list_for(self, population: str, username: str) -> list[AuthenticatorRecord]:
        """The account's authenticators, oldest first."""

    async def remove(self, population: str, username: str, authenticator_id: str) -> bool:
        """Delete one of the account's authenticators; ``False`` when it has none with that id."""

    async def use_passkey(self, authenticator_id: str, sign_count: int, backup_state: bool, now: int) -> bool:
        """Record a verified assertion, atomically refusing a signature counter that did not grow (WebAuthn
        §6.1.1: a clone; both zero means the authenticator keeps no counter). ``False``: refused."""

    async def use_totp_step(self, authenticator_id: str, step: int, now: int) -> bool:
        """Accept time step ``step`` of a TOTP authenticator once: an atomic compare-and-set that succeeds only
        when ``step`` is newer than the last accepted one (RFC 6238 §5.2: a code is used once). ``False``:
        this or a later step was already used (a replay, or a concurrent submission of the same code)."""

    async def grants_of(self, subject: str) -> list[GrantUse]:
        """Every unrevoked grant ``subject`` gave, newest first, with when a token was last issued under it."""


GENESIS_HASH = "0" * 64  # the "previous hash" of the first flow record


@dataclass(frozen=True, slots=True)
class FlowEntry:
    """A flow record on its way into the chain: the columns it is found by, and its payload.

    The store assigns ``seq`` and asks the caller's ``Seal`` for the record's canonical body and hash, so the
    hashing rules live in ``jarmor.governance.records`` and the store only runs them inside its append
    transaction (where the previous hash is known).
    """

    at: int
    flow_id: str
    stage: str
    outcome: str
    client_id: str | None
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FlowRecordRow:
    """A chained flow record as stored. ``hash`` covers ``prev_hash`` and ``body`` (which holds ``seq``)."""

    seq: int
    at: int
    flow_id: str
    stage: str
    outcome: str
    client_id: str | None
    body: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class FlowCheckpoint:
    """A signed statement that the chain had record ``seq`` with ``hash`` at time ``at`` (``jws``: a JWS over
    exactly these three values by a server signing key). By the hash chain, it vouches for every record up to
    ``seq``."""

    seq: int
    hash: str
    at: int
    jws: str


# (seq, previous hash, entry) -> (canonical body, hash)
Seal = Callable[[int, str, FlowEntry], tuple[str, str]]


class FlowRecordStore(Protocol):
    """Append-only, hash-chained flow integrity records: there is no update and no delete."""

    async def append(self, entries: Sequence[FlowEntry], seal: Seal) -> int:
        """Chain ``entries`` after the current head in one transaction that holds the head locked, so that of
        any number of concurrent appenders (tasks, processes, nodes) each batch gets consecutive ``seq``
        values and links to the batch committed before it. Returns the last ``seq`` (0 for no entries)."""

    async def head(self) -> tuple[int, str]:
        """``seq`` and hash of the last appended record, as the chain head records them (``(0, GENESIS_HASH)``
        when nothing was ever appended)."""

    async def scan(self, *, after_seq: int = 0, since: int | None = None, limit: int = 1000) -> list[FlowRecordRow]:
        """Records with ``seq > after_seq`` (and ``at >= since``) in chain order, at most ``limit``."""

    async def for_flows(
        self, *, since: int | None = None, client_id: str | None = None, limit: int = 1000
    ) -> list[FlowRecordRow]:
        """Every record of the ``limit`` most recently active flows that have a record at or after ``since``
        (and, when given, a record naming ``client_id``), in chain order."""

    async def of_flow(self, flow_id: str) -> list[FlowRecordRow]:
        """Every record of one flow, in chain order."""

    async def last_seen(self) -> dict[str, int]:
        """``client_id`` -> time of the newest flow record naming it."""

    async def add_checkpoint(self, checkpoint: FlowCheckpoint) -> None:
        """Keep a signed checkpoint of the chain head (a second one for the same ``seq`` is ignored)."""

    async def checkpoints(self, *, after_seq: int = 0, limit: int = 1000) -> list[FlowCheckpoint]:
        """Checkpoints with ``seq > after_seq`` in ``seq`` order, at most ``limit``."""

    async def last_checkpoint(self) -> FlowCheckpoint | None:
        """The checkpoint with the highest ``seq``."""

    async def archive_through(self, seq: int) -> int:
        """Retention, the one removal: delete the records up to ``seq`` and the checkpoints before it (the
        checkpoint *at* ``seq`` stays: it is where the remaining chain starts, ``governance/archive.py``).
        Returns how many records were removed. Only ``jarmor flows archive`` calls it, after writing them out."""


class Store(Protocol):
    """Everything the server needs, behind one object (members are read-only)."""

    @property
    def ephemeral(self) -> EphemeralStore: ...

    @property
    def clients(self) -> ClientStore: ...

    @property
    def users(self) -> UserStore: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def grants(self) -> GrantStore: ...

    @property
    def admins(self) -> AdminStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def client_key_history(self) -> ClientKeyHistory: ...

    @property
    def flows(self) -> FlowRecordStore: ...

    @property
    def accounts(self) -> AccountStore: ...

    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """Durable writes in one transaction (``StoreTransaction``): committed when the block ends normally."""

    async def health(self) -> dict[str, str | None]:
        """Each backing service this store depends on (``database``, ``schema``, ``redis``) mapped to
        ``None`` when it answers as it should, or to a one-line description of what is wrong. One cheap
        round trip per service: readiness probes call it every second."""

    async def close(self) -> None: ...
