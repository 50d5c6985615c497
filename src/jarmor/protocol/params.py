"""Parsing of query strings and form bodies into single-valued parameter maps.

RFC 6749 §3.1 / §3.2: "Request and response parameters MUST NOT be included more than once." Parameters
sent without a value are treated as omitted (RFC 6749 §3.1). Limits bound the work done for hostile input.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from . import errors
from .vocabulary import KNOWN_PARAMETERS

MAX_PARAMETERS = 64
MAX_QUERY_LENGTH = 64 * 1024
MAX_VALUE_LENGTH = 64 * 1024


def parameter_name(name: str) -> str:
    """How an error message may refer to a parameter: by name when it is one this server knows, otherwise
    generically (a name chosen by the sender is never repeated; RFC 6749 §4.1.2.1 error text)."""
    return f"parameter {name}" if name in KNOWN_PARAMETERS else "a parameter"


def parse_parameters(raw: str | bytes, *, limit: int = MAX_QUERY_LENGTH) -> dict[str, str]:
    """Parse ``application/x-www-form-urlencoded`` data strictly; raise ``invalid_request`` on abuse."""
    if isinstance(raw, bytes):
        if len(raw) > limit:
            raise errors.PayloadTooLarge("request too large")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.InvalidRequest("parameters must be UTF-8") from exc
    if len(raw) > limit:
        raise errors.PayloadTooLarge("request too large")
    if raw.count("&") >= MAX_PARAMETERS * 2:
        raise errors.InvalidRequest("too many parameters")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMETERS * 2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidRequest("malformed parameters") from exc
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise errors.InvalidRequest(f"{parameter_name(name)} is repeated (RFC 6749 §3.1)")
        if "\x00" in name or "\x00" in value:
            raise errors.InvalidRequest("parameters must not contain NUL characters")
        if len(value) > MAX_VALUE_LENGTH:
            raise errors.InvalidRequest(f"{parameter_name(name)} is too long")
        out[name] = value
    # a parameter with an empty value is treated as omitted, but still counts as a repetition above
    return {k: v for k, v in out.items() if v != ""}
