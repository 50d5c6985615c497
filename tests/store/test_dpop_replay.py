"""DPoP ``jti`` replay marks (RFC 9449 §11.1) on every store kind: of concurrent uses of one proof exactly one
passes; the mark is per key and stores only a digest."""

from __future__ import annotations

import asyncio

import pytest

from jarmor.protocol.dpop import DPoPError, DPoPProof
from jarmor.protocol.dpop_replay import NAMESPACE, claim_jti, jti_key, replay_ttl
from jarmor.store import Store


def _proof(jkt: str = "k1", jti: str = "j1") -> DPoPProof:
    return DPoPProof(jkt=jkt, jti=jti, iat=0, htm="POST", htu="https://as.example/token", nonce=None,
                     alg="ES256", ath=None)


async def _try(store: Store, proof: DPoPProof) -> bool:
    try:
        await claim_jti(store.ephemeral, proof)
    except DPoPError as exc:
        assert exc.error == "invalid_dpop_proof"
        return False
    return True


async def test_one_of_50_concurrent_uses_passes(store: Store) -> None:
    results = await asyncio.gather(*(_try(store, _proof()) for _ in range(50)))
    assert results.count(True) == 1
    assert await _try(store, _proof(jkt="k2"))  # scoped by the key's thumbprint
    assert not await _try(store, _proof())


async def test_only_a_digest_is_stored(store: Store) -> None:
    await claim_jti(store.ephemeral, _proof(jti="secret-jti"))
    key = jti_key(_proof(jti="secret-jti"))
    assert "secret-jti" not in key and len(key) == 64
    assert await store.ephemeral.get(NAMESPACE, key) is not None


def test_ttl_covers_the_acceptance_window() -> None:
    assert replay_ttl(300, 60) == 361


@pytest.mark.parametrize("n", [2])
async def test_separate_proofs_pass(store: Store, n: int) -> None:
    assert all([await _try(store, _proof(jti=f"j{i}")) for i in range(n)])
