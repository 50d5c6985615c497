"""``--login-script FILE``: a scripted sign-in, so that checks needing a completed authorization run against a
server that asks a user to sign in and consent (jarmor without ``--auto-approve``, oidc-provider's
``devInteractions``, a test realm of any product).

The file is JSON: ``{"fields": {"username": "alice", "password": "…", "decision": "approve"}, "max_forms": 4}``.
When an authorization request lands on an HTML page of the issuer's origin (after following the server's own
redirects), the audit submits that page's first ``POST`` form the way a browser would: the form's hidden and
prefilled inputs (CSRF tokens, interaction ids) as they are, every input or button named in ``fields`` with
the value given, and — when ``fields`` names no button of the form — the first named submit button. The form's
``action`` must be on the issuer's origin; at most ``max_forms`` forms per authorization (sign-in, consent,
...). Values are sent only to the issuer's origin and never logged (the transport logs parameter names only).

HTML is read with the standard library's ``html.parser`` (no JavaScript runs): pages that need a script to
build their form are out of reach; a Playwright/Chromium driver is not part of the audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

from jarmor.jose import JoseError, loads_object

MAX_PAGE = 256 * 1024
MAX_FIELDS = 32


class LoginScriptError(ValueError):
    """The ``--login-script`` file is unreadable or malformed; the message names the member."""


@dataclass(frozen=True, slots=True)
class LoginScript:
    fields: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_forms: int = 4


def parse_login_script(data: Mapping[str, object]) -> LoginScript:
    unknown = sorted(set(data) - {"fields", "max_forms"})
    if unknown:
        raise LoginScriptError(f"unknown member {unknown[0][:64]!r} (expected fields, max_forms)")
    fields = data.get("fields")
    if not isinstance(fields, dict) or not fields or len(fields) > MAX_FIELDS:
        raise LoginScriptError(f"member fields must be an object of 1 to {MAX_FIELDS} form fields")
    for name, value in fields.items():
        if not isinstance(value, str) or not name:
            raise LoginScriptError("each member of fields must map a field name to a string")
    max_forms = data.get("max_forms", 4)
    if isinstance(max_forms, bool) or not isinstance(max_forms, int) or not 1 <= max_forms <= 10:
        raise LoginScriptError("member max_forms must be an integer from 1 to 10")
    return LoginScript(fields=dict(fields), max_forms=max_forms)


def load_login_script(path: str) -> LoginScript:
    try:
        data = loads_object(Path(path).read_bytes())
    except OSError as exc:
        raise LoginScriptError(f"cannot read {path}: {exc.strerror}") from exc
    except JoseError as exc:
        raise LoginScriptError(f"{path} is not a JSON object") from exc
    try:
        return parse_login_script(data)
    except LoginScriptError as exc:
        raise LoginScriptError(f"{path}: {exc}") from exc


class _PostForm(HTMLParser):
    """The first ``<form method="post">``: its action, its inputs, its named submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []
        self._open = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and not self._open and a.get("method", "get").lower() == "post":
            self.action, self._open = a.get("action", ""), True
            return
        if not self._open or not a.get("name"):
            return
        kind = a.get("type", "submit" if tag == "button" else "text").lower()
        if tag == "button" or (tag == "input" and kind in ("submit", "image")):
            if kind == "submit" or tag == "input":
                self.buttons.append((a["name"], a.get("value", "")))
        elif tag in ("input", "textarea", "select") and kind not in ("checkbox", "radio", "file", "reset"):
            self.inputs.setdefault(a["name"], a.get("value", ""))
        elif tag == "input" and kind in ("checkbox", "radio") and "checked" in a:
            self.inputs.setdefault(a["name"], a.get("value", "on"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._open:
            self._open, self._done = False, True


def fill_form(html: str, page_url: str, script: LoginScript) -> tuple[str, dict[str, str]] | None:
    """The URL and fields a browser would submit for the page's first POST form, filled from ``script``;
    ``None`` when the page has no POST form."""
    form = _PostForm()
    try:
        form.feed(html[:MAX_PAGE])
    except (AssertionError, ValueError):
        return None
    if form.action is None:
        return None
    data = dict(form.inputs)
    named = {name for name, _ in form.buttons} | set(form.inputs)
    for name, value in script.fields.items():
        if name in named:
            data[name] = value
    if not any(name in data for name, _ in form.buttons) and form.buttons:
        name, value = form.buttons[0]
        data[name] = value
    return urljoin(page_url, form.action or page_url), data
