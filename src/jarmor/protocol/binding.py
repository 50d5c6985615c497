"""Sender-constrained tokens: what an access (or refresh) token is bound to, and its ``cnf`` claim.

RFC 9449 §6 (DPoP: ``cnf.jkt``, the RFC 7638 thumbprint of the proof key) and RFC 8705 §3.1 (mTLS:
``cnf["x5t#S256"]``, the base64url SHA-256 of the DER client certificate). Token records store the binding
(``TokenRecord.extra["cnf"]``); introspection, JWT access tokens and flow records report it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["TokenBinding", "binding_from_cnf", "cnf"]

_MEMBER = {"dpop": "jkt", "mtls": "x5t#S256"}


@dataclass(frozen=True)
class TokenBinding:
    method: Literal["dpop", "mtls"]
    thumbprint: str


def cnf(binding: TokenBinding) -> dict[str, str]:
    """The confirmation claim (RFC 7800 §3.1) for ``binding``: ``{"jkt": ...}`` or ``{"x5t#S256": ...}``."""
    return {_MEMBER[binding.method]: binding.thumbprint}


def binding_from_cnf(value: Mapping[str, Any] | None) -> TokenBinding | None:
    """The binding a stored ``cnf`` describes (None for a bearer token or anything unrecognised)."""
    if not isinstance(value, Mapping):
        return None
    jkt, x5t = value.get("jkt"), value.get("x5t#S256")
    if isinstance(jkt, str) and jkt:
        return TokenBinding("dpop", jkt)
    if isinstance(x5t, str) and x5t:
        return TokenBinding("mtls", x5t)
    return None
