"""``jarmor.resource``: what an API protected by OAuth 2.0 access tokens installs next to itself.

``ResourceServer.authenticate(...)`` checks the ``Authorization`` (``Bearer``/``DPoP``) and ``DPoP`` headers
and the TLS client certificate of one request and returns the verified ``Principal`` or raises
``ResourceError`` with the exact RFC 6750 / RFC 9449 §7 / RFC 9470 error and its ``WWW-Authenticate`` value.
Tokens are checked by introspection (``IntrospectionVerifier``, RFC 7662) or as JWT access tokens
(``JwtAccessTokenVerifier``, RFC 9068). ``ResourceServerMiddleware`` and ``requires`` wire it into Starlette
and FastAPI. See docs/resource-server.md.
"""

from ..protocol.binding import TokenBinding
from ..protocol.dpop import NonceService
from .asgi import ResourceServerMiddleware, Rule, error_response, requires, resource_error_handler
from .core import ResourceServer, TokenVerifier, assurance_problem, certificate_thumbprint, step_up_error
from .errors import Challenge, ResourceError, VerifierUnavailable
from .introspection import IntrospectionVerifier, TokenRejected
from .jwt import JwtAccessTokenVerifier
from .principal import Principal, Requirement, TokenClaims
from .replay import MemoryReplayStore, RedisReplayStore, ReplayStore

__all__ = [
    "Challenge",
    "IntrospectionVerifier",
    "JwtAccessTokenVerifier",
    "MemoryReplayStore",
    "NonceService",
    "Principal",
    "RedisReplayStore",
    "ReplayStore",
    "Requirement",
    "ResourceError",
    "ResourceServer",
    "ResourceServerMiddleware",
    "Rule",
    "TokenBinding",
    "TokenClaims",
    "TokenRejected",
    "TokenVerifier",
    "VerifierUnavailable",
    "assurance_problem",
    "certificate_thumbprint",
    "error_response",
    "requires",
    "resource_error_handler",
    "step_up_error",
]
