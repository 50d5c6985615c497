"""What authentication a validated request needs (``Requirement``), and the error when it cannot be had."""

from __future__ import annotations

from .. import errors
from ..authorization_state import AuthorizationRequest
from ..policy import Policy
from .authentication import Requirement


def requirement(policy: Policy, req: AuthorizationRequest) -> Requirement:
    """The authentication ``req`` needs."""
    return Requirement()


def unreachable(need: Requirement) -> errors.OAuthError:
    """The error for a requirement the user cannot meet: ``unmet_authentication_requirements`` when an
    essential ``acr`` claim asked for it (OpenID Connect Core Error Code unmet_authentication_requirements
    1.0 §2, which says that code is for that case only), else ``access_denied`` (RFC 6749 §4.1.2.1: the
    authorization server denies a request its policy cannot satisfy)."""
    if need.essential:
        return errors.UnmetAuthenticationRequirements("the requested authentication context cannot be met")
    return errors.AccessDenied("the authentication this request requires cannot be completed")
