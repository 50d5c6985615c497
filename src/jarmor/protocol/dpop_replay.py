"""DPoP ``jti`` replay protection in the shared short-lived store (RFC 9449 §11.1).

A proof's ``jti`` is marked single-use with the store's atomic ``add_once`` (memory, SQLite, PostgreSQL and
Redis all implement it atomically), so of any number of concurrent requests on any worker or node carrying
the same proof exactly one gets through. The mark is scoped by the proof key's thumbprint (two keys cannot
collide on a ``jti``; §11.1 allows "in the context of the target URI" or of the key) and only a SHA-256 digest
is stored ("store only a hash thereof"). It lives as long as the proof could still be accepted: a proof with
``iat`` up to ``future_skew`` ahead stays acceptable until ``iat + max_age``.
"""

from __future__ import annotations

import hashlib
from typing import Final

from ..store.base import EphemeralStore
from .dpop import DPoPError, DPoPProof

NAMESPACE: Final = "dpop-jti"


def replay_ttl(max_age: int, future_skew: int) -> int:
    """Seconds a ``jti`` mark must live: the whole span in which the same proof would pass the ``iat`` check."""
    return max_age + future_skew + 1


def jti_key(proof: DPoPProof) -> str:
    return hashlib.sha256(f"{proof.jkt}\x00{proof.jti}".encode()).hexdigest()


async def claim_jti(store: EphemeralStore, proof: DPoPProof, *, max_age: int = 300, future_skew: int = 60) -> None:
    """Mark the proof's ``jti`` used; ``DPoPError`` (``invalid_dpop_proof``) when it was used before."""
    if not await store.add_once(NAMESPACE, jti_key(proof), replay_ttl(max_age, future_skew)):
        raise DPoPError("the proof has already been used (jti)")
