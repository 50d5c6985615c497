"""``--registration-token`` without ``--client``: the audit registers its own test client (RFC 7591), uses
it, and deletes it afterwards (RFC 7592 §2.3) — a command never leaves behind data it created when the
server lets it clean up.

The client authenticates with ``private_key_jwt`` (a fresh ES256 key that never leaves the process) and
asks for ``risk_tier`` when ``--tier`` is given (jarmor's registration member; other servers ignore it).
At a tier that requires sender-constrained tokens it registers ``dpop_bound_access_tokens`` and redeems
codes with DPoP proofs. Its redirect URI is ``https://jarmor-audit.invalid/cb``: the audit reads redirects, it never follows them.
"""

from __future__ import annotations

from typing import Any

from jarmor.jose import generate_jwk
from jarmor.protocol.policy import DEFAULT_TIERS, Control

from .clients import AuditClient, ClientFileError, parse_client
from .flows import Target
from .probes import delete_registration
from .transport import AuditAborted

AUDIT_REDIRECT_URI = "https://jarmor-audit.invalid/cb"


def register_client(t: Target, tier: str | None) -> tuple[AuditClient, dict[str, Any]]:
    """Register a probe client; return it and the registration response (for ``unregister``)."""
    endpoint = t.endpoint("registration_endpoint")
    if t.registration_token is None or endpoint is None:
        raise AuditAborted("the server offers no registration endpoint on its origin")
    key = generate_jwk("ES256")
    metadata: dict[str, Any] = {
        "client_name": "jarmor audit",
        "redirect_uris": [AUDIT_REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "request_object_signing_alg": "ES256",
        "jwks": {"keys": [key.public_dict()]},
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": "openid",
    }
    if tier is not None:
        metadata["risk_tier"] = tier
        known = DEFAULT_TIERS.get(tier)
        if known is not None and known.requires(Control.SENDER_CONSTRAINED_TOKENS):
            metadata["dpop_bound_access_tokens"] = True  # RFC 9449 §5.2: its token requests then carry proofs
    r = t.http.request("POST", endpoint, json_body=metadata,
                       headers={"Authorization": f"Bearer {t.registration_token}"})
    if r.status_code not in (200, 201):
        raise AuditAborted(f"self-registration was refused (HTTP {r.status_code})")
    try:
        body = r.json()
        client = parse_client({**body, "jwk": key.private_dict(), "signing_alg": "ES256",
                               "redirect_uri": AUDIT_REDIRECT_URI, "scope": "openid",
                               "registration": {"risk_tier": tier} if tier else {}})
    except (ValueError, ClientFileError) as exc:
        raise AuditAborted(f"the registration response is unusable: {exc}") from exc
    return client, body


def unregister(t: Target, body: dict[str, Any]) -> None:
    delete_registration(t, body)
