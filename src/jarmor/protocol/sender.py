"""Sender-constrained tokens at the token and PAR endpoints (RFC 9449 §5, §8, §10; RFC 8705 §3; FAPI 2.0
§5.3.2.1) — the check behind the control ``sender_constrained_tokens``.

The HTTP adapter hands in what it saw (``Presented``: every ``DPoP`` header, the TLS client certificate's
thumbprint); these checks decide what the tokens are bound to:

* a valid DPoP proof (``protocol/dpop.py``) binds them to its key (``token_type`` ``DPoP``, ``cnf.jkt``);
* else a client certificate, for a client that registered ``tls_client_certificate_bound_access_tokens``,
  binds them to the certificate (``cnf["x5t#S256"]``, RFC 8705 §3);
* a client registered with ``dpop_bound_access_tokens`` must send a proof (RFC 9449 §5.2);
* a tier requiring ``sender_constrained_tokens`` refuses a request that binds to nothing;
* a grant already bound to a key (a code through ``dpop_jkt`` or a DPoP proof at PAR, §10; a public client's
  refresh token, §5) accepts only a proof of that key — checked *before* the code or refresh token is
  consumed, so a retry with the right key (or with the nonce a ``use_dpop_nonce`` answer supplied) works.

Proofs are checked against the effective tier's algorithms and, when the tier uses server nonces
(``Tier.dpop_nonce``), its nonce; ``jti`` is marked used in the shared store once every check passed.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import errors
from .binding import TokenBinding
from .clients import Client
from .context import Environment
from .dpop import USE_DPOP_NONCE, DPoPError, DPoPProof, NonceService, single_header, verify_proof
from .dpop_replay import claim_jti
from .mtls import check_certificate_binding
from .policy import ALL_SIGNING_ALGS, Control, Tier

EVIDENCE = "sender_constraint"  # the flow-record member (controls.REGISTRY reads and records it)


@dataclass(frozen=True, slots=True)
class Presented:
    """What the HTTP adapter saw: every ``DPoP`` header value (names compared case-insensitively), the
    base64url SHA-256 thumbprint of the verified TLS client certificate, if any (RFC 8705 §3.1), and the
    authority the request was addressed to (its ``Host``: the main endpoints' or the mTLS aliases', §5)."""

    dpop: tuple[str, ...] = ()
    client_certificate_thumbprint: str | None = None
    authority: str | None = None

    def url(self, env: Environment, endpoint: Literal["token", "par"]) -> str:
        """The URI of this request to ``endpoint`` (``token``, ``par``): a proof's ``htu`` must match it
        (RFC 9449 §4.3 check 9), at an alias too."""
        endpoints = env.endpoints_at(self.authority)
        return endpoints.token if endpoint == "token" else endpoints.par


@dataclass(frozen=True, slots=True)
class SenderCheck:
    """The outcome at the token endpoint: the binding for the tokens, and the next nonce to send."""

    binding: TokenBinding | None
    nonce: str | None = None


def nonce_service(env: Environment) -> NonceService:
    """Nonces MACed with the keyring's secret: valid on every node, rotating with the secret (§8)."""
    return NonceService(env.keys.secrets(), window=env.settings.dpop_nonce_window)


def dpop_signing_algs(env: Environment) -> list[str]:
    """RFC 9449 §5.1 ``dpop_signing_alg_values_supported``: the algorithms some tier allows (each request
    is held to its own effective tier's list)."""
    allowed = {a for tier in env.policy.tiers.values() for a in tier.signing_algs}
    return [a for a in ALL_SIGNING_ALGS if a in allowed]


def verify_presented_proof(
    env: Environment, presented: Presented, *, url: str, tier: Tier, now: int
) -> DPoPProof | None:
    """RFC 9449 §4.3 checks 1-11 under ``tier`` (its algorithms; its nonce rule, §8). None without a proof.
    A ``use_dpop_nonce`` refusal carries the nonce to send back."""
    value = single_header(presented.dpop)
    if value is None:
        return None
    nonces = nonce_service(env) if tier.dpop_nonce else None
    try:
        return verify_proof(
            value, method="POST", url=url, now=now, allowed_algs=tier.signing_algs,
            nonce_ok=nonces.checker(now) if nonces is not None else None,
            max_age=env.settings.dpop_proof_max_age, future_skew=env.settings.future_skew,
        )
    except DPoPError as exc:
        if exc.error == USE_DPOP_NONCE and nonces is not None:
            exc.nonce = nonces.issue(now)
        raise


def next_nonce(env: Environment, tier: Tier, proof: DPoPProof | None, now: int) -> str | None:
    """§8.2: a fresh nonce with a successful response, when ``tier`` uses nonces and a proof was sent."""
    return nonce_service(env).issue(now) if proof is not None and tier.dpop_nonce else None


async def claim_proof(env: Environment, proof: DPoPProof) -> None:
    await claim_jti(env.store.ephemeral, proof, max_age=env.settings.dpop_proof_max_age,
                    future_skew=env.settings.future_skew)


def _binding(client: Client, presented: Presented, proof: DPoPProof | None) -> TokenBinding | None:
    if proof is not None:
        return TokenBinding("dpop", proof.jkt)
    if client.dpop_bound_access_tokens:
        raise errors.InvalidRequest("this client must send a DPoP proof with every token request (RFC 9449 5.2)")
    thumbprint = check_certificate_binding(client.metadata, presented.client_certificate_thumbprint)
    return TokenBinding("mtls", thumbprint) if thumbprint is not None else None


async def check_sender_constraint(
    env: Environment,
    presented: Presented,
    *,
    client: Client,
    tier: Tier,
    bound_jkt: str | None,
    evidence: dict[str, Any],
) -> SenderCheck:
    """The token endpoint's check for control ``sender_constrained_tokens`` (RFC 9449 §5, §10; RFC 8705 §3;
    FAPI 2.0 §5.3.2.1-6), run for every grant before the code or refresh token is consumed.

    ``bound_jkt``: the key the grant is already bound to (a code's ``dpop_jkt``, a public client's refresh
    token); a proof of any other key, or none, is ``invalid_grant``.
    """
    now = env.now()
    proof = verify_presented_proof(env, presented, url=presented.url(env, "token"), tier=tier, now=now)
    binding = _binding(client, presented, proof)
    if binding is None and tier.requires(Control.SENDER_CONSTRAINED_TOKENS):
        raise errors.InvalidRequest(
            f"tier {tier.name} requires control {Control.SENDER_CONSTRAINED_TOKENS.value}: send a DPoP proof "
            "or use the client certificate the tokens can be bound to"
        )
    if bound_jkt is not None and (
        binding is None or binding.method != "dpop" or not hmac.compare_digest(binding.thumbprint, bound_jkt)
    ):
        raise errors.InvalidGrant("the grant is bound to a DPoP key: a proof of that key is required")
    if proof is not None:
        await claim_proof(env, proof)
    if binding is not None:
        evidence[EVIDENCE] = {"method": binding.method, "thumbprint": binding.thumbprint}
    return SenderCheck(binding=binding, nonce=next_nonce(env, tier, proof, now))


def presented(dpop: Sequence[str] = (), client_certificate_thumbprint: str | None = None) -> Presented:
    return Presented(dpop=tuple(dpop), client_certificate_thumbprint=client_certificate_thumbprint)
