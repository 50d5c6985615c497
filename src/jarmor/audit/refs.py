"""What each check cites: the RFC / FAPI clause it verifies, and OWASP Non-Human Identities Top 10 (2025)
and NIST CSF 2.0 items where they bear."""

from __future__ import annotations

from collections.abc import Mapping

NHI_AUTH = "OWASP NHI4:2025 Insecure Authentication"
CSF_AUTH = "NIST CSF 2.0 PR.AA-03"
CSF_DATA = "NIST CSF 2.0 PR.DS-02"

REFS: Mapping[str, tuple[str, ...]] = {
    "pkce_s256": ("RFC 7636 §4.3", "RFC 9700 §2.1.1", "FAPI 2.0 §5.3.2.2-5"),
    "signed_request_object": ("RFC 9101 §6.3", "RFC 9101 §10.5", "FAPI 2.0 Message Signing §5.3", CSF_DATA),
    "par": ("RFC 9126 §4", "FAPI 2.0 §5.3.2.2-1"),
    "jarm": ("JARM §2.3", "FAPI 2.0 Message Signing §5.4", CSF_DATA),
    "private_key_jwt": ("RFC 7523 §2.2", "FAPI 2.0 §5.3.2.1", NHI_AUTH, CSF_AUTH),
    "request_object_nbf": ("FAPI 1.0 Advanced §5.2.2-17", "FAPI 2.0 Message Signing §5.3.2"),
    "https_redirect_uris": ("FAPI 1.0 Baseline §5.2.2-20", "RFC 8252 §7.3", "RFC 9700 §2.1"),
    "encrypted_request_object": ("RFC 9101 §6.1", CSF_DATA),
    "encrypted_jarm": ("JARM §2.2", "JARM §2.3", CSF_DATA),
    "authentication_assurance": ("NIST SP 800-63B §4", "OIDC Core §2", "OIDC Core §5.5.1.1", CSF_AUTH),
    "redirect_uri_exact_match": ("RFC 9700 §2.1", "RFC 6749 §3.1.2.3", "FAPI 2.0 §5.3.2.2-8"),
    "pkce_downgrade": ("RFC 9700 §2.1.1", "RFC 7636 §4.2", "FAPI 2.0 §5.3.2.2-5"),
    "request_object_alg_none": ("RFC 9101 §6.2", "RFC 8725 §3.1", "FAPI 2.0 Message Signing §5.3.2"),
    "request_object_hmac_public_key": ("RFC 8725 §3.1", "RFC 8725 §2.1"),
    "request_object_signature": ("RFC 9101 §6.2", "RFC 7515 §5.2"),
    "request_object_expired": ("RFC 9101 §10.2", "FAPI 1.0 Advanced §5.2.2-13"),
    "request_object_foreign_aud": ("RFC 9101 §4", "RFC 9101 §10.2", "FAPI 1.0 Advanced §5.2.2-15"),
    "request_object_replay": ("RFC 9101 §10.2", "RFC 7519 §4.1.7"),
    "client_assertion_replay": ("RFC 7523 §3", "RFC 7519 §4.1.7", NHI_AUTH, CSF_AUTH),
    "client_assertion_alg_none": ("RFC 7523 §3", "RFC 8725 §3.1", NHI_AUTH, CSF_AUTH),
    "client_assertion_hmac_public_key": ("RFC 8725 §2.1", "RFC 8725 §3.1", NHI_AUTH, CSF_AUTH),
    "iss_in_response": ("RFC 9207 §2", "RFC 9700 §4.4.2", "JARM §2.1"),
    "jarm_response_validity": ("JARM §2.4", "JARM §4.1"),
    "state_integrity": ("RFC 6749 §4.1.2", "RFC 9700 §4.7.1", "FAPI 2.0 §5.3.2.2 Note 4"),
    "code_single_use": ("RFC 6749 §4.1.2", "RFC 6749 §10.5", "RFC 9700 §4.5"),
    "pkce_verifier_checked": ("RFC 7636 §4.6", "RFC 9700 §2.1.1"),
    "response_mode_confusion": ("JARM §2.3", "OAuth 2.0 Multiple Response Types §5", "RFC 9700 §4.1"),
}


def refs_for(check: str) -> tuple[str, ...]:
    return REFS.get(check, ())
