"""Values from dynamic registration and unauthenticated requests never reach the terminal raw (issue 10
item 5): ``jarmor clients list | show``, ``policy check`` and ``flows`` show control characters, bidi
overrides and line breaks as visible escapes, and a value cannot add a row to a table."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jarmor.jose import generate_jwk

from .conftest import RunningServer, start_server, stop_server

pytestmark = pytest.mark.e2e

NAME = "Evil\x1b]0;pwned\x07\x1b[2J\u202eCorp\nFORGED-ROW  x  y"
OWNER = "ops\nFORGED-OWNER\x9b31m"
CLAIMED = "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07\nFORGED-FLOW"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("jarmor-output"))
    try:
        yield running
    finally:
        stop_server(running)


def jarmor(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", *args, "--database", server.database],
        capture_output=True, text=True, timeout=120, cwd=server.workdir,
    )


def assert_inert(text: str) -> None:
    for ch in RAW:
        assert ch not in text, repr(text)
    assert "\nFORGED" not in text and "\u2028" not in text


@pytest.fixture(scope="module")
def hostile(server: RunningServer) -> str:
    key = generate_jwk("ES256")
    body = server.register({
        "client_name": NAME,
        "owner": OWNER,
        "risk_tier": "elevated",
        "redirect_uris": ["http://127.0.0.1:9999/cb"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]},
        "request_object_signing_alg": "ES256",
        "authorization_signed_response_alg": "ES256",
    })
    return str(body["client_id"])


def test_clients_list_and_show(server: RunningServer, hostile: str) -> None:
    listing = jarmor(server, "clients", "list")
    assert listing.returncode == 0, listing.stderr
    assert_inert(listing.stdout)
    rows = [line for line in listing.stdout.splitlines() if hostile in line]
    assert len(rows) == 1 and "\\x1b]0;pwned\\x07" in rows[0] and "\\nFORGED-ROW" in rows[0]
    assert "ops\\nFORGED-OWNER\\x9b31m" in rows[0]
    shown = jarmor(server, "clients", "show", hostile)
    assert shown.returncode == 0, shown.stderr
    assert_inert(shown.stdout)
    assert "\\u202eCorp" in shown.stdout
    as_json = json.loads(jarmor(server, "clients", "show", hostile, "--format", "json").stdout)
    assert as_json["name"] == NAME  # JSON keeps the exact value (its encoder escapes it)


def test_policy_check(server: RunningServer, hostile: str, tmp_path: Path) -> None:
    proposed = tmp_path / "proposed.toml"
    proposed.write_text('[policy.tiers.elevated]\nsigning_algs = ["PS256"]\n')
    out = jarmor(server, "policy", "check", str(proposed))
    assert hostile in out.stdout, out.stdout + out.stderr  # the hostile registration would break
    assert_inert(out.stdout)


def test_flows_of_an_unauthenticated_request(server: RunningServer) -> None:
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "client_credentials", "client_id": CLAIMED})
    assert r.status_code in (400, 401)
    deadline = time.monotonic() + 30
    while True:  # records are written in batches shortly after each hop
        flows = json.loads(jarmor(server, "flows", "--format", "json").stdout)
        if any(CLAIMED in json.dumps(f, ensure_ascii=False) for f in flows) or time.monotonic() > deadline:
            break
    out = jarmor(server, "flows")
    assert out.returncode == 0, out.stderr
    assert_inert(out.stdout)
    assert "\\x1b]8;;" in out.stdout
