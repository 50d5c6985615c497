"""Strict base64url without padding (RFC 7515 §2, RFC 4648 §5).

``base64.urlsafe_b64decode`` drops characters outside the alphabet, aliases ``+``/``/``, accepts padding and
ignores non-zero trailing bits, so two different strings can decode to the same bytes. Here exactly one
encoding of each byte string is accepted: only the 64 characters of the alphabet, no padding, never a length
of 1 modulo 4, and the bits of the last character that encode nothing must be zero (RFC 4648 §3.5), which
is what makes the spelling canonical. The decoding itself is ``binascii``'s.
"""

from __future__ import annotations

import binascii
from typing import Final

from .errors import MalformedToken

ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# base64url -> base64 for the 64 characters of the alphabet; every other byte -> "!", which binascii's strict
# mode refuses (so one pass both checks the alphabet and converts it).
_TO_STANDARD: Final = bytes(c if c in ALPHABET else ord("!") for c in range(256)).translate(
    bytes.maketrans(b"-_", b"+/")
)
_FROM_STANDARD: Final = bytes.maketrans(b"+/", b"-_")
# The last character of a segment of length 2 (mod 4) carries 4 unused bits, of length 3 (mod 4) 2 unused
# bits: canonical only when they are zero, i.e. the character's value is a multiple of 16 or of 4.
_CANONICAL_LAST: Final = {0: ALPHABET, 2: ALPHABET[::16], 3: ALPHABET[::4]}
_PADDING: Final = {0: b"", 2: b"==", 3: b"="}


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
    rem = len(raw) % 4
    if rem == 1:
        raise MalformedToken("invalid base64url segment")
    try:
        decoded = binascii.a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[rem], strict_mode=True)
    except (binascii.Error, ValueError) as exc:  # a character outside the alphabet
        raise MalformedToken("invalid base64url segment") from exc
    if rem and raw[-1] not in _CANONICAL_LAST[rem]:
        raise MalformedToken("non-canonical base64url segment", reason="non_canonical")
    return decoded


def b64url_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_FROM_STANDARD).decode("ascii")
