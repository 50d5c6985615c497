"""Passkeys, TOTP and third-party access on the account page, in real Chromium.

WebAuthn needs a secure context and an RP ID that is a domain, so this server's issuer is
``http://localhost:PORT``; the passkeys come from Chromium's virtual authenticator (DevTools protocol
``WebAuthn.addVirtualAuthenticator``: CTAP2, resident keys, user verification that succeeds), and TOTP codes
are computed with pyotp as an authenticator app would.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyotp
import pytest

from jarmor.store import open_store
from jarmor.store.base import GrantRecord, TokenRecord

from ..e2e.conftest import RunningServer, free_port, start_server, stop_server
from .conftest import PASSWORD
from .support import expect

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page


def _off_loop(coro: Any) -> Any:
    """Run an async store call in a thread of its own (Playwright's sync API keeps a loop in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro()).result()


def _cli(server: RunningServer, *args: str, password: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", *args, "--database", server.database],
        input=(password + "\n") if password else None, text=True, check=True, capture_output=True,
        cwd=server.workdir,
    )
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("jarmor-passkeys")
    port = free_port()
    running = start_server(workdir, "--issuer", f"http://localhost:{port}", port=port, auto_approve=None)
    try:
        for name in ("alice", "carol", "dave"):
            _cli(running, "users", "add", name, "--password-stdin", password=PASSWORD)
        yield replace(running, issuer=f"http://localhost:{port}")
    finally:
        stop_server(running)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab with a virtual platform authenticator that verifies the user."""
    tab = context.new_page()
    cdp = context.new_cdp_session(tab)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
    }})
    tab.cdp = cdp  # type: ignore[attr-defined]
    tab.authenticator_id = added["authenticatorId"]  # type: ignore[attr-defined]
    return tab


def credentials(page: Page) -> list[dict[str, Any]]:
    cdp: Any = page.cdp  # type: ignore[attr-defined]
    return list(cdp.send("WebAuthn.getCredentials", {"authenticatorId": page.authenticator_id})["credentials"])  # type: ignore[attr-defined]


def password_sign_in(page: Page, server: RunningServer, username: str) -> None:
    page.goto(f"{server.issuer}/account/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in with a password").click()


def add_passkey(page: Page) -> None:
    """From the signed-in account page: a passkey on the tab's virtual authenticator, with the default name."""
    page.get_by_role("link", name="Add a passkey").click()
    page.get_by_role("button", name="Create the passkey").click()
    expect(page.locator("#account-message")).to_have_text("Passkey added.")


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to your account")).to_be_visible()


def test_enrol_a_passkey_then_sign_in_with_it(page: Page, server: RunningServer) -> None:
    password_sign_in(page, server, "alice")
    expect(page.locator("#signed-in-with")).to_have_text("password")
    page.get_by_role("link", name="Add a passkey").click()
    page.get_by_label("Name (to recognise it later)").fill("Test laptop")
    page.get_by_role("button", name="Create the passkey").click()
    expect(page.locator("#account-message")).to_have_text("Passkey added.")
    expect(page.locator("tr.method[data-kind=passkey]")).to_contain_text("Test laptop")
    (cred,) = credentials(page)
    assert cred["isResidentCredential"]
    sign_out(page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.locator("#account-name")).to_have_text("alice")
    expect(page.locator("#signed-in-with")).to_have_text("passkey")
    assert credentials(page)[0]["signCount"] >= 1


def test_passkey_only_user_enrols_through_the_one_time_link(page: Page, server: RunningServer) -> None:
    out = _cli(server, "users", "add", "bob", "--passkey-only", "--issuer", server.issuer)
    link = re.search(r"(http://\S+/account/enrol/\S+)", out)
    assert link, out
    page.goto(link.group(1))
    page.get_by_role("button", name="Create the passkey").click()
    expect(page.locator("#notice-title")).to_have_text("Passkey added")
    page.goto(link.group(1))
    expect(page.locator("#notice-title")).to_have_text("Link expired")  # single use
    page.goto(f"{server.issuer}/account/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.locator("#account-name")).to_have_text("bob")


def test_password_and_totp(page: Page, server: RunningServer) -> None:
    password_sign_in(page, server, "carol")
    page.get_by_role("button", name="Set up an authenticator app").click()
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    assert totp.secret in page.locator("#totp-uri").inner_text()
    page.get_by_label("The code the app shows now").fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#account-message")).to_contain_text("Authenticator app added")
    sign_out(page)
    password_sign_in(page, server, "carol")
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code").fill(totp.at(time.time() + 30))  # the next step: this one was used to enrol
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#signed-in-with")).to_have_text("password+totp")


def test_third_party_access_listed_and_revoked(page: Page, server: RunningServer) -> None:
    local = replace(server, issuer=server.issuer.replace("localhost", "127.0.0.1"))
    body = local.register({
        "client_name": "Photo Printer", "owner": "Printing Ltd", "redirect_uris": ["https://printer.example/cb"],
        "token_endpoint_auth_method": "none", "grant_types": ["authorization_code"],
    })
    client_id = str(body["client_id"])
    now = int(time.time())

    async def seed() -> None:
        store = open_store(server.database)
        try:
            await store.grants.create(GrantRecord("g-printer", client_id, "dave", "openid email", now - 3600))
            await store.tokens.create(TokenRecord("h-printer", "access_token", client_id, "dave", "openid email",
                                                  "g-printer", now - 60, now + 600))
        finally:
            await store.close()

    _off_loop(seed)
    password_sign_in(page, server, "dave")
    row = page.locator("tr.grant")
    expect(row).to_have_count(1)
    expect(row.locator(".app-name")).to_have_text("Photo Printer")
    expect(row).to_contain_text("by Printing Ltd")
    expect(row.locator(".third-party-badge")).to_be_visible()
    expect(row.locator("li[data-scope=email]")).to_have_text("See your email address")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#account-message")).to_have_text("Access revoked.")
    expect(page.locator("#no-access")).to_be_visible()

    async def check() -> tuple[GrantRecord | None, TokenRecord | None, list[str]]:
        store = open_store(server.database)
        try:
            events = await store.audit.list(target=f"client:{client_id}")
            return (await store.grants.get("g-printer"), await store.tokens.get("h-printer"),
                    [f"{e.actor} {e.action}" for e in events])
        finally:
            await store.close()

    grant, token, events = _off_loop(check)
    assert grant is not None and grant.revoked_at is not None
    assert token is not None and token.revoked_at is not None
    assert "user:dave grant.revoke" in events


@pytest.fixture(scope="module")
def rp(server: RunningServer) -> Iterator[Any]:
    """A client application of the localhost issuer (registered over 127.0.0.1: the same server)."""
    from jarmor.client import ClientConfig
    from jarmor.jose import generate_jwk

    from .client_app import ClientApp, RunningApp

    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/cb"
    key = generate_jwk("ES256")
    body = replace(server, issuer=server.issuer.replace("localhost", "127.0.0.1")).register({
        "client_name": "Passkey Test App", "risk_tier": "baseline", "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.public_dict()]},
        "authorization_signed_response_alg": "ES256", "id_token_signed_response_alg": "ES256",
        "response_modes": ["jwt"], "grant_types": ["authorization_code"],
    })
    config = ClientConfig(issuer=server.issuer, client_id=str(body["client_id"]), redirect_uri=redirect_uri,
                          signing_key=key, allow_insecure_http=True)
    running = RunningApp(ClientApp(config), port).start()
    try:
        yield running
    finally:
        running.stop()


def test_an_authorization_flow_signed_in_with_a_passkey(page: Page, server: RunningServer, rp: Any) -> None:
    """The interaction's sign-in page offers the passkey; the device-bound passkey (the virtual authenticator's
    credentials are not backup eligible) is a multi-factor, phishing-resistant sign-in on its own."""
    _cli(server, "users", "add", "erin", "--password-stdin", password=PASSWORD)
    password_sign_in(page, server, "erin")
    add_passkey(page)
    page.goto(f"{rp.url}/login?mode=jwt")
    expect(page.locator("#client-name")).to_have_text("Passkey Test App")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    expect(page.get_by_text("Signed in as erin")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#outcome")).to_have_text("ok")
    expect(page.locator("#subject")).to_have_text("erin")


ASSURED_CONFIG = """
[policy.tiers.baseline]
controls = ["pkce_s256", "authentication_assurance"]
authentication = { acr = "aal3", max_age = 43200 }

[policy.tiers.elevated]
controls = ["pkce_s256", "signed_request_object", "jarm", "private_key_jwt", "authentication_assurance"]
authentication = { acr = "aal2", max_age = 86400 }
"""


@pytest.fixture(scope="module")
def assured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose baseline tier needs AAL3 (critical-like: a device-bound passkey) and whose elevated
    tier needs AAL2 (high-like: a password and a TOTP code)."""
    workdir = tmp_path_factory.mktemp("jarmor-assured")
    (workdir / "jarmor.toml").write_text(ASSURED_CONFIG)
    port = free_port()
    running = start_server(workdir, "--issuer", f"http://localhost:{port}", "--config", str(workdir / "jarmor.toml"),
                           port=port, auto_approve=None)
    try:
        for name in ("frank", "gina"):
            _cli(running, "users", "add", name, "--password-stdin", password=PASSWORD)
        yield replace(running, issuer=f"http://localhost:{port}")
    finally:
        stop_server(running)


def _rp_of(server: RunningServer, tier: str) -> Any:
    """A client application of ``tier`` registered with what the built-in tier requires of it: DPoP-bound
    tokens for sender-constrained tokens (RFC 9449), and for encrypted request objects and JARM an ECDH-ES
    key to decrypt responses with (the app then encrypts its request objects to the server's key)."""
    from jarmor.client import ClientConfig
    from jarmor.jose import JwkSet, generate_jwk
    from jarmor.protocol.policy import DEFAULT_TIERS, Control

    from .client_app import ClientApp, RunningApp

    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/cb"
    key = generate_jwk("ES256")
    required = DEFAULT_TIERS[tier].requires
    metadata: dict[str, Any] = {
        "client_name": f"{tier} app", "risk_tier": tier, "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.public_dict()]},
        "authorization_signed_response_alg": "ES256", "id_token_signed_response_alg": "ES256",
        "response_modes": ["jwt"], "grant_types": ["authorization_code"],
    }
    options: dict[str, Any] = {}
    if required(Control.SENDER_CONSTRAINED_TOKENS):
        metadata["dpop_bound_access_tokens"] = options["dpop"] = True
    if required(Control.ENCRYPTED_REQUEST_OBJECT) or required(Control.ENCRYPTED_JARM):
        enc_key = generate_jwk("ECDH-ES")
        metadata["jwks"]["keys"].append(enc_key.public_dict())
        encryption = {
            "request_object_encryption_alg": "ECDH-ES", "request_object_encryption_enc": "A128GCM",
            "authorization_encrypted_response_alg": "ECDH-ES", "authorization_encrypted_response_enc": "A128GCM",
        }
        metadata.update(encryption)
        options.update(encryption, decryption_keys=JwkSet((enc_key,)))
    body = replace(server, issuer=server.issuer.replace("localhost", "127.0.0.1")).register(metadata)
    config = ClientConfig(issuer=server.issuer, client_id=str(body["client_id"]), redirect_uri=redirect_uri,
                          signing_key=key, allow_insecure_http=True, **options)
    return RunningApp(ClientApp(config), port).start()


def test_critical_flow_signed_in_with_a_passkey(page: Page, server: RunningServer) -> None:
    """The built-in ``critical`` tier as shipped (default policy): an ES256-signed request object encrypted to
    the server (JWE) and pushed (PAR), DPoP-bound tokens, encrypted JARM. The user, signed in to the account
    page with a password, approves with a passkey; ``jarmor.client`` asked for ``acr_values=aal3`` and a
    ``max_age``, so it accepted the ID token only with ``acr`` aal3 and an ``auth_time`` within it (OIDC Core
    §3.1.3.7), which the result page then shows."""
    _cli(server, "users", "add", "hana", "--password-stdin", password=PASSWORD)
    password_sign_in(page, server, "hana")
    add_passkey(page)
    app = _rp_of(server, "critical")
    try:
        page.goto(f"{app.url}/login?mode=jwt&acr_values=aal3&max_age=600")
        expect(page.locator("#client-name")).to_have_text("critical app")
        before = int(time.time())
        page.get_by_role("button", name="Use a passkey").click()
        page.get_by_role("button", name="Allow").click()
        expect(page.locator("#outcome")).to_have_text("ok")
        after = int(time.time())
        expect(page.locator("#subject")).to_have_text("hana")
        expect(page.locator("#verified")).to_have_text("jarm")  # the encrypted JARM response, decrypted and verified
        expect(page.locator("#token_type")).to_have_text("DPoP")
        expect(page.locator("#acr")).to_have_text("aal3")
        expect(page.locator("#amr")).to_have_text("hwk user mfa")
        auth_time = int(page.locator("#auth_time").inner_text())
        assert before - 1 <= auth_time <= after + 1  # when this flow signed in (amr: with the passkey)
        (result,) = app.app.results
        assert result["outcome"] == "ok" and result["auth_time"] == auth_time
    finally:
        app.stop()


def test_aal3_flow_offers_only_the_passkey_and_completes_with_it(page: Page, assured: RunningServer) -> None:
    password_sign_in(page, assured, "gina")
    add_passkey(page)
    app = _rp_of(assured, "baseline")
    try:
        page.goto(f"{app.url}/login?mode=jwt")
        expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
        expect(page.get_by_label("Password")).to_have_count(0)
        page.get_by_role("button", name="Use a passkey").click()
        page.get_by_role("button", name="Allow").click()
        expect(page.locator("#outcome")).to_have_text("ok")
        expect(page.locator("#subject")).to_have_text("gina")
        expect(page.locator("#acr")).to_have_text("aal3")  # checked by jarmor.client in the ID token
        expect(page.locator("#amr")).to_have_text("hwk user mfa")
    finally:
        app.stop()


def enrol_totp(page: Page, server: RunningServer, username: str) -> pyotp.TOTP:
    """``username`` sets up an authenticator app on the account page (the code it shows confirms it)."""
    password_sign_in(page, server, username)
    page.get_by_role("button", name="Set up an authenticator app").click()
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    page.get_by_label("The code the app shows now").fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#account-message")).to_contain_text("Authenticator app added")
    return totp


def sign_in_with_a_code(page: Page, app: Any, username: str, totp: pyotp.TOTP) -> None:
    """The app's login: the password, then (asked to step up) the next TOTP code, then Allow: aal2."""
    page.goto(f"{app.url}/login?mode=jwt")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#step-up-notice")).to_be_visible()
    page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#outcome")).to_have_text("ok")
    expect(page.locator("#subject")).to_have_text(username)
    expect(page.locator("#acr")).to_have_text("aal2")
    expect(page.locator("#amr")).to_have_text("pwd otp mfa")


def test_aal2_flow_with_password_and_totp(page: Page, assured: RunningServer) -> None:
    totp = enrol_totp(page, assured, "frank")
    app = _rp_of(assured, "elevated")
    try:
        sign_in_with_a_code(page, app, "frank", totp)
    finally:
        app.stop()


def test_the_built_in_high_tier_asks_for_a_second_factor(page: Page, server: RunningServer) -> None:
    """The default policy, as shipped: a high client's flow (PAR, DPoP) needs the password and then a TOTP
    code; the ID token says aal2. A user with a password only is refused, never approved with it."""
    _cli(server, "users", "add", "jana", "--password-stdin", password=PASSWORD)
    _cli(server, "users", "add", "ivan", "--password-stdin", password=PASSWORD)
    totp = enrol_totp(page, server, "jana")
    app = _rp_of(server, "high")
    try:
        sign_in_with_a_code(page, app, "jana", totp)
        page.goto(f"{app.url}/login?mode=jwt")
        page.get_by_label("Username").fill("ivan")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.locator("#outcome")).to_have_text("server-error")
        expect(page.locator("#error")).to_have_text("access_denied")
    finally:
        app.stop()
