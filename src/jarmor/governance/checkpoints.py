"""Signed checkpoints of the flow record chain: a rewrite of the whole chain fails ``flows verify`` with no
anchor kept outside the database.

The hash chain (``records``) shows any edit, deletion or reordering *relative to the chain head*; a writer who
rewrites every record and the head produces a chain that verifies. A checkpoint closes that gap: every
``flow_checkpoint_every`` records or ``flow_checkpoint_interval`` seconds, a server signs the current head
(``seq``, ``hash``, time) with one of its own signing keys — a JWS of type ``jarmor-checkpoint+jwt`` — and keeps
it beside the chain. Because each record's hash covers every record before it, a checkpoint vouches for the
whole prefix up to its ``seq``. Verification (``CheckpointCheck``) then requires that

* every checkpoint's signature verifies with a server key from the key store, and its signed ``seq`` and
  ``hash`` are the stored record's (``checkpoint`` problems otherwise);
* no record older than ``grace`` seconds lies beyond the last valid checkpoint (``unsigned``): servers sign
  at least every interval, so an old unsigned tail means checkpoints were deleted or the chain rewritten.

What stays out of reach: a writer who also holds a server signing key (or the key-encryption key and the
database, which amounts to the same), and the newest records written since the last checkpoint (at most one
interval's worth). Keep ``jarmor flows export`` or an anchor for those.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..jose import JoseError, Jwk, JwkSet, sign_jws, verify_jws
from ..store.base import FlowCheckpoint, FlowRecordStore

log = logging.getLogger("jarmor.flows")

CHECKPOINT_TYP = "jarmor-checkpoint+jwt"
# The algorithms a checkpoint may be signed with: the server's asymmetric signing algorithms.
CHECKPOINT_ALGS = ("ES256", "EdDSA", "Ed25519", "PS256", "RS256", "ES384", "ES512", "PS384", "PS512")
_PREFERRED = ("ES256", "EdDSA", "PS256")


def sign_checkpoint(seq: int, digest: str, at: int, key: Jwk, alg: str) -> FlowCheckpoint:
    claims = {"seq": seq, "hash": digest, "iat": at}
    return FlowCheckpoint(seq, digest, at, sign_jws(claims, key, alg, typ=CHECKPOINT_TYP))


def preferred_alg(available: Iterable[str]) -> str | None:
    have = set(available)
    return next((a for a in (*_PREFERRED, *CHECKPOINT_ALGS) if a in have), None)


class Checkpointer:
    """Signs the chain head after the recorder writes, when ``every`` records or ``interval`` seconds have
    passed since the last checkpoint (this process's or another node's). Never raises: a failed checkpoint
    is logged and tried again after the next batch."""

    def __init__(
        self,
        store: FlowRecordStore,
        signer: Callable[[], tuple[Jwk, str] | None],
        *,
        every: int,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._signer = signer
        self.every = every
        self.interval = interval
        self._clock = clock
        self._last: tuple[int, float] | None = None  # (seq, at) of the newest checkpoint known here

    async def after_write(self) -> None:
        try:
            await self.maybe_checkpoint()
        except Exception:  # a checkpoint must never disturb recording
            log.exception("flow checkpoint: signing the chain head failed")

    async def maybe_checkpoint(self, *, force: bool = False) -> FlowCheckpoint | None:
        now = self._clock()
        if self._last is None:
            last = await self._store.last_checkpoint()
            self._last = (last.seq, float(last.at)) if last else (0, float("-inf"))
        seq, digest = await self._store.head()
        last_seq, last_at = self._last
        due = seq > last_seq and (force or seq - last_seq >= self.every or now - last_at >= self.interval)
        if not due:
            return None
        signer = self._signer()
        if signer is None:
            return None
        key, alg = signer
        checkpoint = sign_checkpoint(seq, digest, int(now), key, alg)
        await self._store.add_checkpoint(checkpoint)
        self._last = (seq, now)
        return checkpoint


@dataclass(slots=True)
class CheckpointCheck:
    """What ``ChainVerifier`` needs to check checkpoints: the public server keys and the tolerated unsigned
    tail age. ``checkpoints`` maps ``seq`` to the stored checkpoint (loaded by ``chain.verify``)."""

    keys: JwkSet
    grace: float
    now: float = field(default_factory=time.time)
    checkpoints: dict[int, FlowCheckpoint] = field(default_factory=dict)
    valid: set[int] = field(default_factory=set)

    def signature_problem(self, cp: FlowCheckpoint) -> str | None:
        try:
            verified = verify_jws(cp.jws, self.keys, algorithms=CHECKPOINT_ALGS, typ=(CHECKPOINT_TYP,),
                                  typ_required=True)
        except JoseError as exc:
            return f"the signature does not verify with any server key ({exc.reason})"
        claims: Mapping[str, Any] = verified.claims
        if (claims.get("seq"), claims.get("hash"), claims.get("iat")) != (cp.seq, cp.hash, cp.at):
            return "the signed values differ from the stored checkpoint"
        return None

    async def load(self, store: FlowRecordStore) -> None:
        async for cp in stored_checkpoints(store):
            self.checkpoints[cp.seq] = cp


async def stored_checkpoints(store: FlowRecordStore, page: int = 5000) -> AsyncIterator[FlowCheckpoint]:
    """Every stored checkpoint in ``seq`` order, a page at a time."""
    after = 0
    while True:
        batch = await store.checkpoints(after_seq=after, limit=page)
        for cp in batch:
            yield cp
        if len(batch) < page:
            return
        after = batch[-1].seq
