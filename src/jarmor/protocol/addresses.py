"""IP addresses, pure: which ones the server may contact on a client's behalf (shared by registration and
the fetcher), and which peers are trusted proxies (``TrustedProxies``).

Attack catalog A34/A69: never a private, loopback, link-local, multicast, reserved or otherwise special-use
address (RFC 6890), including IPv4 addresses hidden inside IPv6 transition formats.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(ip: IPAddress, *, allow_loopback: bool = False) -> bool:
    """Only globally routable unicast addresses; loopback too when ``allow_loopback`` (development)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return address_allowed(inner, allow_loopback=allow_loopback)
    if ip.is_loopback:
        return allow_loopback
    if (
        ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)
    ):
        return False
    return ip.is_global


def ip_literal(host: str) -> IPAddress | None:
    """The address when ``host`` is an IP literal (brackets allowed), else ``None``."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback IP literal (bracketed IPv6 accepted). Kept for the last 1,024 hosts: it is
    asked several times per request (redirect URIs, the peer address) and parsing an address costs µs."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TrustedProxies:
    """``[server] trusted_proxies`` (or a resource server's): the addresses and networks whose forwarded
    headers are believed — ``X-Forwarded-For`` / ``Forwarded`` (``server/forwarded.py``), RFC 9440
    ``Client-Cert`` (``server/mtls.py``, ``resource.asgi.proxy_client_certificate``). One type, so every
    reader answers "is this peer a trusted proxy?" the same way. Entries are an address or a network
    (host bits allowed: ``10.1.2.3/8`` is ``10.0.0.0/8``); a bad entry raises ``ValueError`` here (the
    server's configuration has already refused it, naming the key)."""

    __slots__ = ("networks",)

    def __init__(self, entries: Sequence[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        """Whether ``host`` (an IP literal, brackets allowed) is in one of the networks; anything else —
        a name, an obfuscated ``Forwarded`` node, an over-long string — is not."""
        if not isinstance(host, str) or not host or len(host) > 64:
            return False
        ip = ip_literal(host)
        return ip is not None and any(ip in net for net in self.networks)

    def trusts_peer(self, client: Sequence[object] | None) -> bool:
        """Whether an ASGI ``scope["client"]`` (``(host, port)`` or ``None``) is a trusted proxy."""
        if not client:
            return False
        return client[0] in self
