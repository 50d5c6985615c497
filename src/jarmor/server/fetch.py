"""Fetching what a client points the server at (``jwks_uri``, ``request_uri``), defensively.

A URL in client metadata makes the server an HTTP client on an attacker's behalf (RFC 9101 §10.4.1,
RFC 7591 §5, attack catalog A34: SSRF, hangs, memory exhaustion). Every fetch here therefore:

* accepts only ``https`` — and ``http`` plus loopback addresses only when the issuer itself is loopback
  (local development); no credentials in the URL; the environment's proxies are ignored (a proxy would
  resolve the name itself, out of reach of the address check);
* resolves the host name **once** and refuses the fetch if *any* resolved address is not public
  (private, loopback, link-local, multicast, reserved, unspecified, shared/CGNAT, documentation ranges,
  and IPv4 addresses embedded in IPv4-mapped, 6to4, Teredo or NAT64 IPv6 addresses);
* connects to the checked address itself: the request URL names the IP, while the ``Host`` header, the TLS
  SNI and the certificate check keep the original name (httpx ``sni_hostname`` extension). A second DNS
  answer (rebinding) is never consulted. Each fetch uses a fresh connection (no pool), so a connection
  opened for one name can never carry a request for another;
* never follows redirects (3xx is an error), accepts status 200 only and only the media types the caller
  names, asks for no content coding and refuses one;
* streams the body and stops past ``max_bytes`` (a larger ``Content-Length`` is refused before reading);
* bounds connect and each read, and puts one total deadline over waiting for a slot, resolution,
  connection and body, so a slow or silent server can never hold a request longer than ``total_timeout``.

``TtlCache`` adds a cache with a TTL, single-flight loading and a rate-limited forced refresh.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from ..protocol.addresses import IPAddress, address_allowed, is_loopback_host
from ..protocol.context import Settings
from .http import media_type

log = logging.getLogger("jarmor.fetch")

Resolver = Callable[[str, int], Awaitable[list[str]]]


class FetchError(Exception):
    """The document could not be fetched. ``reason`` is short, stable and safe to log or show."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FetchLimits:
    total_timeout: float = 5.0
    connect_timeout: float = 2.0
    read_timeout: float = 2.0
    max_bytes: int = 64 * 1024
    allow_loopback: bool = False  # http and loopback addresses: only for a loopback issuer
    max_url_length: int = 2000
    max_concurrent: int = 16

    @classmethod
    def for_server(cls, settings: Settings, issuer: str) -> FetchLimits:
        return cls(
            total_timeout=settings.fetch_timeout,
            connect_timeout=min(settings.fetch_connect_timeout, settings.fetch_timeout),
            read_timeout=min(settings.fetch_read_timeout, settings.fetch_timeout),
            max_bytes=settings.fetch_max_bytes,
            allow_loopback=is_loopback_host(urlsplit(issuer).hostname),
        )


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str
    body: bytes
    content_type: str
    address: str  # the IP address the connection went to


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo``), in the resolver's order."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host!r}", reason="dns") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class Fetcher:
    """GET one small document from a client-supplied URL under the limits described in the module doc."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.limits = limits
        self.resolver = resolver
        self._ssl = ssl_context
        self._slots: asyncio.Semaphore | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
        return self._ssl

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of an acceptable URL, or ``FetchError`` (reason ``bad_url``/``scheme``)."""
        if not isinstance(url, str) or not url or len(url) > self.limits.max_url_length or not url.isascii():
            raise FetchError("the URL is empty, too long or not ASCII", reason="bad_url")
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port
        except ValueError as exc:
            raise FetchError("the URL is not valid", reason="bad_url") from exc
        if not host or port == 0 or "@" in parts.netloc or any(c in url for c in "\\\r\n\t "):
            raise FetchError("the URL must be absolute and carry no credentials", reason="bad_url")
        loopback_http = parts.scheme == "http" and self.limits.allow_loopback and is_loopback_host(host)
        if parts.scheme != "https" and not loopback_http:
            raise FetchError("only https URLs are fetched", reason="scheme")
        return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve once and check every address; ``FetchError`` (``forbidden_address``) if any is refused."""
        literal = _ip_literal(host)
        if literal is not None:
            found: list[IPAddress] = [literal]
        else:
            found = []
            for raw in await self.resolver(host, port):
                ip = _ip_literal(raw)
                if ip is None:
                    raise FetchError(f"{host!r} resolves to an unusable address", reason="forbidden_address")
                found.append(ip)
            if not found:
                raise FetchError(f"cannot resolve {host!r}", reason="dns")
        refused = [ip for ip in found if not address_allowed(ip, allow_loopback=self.limits.allow_loopback)]
        if refused:
            raise FetchError(
                f"{host!r} resolves to a non-public address ({refused[0]})", reason="forbidden_address"
            )
        return found

    async def get(self, url: str, *, accept: Collection[str], max_bytes: int | None = None) -> Fetched:
        """Fetch ``url``; the response must be 200 with a media type in ``accept``."""
        scheme, host, port = self.check_url(url)
        limit = max_bytes if max_bytes is not None else self.limits.max_bytes
        wanted = {a.lower() for a in accept}
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limits.max_concurrent)
        try:
            async with asyncio.timeout(self.limits.total_timeout):
                async with self._slots:
                    addresses = await self.addresses(host, port)
                    return await self._fetch(url, scheme, host, port, addresses, wanted, limit)
        except TimeoutError as exc:
            raise FetchError(
                f"no complete answer within {self.limits.total_timeout:g} s", reason="timeout"
            ) from exc

    async def _fetch(
        self,
        url: str,
        scheme: str,
        host: str,
        port: int,
        addresses: list[IPAddress],
        accept: set[str],
        limit: int,
    ) -> Fetched:
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if ":" not in host else f"[{host}]"
        if parts.port is not None:
            host_header += f":{parts.port}"
        timeout = httpx.Timeout(
            connect=self.limits.connect_timeout,
            read=self.limits.read_timeout,
            write=self.limits.read_timeout,
            pool=self.limits.connect_timeout,
        )
        last: Exception | None = None
        async with httpx.AsyncClient(
            verify=self._ssl_context() if scheme == "https" else False,
            trust_env=False,
            follow_redirects=False,
            timeout=timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
        ) as client:
            for ip in addresses:
                literal = f"[{ip}]" if ip.version == 6 else str(ip)
                target = f"{scheme}://{literal}:{port}{path}"
                extensions: dict[str, object] = {"sni_hostname": host} if scheme == "https" else {}
                try:
                    return await self._stream(
                        client, target, host_header, extensions, url, str(ip), accept, limit
                    )
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    if _tls_failure(exc):
                        raise FetchError(f"TLS with {host!r} failed", reason="tls") from exc
                    last = exc  # try the next checked address
        raise FetchError(f"cannot connect to {host!r}", reason="connect") from last

    async def _stream(
        self,
        client: httpx.AsyncClient,
        target: str,
        host_header: str,
        extensions: dict[str, object],
        url: str,
        address: str,
        accept: set[str],
        limit: int,
    ) -> Fetched:
        headers = {
            "Host": host_header,
            "Accept": ", ".join(sorted(accept)),
            "Accept-Encoding": "identity",
            "User-Agent": "jarmor",
        }
        try:
            async with client.stream("GET", target, headers=headers, extensions=extensions) as resp:
                if 300 <= resp.status_code < 400:
                    raise FetchError(
                        f"redirects are not followed (HTTP {resp.status_code})", reason="redirect"
                    )
                if resp.status_code != 200:
                    raise FetchError(f"HTTP {resp.status_code}", reason="status")
                ctype = media_type(resp.headers.get("content-type"))
                if ctype not in accept:
                    raise FetchError(
                        f"content type {ctype[:64]!r} is not one of {', '.join(sorted(accept))}",
                        reason="content_type",
                    )
                if media_type(resp.headers.get("content-encoding", "identity")) not in ("identity", ""):  # same token rule
                    raise FetchError("content codings are not accepted", reason="content_encoding")
                declared = resp.headers.get("content-length")
                if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
                    raise FetchError(f"the document is larger than {limit} bytes", reason="too_large")
                body = bytearray()
                async for chunk in resp.aiter_raw():
                    body += chunk
                    if len(body) > limit:
                        raise FetchError(f"the document is larger than {limit} bytes", reason="too_large")
                return Fetched(url=url, body=bytes(body), content_type=ctype, address=address)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise
        except httpx.TimeoutException as exc:
            raise FetchError("the server is too slow", reason="timeout") from exc
        except httpx.HTTPError as exc:
            reason = "tls" if _tls_failure(exc) else "http"
            raise FetchError(f"the fetch failed ({type(exc).__name__})", reason=reason) from exc


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V | None
    loaded_at: float  # last successful load
    attempted_at: float  # last load attempt, successful or not
    error: Exception | None = None
    forced_at: float | None = None  # last load asked for with refresh=True
    loads: int = 0  # load attempts so far (tells a waiting caller that another one just loaded)


class TtlCache(Generic[K, V]):
    """A small cache for fetched documents: TTL, one load at a time per key, rate-limited forced refresh.

    * a value younger than ``ttl`` is served as is;
    * ``refresh=True`` (e.g. an unknown ``kid``) reloads at once, but at most once per ``refetch_interval``
      per key (counted between forced reloads, so a key rotated just after a load is still picked up);
    * a failed load keeps serving the last good value (never older than ``max_stale``) and is not retried
      for ``refetch_interval``; with nothing cached the failure is raised (and remembered as long).
    """

    def __init__(
        self,
        *,
        ttl: float,
        refetch_interval: float,
        max_stale: float = 86400.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.max_stale = max_stale
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._locks: dict[K, asyncio.Lock] = {}

    def _usable(self, entry: _Entry[V], now: float) -> V:
        if entry.value is not None and now - entry.loaded_at <= self.max_stale:
            return entry.value
        assert entry.error is not None or entry.value is not None
        raise entry.error if entry.error is not None else FetchError("stale", reason="stale")

    def _decide(self, key: K, refresh: bool) -> _Entry[V] | None:
        """The entry to answer from without loading, or ``None`` when a load is due."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        recently_tried = now - entry.attempted_at < self.refetch_interval
        if entry.error is not None and recently_tried:
            return entry  # a failure is not retried within refetch_interval
        if refresh:
            recently_forced = entry.forced_at is not None and now - entry.forced_at < self.refetch_interval
            return entry if recently_forced else None
        return entry if now - entry.loaded_at < self.ttl and entry.value is not None else None

    async def get(self, key: K, load: Callable[[], Awaitable[V]], *, refresh: bool = False) -> V:
        entry = self._decide(key, refresh)
        if entry is not None:
            return self._usable(entry, self._clock())
        lock = self._locks.setdefault(key, asyncio.Lock())
        seen = self._entries.get(key)
        attempts = seen.loads if seen is not None else 0
        async with lock:
            current = self._entries.get(key)
            if current is not None and current.loads != attempts:
                return self._usable(current, self._clock())  # loaded by another caller while we waited
            now = self._clock()
            forced_at = now if refresh else (current.forced_at if current is not None else None)
            try:
                value = await load()
            except Exception as exc:
                if current is None:
                    current = _Entry(value=None, loaded_at=now, attempted_at=now, error=exc)
                else:
                    current.attempted_at, current.error = now, exc
                current.forced_at, current.loads = forced_at, attempts + 1
                self._store(key, current)
                if current.value is not None and now - current.loaded_at <= self.max_stale:
                    log.warning("refresh of %r failed (%s); serving the cached copy", key, exc)
                    return current.value
                raise
            self._store(
                key,
                _Entry(value=value, loaded_at=now, attempted_at=now, forced_at=forced_at, loads=attempts + 1),
            )
            return value

    def _store(self, key: K, entry: _Entry[V]) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            old, _ = self._entries.popitem(last=False)
            self._locks.pop(old, None)

    def invalidate(self, key: K | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
