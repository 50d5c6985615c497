"""``jarmor demo --issuer`` against a running server: it changes only what it created (issue 12 items 1, 8 and
the demo's reuse of its clients), and runs the critical tier end to end."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator

import pytest

from jarmor.jose import generate_jwk

from .conftest import RunningServer, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("jarmor-demo"), auto_approve=None)
    try:
        yield running
    finally:
        stop_server(running)


def jarmor(server: RunningServer, *args: str, stdin: str | None = None, database: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", *args, "--database", database or server.database],
        input=stdin, capture_output=True, text=True, timeout=300, cwd=server.workdir,
    )


def password_hash(server: RunningServer, username: str) -> str:
    path = server.database.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        row = db.execute("select password_hash from users where username = ?", (username,)).fetchone()
    return str(row[0])


def test_demo_never_changes_a_user_it_did_not_create(server: RunningServer) -> None:
    assert jarmor(server, "users", "add", "bob", "--password-stdin", stdin="bob's password\n").returncode == 0
    before = password_hash(server, "bob")
    out = jarmor(server, "demo", "--issuer", server.issuer, "--user", "bob")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "user bob exists" in out.stderr and "--user" in out.stderr
    assert password_hash(server, "bob") == before


def test_demo_against_a_server_on_another_database(server: RunningServer) -> None:
    other = f"sqlite:///{server.workdir / 'other.db'}"
    assert jarmor(server, "db", "upgrade", database=other).returncode == 0
    out = jarmor(server, "demo", "--issuer", server.issuer, database=other)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stdout + out.stderr
    assert "does not use the database" in out.stderr and "--database" in out.stderr
    assert "<html" not in out.stdout.lower() + out.stderr.lower()


def test_demo_runs_every_tier_and_reuses_its_own_clients(server: RunningServer) -> None:
    impostor = server.register({  # looks like a demo client, but dynamic registration created it
        "client_name": "jarmor demo (high)",
        "owner": "jarmor demo",
        "redirect_uris": ["http://127.0.0.1:9999/cb"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [generate_jwk("ES256").public_dict()]},
    })
    first = jarmor(server, "demo", "--issuer", server.issuer)
    assert first.returncode == 0 and "all flows completed" in first.stdout, first.stdout[-3000:] + first.stderr
    assert "=== tier critical" in first.stdout and "registration refused" not in first.stdout
    assert "0 demo client(s) reused, 5 registered" in first.stdout
    count = len(json.loads(jarmor(server, "clients", "list", "--format", "json").stdout))

    second = jarmor(server, "demo", "--issuer", server.issuer)
    assert second.returncode == 0 and "all flows completed" in second.stdout, second.stdout[-3000:]
    assert "5 demo client(s) reused, 0 registered" in second.stdout
    clients = json.loads(jarmor(server, "clients", "list", "--format", "json").stdout)
    assert len(clients) == count
    flows = json.loads(jarmor(server, "flows", "--format", "json", "--limit", "1000").stdout)
    critical = [f for f in flows if f.get("tier") == "critical" and f.get("outcome") == "success"]
    assert len(critical) == 8  # four JARM modes, twice

    shown = json.loads(jarmor(server, "clients", "show", str(impostor["client_id"]), "--format", "json").stdout)
    assert shown["keys"] and all(k["removed_at"] is None for k in shown["keys"])  # its key was never replaced
