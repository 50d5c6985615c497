"""What the consent page tells the person deciding: who is asking, for what, and where they go next.

The page speaks to end users, so it carries no protocol vocabulary (tiers, scopes as tokens, redirect URIs):

* each requested scope becomes one sentence (``[settings] scope_descriptions`` first, then the built-in
  wording of the OpenID Connect scopes, OIDC Core §5.4 / §11, then a plain fallback);
* the client is described by its registered display metadata (RFC 7591 §2: ``client_name``, ``logo_uri``,
  ``client_uri``, ``policy_uri``, ``tos_uri``) and by the administrative ``owner`` / ``client_kind``, so a
  third-party application is marked as such (RFC 6819 §4.2.2 / RFC 9700 §4.15: the user must be able to
  tell who they are authorizing).

Every value is rendered by the autoescaping templates; only https URLs become links or the logo (registration
refuses anything else, and this module checks again for records stored before it did).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..protocol.clients import Client
from .pages import csp_source

# OIDC Core §5.4 (profile, email) and §11 (offline_access); openid itself is the sign-in.
BUILT_IN_SCOPE_DESCRIPTIONS: Mapping[str, str] = {
    "openid": "Confirm that it is you, with an identifier for your account",
    "profile": "See your basic profile: your name, username and picture",
    "email": "See your email address",
    "offline_access": "Keep this access when you are not using it",
}


@dataclass(frozen=True, slots=True)
class ScopeLine:
    scope: str  # kept for tests and support staff (a data attribute), never the visible text
    text: str


def describe_scopes(scopes: Sequence[str], configured: Mapping[str, str]) -> list[ScopeLine]:
    """One plain sentence per requested scope, in request order."""
    lines = []
    for scope in dict.fromkeys(scopes):
        text = configured.get(scope) or BUILT_IN_SCOPE_DESCRIPTIONS.get(scope) or f"Access to “{scope}”"
        lines.append(ScopeLine(scope, text))
    return lines


def https_url(value: Any) -> str | None:
    """``value`` if it is an https URL with a host that can be shown as a link, else ``None``."""
    if not isinstance(value, str) or any(c in value for c in "\r\n\t \\\"<>"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme == "https" and parts.hostname else None


def destination(redirect_uri: str) -> str:
    """Where the browser goes after the decision, as a person reads it: the host (and port), or the app's
    own scheme for a native app (RFC 8252 §7.1)."""
    try:
        parts = urlsplit(redirect_uri)
    except ValueError:
        return redirect_uri
    if parts.scheme in ("http", "https") and parts.hostname:
        return parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}:" if parts.scheme else redirect_uri


@dataclass(frozen=True, slots=True)
class ClientDisplay:
    name: str
    owner: str | None
    third_party: bool
    logo: str | None
    website: str | None
    policy: str | None
    terms: str | None

    @classmethod
    def of(cls, client: Client | None, client_id: str) -> ClientDisplay:
        """Unknown or kind-less clients count as third party (``Client.client_kind``'s default)."""
        if client is None:
            return cls(client_id, None, True, None, None, None, None)
        meta = client.metadata
        owner = meta.get("owner")
        return cls(
            name=client.name,
            owner=str(owner) if owner else None,
            third_party=client.client_kind != "first-party",
            logo=https_url(meta.get("logo_uri")),
            website=https_url(meta.get("client_uri")),
            policy=https_url(meta.get("policy_uri")),
            terms=https_url(meta.get("tos_uri")),
        )

    @property
    def logo_source(self) -> str | None:
        """The CSP ``img-src`` source for the logo: its origin, and nothing more."""
        return csp_source(self.logo) if self.logo else None
