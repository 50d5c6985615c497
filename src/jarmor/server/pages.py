"""HTML pages: login, consent, error and form_post. Autoescaped templates and strict security headers."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[A-Za-z0-9.\-:\[\]]+")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_NEVER_SCHEMES = frozenset({"javascript", "data", "blob", "filesystem", "file", "about"})

_templates = Environment(
    loader=PackageLoader("jarmor.server", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)


def csp_source(url: str) -> str | None:
    """The CSP source expression for where ``url`` points: its origin for http(s), its scheme for a
    private-use scheme (RFC 8252 §7.1), ``None`` when it cannot be expressed safely."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if _SCHEME.fullmatch(scheme) is None or scheme in _NEVER_SCHEMES:
        return None
    if scheme in ("http", "https"):
        origin = f"{scheme}://{parts.netloc}"
        return origin if _ORIGIN.fullmatch(origin) else None
    return f"{scheme}:"


def page(template: str, context: Mapping[str, Any], *, status: int = 200, form_action: str | None = None) -> HTMLResponse:
    """Render a page with a per-response CSP nonce; no framing, no referrer, never cached.

    ``form_action`` is a CSP source the page's forms may also reach: CSP ``form-action`` governs the
    redirects that follow a submission too (CSP3 §6.4.1), so a login or consent page whose POST answers
    with a redirect to the client must allow the client's redirect URI or the browser stops there."""
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template(template).render(nonce=nonce, **context)
    form_src = "'self'" if form_action is None else f"'self' {form_action}"
    csp = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        f"form-action {form_src}; frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-cache, no-store",
            "Pragma": "no-cache",
            "Content-Security-Policy": csp,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def form_post_page(action: str, fields: Mapping[str, str]) -> HTMLResponse:
    """OAuth 2.0 Form Post Response Mode: an auto-submitting form with escaped values."""
    return page("form_post.html", {"action": action, "fields": list(fields.items())}, form_action=csp_source(action))
