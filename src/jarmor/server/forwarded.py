"""The client address a trusted proxy reports: RFC 7239 ``Forwarded`` or ``X-Forwarded-For``.

Only a TCP peer listed in ``[server] trusted_proxies`` is believed, and only through the one header named by
``[server] forwarded_header``: ``x-forwarded-for`` (the default; uvicorn's ``ProxyHeadersMiddleware`` reads it
with ``X-Forwarded-Proto``) or ``forwarded`` (RFC 7239, read here). **Precedence when both are present: the
configured header only; the other is ignored.** A proxy passes the headers it does not manage through from the
client untouched (nginx with ``$proxy_add_x_forwarded_for`` forwards a client's ``Forwarded``; a proxy writing
``Forwarded`` forwards a client's ``X-Forwarded-For``), so believing whichever header is present — or the
"better" one — would let any client choose its own address behind such a proxy.

The client is the right-most untrusted hop (RFC 7239 §8.1: each proxy appends; only the hops the trusted
proxies added are worth anything): elements are read from the right, skipping those whose ``for=`` is a trusted
proxy's address; the first other one names the client. ``for=`` may be an IPv4 address, a bracketed IPv6
address (quoted, with an optional port), an obfuscated identifier (``_hidden``, RFC 7239 §6.3: used as the
address, e.g. for rate limits), or ``unknown`` (§6.2: the TCP peer stays the address). ``proto=`` (``http`` or
``https``) of that element becomes the request scheme; ``host=`` and ``by=`` are parsed but not used (jarmor's
URLs come from the configuration; a request's ``Host`` only tells the mTLS aliases from the issuer's URLs).
Whether a peer is a trusted proxy is ``protocol.addresses.TrustedProxies``, as everywhere. A malformed header, a malformed element
reached in that walk, or a header over ``MAX_HEADER`` characters / ``MAX_ELEMENTS`` elements leaves the TCP
peer as the address: hostile input never changes anything else, and never raises.

Why a parser of our own: the PyPI ``forwarded`` package is new and untested, and uvicorn, Starlette and httpx
read no ``Forwarded``; the RFC 7239 §4 grammar over RFC 7230 ``token`` / ``quoted-string`` is small, so it is
written out here as one linear scan (quoted strings with their escapes, no regex backtracking, no splitting on
commas inside quotes), and the node syntax (§6) is checked with ``ipaddress`` and ``fullmatch``.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope

from ..protocol.addresses import TrustedProxies

MAX_HEADER = 8192
MAX_ELEMENTS = 64
HEADERS = ("x-forwarded-for", "forwarded")

_TCHAR = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)  # RFC 7230 §3.2.6
_OBF = re.compile(r"_[A-Za-z0-9._-]+")  # RFC 7239 §6.3 obfnode / obfport
_PORT = re.compile(r"[0-9]{1,5}")


def _qdtext(ch: str) -> bool:
    """RFC 7230 §3.2.6 qdtext: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text."""
    o = ord(ch)
    return ch in "\t " or o == 0x21 or 0x23 <= o <= 0x5B or 0x5D <= o <= 0x7E or 0x80 <= o <= 0xFF


def _quoted(value: str, i: int) -> tuple[str, int] | None:
    """The quoted-string starting at ``value[i] == '"'``: its unescaped content and the index after it."""
    out: list[str] = []
    i += 1
    while i < len(value):
        ch = value[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":  # quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            if i + 1 >= len(value) or not (_qdtext(value[i + 1]) or value[i + 1] in '"\\'):
                return None
            out.append(value[i + 1])
            i += 2
            continue
        if not _qdtext(ch):
            return None
        out.append(ch)
        i += 1
    return None  # unterminated


def _token(value: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(value) and value[i] in _TCHAR:
        i += 1
    return value[start:i], i


def _skip_ows(value: str, i: int) -> int:
    while i < len(value) and value[i] in " \t":
        i += 1
    return i


def parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """RFC 7239 §4: ``1#forwarded-element``, each ``[pair] *(";" [pair])``, ``pair = token "=" value``.

    Returns the elements (parameter names lower-cased, values unquoted), or ``None`` when the value is
    malformed, repeats a parameter within an element (§4), or exceeds the bounds."""
    if len(value) > MAX_HEADER:
        return None
    elements: list[dict[str, str]] = [{}]
    i = _skip_ows(value, 0)
    while i < len(value):
        ch = value[i]
        if ch == ",":
            if len(elements) >= MAX_ELEMENTS:
                return None
            elements.append({})
            i = _skip_ows(value, i + 1)
            continue
        if ch == ";":
            i = _skip_ows(value, i + 1)
            continue
        name, i = _token(value, i)
        if not name or i >= len(value) or value[i] != "=":
            return None
        i += 1
        if i < len(value) and value[i] == '"':
            quoted = _quoted(value, i)
            if quoted is None:
                return None
            text, i = quoted
        else:
            text, i = _token(value, i)
            if not text:
                return None
        name = name.lower()
        if name in elements[-1]:
            return None
        elements[-1][name] = text
        i = _skip_ows(value, i)
        if i < len(value) and value[i] not in ",;":
            return None
    return [e for e in elements if e]


@dataclass(frozen=True, slots=True)
class Node:
    """RFC 7239 §6 ``node``: ``kind`` is ``ip``, ``obfuscated`` or ``unknown``."""

    kind: str
    host: str
    port: int = 0


def parse_node(value: str | None) -> Node | None:
    """``nodename [":" node-port]`` with ``nodename = IPv4address / "[" IPv6address "]" / "unknown" / obfnode``;
    ``None`` when malformed (a bare IPv6 address, a zone identifier, a port over 65535 ...)."""
    if value is None or not value or len(value) > 128:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if "%" in name:
            return None
        try:
            host = str(ipaddress.IPv6Address(name))
        except ValueError:
            return None
        return _with_port(Node("ip", host), rest)
    name, sep, port = value.partition(":")
    rest = sep + port
    if name.lower() == "unknown":
        return _with_port(Node("unknown", "unknown"), rest)
    if _OBF.fullmatch(name):
        return _with_port(Node("obfuscated", name), rest)
    try:
        host = str(ipaddress.IPv4Address(name))
    except ValueError:
        return None
    return _with_port(Node("ip", host), rest)


def _with_port(node: Node, rest: str) -> Node | None:
    if not rest:
        return node
    port = rest[1:]
    if not rest.startswith(":"):
        return None
    if _OBF.fullmatch(port):
        return node
    if _PORT.fullmatch(port) and int(port) <= 65535:
        return Node(node.kind, node.host, int(port))
    return None


def client_hop(elements: Sequence[dict[str, str]], trusted: TrustedProxies) -> dict[str, str] | None:
    """The right-most element whose ``for=`` is not a trusted proxy (the left-most if all are); ``None`` when
    the walk meets an element without a well-formed ``for=`` first."""
    for element in reversed(elements):
        node = parse_node(element.get("for"))
        if node is None:
            return None
        if node.kind != "ip" or node.host not in trusted:
            return element
    return elements[0] if elements else None


def forwarded_client(
    values: Sequence[str], trusted: TrustedProxies
) -> tuple[tuple[str, int] | None, str | None]:
    """From the ``Forwarded`` field lines of a trusted peer: the client ``(host, port)`` (``None``: keep the
    TCP peer) and the scheme (``None``: keep it)."""
    elements = parse_forwarded(", ".join(values)) if values else None
    if not elements:
        return None, None
    hop = client_hop(elements, trusted)
    if hop is None:
        return None, None
    node = parse_node(hop.get("for"))
    proto = hop.get("proto", "").lower()
    scheme = proto if proto in ("http", "https") else None
    if node is None or node.kind == "unknown":
        return None, scheme
    return (node.host, node.port), scheme


class ForwardedMiddleware:
    """ASGI middleware: ``Forwarded`` of a trusted peer sets ``scope["client"]`` and ``scope["scheme"]``."""

    def __init__(self, app: ASGI3Application, trusted_hosts: Sequence[str]) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted_hosts)

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted.trusts_peer(scope.get("client")):
            values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"forwarded"]
            client, scheme = forwarded_client(values, self.trusted)
            if client is not None:
                scope["client"] = client
            if scheme is not None:
                scope["scheme"] = scheme if scope["type"] == "http" else scheme.replace("http", "ws")
        await self.app(scope, receive, send)
