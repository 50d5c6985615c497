"""The values that cross the sans-I/O boundary: an HTTP request the core wants sent, and the response.

Core operations are generators of type ``Steps[T]``: they yield ``HttpRequest`` values, receive the
``HttpResponse`` for each, and finally return ``T``. A driver (``OAuthClient`` with ``httpx.Client``,
``AsyncOAuthClient`` with ``httpx.AsyncClient``, or any other HTTP stack) only carries bytes; a transport
failure is thrown into the generator as ``TransportError`` so the core decides what it means.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

T = TypeVar("T")

Steps = Generator["HttpRequest", "HttpResponse", T]

DEFAULT_MAX_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One outgoing request. ``hop`` names the protocol step (``discovery``, ``jwks``, ``par``, ``token``).

    Drivers must not follow redirects and must refuse bodies longer than ``max_body`` bytes.
    """

    hop: str
    method: Literal["GET", "POST"]
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = field(default=None, repr=False)
    max_body: int = DEFAULT_MAX_BODY


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes = field(repr=False)
