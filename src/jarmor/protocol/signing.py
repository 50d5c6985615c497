"""What the server signs (and encrypts) for a client, held to the effective tier of the request.

A client registers one algorithm for its JARM responses (JARM §3 ``authorization_signed_response_alg``) and
one for its ID tokens (OIDC Registration §2 ``id_token_signed_response_alg``); registration checks them
against the client's *own* tier. A scope can raise a request's tier above it (``Policy.effective``), and
then the registered algorithm may be one the raised tier forbids (FAPI 2.0 §5.4.1: PS256, ES256, EdDSA).

jarmor then refuses; it never signs with another algorithm than the one registered: the client verifies
with exactly its registered algorithm (JARM §2.4 step 4, OIDC Core §3.1.3.7-7) and would reject the
response, and a silent substitution would hide the misconfiguration. The refusal comes at request
validation (PAR or the authorization endpoint), before any response exists; the same checks run again
where a response or token is produced, because the client may have changed its registration (RFC 7592) in
between. Tiers restrict signing algorithms only: the encryption algorithms a client registered are not
tier-restricted, but a tier's ``encrypted_jarm`` requirement is checked here as well.
"""

from __future__ import annotations

from . import errors
from .clients import Client
from .policy import Control, Tier


def check_jarm_signing(client: Client, tier: Tier) -> None:
    """JARM §2.2 under ``tier``: the registered JARM algorithm is allowed, and the response is encrypted when
    the tier requires ``encrypted_jarm``. Raises ``unauthorized_client`` naming the rule."""
    alg = client.authorization_signed_response_alg
    if not tier.allows_alg(alg):
        raise errors.UnauthorizedClient(
            f"tier {tier.name} does not allow the client's registered authorization_signed_response_alg {alg}; "
            f"allowed: {', '.join(tier.signing_algs)}"
        )
    if tier.requires(Control.ENCRYPTED_JARM) and client.authorization_encryption is None:
        raise errors.UnauthorizedClient(
            f"tier {tier.name} requires control {Control.ENCRYPTED_JARM.value}: "
            "the client has not registered authorization_encrypted_response_alg"
        )


def check_id_token_signing(client: Client, tier: Tier) -> None:
    """OIDC Core §2 / FAPI 2.0 §5.4.1 under ``tier``: the registered ID token algorithm is allowed."""
    alg = client.id_token_signed_response_alg
    if not tier.allows_alg(alg):
        raise errors.UnauthorizedClient(
            f"tier {tier.name} does not allow the client's registered id_token_signed_response_alg {alg}; "
            f"allowed: {', '.join(tier.signing_algs)}"
        )


def check_assertion_signing(client: Client, tier: Tier) -> None:
    """RFC 7591 §2 ``token_endpoint_auth_signing_alg`` under ``tier``: a client that registered an algorithm
    the tier forbids could never authenticate at the token endpoint; refuse before issuing a code."""
    alg = client.token_endpoint_auth_signing_alg
    if alg is not None and not tier.allows_alg(alg):
        raise errors.UnauthorizedClient(
            f"tier {tier.name} does not allow the client's registered token_endpoint_auth_signing_alg {alg}; "
            f"allowed: {', '.join(tier.signing_algs)}"
        )
