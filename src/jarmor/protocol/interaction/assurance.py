"""Authentication assurance: what a request asks for and needs, and what a sign-in reached.

The control ``authentication_assurance`` (``controls.REGISTRY``) is enforced in two places with one meaning:

* the request steps ``check_authentication_request`` (OIDC Core §3.1.2.1 ``acr_values``, §5.5 ``claims``)
  and ``check_authentication_assurance`` (the level and maximum age the effective tier requires, raised by
  the request's own) decide, as typed state of the request, what its sign-in must reach;
* the interaction (``lifecycle``) signs the user in until ``requirement(req)`` is met — asking for a further
  factor while one the user has would reach it (step-up), and refusing the request when none would
  (``unreachable``): never a weaker sign-in accepted silently.

The flow record keeps what was reached (``evidence``); the ID token and introspection carry ``acr``, ``amr``
(RFC 8176) and ``auth_time`` (OIDC Core §2).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ...jose import JoseError, loads_object
from .. import errors
from ..authorization_state import AuthorizationRequest, AuthorizationState
from ..policy import Control
from .authentication import ACR, LEVEL_OF_ACR, Authentication, Level, Requirement

# OIDC Core §3.1.2.1: space-separated strings; each a printable ASCII token (no space, quote or backslash)
_ACR_VALUE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
MAX_ACR_VALUES = 10
MAX_CLAIMS_LENGTH = 4096


def _acr_list(value: Any, what: str) -> tuple[str, ...]:
    values = value.split() if isinstance(value, str) else value
    if (not isinstance(values, list) or not values or len(values) > MAX_ACR_VALUES
            or not all(isinstance(v, str) and _ACR_VALUE.fullmatch(v) for v in values)):
        raise errors.InvalidRequest(f"{what} must be 1 to {MAX_ACR_VALUES} acr values")
    return tuple(values)


def _claims(value: Any) -> dict[str, Any]:
    """The ``claims`` parameter: a JSON object in a request object, its JSON text in a query (OIDC Core
    §5.5), read strictly (no duplicate members, bounded size and depth)."""
    if isinstance(value, str):
        if len(value) > MAX_CLAIMS_LENGTH:
            raise errors.InvalidRequest("claims is too long")
        try:
            value = loads_object(value)
        except JoseError:
            raise errors.InvalidRequest("claims must be a JSON object") from None
    if not isinstance(value, dict):
        raise errors.InvalidRequest("claims must be a JSON object")
    for member in ("id_token", "userinfo"):
        if not isinstance(value.get(member, {}), dict):
            raise errors.InvalidRequest(f"claims {member} must be a JSON object")
    return value


def check_authentication_request(st: AuthorizationState) -> None:
    """OIDC Core §3.1.2.1 ``acr_values`` (in order of preference) and §5.5.1.1 the ``claims`` request for
    ``acr`` in the ID token: ``{"essential": true, "values": [...]}`` makes them essential, so that a sign-in
    reaching none of them is refused with ``unmet_authentication_requirements`` rather than answered with a
    weaker one; an essential request naming only values this server does not define is refused at once.
    Other claims requests are accepted and ignored (§5.5: the server may not return them)."""
    if st.params.get("acr_values") is not None:
        st.acr_values = _acr_list(st.params["acr_values"], "acr_values")
    if st.params.get("claims") is None:
        return
    acr = _claims(st.params["claims"]).get("id_token", {}).get("acr")
    if acr is None:
        return
    if not isinstance(acr, dict) or not isinstance(acr.get("essential", False), bool):
        raise errors.InvalidRequest("claims id_token acr must be an object with a boolean essential")
    if "value" in acr and "values" in acr:
        raise errors.InvalidRequest("claims id_token acr has both value and values")
    named = _acr_list([acr["value"]] if "value" in acr else acr["values"], "claims id_token acr") \
        if "value" in acr or "values" in acr else ()
    if not acr.get("essential"):
        st.acr_values = st.acr_values or named  # voluntary: like acr_values
        return
    if named and not any(v in LEVEL_OF_ACR for v in named):
        raise errors.UnmetAuthenticationRequirements("none of the essential acr values is defined here")
    st.essential_acr = named or (ACR[Level.AAL1],)


def check_authentication_assurance(st: AuthorizationState) -> None:
    """The control ``authentication_assurance`` (NIST SP 800-63B §4; OIDC Core §3.1.2.1, §5.5.1.1): the level
    and maximum age the sign-in must reach. The effective tier's ``authentication`` when the tier requires the
    control; raised by the request's ``acr_values`` (the least known one: any of them satisfies), its
    essential ``acr`` and its ``max_age``. Runs at every hop: a pushed request is held to the tier it is
    redeemed under."""
    pushed = st.pushed
    tier = st.tier_required.tier
    enforced = tier.requires(Control.AUTHENTICATION_ASSURANCE)
    asked = pushed.acr_values if pushed is not None else st.acr_values
    essential = pushed.essential_acr if pushed is not None else st.essential_acr
    max_age = pushed.max_age if pushed is not None else st.params.get("max_age")
    levels = [LEVEL_OF_ACR[tier.authentication.acr]] if enforced and tier.authentication.acr else []
    for values in (asked, essential):
        known = [LEVEL_OF_ACR[v] for v in values if v in LEVEL_OF_ACR]
        if known:
            levels.append(min(known))
    ages = [int(a) for a in (tier.authentication.max_age if enforced else None, max_age) if a is not None]
    st.required_acr = ACR.get(max(levels, default=Level.NONE))
    st.auth_max_age = min(ages, default=None)
    st.tier_assurance = enforced
    if pushed is not None:
        st.pushed = replace(pushed, required_acr=st.required_acr, auth_max_age=st.auth_max_age,
                            tier_assurance=enforced)


def requirement(req: AuthorizationRequest) -> Requirement:
    """The authentication ``req`` needs (``prompt=login``: a sign-in during this interaction)."""
    return Requirement(
        level=LEVEL_OF_ACR.get(req.required_acr or "", Level.NONE),
        max_age=req.auth_max_age,
        essential=bool(req.essential_acr),
        fresh="login" in req.prompt,
    )


def unreachable(need: Requirement) -> errors.OAuthError:
    """The error for a requirement the user cannot meet: ``unmet_authentication_requirements`` when an
    essential ``acr`` claim asked for it (OpenID Connect Core Error Code unmet_authentication_requirements
    1.0 §2, which says that code is for that case only), else ``access_denied`` (RFC 6749 §4.1.2.1: the
    authorization server denies a request its policy cannot satisfy)."""
    if need.essential:
        return errors.UnmetAuthenticationRequirements("the requested authentication context cannot be met")
    return errors.AccessDenied("the authentication this request requires cannot be completed")


def asserted_acr(auth: Authentication, req: AuthorizationRequest) -> str | None:
    """The ``acr`` to assert: the most preferred requested value (essential first, then ``acr_values``) the
    level reached satisfies (OIDC Core §3.1.2.1, §5.5.1.1), else the level reached itself."""
    reached = auth.level
    for value in (*req.essential_acr, *req.acr_values):
        level = LEVEL_OF_ACR.get(value)
        if level is not None and level <= reached:
            return value
    return auth.acr


def evidence(auth: Authentication, req: AuthorizationRequest) -> dict[str, Any]:
    """What a flow record keeps of the sign-in (``controls.REGISTRY``'s ``authentication_assurance`` reads
    it): the methods used, the level reached, the ``acr`` asserted, and what was required."""
    return {
        "authentication": {
            "methods": [u.method for u in auth.uses],
            "amr": auth.amr,
            "reached": auth.acr,
            "acr": asserted_acr(auth, req),
            "auth_time": auth.auth_time,
            "required": req.required_acr,
            "max_age": req.auth_max_age,
            "tier_enforced": req.tier_assurance,
        }
    }
