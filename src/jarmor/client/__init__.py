"""jarmor's relying-party library: PAR + signed request objects out, JARM (or RFC 9207 ``iss``) in.

Quick start (README "Client library" has complete, tested examples)::

    config = ClientConfig.from_registration(registration, issuer=..., signing_key=key)
    client = OAuthClient(config)
    start = client.start_authorization(scope="openid accounts")   # PAR, JARM by default
    # redirect the user agent to start.url; keep start.state in its session
    login = client.complete_authorization(callback_url, expected_state=session_state)
    login.subject, login.claims, login.tokens.access_token

``ClientCore`` is the sans-I/O core both clients drive; embed it with any HTTP stack.
"""

from .clients import AsyncOAuthClient, OAuthClient
from .config import AuthMethod, ClientConfig, ResponseMode
from .core import ClientCore
from .errors import (
    AuthorizationResponseError,
    AuthorizationServerError,
    ClientError,
    ConfigurationError,
    DiscoveryError,
    IdTokenValidationError,
    JarmValidationError,
    ParError,
    ServerResponseError,
    StepUpRequired,
    TokenError,
    TransportError,
    UnverifiedErrorResponse,
)
from .exchange import HttpRequest, HttpResponse, Steps
from .metadata import ServerMetadata
from .models import (
    AuthorizationResult,
    AuthorizationStart,
    CompletedAuthorization,
    FlowState,
    TokenResponse,
)
from .store import FlowStateStore, MemoryFlowStateStore
from .trace import TraceHook, format_trace_event, print_trace

__all__ = [
    "AsyncOAuthClient",
    "AuthMethod",
    "AuthorizationResponseError",
    "AuthorizationResult",
    "AuthorizationServerError",
    "AuthorizationStart",
    "ClientConfig",
    "ClientCore",
    "ClientError",
    "CompletedAuthorization",
    "ConfigurationError",
    "DiscoveryError",
    "FlowState",
    "FlowStateStore",
    "HttpRequest",
    "HttpResponse",
    "IdTokenValidationError",
    "JarmValidationError",
    "MemoryFlowStateStore",
    "OAuthClient",
    "ParError",
    "ResponseMode",
    "ServerMetadata",
    "ServerResponseError",
    "StepUpRequired",
    "Steps",
    "TokenError",
    "TokenResponse",
    "TraceHook",
    "TransportError",
    "UnverifiedErrorResponse",
    "format_trace_event",
    "print_trace",
]
