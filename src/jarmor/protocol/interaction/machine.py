"""The interaction's states and the transitions between them, as data (after h11's transition tables).

An authorization request, once its checks pass, is *requested*; it then waits for the user to sign in and
to decide, and ends *completed* (a code delivered) or *refused* (an error delivered). ``TRANSITIONS`` lists
every allowed ``(state, event) -> state`` with the clause that makes it so and whether it writes a flow
record; anything not in the table is an ``IllegalTransition`` (a consent form posted before sign-in, a
second decision on a finished interaction). The effects of each transition — what is stored, shown or
delivered — are small functions in ``lifecycle``; this module decides nothing but which move is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    RECEIVED = "received"  # an authorization request arrived; its checks have not passed yet
    REQUESTED = "requested"  # the checks passed: a valid request, nothing asked of the user yet
    SIGNING_IN = "signing_in"  # the sign-in page is shown: the user must authenticate (further)
    CONSENTING = "consenting"  # authenticated as the request needs: the consent page is shown
    APPROVED = "approved"  # consent given (or auto-approved): the code is issued after a last re-check
    COMPLETED = "completed"  # the code was delivered (terminal)
    REFUSED = "refused"  # an error was delivered to the client or shown on the error page (terminal)


class Event(StrEnum):
    REQUEST_VALIDATED = "request_validated"
    REQUEST_REFUSED = "request_refused"
    UNAVAILABLE = "unavailable"
    AUTO_APPROVED = "auto_approved"
    PROMPT_NONE = "prompt_none"
    SIGN_IN_REQUIRED = "sign_in_required"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_IN_THROTTLED = "sign_in_throttled"
    LOCKED_OUT = "locked_out"
    FACTOR_VERIFIED = "factor_verified"
    SIGNED_IN = "signed_in"
    ASSURANCE_UNREACHABLE = "assurance_unreachable"
    STEP_UP_REQUIRED = "step_up_required"
    CONSENT_GIVEN = "consent_given"
    CONSENT_DENIED = "consent_denied"
    CLIENT_DISABLED = "client_disabled"
    RESPONSE_REFUSED = "response_refused"
    GRANT_WITHDRAWN = "grant_withdrawn"
    CODE_ISSUED = "code_issued"


TERMINAL = frozenset({State.COMPLETED, State.REFUSED})


@dataclass(frozen=True, slots=True)
class Rule:
    """One allowed transition: where it leads, the clause behind it, and whether it writes a flow record
    (the stages a flow record has always had: the refusal or the start of the interaction at the
    authorization endpoint, and the code's issuance or refusal)."""

    target: State
    clause: str
    recorded: bool = False
    stage: str = "authorize"  # the flow-record stage: "authorize" or "code"


R, Q, S, C, A = State.RECEIVED, State.REQUESTED, State.SIGNING_IN, State.CONSENTING, State.APPROVED

TRANSITIONS: Mapping[tuple[State, Event], Rule] = {
    (R, Event.REQUEST_VALIDATED): Rule(Q, "RFC 6749 §4.1.1; RFC 9101 §6; RFC 9126 §4 (protocol/authorization.py)"),
    (R, Event.REQUEST_REFUSED): Rule(State.REFUSED, "RFC 6749 §4.1.2.1", recorded=True),
    (Q, Event.UNAVAILABLE): Rule(State.REFUSED, "RFC 6749 §4.1.2.1 temporarily_unavailable", recorded=True),
    (Q, Event.AUTO_APPROVED): Rule(A, "jarmor auto_approve: a loopback development server approves as its user"),
    (Q, Event.PROMPT_NONE): Rule(State.REFUSED, "OIDC Core §3.1.2.1 prompt=none, §3.1.2.6 login_required",
                                 recorded=True),
    (Q, Event.ASSURANCE_UNREACHABLE): Rule(
        State.REFUSED, "OIDC Core §5.5.1.1; OpenID unmet_authentication_requirements 1.0 §2; RFC 6749 §4.1.2.1",
        recorded=True),
    (Q, Event.SIGN_IN_REQUIRED): Rule(S, "OIDC Core §3.1.2.3: the server authenticates the end-user",
                                      recorded=True),
    (S, Event.SIGN_IN_FAILED): Rule(S, "NIST SP 800-63B §5.2.2: counted before the verifier runs"),
    (S, Event.SIGN_IN_THROTTLED): Rule(S, "NIST SP 800-63B §5.2.2 rate limiting"),
    (S, Event.LOCKED_OUT): Rule(State.REFUSED, "RFC 6749 §4.1.2.1 access_denied; NIST SP 800-63B §5.2.2",
                                recorded=True),
    (S, Event.FACTOR_VERIFIED): Rule(S, "NIST SP 800-63B §4.2.1: a further factor is needed"),
    (S, Event.SIGNED_IN): Rule(C, "OIDC Core §3.1.2.3, §3.1.2.4"),
    (S, Event.ASSURANCE_UNREACHABLE): Rule(
        State.REFUSED, "OIDC Core §5.5.1.1; OpenID unmet_authentication_requirements 1.0 §2; RFC 6749 §4.1.2.1",
        recorded=True),
    # Back to the sign-in page from the consent page: signing in again replaces the authentication
    (C, Event.SIGN_IN_FAILED): Rule(C, "NIST SP 800-63B §5.2.2: counted before the verifier runs"),
    (C, Event.SIGN_IN_THROTTLED): Rule(C, "NIST SP 800-63B §5.2.2 rate limiting"),
    (C, Event.LOCKED_OUT): Rule(State.REFUSED, "RFC 6749 §4.1.2.1 access_denied; NIST SP 800-63B §5.2.2",
                                recorded=True),
    (C, Event.FACTOR_VERIFIED): Rule(S, "NIST SP 800-63B §4.2.1: a further factor is needed"),
    (C, Event.SIGNED_IN): Rule(C, "OIDC Core §3.1.2.3"),
    (C, Event.ASSURANCE_UNREACHABLE): Rule(
        State.REFUSED, "OIDC Core §5.5.1.1; OpenID unmet_authentication_requirements 1.0 §2; RFC 6749 §4.1.2.1",
        recorded=True),
    (C, Event.STEP_UP_REQUIRED): Rule(S, "OIDC Core §3.1.2.1 max_age: the OP MUST actively re-authenticate"),
    (C, Event.CONSENT_GIVEN): Rule(A, "OIDC Core §3.1.2.4: the end-user grants the request"),
    (C, Event.CONSENT_DENIED): Rule(State.REFUSED, "RFC 6749 §4.1.2.1 access_denied; OIDC Core §3.1.2.6",
                                    recorded=True),
    (A, Event.CLIENT_DISABLED): Rule(State.REFUSED, "RFC 6749 §5.2 invalid_client: disabled meanwhile",
                                     recorded=True, stage="code"),
    (A, Event.RESPONSE_REFUSED): Rule(State.REFUSED, "JARM §2.3, §2.4: the tier governs the response",
                                      recorded=True, stage="code"),
    (A, Event.GRANT_WITHDRAWN): Rule(State.REFUSED, "RFC 6749 §4.1.2.1: the client or user was withdrawn",
                                     recorded=True, stage="code"),
    (A, Event.CODE_ISSUED): Rule(State.COMPLETED, "RFC 6749 §4.1.2; JARM §2.3", recorded=True, stage="code"),
}


class IllegalTransition(Exception):
    """``event`` cannot happen in ``state`` (the table has no such row)."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"{event.value} is not allowed in state {state.value}")
        self.state = state
        self.event = event


def rule(state: State, event: Event) -> Rule:
    """The row for ``event`` in ``state``, or ``IllegalTransition``."""
    found = TRANSITIONS.get((state, event))
    if found is None:
        raise IllegalTransition(state, event)
    return found


def allowed(state: State) -> frozenset[Event]:
    """The events ``state`` accepts (none in a terminal state)."""
    return frozenset(e for (s, e) in TRANSITIONS if s is state)
