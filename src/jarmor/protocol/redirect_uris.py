"""Redirect URI values (RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 3986 §2).

One predicate per question, shared by registration, the ``https_redirect_uris`` control (``controls``) and
the request pipeline, so that what registration admits is exactly what a request is later held to.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from . import errors
from .addresses import is_loopback_host

_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")
_NOT_IN_URIS = frozenset(' "<>\\^`{|}')  # RFC 3986 §2: never in a URI (percent-encode them)
NOT_HTTPS = "a redirect URI must be https with a host (or http on a loopback address)"


def uri_characters(uri: str) -> bool:
    """RFC 3986 §2: printable ASCII without space or the characters no URI may contain unencoded."""
    return uri.isascii() and uri.isprintable() and not any(c in _NOT_IN_URIS for c in uri)


def _valid_host(host: str) -> bool:
    """A DNS name (letters, digits, ``-``, ``_``, dots) or an IP address literal."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return _HOST_NAME.fullmatch(host) is not None


def check_redirect_uri_value(uri: str, *, https_only: bool) -> None:
    """RFC 6749 §3.1.2: absolute, no fragment; https, or http on a loopback host (RFC 8252 §7.3).

    RFC 3986 §2: a URI is ASCII without whitespace or control characters — anything else could not travel
    in a ``Location`` header (or would be read differently by the browser than by this check, as a backslash
    or ``@`` in the authority is); a host is a name or an IP literal, a port a valid number.
    """
    if not uri_characters(uri):
        raise errors.InvalidRedirectUri(
            "redirect URIs must be ASCII without whitespace, control characters, backslashes or the "
            "characters RFC 3986 excludes"
        )
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise errors.InvalidRedirectUri("a redirect URI is not a valid URI") from exc
    if "@" in parts.netloc or (host and not _valid_host(host)):
        raise errors.InvalidRedirectUri("a redirect URI must name a host (no user information)")
    if parts.fragment or "#" in uri:
        raise errors.InvalidRedirectUri("redirect URIs must not contain a fragment")
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and is_loopback_host(host):
        return
    if https_only or parts.scheme in ("https", "http", "javascript", "data", "file", ""):
        raise errors.InvalidRedirectUri(NOT_HTTPS)
    if not parts.scheme or not (parts.netloc or parts.path):
        raise errors.InvalidRedirectUri("a redirect URI is not absolute")


def meets_https_redirect_rule(uri: str) -> bool:
    """Whether ``uri`` passes what registration demands under ``https_redirect_uris`` (https, or http on a
    loopback host): the one predicate for that control, reused per request, where a scope can raise the tier
    above the one the URI was registered under."""
    try:
        check_redirect_uri_value(uri, https_only=True)
    except errors.OAuthError:
        return False
    return True


def loopback_http(uri: object) -> bool:
    """A plain http redirect URI on a loopback host (RFC 8252 §7.3): whatever a tier admits for it, the
    response did not travel over https."""
    if not isinstance(uri, str):
        return False
    parts = urlsplit(uri)
    return parts.scheme == "http" and is_loopback_host(parts.hostname)
