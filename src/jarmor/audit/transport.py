"""The only way the audit talks to a server: bounded, rate-limited, confined to the issuer's endpoints,
and logged without secrets.

Safe to point at production (issue 16): at most ``max_requests`` requests, at most ``rate`` per second, only
to URLs the issuer's discovery document names on the issuer's own origin (scheme, host and port) — and, only
with ``follow_interactions``, GET requests to the pages of that origin the server redirects to, and with a
``--login-script`` the POST of the sign-in and consent forms of those pages; with ``--mix-up-client`` the
discovered endpoints of the second issuer's origin too — never
following redirects (a redirect to the client's ``redirect_uri`` is read, not fetched). Each request is
recorded as ``METHOD origin/path [parameter names] -> status``: parameter *names* only, so no secret, code,
token or assertion ever reaches the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

import httpx

from .signin import LoginScript

MAX_BODY = 256 * 1024


class AuditAborted(Exception):
    """The audit cannot go on (budget exhausted, endpoint not allowed, transport failure)."""


class BudgetExhausted(AuditAborted):
    pass


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def strip_url(url: str) -> str:
    """The URL without query, fragment or user info: what the log may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class AuditHttp:
    """A bounded HTTP client for one issuer. ``allow`` adds the endpoints discovery named."""

    def __init__(
        self,
        issuer: str,
        *,
        max_requests: int,
        rate: float,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
        follow_interactions: bool = False,
        login_script: LoginScript | None = None,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.issuer_origin = origin(issuer)
        self.origins = {self.issuer_origin}  # plus a second issuer's, named with --mix-up-issuer
        self.max_requests = max_requests
        self.interval = 1.0 / rate
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)
        self._owns_client = client is None
        self._sleep = sleep
        self._clock = clock
        self._last: float | None = None
        self._allowed: set[str] = set()
        self.login_script = login_script
        self.follow_interactions = follow_interactions or login_script is not None
        self.log: list[str] = []

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def add_origin(self, issuer: str) -> None:
        """``--mix-up-issuer`` with ``--mix-up-client``: the endpoints of that issuer's origin may be allowed
        too (the user named it); its interaction pages are never followed."""
        self.origins.add(origin(issuer))

    def allow(self, url: str) -> bool:
        """Permit requests to ``url`` (no query) if it is on an audited origin; say whether it is."""
        if origin(url) not in self.origins:
            return False
        self._allowed.add(strip_url(url))
        return True

    def allowed(self, url: str) -> bool:
        return strip_url(url) in self._allowed

    @property
    def sent(self) -> int:
        return len(self.log)

    def remaining(self) -> int:
        return self.max_requests - len(self.log)

    def _pace(self) -> None:
        now = self._clock()
        if self._last is not None:
            wait = self._last + self.interval - now
            if wait > 0:
                self._sleep(wait)
                now = self._clock()
        self._last = now

    def request(
        self,
        method: str,
        url: str,
        *,
        any_path: bool = False,
        params: Sequence[tuple[str, str]] | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: object = None,
    ) -> httpx.Response:
        form_post = method == "POST" and self.login_script is not None
        on_origin = (any_path and (method == "GET" or form_post) and self.follow_interactions
                     and origin(url) == self.issuer_origin)
        if strip_url(url) not in self._allowed and not on_origin:
            raise AuditAborted(f"refusing to contact {strip_url(url)}: not an endpoint of the issuer's origin")
        if len(self.log) >= self.max_requests:
            raise BudgetExhausted(f"request budget of {self.max_requests} exhausted")
        self._pace()
        names = [n for n, _ in params or ()] + list(form or {})
        if json_body is not None and isinstance(json_body, Mapping):
            names += [str(k) for k in json_body]
        shown = f"{method} {strip_url(url)}" + (f" [{', '.join(names)}]" if names else "")
        try:
            response = self._client.request(
                method, url, params=list(params or ()), data=dict(form) if form else None,
                headers=dict(headers or {}), json=json_body,
            )
            response.read()
        except httpx.HTTPError as exc:
            self.log.append(f"{shown} -> transport error")
            raise AuditAborted(f"{method} {strip_url(url)} failed: {type(exc).__name__}") from exc
        self.log.append(f"{shown} -> {response.status_code}")
        if len(response.content) > MAX_BODY:
            raise AuditAborted(f"{strip_url(url)} answered more than {MAX_BODY} bytes")
        return response

    def get(self, url: str, params: Sequence[tuple[str, str]] | None = None) -> httpx.Response:
        return self.request("GET", url, params=params)

    def follow(self, url: str) -> httpx.Response:
        """``--follow-interactions``: GET a page of the issuer's origin the server redirected to (its
        interaction, e.g. a test deployment's auto-approving or scripted sign-in), keeping its cookies."""
        return self.request("GET", url, any_path=True)

    def submit(self, url: str, form: Mapping[str, str]) -> httpx.Response:
        """``--login-script``: POST a sign-in or consent form to a page of the issuer's origin (values are
        never logged: the log shows field names only)."""
        return self.request("POST", url, any_path=True, form=form)

    def post_form(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return self.request("POST", url, form=form, headers=headers)
