"""The server's keys: generated on first start, persisted in the key store, published in the JWKS, rotated.

Signing keys are one per algorithm (RFC 8725 §3.1: one key, one algorithm). All lifecycle state lives in the
key store (``state``, ``active_at``, ``retired_at``), so several workers or nodes converge on the same view
by reloading it (``load_keyring``, at least every ``key_refresh_interval`` seconds); a ``Keyring`` is an
immutable snapshot of that state at one instant.

Rotation (``rotate_keys``, ``jarmor keys rotate``) never breaks a running flow:

* the new key is written with ``active_at = now + publish_delay`` (default two refresh intervals plus the
  JWKS ``max-age``): every process has loaded it, and every relying party's cached JWKS has expired, before
  anything is signed with it — *publish, then sign*. Encryption keys and the interaction secret follow the
  mirror rule — *load everywhere, then publish/use* — so no process ever meets a key it has not loaded;
* the replaced key is marked ``retiring`` with ``retired_at = new active_at + hold``, where ``hold`` is one
  refresh interval (a lagging process may sign with it that much longer) plus the lifetime of what it
  protects: the longest-lived JWT the server signs (JARM, ID token) plus clock skew for signing keys; the
  time clients may keep encrypting to a replaced encryption key (``key_encryption_grace``, for clients
  caching the JWKS) plus the longest request-object lifetime for encryption keys; the interaction lifetime
  for the secret. Until then it still verifies (published) or decrypts;
* ``sweep_keys`` (run by every server on each keyring refresh, and by ``jarmor keys list``) moves due keys to
  ``retired``; retired keys leave the JWKS and the keyring. ``retire_key`` forces that early, refusing while
  the key may still be needed unless ``force`` (an emergency: a compromised key).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace

import orjson

from ..jose import JoseError, Jwk, JwkSet, generate_jwk, import_jwk
from ..protocol.context import Settings
from ..protocol.policy import Policy
from ..store.base import EphemeralStore, KeyStore, ServerKeyRecord
from .keyprotect import KeyProtectionError, KeyProtector

log = logging.getLogger("jarmor.keys")

# One key per algorithm, Ed25519 included: a key published as "EdDSA" must not sign "Ed25519" (RFC 9864)
DEFAULT_SIGNING_ALGS = ("ES256", "PS256", "RS256", "EdDSA", "Ed25519")
DEFAULT_ENCRYPTION_ALGS = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW", "RSA-OAEP-256")
_ALG_ORDER = {alg: i for i, alg in enumerate(DEFAULT_SIGNING_ALGS + DEFAULT_ENCRYPTION_ALGS)}


def _publication_order(record: ServerKeyRecord, role: str) -> tuple[int, int, int, str]:
    """The JWKS lists signing keys, then encryption keys, each in algorithm preference order, the current key
    of an algorithm before its successor and predecessor. Clients that pick "the first EC ``enc`` key" without
    looking at its ``alg`` (as some do) then get the plain ECDH-ES key, not an ECDH-ES+A*KW one."""
    return (
        0 if record.use == "sig" else 1,
        _ALG_ORDER.get(record.alg, len(_ALG_ORDER)),
        0 if role == "current" else 1,
        record.kid,
    )
SECRET_ALG = "secret"  # symmetric secrets (CSRF/cookie MACs); never published
USES = ("sig", "enc", "secret")


class KeyLifecycleError(Exception):
    """A key operation was refused (unknown kid, unsafe retirement, rotation already under way ...)."""


@dataclass(frozen=True, slots=True)
class LoadedKey:
    record: ServerKeyRecord
    jwk: Jwk | None
    secret: bytes | None = None


@dataclass(frozen=True, slots=True)
class KeyTimings:
    """Seconds that drive rotation; derived from ``Settings`` and the tiers (see the module docstring)."""

    refresh_interval: int = 30
    jwks_max_age: int = 60
    publish_delay: int = 120
    signed_lifetime: int = 310
    encryption_lifetime: int = 7210
    secret_lifetime: int = 610

    @classmethod
    def from_settings(cls, settings: Settings, policy: Policy | None = None) -> KeyTimings:
        skew = settings.future_skew
        tiers = (policy or Policy()).tiers.values()
        max_request_object = max((t.request_object_max_lifetime for t in tiers), default=3600)
        refresh = settings.key_refresh_interval
        delay = settings.key_publish_delay
        return cls(
            refresh_interval=refresh,
            jwks_max_age=settings.jwks_max_age,
            publish_delay=2 * refresh + settings.jwks_max_age if delay is None else delay,
            signed_lifetime=max(settings.jarm_lifetime, settings.id_token_lifetime) + skew,
            encryption_lifetime=settings.key_encryption_grace + max_request_object + skew,
            secret_lifetime=settings.interaction_lifetime + skew,
        )

    def hold(self, use: str) -> int:
        """How long a replaced key of ``use`` is kept after its successor's ``active_at``."""
        lifetime = {
            "sig": self.signed_lifetime,
            "enc": self.encryption_lifetime,
            "secret": self.secret_lifetime,
        }
        return self.refresh_interval + lifetime.get(use, max(lifetime.values()))


def is_live(rec: ServerKeyRecord, now: float) -> bool:
    """Not retired, and not past a planned retirement (even if no sweep has recorded it yet)."""
    return rec.state != "retired" and not (rec.retired_at is not None and rec.retired_at <= now)


def current_keys(records: Iterable[ServerKeyRecord], now: float) -> dict[tuple[str, str], ServerKeyRecord]:
    """Per (use, alg): the live key with the latest ``active_at`` not after ``now`` — the one in use."""
    best: dict[tuple[str, str], ServerKeyRecord] = {}
    for rec in records:
        if not is_live(rec, now) or rec.state not in ("active", "retiring") or rec.active_at > now:
            continue
        group = (rec.use, rec.alg)
        held = best.get(group)
        if held is None or (rec.active_at, rec.created_at, rec.kid) > (
            held.active_at,
            held.created_at,
            held.kid,
        ):
            best[group] = rec
    return best


@dataclass(frozen=True, slots=True)
class KeyStatus:
    record: ServerKeyRecord
    role: str  # "current" | "next" | "previous" | "retired"
    published: bool

    @property
    def kid(self) -> str:
        return self.record.kid


def describe_keys(records: Iterable[ServerKeyRecord], now: float) -> list[KeyStatus]:
    """Each key's role at ``now`` and whether the JWKS publishes it."""
    recs = list(records)
    current = {r.kid for r in current_keys(recs, now).values()}
    out = []
    for rec in recs:
        if not is_live(rec, now):
            role = "retired"
        elif rec.kid in current:
            role = "current"
        elif rec.active_at > now:
            role = "next"
        else:
            role = "previous"
        out.append(KeyStatus(rec, role, _published(rec, role)))
    return out


def _published(rec: ServerKeyRecord, role: str) -> bool:
    if role == "retired" or rec.use == "secret":
        return False
    if rec.use == "enc":
        return role == "current"  # load everywhere before publishing; stop publishing once replaced
    return True  # signing keys: published before use and until what they signed has expired


class Keyring:
    """An immutable view of the key store at one moment; the server swaps in a new one after rotation.

    Signs with the current key of each algorithm; publishes every live signing key and the current
    encryption keys; decrypts with every live encryption key (including one not yet published, and one
    replaced but still within its hold).
    """

    def __init__(self, keys: Iterable[LoadedKey], *, now: float | None = None) -> None:
        self._now = int(now if now is not None else time.time())
        self._keys = [k for k in keys if is_live(k.record, self._now)]
        statuses = {s.kid: s for s in describe_keys((k.record for k in self._keys), self._now)}
        self._signing: dict[str, Jwk] = {}
        for k in self._keys:
            if k.jwk is not None and k.record.use == "sig" and statuses[k.record.kid].role == "current":
                self._signing[k.record.alg] = k.jwk
        self._decryption = JwkSet(
            tuple(k.jwk for k in self._keys if k.jwk is not None and k.record.use == "enc")
        )
        published = [
            k.jwk.public_dict()
            for k in sorted(self._keys, key=lambda k: _publication_order(k.record, statuses[k.record.kid].role))
            if k.jwk is not None and statuses[k.record.kid].published
        ]
        self._public: dict[str, object] = {"keys": published}
        ordered = sorted(
            (k for k in self._keys if k.secret is not None),
            key=lambda k: (statuses[k.record.kid].role == "current", k.record.active_at),
            reverse=True,
        )
        self._secrets = tuple(k.secret for k in ordered if k.secret is not None)
        self._secret = next(
            (k.secret for k in ordered if statuses[k.record.kid].role == "current"),
            self._secrets[-1] if self._secrets else None,
        )

    @property
    def now(self) -> int:
        return self._now

    def signing_key(self, alg: str) -> Jwk:
        try:
            return self._signing[alg]
        except KeyError:
            raise LookupError(f"no active server key for {alg}") from None

    def signing_algs(self) -> tuple[str, ...]:
        return tuple(self._signing)

    def decryption_keys(self) -> JwkSet:
        return self._decryption

    def public_jwks(self) -> dict[str, object]:
        return self._public

    def secret(self) -> bytes:
        """The secret to MAC with now."""
        if self._secret is None:
            raise LookupError("no server secret")
        return self._secret

    def secrets(self) -> tuple[bytes, ...]:
        """Every secret a MAC may still have been made with (current first)."""
        return self._secrets

    def records(self) -> list[ServerKeyRecord]:
        return [k.record for k in self._keys]

    def loaded(self) -> tuple[LoadedKey, ...]:
        return tuple(self._keys)


def _new_record(
    alg: str, protector: KeyProtector, now: int, *, active_at: int | None = None
) -> ServerKeyRecord:
    if alg == SECRET_ALG:
        material = orjson.dumps({"kty": "oct", "k": secrets.token_urlsafe(32)}).decode()
        kid, use = "secret-" + secrets.token_hex(8), "secret"
    else:
        jwk = generate_jwk(alg)
        material = orjson.dumps(jwk.private_dict()).decode()
        kid, use = jwk.kid, str(jwk.use)
    return ServerKeyRecord(
        kid=kid,
        alg=alg,
        use=use,
        private_jwk=protector.seal(material),
        created_at=now,
        active_at=now if active_at is None else active_at,
    )


def load_key(record: ServerKeyRecord, protector: KeyProtector) -> LoadedKey:
    material = orjson.loads(protector.open(record.private_jwk))
    if record.alg == SECRET_ALG:
        from ..jose import b64url_decode

        return LoadedKey(record, None, b64url_decode(material["k"]))
    jwk = import_jwk(material, allow_private=True, created_at=record.created_at)
    return LoadedKey(record, jwk)


# The first start on a fresh database: one process generates the keys while every other one waits for them.
BOOTSTRAP_NAMESPACE = "key-bootstrap"
BOOTSTRAP_LOCK_TTL = 30  # a holder that dies mid-bootstrap frees the lock after this many seconds
BOOTSTRAP_POLL = 0.1


def _missing(records: Iterable[ServerKeyRecord], algs: Iterable[str], now: int) -> list[str]:
    have = {alg for (_use, alg) in current_keys(records, now)}  # a key usable now, not only a successor
    return [alg for alg in (*algs, SECRET_ALG) if alg not in have]


async def ensure_keys(
    store: KeyStore,
    protector: KeyProtector,
    *,
    algs: Iterable[str] = DEFAULT_SIGNING_ALGS + DEFAULT_ENCRYPTION_ALGS,
    now: int | None = None,
    lock: EphemeralStore | None = None,
    wait: float = BOOTSTRAP_LOCK_TTL + 30,
) -> list[ServerKeyRecord]:
    """Generate any missing key (first start); return the full list. Safe to call on every start.

    ``lock``: the store shared by every worker and node (the ephemeral store: the database's table, or
    Redis). Generation happens only while holding its ``add_once`` mark, so of several processes started
    together on a fresh database exactly one generates the key set and the others wait for it (up to
    ``wait`` seconds) instead of each adding a key set of its own. Without ``lock`` (one process, tests)
    keys are generated directly.
    """
    algs = tuple(algs)
    now = int(now if now is not None else time.time())
    records = await store.list()
    if not _missing(records, algs, now):
        return records
    if lock is None:
        await _generate(store, protector, _missing(records, algs, now), now)
        return await store.list()
    deadline = time.monotonic() + wait
    while True:
        if await lock.add_once(BOOTSTRAP_NAMESPACE, "lock", BOOTSTRAP_LOCK_TTL):
            try:
                missing = _missing(await store.list(), algs, now)  # a previous holder may have finished
                await _generate(store, protector, missing, now)
            finally:
                await lock.delete(BOOTSTRAP_NAMESPACE, "lock")
            return await store.list()
        await asyncio.sleep(BOOTSTRAP_POLL)  # another process is generating: wait for its keys
        records = await store.list()
        if not _missing(records, algs, now):
            return records
        if time.monotonic() > deadline:
            raise KeyLifecycleError(
                "another process has been generating the server keys for too long; "
                "start again once it has finished (or once its lock expires)"
            )


async def _generate(store: KeyStore, protector: KeyProtector, algs: Iterable[str], now: int) -> None:
    for alg in algs:
        await store.add(_new_record(alg, protector, now))


async def load_keyring(
    store: KeyStore,
    protector: KeyProtector,
    *,
    now: float | None = None,
    cache: MutableMapping[str, LoadedKey] | None = None,
) -> Keyring:
    """A ``Keyring`` of the store's live keys at ``now``.

    ``cache`` (kid -> loaded key) spares re-importing private keys on every refresh: key material never
    changes under a kid, only its lifecycle fields, which are taken fresh from the store.
    """
    now = now if now is not None else time.time()
    loaded: list[LoadedKey] = []
    for rec in await store.list():
        if not is_live(rec, now):
            if cache is not None:
                cache.pop(rec.kid, None)
            continue
        hit = cache.get(rec.kid) if cache is not None else None
        if hit is not None and hit.record.private_jwk == rec.private_jwk:
            key = replace(hit, record=rec)
        else:
            key = load_key(rec, protector)
        if cache is not None:
            cache[rec.kid] = key
        loaded.append(key)
    return Keyring(loaded, now=now)


# --- lifecycle ---------------------------------------------------------------------------------------


def check_protector(records: Iterable[ServerKeyRecord], protector: KeyProtector, *, now: float) -> None:
    """Refuse to add keys the running servers could not open (another key-encryption key) or that would
    be stored in the clear beside sealed ones: every live key must open with ``protector``, which raises
    ``KeyProtectionError`` naming the problem (no key set, or the wrong one).
    """
    for rec in records:
        if is_live(rec, now):
            protector.open(rec.private_jwk)


@dataclass(frozen=True, slots=True)
class Rotation:
    alg: str
    new: ServerKeyRecord
    replaced: tuple[ServerKeyRecord, ...]


async def seal_keys(store: KeyStore, protector: KeyProtector) -> list[str]:
    """Seal every stored key with the current key-encryption key (keys in the clear, or sealed with a
    previous one); returns the kids re-sealed. Refuses without a key-encryption key."""
    if not protector.enabled:
        raise KeyProtectionError("set JARMOR_KEY_ENCRYPTION_KEY first: there is nothing to seal with")
    done = []
    for rec in await store.list():
        if protector.is_current(rec.private_jwk):
            continue
        material = protector.open(rec.private_jwk, allow_clear=True)
        await store.update(replace(rec, private_jwk=protector.seal(material)))
        done.append(rec.kid)
    return done


async def rotate_keys(
    store: KeyStore,
    protector: KeyProtector,
    timings: KeyTimings,
    *,
    algs: Sequence[str] | None = None,
    now: int | None = None,
) -> tuple[list[Rotation], list[str]]:
    """Start a rotation of each algorithm in ``algs`` (default: every algorithm in use).

    Returns the rotations started and notes on algorithms skipped because a rotation is already under way
    (a successor that is not active yet). Naming such an algorithm explicitly is an error.
    """
    now = int(now if now is not None else time.time())
    records = await store.list()
    check_protector(records, protector, now=now)
    live = [r for r in records if is_live(r, now)]
    explicit = algs is not None
    if algs is None:
        algs = list(
            dict.fromkeys(r.alg for r in sorted(live, key=lambda r: (USES.index(r.use), r.created_at)))
        )
    done: list[Rotation] = []
    notes: list[str] = []
    for alg in algs:
        pending = [r for r in live if r.alg == alg and r.state == "active" and r.active_at > now]
        if pending:
            note = (
                f"{alg}: a rotation is already under way (key {pending[0].kid} takes over at "
                f"{format_time(pending[0].active_at)})"
            )
            if explicit:
                raise KeyLifecycleError(note)
            notes.append(note)
            continue
        active_at = now + timings.publish_delay
        try:
            new = _new_record(alg, protector, now, active_at=active_at)
        except (JoseError, ValueError, KeyError) as exc:
            raise KeyLifecycleError(f"cannot generate a key for {alg!r}: {exc}") from exc
        await store.add(new)
        replaced = []
        for rec in live:
            if rec.alg == alg and rec.state == "active" and rec.active_at <= now:
                rec.state, rec.retired_at = "retiring", active_at + timings.hold(rec.use)
                await store.update(rec)
                replaced.append(rec)
        done.append(Rotation(alg, new, tuple(replaced)))
    return done, notes


async def sweep_keys(
    store: KeyStore, timings: KeyTimings, *, now: int | None = None
) -> list[ServerKeyRecord]:
    """Record due transitions: keys past ``retired_at`` become ``retired``; a key superseded without
    being marked (two concurrent rotations, an interrupted one) becomes ``retiring``. Idempotent, so every
    process may run it. Returns the changed records.
    """
    now = int(now if now is not None else time.time())
    records = await store.list()
    current = current_keys(records, now)
    changed = []
    for rec in records:
        if rec.state == "retired":
            continue
        cur = current.get((rec.use, rec.alg))
        if rec.retired_at is not None and rec.retired_at <= now:
            rec.state = "retired"
        elif rec.state == "active" and rec.active_at <= now and cur is not None and cur.kid != rec.kid:
            rec.state, rec.retired_at = "retiring", cur.active_at + timings.hold(rec.use)
        else:
            continue
        await store.update(rec)
        changed.append(rec)
        log.info("server key %s (%s) is now %s", rec.kid, rec.alg, rec.state)
    return changed


async def retire_key(
    store: KeyStore,
    protector: KeyProtector,
    timings: KeyTimings,
    kid: str,
    *,
    force: bool = False,
    now: int | None = None,
) -> list[str]:
    """Retire ``kid`` now. Without ``force`` only when nothing can still need it; returns what was done.

    With ``force`` on the key in use (a compromised key), its successor takes over at once — the pending
    one if a rotation is under way, else a new key — accepting that flows in progress may fail.
    """
    now = int(now if now is not None else time.time())
    records = await store.list()
    check_protector(records, protector, now=now)
    rec = next((r for r in records if r.kid == kid), None)
    if rec is None:
        raise KeyLifecycleError(f"no server key with kid {kid!r}")
    if not is_live(rec, now):
        if rec.state != "retired":
            rec.state = "retired"
            await store.update(rec)
        return [f"{kid} is already retired"]
    group = (rec.use, rec.alg)
    cur = current_keys(records, now).get(group)
    is_current = cur is not None and cur.kid == kid
    pending = sorted(
        (
            r
            for r in records
            if (r.use, r.alg) == group and is_live(r, now) and r.active_at > now and r.kid != kid
        ),
        key=lambda r: r.active_at,
    )
    done: list[str] = []
    if rec.active_at > now:
        # a successor never used: cancelling it is always safe; its predecessor stays in service
        rec.state, rec.retired_at = "retired", now
        await store.update(rec)
        done.append(f"{kid} ({rec.alg}) was not in use yet: rotation cancelled, key retired")
        if cur is not None and cur.state == "retiring" and not pending:
            cur.state, cur.retired_at = "active", None
            await store.update(cur)
            done.append(f"{cur.kid} stays in service")
        return done
    if not force:
        if is_current:
            raise KeyLifecycleError(
                f"{kid} is the {rec.alg} key in use; start a rotation first (jarmor keys rotate --alg "
                f"{rec.alg}) and retire it when that completes, or use --force in an emergency"
            )
        assert cur is not None
        safe_at = rec.retired_at if rec.retired_at is not None else cur.active_at + timings.hold(rec.use)
        if safe_at > now:
            raise KeyLifecycleError(
                f"{kid} may still be needed until {format_time(safe_at)} ({_needed_for(rec.use)}); "
                "it retires by itself then, or use --force"
            )
    rec.state, rec.retired_at = "retired", now
    await store.update(rec)
    done.append(f"{kid} ({rec.alg}) retired")
    if is_current:
        if pending:
            successor = pending[-1]
            successor.active_at = now
            await store.update(successor)
        else:
            successor = _new_record(rec.alg, protector, now)
            await store.add(successor)
        done.append(f"{successor.kid} ({rec.alg}) is in use from now (emergency replacement)")
    return done


def _needed_for(use: str) -> str:
    return {
        "sig": "tokens signed with it may still be valid",
        "enc": "clients may still encrypt request objects to it",
        "secret": "sign-in pages may still carry MACs made with it",
    }.get(use, "it may still be in use")


def format_time(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def key_table(statuses: Sequence[KeyStatus]) -> list[Mapping[str, object]]:
    return [
        {
            "kid": s.record.kid,
            "alg": s.record.alg,
            "use": s.record.use,
            "state": s.record.state,
            "role": s.role,
            "published": s.published,
            "created_at": s.record.created_at,
            "active_at": s.record.active_at,
            "retired_at": s.record.retired_at,
        }
        for s in statuses
    ]


async def public_signing_keys(store: KeyStore, protector: KeyProtector) -> JwkSet:
    """Every signing key the store holds, live or retired, as public keys: what verifies a signature the
    server made at any time (``jarmor flows verify`` checks signed chain checkpoints with it)."""
    keys = []
    for rec in await store.list():
        if rec.alg == SECRET_ALG or rec.use != "sig":
            continue
        loaded = load_key(rec, protector).jwk
        if loaded is not None:
            keys.append(import_jwk(loaded.public_dict(), allow_private=False, created_at=rec.created_at))
    return JwkSet(tuple(keys))
