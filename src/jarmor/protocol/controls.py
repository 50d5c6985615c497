"""Controls as data: one entry per ``Control`` says everything the code knows about it.

A risk tier is a set of required controls (``policy``). What a control *means* is declared once, here:

* ``registration`` — what in a client's (normalised or stored) metadata contradicts it. Registration
  (``clients.validate_client_metadata``) refuses it when the client's tier requires the control, and the
  governance judge (``governance.registrations``, behind the drift report and the policy dry-run) reports
  it when a tier a registration is used at requires it;
* ``declared_by`` / ``registration_default`` — the metadata a tier requiring it fills in (RFC 9101 §10.5
  ``require_signed_request_object``, RFC 9126 §6 ``require_pushed_authorization_requests``: a submitted
  ``false`` is refused);
* ``step`` — the request step (``authorization.STEPS``) that enforces it on every request;
* ``evidence`` — how a flow record's merged evidence proves it applied (``governance.flows``, reports and the
  dashboard's coverage);
* ``dry_run`` — how the policy dry-run judges a recorded flow against it (``governance.policy_check``);
* ``back_channel`` — whether a grant that never used the front channel (``client_credentials``,
  ``refresh_token``) exercises it;
* ``recorded`` — the members of a request's evidence that flow records keep for it (bounded; the capture
  copies what every entry declares, so a new control's evidence needs no capture code);
* ``how`` — a short label of how a flow met it (``aal2: pwd otp``), counted per tier by the report.

Adding a control is one ``Control`` member, one entry in ``REGISTRY`` and the step that enforces it; the
registration, the reports, the dry-run and the drift check iterate ``REGISTRY`` and need no other edit.
Decisions on requests read typed state; only ``evidence`` and ``dry_run`` read flow-record evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .policy import Control, Tier
from .redirect_uris import NOT_HTTPS, loopback_http, meets_https_redirect_rule
from .vocabulary import JARM_MODES, PLAIN_MODES

INVALID_CLIENT_METADATA = "invalid_client_metadata"
INVALID_REDIRECT_URI = "invalid_redirect_uri"

Evidence = Mapping[str, Any]
Metadata = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RegistrationIssue:
    """What registration holds against metadata under a control: ``text`` never quotes a submitted value
    (it becomes an ``error_description``); ``detail`` may, for the operator's report."""

    text: str
    detail: str | None = None

    @property
    def report(self) -> str:
        return self.detail or self.text


@dataclass(frozen=True, slots=True)
class ControlSpec:
    """One control's whole definition (see the module docstring for what each part is used by)."""

    control: Control
    description: str
    clause: str
    step: str
    evidence: Callable[[Evidence], bool]
    registration: Callable[[Metadata], RegistrationIssue | None] = lambda meta: None
    registration_error: str = INVALID_CLIENT_METADATA
    declared_by: str | None = None
    registration_default: Mapping[str, Any] = field(default_factory=dict)
    back_channel: bool = False
    # why a flow lacking the evidence may still be admitted by the control (None: it may not)
    admitted_without_evidence: Callable[[Evidence], bool] = lambda ev: False
    # a more precise note than "not evidenced in the records" for a flow that lacks the evidence
    gap_note: Callable[[Evidence], str | None] = lambda ev: None
    recorded: Callable[[Evidence], Mapping[str, Any]] = lambda ev: {}
    how: Callable[[Evidence], str | None] = lambda ev: None

    @property
    def name(self) -> str:
        return self.control.value

    def applied(self, evidence: Evidence) -> bool:
        """Whether the flow record's merged evidence proves the control applied."""
        return self.evidence(evidence)

    def dry_run(self, evidence: Evidence, applied: Iterable[str]) -> str | None:
        """How a recorded flow fares against the control, were it required: a failure text or None."""
        if self.name in set(applied) or self.admitted_without_evidence(evidence):
            return None
        return f"control {self.name} was not used"

    def gap_reason(self, evidence: Evidence) -> str:
        note = self.gap_note(evidence)
        return f"required control {self.name} is not evidenced" + (f": {note}" if note else " in the records")


# --- evidence rules (flow records: ``governance.capture`` writes them) --------------------------------------


def _member(evidence: Evidence, *names: str) -> Mapping[str, Any]:
    for name in names:
        value = evidence.get(name)
        if value:
            return value if isinstance(value, Mapping) else {}
    return {}


def _pkce_evidence(ev: Evidence) -> bool:
    return ev.get("pkce") == "S256"


def _ro(flag: str) -> Callable[[Evidence], bool]:
    return lambda ev: bool(_member(ev, "request_object").get(flag))


def _jarm(flag: str) -> Callable[[Evidence], bool]:
    return lambda ev: bool(_member(ev, "jarm").get(flag))


def _par_evidence(ev: Evidence) -> bool:
    return bool(ev.get("par"))


def _private_key_jwt_evidence(ev: Evidence) -> bool:
    return _member(ev, "client_auth", "par_client_auth").get("method") == "private_key_jwt"


def _https_redirect_evidence(ev: Evidence) -> bool:
    redirect = ev.get("redirect_uri")
    return isinstance(redirect, str) and urlsplit(redirect).scheme == "https"


def _https_redirect_admitted(ev: Evidence) -> bool:
    """The control admits http on a loopback host (RFC 8252 §7.3), though the response was not https."""
    redirect = ev.get("redirect_uri")
    return isinstance(redirect, str) and meets_https_redirect_rule(redirect)


def _https_redirect_gap(ev: Evidence) -> str | None:
    if loopback_http(ev.get("redirect_uri")):
        return "the redirect URI is plain http on a loopback host (RFC 8252 §7.3), not https"
    return None


def _bounded(value: Any, depth: int = 0) -> Any:
    """A JSON value of evidence kept in a flow record: short strings, numbers, booleans, short lists and
    small objects of them (a record never holds request data beyond bounded identifiers)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value[:128]
    if isinstance(value, list | tuple) and depth < 2:
        return [_bounded(v, depth + 1) for v in value[:16]]
    if isinstance(value, Mapping) and depth < 2:
        return {str(k)[:64]: _bounded(v, depth + 1) for k, v in list(value.items())[:16]}
    return None


def _authentication_recorded(ev: Evidence) -> Mapping[str, Any]:
    auth = ev.get("authentication")
    return {"authentication": _bounded(auth)} if isinstance(auth, Mapping) else {}


def _authentication_evidence(ev: Evidence) -> bool:
    """The tier's requirement was enforced and the sign-in reached it (``interaction.assurance.evidence``)."""
    auth = _member(ev, "authentication")
    reached, required = auth.get("reached"), auth.get("required")
    order = {None: 0, "aal1": 1, "aal2": 2, "aal3": 3}
    return (auth.get("tier_enforced") is True and reached in order and required in order
            and order[reached] >= order[required] and reached is not None)


def _authentication_how(ev: Evidence) -> str | None:
    auth = _member(ev, "authentication")
    if not auth:
        return None
    amr = auth.get("amr")
    methods = " ".join(str(a) for a in amr) if isinstance(amr, list) and amr else "no sign-in"
    return f"{auth.get('reached') or 'none'}: {methods}"


# --- registration rules (over metadata as registration normalises and stores it) ----------------------------


def _has_keys(meta: Metadata) -> bool:
    return bool(meta.get("jwks") or meta.get("jwks_uri"))


def _private_key_jwt_registration(meta: Metadata) -> RegistrationIssue | None:
    method = meta.get("token_endpoint_auth_method")
    if method == "private_key_jwt":
        return None
    keys = "" if _has_keys(meta) else ", and no jwks or jwks_uri is registered"
    return RegistrationIssue(f"token_endpoint_auth_method {method} is not allowed",
                             f"it authenticates with {method}{keys}")


def _signed_request_object_registration(meta: Metadata) -> RegistrationIssue | None:
    if _has_keys(meta):
        return None
    return RegistrationIssue("no jwks or jwks_uri is registered to verify its request objects")


def _par_registration(meta: Metadata) -> RegistrationIssue | None:
    if not meta.get("request_uris"):
        return None
    return RegistrationIssue("request_uris cannot be used: requests must be pushed (RFC 9126 §6)",
                             "request_uris are registered, but requests must be pushed (RFC 9126 §6)")


def _jarm_registration(meta: Metadata) -> RegistrationIssue | None:
    modes = meta.get("response_modes")
    if modes is None:
        return None  # every mode, JARM ones included
    plain = [str(m) for m in modes if m in PLAIN_MODES]
    if not plain:
        return None
    none = "" if any(m in JARM_MODES for m in modes) else " and no JARM mode"
    return RegistrationIssue(f"plain response mode(s) {', '.join(plain)} are not allowed",
                             f"plain response mode(s) {', '.join(plain)}{none} are registered")


def _registered(member: str) -> Callable[[Metadata], RegistrationIssue | None]:
    def rule(meta: Metadata) -> RegistrationIssue | None:
        if meta.get(member):
            return None
        return RegistrationIssue(f"register {member}", f"no {member} is registered")

    return rule


def _https_redirect_registration(meta: Metadata) -> RegistrationIssue | None:
    refused = [str(uri) for uri in meta.get("redirect_uris") or () if not meets_https_redirect_rule(str(uri))]
    if not refused:
        return None
    return RegistrationIssue(NOT_HTTPS, f"redirect URI(s) {' '.join(refused)} are not https")


# In the order reports, flow records and registration refusals list controls.
REGISTRY: Mapping[Control, ControlSpec] = {
    Control.PKCE_S256: ControlSpec(
        Control.PKCE_S256, "PKCE with the S256 method on every authorization code request",
        "RFC 7636 §4.2; RFC 9700 §2.1.1", "check_pkce", _pkce_evidence),
    Control.SIGNED_REQUEST_OBJECT: ControlSpec(
        Control.SIGNED_REQUEST_OBJECT, "authorization requests only as a signed request object",
        "RFC 9101 §6.1, §10.5", "check_signed_request_object_required", _ro("signed"),
        registration=_signed_request_object_registration, declared_by="require_signed_request_object"),
    Control.ENCRYPTED_REQUEST_OBJECT: ControlSpec(
        Control.ENCRYPTED_REQUEST_OBJECT, "request objects encrypted to the server's key",
        "RFC 9101 §6.1; OIDC Registration §2", "check_request_object_encryption", _ro("encrypted"),
        registration=_registered("request_object_encryption_alg")),
    Control.PAR: ControlSpec(
        Control.PAR, "authorization requests only through the pushed authorization request endpoint",
        "RFC 9126 §5, §6; FAPI 2.0 §5.3.2.2-1", "check_par_required", _par_evidence,
        registration=_par_registration, declared_by="require_pushed_authorization_requests"),
    Control.JARM: ControlSpec(
        Control.JARM, "authorization responses as signed JWTs (JARM)",
        "JARM §2.3, §3", "check_response_mode_for_tier", _jarm("signed"), registration=_jarm_registration,
        registration_default={"response_modes": list(JARM_MODES)}),
    Control.ENCRYPTED_JARM: ControlSpec(
        Control.ENCRYPTED_JARM, "authorization responses encrypted to the client's key",
        "JARM §2.3, §3", "check_response_mode_for_tier", _jarm("encrypted"),
        registration=_registered("authorization_encrypted_response_alg")),
    Control.PRIVATE_KEY_JWT: ControlSpec(
        Control.PRIVATE_KEY_JWT, "client authentication with private_key_jwt",
        "RFC 7523 §2.2; OIDC Core §9; FAPI 2.0 §5.3.2.1", "check_client_authentication_for_tier",
        _private_key_jwt_evidence, registration=_private_key_jwt_registration,
        registration_default={"token_endpoint_auth_method": "private_key_jwt"}, back_channel=True),
    Control.REQUEST_OBJECT_NBF: ControlSpec(
        Control.REQUEST_OBJECT_NBF, "request objects carry nbf (and a bounded lifetime)",
        "FAPI 2.0 Message Signing §5.3.1", "check_request_object_policy", _ro("nbf")),
    Control.HTTPS_REDIRECT_URIS: ControlSpec(
        Control.HTTPS_REDIRECT_URIS, "redirect URIs are https (http only on a loopback host)",
        "RFC 6749 §3.1.2.1; RFC 8252 §7.3; FAPI 2.0 §5.3.2.2", "check_redirect_uri_for_tier",
        _https_redirect_evidence, registration=_https_redirect_registration,
        registration_error=INVALID_REDIRECT_URI, admitted_without_evidence=_https_redirect_admitted,
        gap_note=_https_redirect_gap),
    Control.AUTHENTICATION_ASSURANCE: ControlSpec(
        Control.AUTHENTICATION_ASSURANCE,
        "the end-user's sign-in reaches the tier's assurance level (acr) within its maximum age, or is stepped up",
        "NIST SP 800-63B §4; OIDC Core §2, §3.1.2.1, §5.5.1.1; RFC 8176", "check_authentication_assurance",
        _authentication_evidence, recorded=_authentication_recorded, how=_authentication_how),
}


def by_name(name: str) -> ControlSpec | None:
    """The entry of the control named ``name`` (as config, errors and flow records spell it)."""
    return next((s for c, s in REGISTRY.items() if c.value == name), None)


def ordered(names: Iterable[str]) -> tuple[str, ...]:
    """Control names in registry order; names no entry knows last, sorted."""
    given = set(names)
    known = tuple(c.value for c in REGISTRY if c.value in given)
    return known + tuple(sorted(given - set(known)))


def back_channel_controls() -> frozenset[str]:
    return frozenset(c.value for c, s in REGISTRY.items() if s.back_channel)


def applied_controls(evidence: Evidence) -> set[str]:
    """The controls the recorded evidence shows were applied."""
    return {c.value for c, s in REGISTRY.items() if s.applied(evidence)}


def required_specs(tier: Tier, *, front_channel: bool = True) -> list[ControlSpec]:
    """The entries of the controls ``tier`` requires, in registry order (only the back-channel ones for a
    client or grant that never uses the front channel)."""
    return [s for c, s in REGISTRY.items() if tier.requires(c) and (front_channel or s.back_channel)]
