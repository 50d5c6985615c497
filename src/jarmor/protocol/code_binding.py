"""Authorization code binding to a DPoP key (RFC 9449 §10): a step of ``authorization.STEPS``."""

from __future__ import annotations

import re
from typing import Final

from . import errors
from .authorization_state import AuthorizationState
from .dpop import DPoPError

_JKT: Final = re.compile(r"[A-Za-z0-9_-]{43}")


def check_dpop_jkt(st: AuthorizationState) -> None:
    """RFC 9449 §10: ``dpop_jkt`` (a parameter, or a claim of the request object) is the JWK SHA-256
    thumbprint (RFC 7638) of the key the code will be bound to. §10.1: at PAR it may also come in the body
    beside a request object (honoured beside one at the authorization endpoint too), and a DPoP proof binds the code too ("as if ... provided using dpop_jkt");
    every key named must be the same one."""
    given = [st.params.get("dpop_jkt")]
    if st.request_object is not None:  # a binding beside the object can only restrict, never widen
        given.append(st.outer.get("dpop_jkt"))
    named = [v for v in given if v is not None]
    for value in named:
        if not isinstance(value, str) or _JKT.fullmatch(value) is None:
            raise errors.InvalidRequest("dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)")
    if len(set(named)) > 1:
        raise errors.InvalidRequest("dpop_jkt differs between the request object and the request body")
    if named and st.dpop_proof_jkt is not None and named[0] != st.dpop_proof_jkt:
        raise DPoPError("dpop_jkt does not match the key of the DPoP proof")
    st.dpop_jkt = named[0] if named else st.dpop_proof_jkt
