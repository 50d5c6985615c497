"""Strict base64url without padding (RFC 7515 §2, RFC 4648 §5).

``base64.urlsafe_b64decode`` drops characters outside the alphabet, aliases ``+``/``/``, accepts padding and
ignores non-zero trailing bits, so two different strings can decode to the same bytes. Here exactly one
encoding of each byte string is accepted.
"""

from __future__ import annotations

import base64
import binascii
import re

from .errors import MalformedToken

_B64URL = re.compile(rb"[A-Za-z0-9_-]*")


def b64url_decode(segment: str | bytes) -> bytes:
    """Decode canonical unpadded base64url; anything else raises ``MalformedToken``."""
    if isinstance(segment, str):
        if not segment.isascii():
            raise MalformedToken("invalid base64url segment")
        raw = segment.encode("ascii")
    elif isinstance(segment, bytes):
        raw = segment
    else:
        raise MalformedToken("base64url segment must be str or bytes")
    if _B64URL.fullmatch(raw) is None or len(raw) % 4 == 1:
        raise MalformedToken("invalid base64url segment")
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex admits only valid input
        raise MalformedToken("invalid base64url segment") from exc
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != raw:
        raise MalformedToken("non-canonical base64url segment", reason="non_canonical")
    return decoded


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
