"""Helpers shared by the browser tests. Playwright is imported lazily so a missing package skips (or fails
under ``JARMOR_REQUIRE_PEERS=1``) through the fixtures instead of breaking collection."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .conftest import ARTIFACTS, PASSWORD, USERNAME

if TYPE_CHECKING:
    from playwright.sync_api import Page

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the fixtures report it
    expect: Any = None  # type: ignore[no-redef]


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/browser/ (never committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, username: str = USERNAME, password: str = PASSWORD) -> None:
    """Type the credentials as a person would and press the button."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def on_login_page(page: Page) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()


def on_consent_page(page: Page) -> None:
    expect(page.get_by_role("heading", name=re.compile(r"^Allow .+ to access your account\?$"))).to_be_visible()
    expect(page.get_by_role("button", name="Allow")).to_be_visible()


def on_problem_page(page: Page, heading: str, error: str | None = None, description: str | None = None) -> None:
    """A sign-in step that cannot go on, explained (``server/problems.py``): no form, the way to start again,
    the error code only as a detail."""
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.locator("main form")).to_have_count(0)
    if error is not None:
        expect(page.locator("#error-code")).to_have_text(error)
    if description is not None:
        expect(page.locator("#error-description")).to_have_text(description)


def on_error_page(page: Page, error: str, description: str | re.Pattern[str] | None = None) -> None:
    expect(page.get_by_role("heading", name="This request was refused")).to_be_visible()
    expect(page.locator("#error-code")).to_have_text(error)
    if description is not None:
        expect(page.locator("#error-description")).to_have_text(description)
