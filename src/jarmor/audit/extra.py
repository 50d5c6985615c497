"""Two hygiene checks of the attack catalog that need more than one changed parameter.

``request_object_zip`` (attack catalog A14, RFC 8725 §3.6 by analogy): a request object encrypted with
``zip: DEF`` must be refused — a server that inflates attacker-supplied JWEs can be fed a decompression bomb.
The probe sends a *small* compressed object (the normal reference request), never a bomb, and only when the
server accepts an encrypted request object without compression (otherwise the answer would prove nothing).

``iss_mix_up`` (RFC 9207 §2, RFC 9700 §4.4.2, attack catalog A73): mix-up is defended by the *client*, which
compares the response's issuer with the one it sent the request to; what a server must do is name itself in
every authorization response. Seen from outside, the audit proves: (1) the server's completed response names
this issuer (``iss`` parameter, or the JARM ``iss`` claim) and, for plain modes, the server advertises
``authorization_response_iss_parameter_supported`` (RFC 9207 §3) so clients require it; (2) jarmor's client
check (``jarmor.client``), fed that real response, accepts it for this issuer and refuses it as an ``iss``
mismatch for a second issuer (``--mix-up-issuer``, or ``https://jarmor-audit.invalid``). It does not prove
that every client of the server makes that check, nor anything about the other issuer's responses.

``mix_up_code_elsewhere`` is the one server-side observable with two issuers: this issuer's code, redeemed
at the second issuer's token endpoint, must be refused there.
"""

from __future__ import annotations

from collections.abc import Callable

from jarmor.client.callback import check_plain_issuer
from jarmor.client.errors import AuthorizationResponseError, JarmValidationError
from jarmor.client.models import FlowState
from jarmor.client.validation import check_issuer

from .flows import FORGED_AUD, Outcome, error_of, redeem, revoke_tokens, with_changes
from .model import Verdict
from .probes import (
    NotRun,
    Result,
    Session,
    completed,
    fresh_code,
    needs_ref,
    needs_signing,
)

# --- request_object_zip ------------------------------------------------------------------------------


def request_object_zip(s: Session) -> Result:
    needs_signing(s)
    if not s.t.metadata.supported("request_object_encryption_alg_values_supported"):
        raise NotRun("the server advertises no encrypted request objects")
    needs_ref(s)
    plain = s.reference_outcome() if s.ref.encrypt else s.send(with_changes(s.ref, encrypt=True))
    if not plain.accepted:
        raise NotRun(f"an encrypted request object without compression was {plain.describe()}")
    out = s.send(with_changes(s.ref, encrypt=True, compress=True))
    if out.accepted:
        return Verdict.VIOLATED, ("the server inflated a request object encrypted with zip: DEF and accepted it "
                                  f"({out.describe()}): a compressed JWE can be a decompression bomb")
    return Verdict.ENFORCED, f"a request object encrypted with zip: DEF was {out.describe()}"


# --- iss_mix_up ---------------------------------------------------------------------------------------


def _flow(s: Session, out: Outcome, issuer: str) -> FlowState:
    now = s.t.now()
    return FlowState(issuer=issuer, client_id=s.c.client_id, state=out.state, nonce=None,
                     code_verifier=out.verifier, redirect_uri=out.redirect_uri, response_mode=s.ref.response_mode,
                     scope=s.c.scope, created_at=now, expires_at=now + 600)


def _client_check(s: Session, out: Outcome, issuer: str, required: bool) -> str | None:
    """jarmor.client's RFC 9207 check for a client expecting ``issuer``: ``None`` accepted, else the reason."""
    try:
        if out.jarm is not None:
            if out.jarm_claims is None:
                raise NotRun("the JARM response is encrypted and the client file has no decryption key")
            check_issuer(out.jarm_claims, issuer, JarmValidationError)
        else:
            check_plain_issuer(out.params, _flow(s, out, issuer), required=required)
    except (AuthorizationResponseError, JarmValidationError) as exc:
        return exc.reason or "refused"
    return None


def iss_mix_up(s: Session) -> Result:
    out = completed(s)
    other = s.t.mix_up_issuer or FORGED_AUD
    advertised = s.t.metadata.raw.get("authorization_response_iss_parameter_supported") is True
    if out.jarm is None:
        if "iss" not in out.params:
            return Verdict.VIOLATED, ("the response carries no iss: a client of two issuers cannot tell this "
                                      "server's response from another's (RFC 9207 §2)")
        if not advertised:
            return Verdict.VIOLATED, ("the response carries iss but authorization_response_iss_parameter_supported "
                                      "is not advertised, so clients need not require it (RFC 9207 §3)")
    mine = _client_check(s, out, s.t.issuer, advertised)
    if mine is not None:
        return Verdict.VIOLATED, f"jarmor.client refuses the response for this issuer ({mine})"
    theirs = _client_check(s, out, other, True)
    if theirs is None:
        return Verdict.VIOLATED, f"jarmor.client would accept this server's response for {other}"
    where = "the JARM iss claim" if out.jarm is not None else "the iss parameter (advertised)"
    return Verdict.ENFORCED, (f"{where} names this issuer: the client check accepts the response here and "
                              f"refuses it for {other} ({theirs}); mix-up is detectable by any RFC 9207 client")


def mix_up_code_elsewhere(s: Session) -> Result:
    """The server-side half, when two issuers are named (``--mix-up-issuer`` and ``--mix-up-client``, this
    client's registration at the second): a fresh code of this issuer, redeemed at the second issuer's token
    endpoint (what a mixed-up client sends), must be refused there. Two deployments with separate stores
    refuse it trivially; two tenants of one product sharing a code store may not."""
    if s.t.second is None:
        raise NotRun(s.t.second_error or "give --mix-up-issuer and --mix-up-client (this client at that issuer)")
    other, other_client = s.t.second
    out = fresh_code(s)
    assert out.code is not None
    r = redeem(other, other_client, out.code, out.verifier, other_client.redirect_uri)
    revoke_tokens(other, other_client, r)
    if r.status_code == 200:
        return Verdict.VIOLATED, f"{other.issuer} issued tokens for a code issued by {s.t.issuer}"
    return Verdict.ENFORCED, f"{other.issuer} refused a code issued by this issuer (HTTP {r.status_code} {error_of(r)})"


EXTRA_PROBES: tuple[tuple[str, Callable[[Session], Result]], ...] = (
    ("request_object_zip", request_object_zip),
    ("iss_mix_up", iss_mix_up),
    ("mix_up_code_elsewhere", mix_up_code_elsewhere),
)
