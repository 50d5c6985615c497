"""Flow integrity records end to end: a real ``jarmor serve`` writes them, the command line reads them from the
same SQLite database: ``jarmor flows`` (filters, JSON), ``flows export``, ``flows verify`` (then a row is
tampered with through sqlite3 and verification fails, naming it), ``jarmor report`` in every format, and
``jarmor policy check``."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jarmor.client import ClientConfig, OAuthClient
from jarmor.governance.records import GENESIS_HASH, chain_hash
from jarmor.jose import generate_jwk
from tests.interop.peers import user_agent

from .conftest import RunningServer, start_server, stop_server
from .test_flows import REDIRECT

pytestmark = pytest.mark.e2e


def jarmor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jarmor.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("jarmor-flows")
    running = start_server(workdir)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def traffic(server: RunningServer) -> dict[str, Any]:
    """Two successful flows (PAR + JARM, and plain query mode), one refusal at the authorization endpoint, one
    at the token endpoint, and a client_credentials grant; waits until the server has written them."""
    key = generate_jwk("ES256")
    body = server.register({
        "risk_tier": "baseline", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]}, "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256", "grant_types": ["authorization_code"], "client_kind": "third-party",
        "client_name": "e2e app",
    })
    client_id = str(body["client_id"])
    config = ClientConfig(issuer=server.issuer, client_id=client_id, redirect_uri=REDIRECT, signing_key=key,
                          allow_insecure_http=True)
    with OAuthClient(config) as client:
        for mode, par in (("jwt", True), ("query", False)):
            start = client.start_authorization(scope="openid", response_mode=mode, use_par=par)  # type: ignore[arg-type]
            result = client.handle_callback(user_agent(start.url, redirect_uri=REDIRECT),
                                            expected_state=start.state)  # auto-approved (baseline)
            client.exchange_code(result)
    r = httpx.get(f"{server.issuer}/authorize", params={"client_id": client_id, "response_type": "code",
                                                         "redirect_uri": "https://evil.example/cb", "scope": "openid"})
    assert r.status_code == 400
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "client_credentials", "client_id": "ghost",
                                                    "client_secret": "nope"})
    assert r.status_code == 401
    machine_key = generate_jwk("ES256")
    machine = server.register({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                               "jwks": {"keys": [machine_key.public_dict()]}, "scope": "profile"})
    with OAuthClient(ClientConfig(issuer=server.issuer, client_id=str(machine["client_id"]), redirect_uri=REDIRECT,
                                  signing_key=machine_key, allow_insecure_http=True)) as m:
        m.client_credentials("profile")
    deadline = time.monotonic() + 15
    while True:
        out = jarmor("flows", "--database", server.database, "--format", "json", cwd=server.workdir)
        flows = json.loads(out.stdout or "[]")
        if (len(flows) >= 5 and all(f["outcome"] != "pending" for f in flows)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {"client_id": client_id, "machine_id": str(machine["client_id"]), "flows": flows}


def test_flows_lists_one_row_per_transaction(server: RunningServer, traffic: dict[str, Any]) -> None:
    flows = traffic["flows"]
    outcomes = sorted(f["outcome"] for f in flows)
    assert outcomes == ["invalid_client", "invalid_request", "success", "success", "success"], outcomes
    par_flow = next(f for f in flows if f["controls"].get("par"))
    assert par_flow["client_id"] == traffic["client_id"] and par_flow["subject"] == "alice"
    assert [h["stage"] for h in par_flow["hops"]] == ["par", "code", "token"]
    assert par_flow["controls"]["jarm"]["signed"] and par_flow["controls"]["iss"] == "jwt"
    assert par_flow["controls"]["client_auth"]["method"] == "private_key_jwt"
    plain = next(f for f in flows if f["controls"].get("iss") == "parameter")
    assert [h["stage"] for h in plain["hops"]] == ["code", "token"]
    table = jarmor("flows", "--database", server.database, cwd=server.workdir)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["STARTED", "FLOW", "CLIENT"]
    assert "PAR RO:ES256 JARM:ES256 iss PKCE pkjwt" in table.stdout


def test_flow_filters(server: RunningServer, traffic: dict[str, Any]) -> None:
    def ids(*args: str) -> list[str]:
        out = jarmor("flows", "--database", server.database, "--format", "json", *args, cwd=server.workdir)
        assert out.returncode == 0, out.stderr
        return [f["outcome"] for f in json.loads(out.stdout)]

    assert sorted(ids("--client", traffic["client_id"])) == ["invalid_request", "success", "success"]
    assert sorted(ids("--outcome", "error")) == ["invalid_client", "invalid_request"]
    assert ids("--outcome", "invalid_client") == ["invalid_client"]
    assert len(ids("--since", "1h")) == 5 and ids("--since", "2000-01-01") and ids("--since", "2999-01-01") == []
    bad = jarmor("flows", "--database", server.database, "--since", "soon", cwd=server.workdir)
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_export_is_json_lines_with_the_chain(server: RunningServer, traffic: dict[str, Any]) -> None:
    out = jarmor("flows", "export", "--database", server.database, cwd=server.workdir)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [x["seq"] for x in lines] == list(range(1, len(lines) + 1)) and len(lines) >= 8
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(lines))
    assert {x["stage"] for x in lines} == {"par", "authorize", "code", "token"}
    later = jarmor("flows", "export", "--database", server.database, "--after-seq", "3", cwd=server.workdir)
    assert next(json.loads(x)["seq"] for x in later.stdout.splitlines()) == 4


def _tampered_copy(server: RunningServer, name: str, *statements: str) -> str:
    target = server.workdir / name
    src = sqlite3.connect(server.database.removeprefix("sqlite:///"))
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # a consistent copy of the live WAL database
        for statement in statements:
            dst.execute(statement)
        dst.commit()
    finally:
        src.close()
        dst.close()
    return f"sqlite:///{target}"


def test_verify_ok_then_tampered_rows_fail(server: RunningServer, traffic: dict[str, Any]) -> None:
    ok = jarmor("flows", "verify", "--database", server.database, cwd=server.workdir)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    head = ok.stdout.split("chain head: ", 1)[1].split()[0]

    edited = _tampered_copy(server, "edited.db", "UPDATE flow_records SET body = REPLACE(body, '\"alice\"', "
                                                 "'\"mallory\"') WHERE seq = (SELECT MIN(seq) FROM flow_records "
                                                 "WHERE body LIKE '%\"alice\"%')")
    out = jarmor("flows", "verify", "--database", edited, "--format", "json", cwd=server.workdir)
    assert out.returncode == 1
    problems = json.loads(out.stdout)["problems"]
    assert len(problems) == 1 and problems[0]["kind"] == "edited"

    deleted = _tampered_copy(server, "deleted.db", "DELETE FROM flow_records WHERE seq = 2")
    out = jarmor("flows", "verify", "--database", deleted, cwd=server.workdir)
    assert out.returncode == 1 and "record 2: missing" in out.stdout

    reordered = _tampered_copy(server, "reordered.db", "UPDATE flow_records SET seq = -1 WHERE seq = 2",
                               "UPDATE flow_records SET seq = 2 WHERE seq = 3",
                               "UPDATE flow_records SET seq = 3 WHERE seq = -1")
    out = jarmor("flows", "verify", "--database", reordered, cwd=server.workdir)
    assert out.returncode == 1 and "record 2" in out.stdout and "reordered" in out.stdout

    seq, digest = head.split(":")
    # the writer also drops the signed checkpoint that would name the deleted record (test_checkpoints.py)
    truncated = _tampered_copy(server, "truncated.db", f"DELETE FROM flow_records WHERE seq = {seq}",
                               f"UPDATE flow_chain SET seq = {int(seq) - 1}, hash = (SELECT hash FROM flow_records "
                               f"WHERE seq = {int(seq) - 1})", f"DELETE FROM flow_checkpoints WHERE seq >= {seq}")
    assert jarmor("flows", "verify", "--database", truncated, cwd=server.workdir).returncode == 0  # consistent...
    out = jarmor("flows", "verify", "--database", truncated, "--anchor", f"{seq}:{digest}", cwd=server.workdir)
    assert out.returncode == 1 and f"record {seq}" in out.stdout and "anchor" in out.stdout  # ...but anchored


def test_report_formats(server: RunningServer, traffic: dict[str, Any]) -> None:
    text = jarmor("report", "--database", server.database, "--stale-days", "0", cwd=server.workdir)
    assert text.returncode == 0, text.stderr
    assert "flows: 5 (3 successful)" in text.stdout and "pkce_s256" in text.stdout
    data = json.loads(jarmor("report", "--database", server.database, "--format", "json", cwd=server.workdir).stdout)
    assert data["coverage"]["flows"] == 5 and data["coverage"]["by_outcome"] == {"success": 3, "error": 2}
    assert data["trends"]["days"] and data["drift"] == []
    out = server.workdir / "report.html"
    html = jarmor("report", "--database", server.database, "--format", "html", "-o", str(out), cwd=server.workdir)
    assert html.returncode == 0 and out.read_text().count("<svg") >= 4 and "<script" not in out.read_text()


def test_policy_check(server: RunningServer, traffic: dict[str, Any]) -> None:
    same = server.workdir / "same.toml"
    same.write_text("[policy]\ndefault_client_tier = \"baseline\"\n")
    out = jarmor("policy", "check", str(same), "--database", server.database, cwd=server.workdir)
    assert out.returncode == 0 and "nothing would break" in out.stdout, out.stdout + out.stderr
    raised = server.workdir / "raised.toml"
    raised.write_text("[policy.scopes]\nopenid = \"high\"\n")
    out = jarmor("policy", "check", str(raised), "--database", server.database, cwd=server.workdir)
    assert out.returncode == 1 and "WOULD BREAK" in out.stdout
    assert "scope(s) openid require tier high: control par was not used" in out.stdout
    data = json.loads(jarmor("policy", "check", str(raised), "--database", server.database, "--format", "json",
                             cwd=server.workdir).stdout)
    assert data["breaks"] and data["changes"] == ["scope openid: (no tier) -> high"]
    broken = server.workdir / "broken.toml"
    broken.write_text("[policy.scopes]\nopenid = \"platinum\"\n")
    out = jarmor("policy", "check", str(broken), "--database", server.database, cwd=server.workdir)
    assert out.returncode == 2 and "platinum" in out.stderr


def test_a_whole_chain_rewrite_fails_verify_without_an_anchor(server: RunningServer, traffic: dict[str, Any]) -> None:
    """Every body edited and every hash recomputed, head included: only the server's signed checkpoints show it."""
    target = server.workdir / "rewritten.db"
    src = sqlite3.connect(server.database.removeprefix("sqlite:///"))
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        assert dst.execute("SELECT COUNT(*) FROM flow_checkpoints").fetchone()[0] >= 1  # the server signed
        prev = GENESIS_HASH
        for seq, body in dst.execute("SELECT seq, body FROM flow_records ORDER BY seq").fetchall():
            if seq == 1:  # change history at its start: every later hash changes with it
                body = body[:-1] + ',"zz_forged":true}'
            digest = chain_hash(prev, body.encode())
            dst.execute("UPDATE flow_records SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                        (body, prev, digest, seq))
            prev = digest
        dst.execute("UPDATE flow_chain SET hash = ?", (prev,))
        dst.commit()
    finally:
        src.close()
        dst.close()
    out = jarmor("flows", "verify", "--database", f"sqlite:///{target}", "--format", "json", cwd=server.workdir)
    assert out.returncode == 1, out.stdout + out.stderr
    kinds = {p["kind"] for p in json.loads(out.stdout)["problems"]}
    assert kinds == {"checkpoint"}


def test_archive_then_verify_with_and_without_the_archive(server: RunningServer, traffic: dict[str, Any]) -> None:
    copy = _tampered_copy(server, "archived.db")  # a consistent copy: the live server keeps its own records
    workdir = server.workdir
    archive = workdir / "flows-archive.jsonl"
    out = jarmor("flows", "archive", "--database", copy, "--before", "2000-01-01", "-o", str(archive), cwd=workdir)
    assert out.returncode == 1 and "no signed checkpoint" in out.stderr and not archive.exists()
    out = jarmor("flows", "archive", "--database", copy, "--before", "1d", "-o", str(archive), cwd=workdir)
    assert out.returncode == 1 and not archive.exists()  # "1d" means a day ago: nothing that old
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 86400))
    out = jarmor("flows", "archive", "--database", copy, "--before", when, "-o", str(archive), "--by", "ops",
                 cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert archive.exists() and "archived records 1-" in out.stderr
    alone = jarmor("flows", "verify", "--database", copy, "--format", "json", cwd=workdir)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert json.loads(alone.stdout)["archived_through"] >= 1
    both = jarmor("flows", "verify", "--database", copy, "--archive", str(archive), cwd=workdir)
    assert both.returncode == 0, both.stdout + both.stderr
    again = jarmor("flows", "archive", "--database", copy, "--before", when, "-o", str(archive), cwd=workdir)
    assert again.returncode == 2 and "exists already" in again.stderr
