"""Real Chromium (Debian's ``chromium`` package, driven by Playwright) against a real ``jarmor serve``.

No browser is ever downloaded: Playwright launches ``/usr/bin/chromium``. When Playwright or Chromium is
missing the tests skip with the reason, unless ``JARMOR_REQUIRE_PEERS=1`` (``.ci/run``), where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jarmor.client import ClientConfig
from jarmor.jose import generate_jwk
from jarmor.protocol.policy import DEFAULT_TIERS, Control
from tests.e2e.conftest import RunningServer, free_port, start_server, stop_server

from .client_app import ClientApp, RunningApp

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = os.environ.get("JARMOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
USERNAME = "alice"
PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
ALL_MODES = ("query", "fragment", "form_post", "jwt", "query.jwt", "fragment.jwt", "form_post.jwt")
XSS_NAME = "<img src=x onerror=alert(1)><script>alert(1)</script>"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _missing(reason: str) -> None:
    if os.environ.get("JARMOR_REQUIRE_PEERS") == "1":
        pytest.fail(f"{reason} (JARMOR_REQUIRE_PEERS=1: browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package", autouse=True)
def playwright() -> Iterator[Playwright]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set JARMOR_CHROMIUM)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="package")
def jarmor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``jarmor serve`` in interactive mode (login and consent pages), with one user."""
    workdir = tmp_path_factory.mktemp("jarmor-browser")
    server = start_server(workdir, auto_approve=None)
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "jarmor.cli.main",
                "users",
                "add",
                USERNAME,
                "--password-stdin",
                "--database",
                server.database,
            ],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
            cwd=workdir,
        )
        yield server
    finally:
        stop_server(server)


@dataclass
class Rp:
    """A registered client and its running web application."""

    running: RunningApp
    client_id: str
    issuer: str
    apps: list[RunningApp] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def app(self) -> ClientApp:
        return self.running.app


def start_rp(
    server: RunningServer,
    *,
    tier: str = "baseline",
    modes: tuple[str, ...] = ALL_MODES,
    client_name: str = "Browser Test App",
    **metadata: Any,
) -> Rp:
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/cb"
    key = generate_jwk("ES256")
    if DEFAULT_TIERS[tier].requires(Control.SENDER_CONSTRAINED_TOKENS):  # the app then uses DPoP (RFC 9449)
        metadata.setdefault("dpop_bound_access_tokens", True)
    body = server.register(
        {
            "client_name": client_name,
            "risk_tier": tier,
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_dict()]},
            "authorization_signed_response_alg": "ES256",
            "id_token_signed_response_alg": "ES256",
            "response_modes": list(modes),
            "grant_types": ["authorization_code", "refresh_token"],
            **metadata,
        }
    )
    config = ClientConfig(
        issuer=server.issuer,
        client_id=str(body["client_id"]),
        redirect_uri=redirect_uri,
        signing_key=key,
        allow_insecure_http=True,
        dpop=body.get("dpop_bound_access_tokens") is True,
    )
    running = RunningApp(ClientApp(config), port).start()
    return Rp(running, config.client_id, server.issuer)


@pytest.fixture(scope="package")
def rp(jarmor: RunningServer) -> Iterator[Rp]:
    app = start_rp(jarmor)
    try:
        yield app
    finally:
        app.running.stop()


@pytest.fixture(scope="package")
def xss_rp(jarmor: RunningServer) -> Iterator[Rp]:
    app = start_rp(jarmor, client_name=XSS_NAME, modes=("jwt",))
    try:
        yield app
    finally:
        app.running.stop()


@dataclass
class Watched:
    """A page plus what happened in it: dialogs, console messages, every request and navigation."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 900, "height": 760})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def watch(page: Page) -> Watched:
    w = Watched(page)

    def on_dialog(dialog: Any) -> None:
        w.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: w.console.append(f"{msg.type}: {msg.text}"))
    page.on("request", lambda req: w.requests.append(f"{req.method} {req.url}"))
    page.on("framenavigated", lambda frame: w.navigations.append(frame.url))
    return w


@pytest.fixture
def tab(context: BrowserContext) -> Watched:
    return watch(context.new_page())
