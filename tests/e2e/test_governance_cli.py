"""Governance from the command line against a running ``jarmor serve`` and its SQLite database.

``jarmor clients list|show|offboard``, ``jarmor review [revoke]`` and ``jarmor admins add`` run as separate
processes beside the server, as an operator would run them; their effects are checked over real HTTP
(introspection, PAR, /authorize) and in the RFC 7592 management API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from jarmor.client import ClientConfig, OAuthClient, ParError
from jarmor.jose import generate_jwk

from .conftest import RunningServer, start_server, stop_server

pytestmark = pytest.mark.e2e

REDIRECT = "http://127.0.0.1:9999/cb"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("jarmor-governance")
    running = start_server(workdir)
    try:
        yield running
    finally:
        stop_server(running)


def jarmor(server: RunningServer, *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", *args, "--database", server.database],
        input=stdin, capture_output=True, text=True, timeout=120, cwd=server.workdir,
    )
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def as_json(out: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(out.stdout)


class App:
    """A relying party registered dynamically, driving real flows with the client library."""

    def __init__(self, server: RunningServer, **metadata: Any) -> None:
        self.key = generate_jwk("ES256")
        self.registration = server.register({
            "client_name": "Vendor Portal",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [self.key.public_dict()]},
            "authorization_signed_response_alg": "ES256",
            "id_token_signed_response_alg": "ES256",
            "grant_types": ["authorization_code", "refresh_token"],
            **metadata,
        })
        self.client_id = str(self.registration["client_id"])
        self.oauth = OAuthClient(ClientConfig(
            issuer=server.issuer, client_id=self.client_id, redirect_uri=REDIRECT, signing_key=self.key,
            allow_insecure_http=True,
        ))

    def tokens(self, scope: str = "openid profile") -> Any:
        start = self.oauth.start_authorization(scope=scope, response_mode="query.jwt", use_par=True)
        url = start.url
        with httpx.Client() as ua:
            while not url.startswith(REDIRECT):
                r = ua.get(url)
                assert r.status_code == 303, r.text[:300]
                url = urljoin(url, r.headers["location"])
        return self.oauth.exchange_code(self.oauth.handle_callback(url, expected_state=start.state))


@pytest.fixture(scope="module")
def resource_server(server: RunningServer) -> dict[str, Any]:
    """A resource server registered by an administrator (``resource_server`` cannot be self-asserted)."""
    path = Path(server.workdir) / "rs.json"
    path.write_text(json.dumps({
        "client_name": "Payments API", "grant_types": ["client_credentials"], "redirect_uris": [],
        "token_endpoint_auth_method": "client_secret_post", "scope": "profile", "resource_server": True,
        "owner": "team-payments",
    }))
    return dict(as_json(jarmor(server, "clients", "add", "--metadata", str(path))))


def introspect(server: RunningServer, rs: dict[str, Any], token: str) -> dict[str, Any]:
    r = httpx.post(f"{server.issuer}/introspect",
                   data={"client_id": rs["client_id"], "client_secret": rs["client_secret"], "token": token})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_inventory(server: RunningServer, resource_server: dict[str, Any]) -> None:
    app = App(server, owner="team-vendors", contacts=["vendor@rp.example"])
    with app.oauth:
        app.tokens()
    listed = {c["client_id"]: c for c in as_json(jarmor(server, "clients", "list", "--format", "json"))}
    mine = listed[app.client_id]
    assert (mine["risk_tier"], mine["client_kind"], mine["owner"], mine["contacts"]) == (
        "baseline", "third-party", "team-vendors", ["vendor@rp.example"]
    )
    assert mine["auth_method"] == "private_key_jwt" and mine["status"] == "active"
    assert mine["active_grants"] == 1 and mine["active_tokens"] == 2
    assert mine["last_used_at"] is not None and time.time() - mine["last_used_at"] < 60
    [key] = mine["keys"]
    assert key["kid"] == app.key.kid and key["removed_at"] is None and key["age"] >= 0
    rs = listed[resource_server["client_id"]]
    assert rs["client_kind"] == "machine" and rs["resource_server"] is True and rs["scopes"] == ["profile"]

    table = jarmor(server, "clients", "list").stdout
    assert "CLIENT_ID" in table and app.client_id in table and "team-vendors" in table

    shown = as_json(jarmor(server, "clients", "show", app.client_id, "--format", "json"))
    assert shown["metadata"]["client_name"] == "Vendor Portal" and shown["keys"][0]["kid"] == app.key.kid
    text = jarmor(server, "clients", "show", app.client_id).stdout
    assert "owner" in text and "team-vendors" in text and app.key.kid in text
    missing = jarmor(server, "clients", "show", "no-such-client", ok=False)
    assert missing.returncode == 2 and "no client" in missing.stderr


def test_entitlement_review_and_revoking_a_grant(server: RunningServer, resource_server: dict[str, Any]) -> None:
    app = App(server)
    with app.oauth:
        first, second, third = app.tokens("openid profile"), app.tokens("openid"), app.tokens("openid profile")
    # one row per client, user and scopes (issue 12): the two "openid profile" grants are one group
    review = as_json(jarmor(server, "review", "--client", app.client_id, "--format", "json"))
    assert sorted((tuple(g["scopes"]), g["grants"]) for g in review) == [(("openid",), 1), (("openid", "profile"), 2)]
    assert {(g["kind"], g["subject"], tuple(g["granted_by"])) for g in review} == {("grant", "alice", ("alice",))}
    assert all(time.time() - g["first_granted_at"] < 60 for g in review)
    both = next(g for g in review if g["scopes"] == ["openid", "profile"])
    assert both["first_granted_at"] <= both["last_granted_at"] and len(both["grant_ids"]) == 2
    assert both["active_tokens"] == 4
    everyone = as_json(jarmor(server, "review", "--format", "json"))
    machine = [g for g in everyone if g["client_id"] == resource_server["client_id"]]
    assert [(m["kind"], m["scopes"]) for m in machine] == [("client_credentials", ["profile"])]
    assert machine[0]["granted_by"][0].startswith("cli"), "granted by whoever registered it"
    table = jarmor(server, "review", "--client", app.client_id).stdout
    assert "FIRST GRANTED" in table and "LAST GRANTED" in table and len(table.strip().splitlines()) == 3

    # a typo among the ids revokes nothing
    assert jarmor(server, "review", "revoke", *both["grant_ids"], "nope", ok=False).returncode == 2
    assert introspect(server, resource_server, first.access_token)["active"] is True
    # a group: every grant id of it
    out = jarmor(server, "review", "revoke", *both["grant_ids"], "--reason", "access review Q3", "--by", "carol")
    assert out.stdout.count(") revoked; 2 token(s) revoked; recorded as carol") == 2
    assert introspect(server, resource_server, first.access_token) == {"active": False}
    assert introspect(server, resource_server, third.access_token) == {"active": False}
    assert introspect(server, resource_server, second.access_token)["active"] is True
    review = as_json(jarmor(server, "review", "--client", app.client_id, "--format", "json"))
    assert [(g["scopes"], g["grants"]) for g in review] == [(["openid"], 1)]
    assert jarmor(server, "review", "revoke", "nope", ok=False).returncode == 2


def test_offboarding_a_client(server: RunningServer, resource_server: dict[str, Any]) -> None:
    app = App(server)
    with app.oauth:
        tokens = app.tokens()
        assert introspect(server, resource_server, tokens.access_token)["active"] is True
        out = jarmor(server, "clients", "offboard", app.client_id, "--reason", "vendor contract ended",
                     "--by", "carol")
        assert "disabled" in out.stdout and "revoked 2 token(s) and 1 grant(s)" in out.stdout
        assert introspect(server, resource_server, tokens.access_token) == {"active": False}
        assert introspect(server, resource_server, tokens.refresh_token) == {"active": False}

        # the running server sees the disabled client within its client cache lifetime (2 s)
        deadline = time.monotonic() + 10
        while True:
            refused: ParError | None = None
            try:
                app.oauth.start_authorization(scope="openid", response_mode="query.jwt", use_par=True)
            except ParError as exc:
                refused = exc
            if refused is not None or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert refused is not None and (refused.status, refused.error) == (401, "invalid_client")
    r = httpx.get(f"{server.issuer}/authorize", params={"client_id": app.client_id, "response_type": "code"})
    assert r.status_code == 400 and 'id="error-code">invalid_client<' in r.text

    shown = as_json(jarmor(server, "clients", "show", app.client_id, "--format", "json"))
    assert (shown["status"], shown["disabled_by"], shown["disabled_reason"]) == (
        "disabled", "carol", "vendor contract ended"
    )
    assert shown["active_tokens"] == 0 and shown["active_grants"] == 0
    again = jarmor(server, "clients", "offboard", app.client_id, "--reason", "again")
    assert "was already disabled" in again.stdout
    assert jarmor(server, "clients", "offboard", "nobody", "--reason", "x", ok=False).returncode == 2
    assert jarmor(server, "clients", "offboard", app.client_id, ok=False).returncode == 2, "--reason is required"


def test_management_api_over_http(server: RunningServer) -> None:
    app = App(server)
    uri, token = str(app.registration["registration_client_uri"]), str(app.registration["registration_access_token"])
    r = httpx.get(uri, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    body = r.json()
    assert httpx.get(uri, headers={"Authorization": f"Bearer {token}"}).status_code == 401, "rotated"
    new_key = generate_jwk("ES256", kid="rotated")
    update = {k: v for k, v in body.items() if k not in (
        "registration_access_token", "registration_client_uri", "client_id_issued_at")}
    update["jwks"] = {"keys": [new_key.public_dict()]}
    r = httpx.put(uri, json=update, headers={"Authorization": f"Bearer {body['registration_access_token']}"})
    assert r.status_code == 200, r.text
    keys = as_json(jarmor(server, "clients", "show", app.client_id, "--format", "json"))["keys"]
    assert {(k["kid"], k["removed_at"] is None) for k in keys} == {(app.key.kid, False), ("rotated", True)}
    r = httpx.delete(uri, headers={"Authorization": f"Bearer {r.json()['registration_access_token']}"})
    assert r.status_code == 204
    shown = as_json(jarmor(server, "clients", "show", app.client_id, "--format", "json"))
    assert shown["status"] == "disabled" and shown["disabled_by"] == f"client:{app.client_id}"


def test_admins_add(server: RunningServer) -> None:
    out = jarmor(server, "admins", "add", "ops", "--password-stdin", stdin="a long admin password\n")
    assert "administrator ops added" in out.stdout
    assert "ops" in jarmor(server, "admins", "list").stdout
    dup = jarmor(server, "admins", "add", "ops", "--password-stdin", stdin="a long admin password\n", ok=False)
    assert dup.returncode == 2
    short = jarmor(server, "admins", "add", "weak", "--password-stdin", stdin="short\n", ok=False)
    assert short.returncode == 2 and "password" in short.stderr
    with httpx.Client(base_url=server.issuer) as browser:
        import re

        form = browser.get("/admin/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert match
        r = browser.post("/admin/login", data={"csrf_token": match.group(1), "username": "ops",
                                               "password": "a long admin password"})
        assert r.status_code == 303
        page = browser.get("/admin/clients")
        assert page.status_code == 200 and "Vendor Portal" in page.text
