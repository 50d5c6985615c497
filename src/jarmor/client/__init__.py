"""jarmor's relying-party library: PAR + signed request objects out, JARM (or RFC 9207 ``iss``) in.

Quick start::

    client = OAuthClient(ClientConfig(issuer=..., client_id=..., redirect_uri=..., signing_key=key))
    start = client.start_authorization(scope="openid accounts")   # PAR, JARM by default
    # redirect the user agent to start.url; keep start.state in its session
    result = client.handle_callback(callback_url, expected_state=session_state)
    tokens = client.exchange_code(result)

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
    TokenError,
    TransportError,
    UnverifiedErrorResponse,
)
from .exchange import HttpRequest, HttpResponse, Steps
from .metadata import ServerMetadata
from .models import AuthorizationResult, AuthorizationStart, FlowState, TokenResponse
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
    "Steps",
    "TokenError",
    "TokenResponse",
    "TraceHook",
    "TransportError",
    "UnverifiedErrorResponse",
    "format_trace_event",
    "print_trace",
]
