"""Stateless CSRF tokens for the sign-in forms (end users' interaction pages, the administrators' sign-in).

A token is HMAC-SHA256, keyed with the server's current secret, over what the form is bound to (the
interaction and the browser's binding cookie, the stage; or the login binding — random url-safe values and
fixed names, never containing the ``|`` that joins them), base64url without padding.
Any live secret verifies, so a page rendered before a secret rotation still submits; comparison is constant
time. (Signed-in administrators use their session's random token instead: ``admin/sessions.py``.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def csrf_token(secret: bytes, *bound_to: str) -> str:
    mac = hmac.new(secret, "|".join(bound_to).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_valid(secrets: Iterable[bytes], token: str, *bound_to: str) -> bool:
    ok = False
    for secret in secrets:  # no early exit: the time does not tell which secret matched
        ok |= hmac.compare_digest(token.encode(), csrf_token(secret, *bound_to).encode())
    return ok
