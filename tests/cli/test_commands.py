"""Issue 12 items 3, 6, 7 and 9: where ``serve`` listens under auto-approve, the issuer printed URLs use,
errors as one line (no traceback) and databases that are not silently created."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jarmor.config import ConfigError, load_config
from jarmor.jose import generate_jwk


def jarmor(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", *args], input=stdin, capture_output=True, text=True,
        timeout=120, cwd=cwd, env={**os.environ, **(env or {})},
    )


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0, out.stdout
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    return out.stderr


# -- 3: auto-approve only on a loopback listener ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_auto_approve_is_refused_unless_the_server_listens_on_loopback(host: str) -> None:
    flags = {"host": host, "issuer": "http://127.0.0.1:8000", "auto_approve": "alice"}
    with pytest.raises(ConfigError, match="listens on a loopback address"):
        load_config(None, flags, environ={})
    # every worker rebuilds its configuration from the environment: the same rule applies there
    environ = {"JARMOR_HOST": host, "JARMOR_ISSUER": "http://127.0.0.1:8000", "JARMOR_AUTO_APPROVE": "alice"}
    with pytest.raises(ConfigError, match="loopback"):
        load_config(None, environ=environ)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_auto_approve_on_loopback_is_allowed(host: str) -> None:
    config = load_config(None, {"host": host, "issuer": "http://127.0.0.1:8000", "auto_approve": "alice"}, environ={})
    assert config.auto_approve == "alice"


def test_serve_refuses_auto_approve_on_all_interfaces(tmp_path: Path) -> None:
    out = jarmor("serve", "--host", "0.0.0.0", "--issuer", "http://127.0.0.1:8000", "--auto-approve", "alice",
                 cwd=tmp_path)
    assert "loopback" in one_line_error(out) and out.stdout == ""
    assert not (tmp_path / "jarmor.db").exists()


# -- 7: one line, never a traceback ----------------------------------------------------------------------------


def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = jarmor("serve", "--port", str(port), cwd=tmp_path)
    assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(out)
    assert "serving" not in out.stdout


def test_report_to_a_missing_directory(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert jarmor("db", "upgrade", "--database", db, cwd=tmp_path).returncode == 0
    out = jarmor("report", "--database", db, "-o", str(tmp_path / "missing" / "r.html"), cwd=tmp_path)
    assert "No such file or directory" in one_line_error(out)


def test_postgres_without_its_driver_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['psycopg'] = None\n")
    env = {"PYTHONPATH": str(tmp_path)}
    for command in (["db", "upgrade"], ["clients", "list"]):
        out = jarmor(*command, "--database", "postgresql+psycopg://u@127.0.0.1:1/db", cwd=tmp_path, env=env)
        assert "pip install 'jarmor[postgres]'" in one_line_error(out)


def test_closed_output_pipe_ends_quietly(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert jarmor("db", "upgrade", "--database", db, cwd=tmp_path).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "jarmor.cli.main", "keys", "list", "--format", "json", "--database", db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` exiting before the command writes
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141 and err == ""


# -- 9: no database is created by accident ---------------------------------------------------------------------


def test_a_missing_sqlite_directory_is_refused_except_by_commands_that_create_state(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "dir" / "jarmor.db"
    url = f"sqlite:///{path}"
    for command in (["clients", "list"], ["users", "list"], ["keys", "list"], ["flows"], ["report"]):
        out = jarmor(*command, "--database", url, cwd=tmp_path)
        assert "jarmor db upgrade" in one_line_error(out)
        assert not (tmp_path / "typo").exists()
    out = jarmor("db", "upgrade", "--database", url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"created directory {tmp_path / 'typo'}" in out.stderr and f"created database {path}" in out.stderr
    assert jarmor("clients", "list", "--database", url, cwd=tmp_path).returncode == 0


# -- 6: URLs under the configured issuer -----------------------------------------------------------------------


def _metadata(tmp_path: Path) -> Path:
    f = tmp_path / "client.json"
    f.write_text(json.dumps({
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [generate_jwk("ES256").public_dict()]},
    }))
    return f


def test_clients_add_prints_urls_under_the_configured_issuer(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert jarmor("db", "upgrade", "--database", db, cwd=tmp_path).returncode == 0
    config = tmp_path / "jarmor.toml"
    config.write_text(f'[server]\nissuer = "https://as.example.com"\ndatabase = "{db}"\n')
    out = jarmor("clients", "add", "--metadata", str(_metadata(tmp_path)), "--config", str(config), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["registration_client_uri"].startswith("https://as.example.com/register/")
    assert "no issuer configured" not in out.stderr

    out = jarmor("clients", "add", "--metadata", str(_metadata(tmp_path)), "--database", db,
                 "--issuer", "https://login.example.org", cwd=tmp_path)
    assert json.loads(out.stdout)["registration_client_uri"].startswith("https://login.example.org/register/")

    out = jarmor("clients", "add", "--metadata", str(_metadata(tmp_path)), "--database", db, cwd=tmp_path,
                 env={"JARMOR_ISSUER": ""})
    assert out.returncode == 0 and "no issuer configured" in out.stderr and "--issuer" in out.stderr

    html = tmp_path / "r.html"
    out = jarmor("report", "--format", "html", "-o", str(html), "--config", str(config), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "https://as.example.com" in html.read_text() and "127.0.0.1:8000" not in html.read_text()


# -- issue 13: a high client without a token binding is refused, naming the control ------------------------------


@pytest.mark.parametrize("tier", ["high", "critical"])
def test_clients_add_refuses_a_high_client_without_sender_constrained_tokens(tmp_path: Path, tier: str) -> None:
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert jarmor("db", "upgrade", "--database", db, cwd=tmp_path).returncode == 0
    meta = json.loads(_metadata(tmp_path).read_text())
    meta["risk_tier"] = tier
    if tier == "critical":
        meta["jwks"]["keys"].append(generate_jwk("ECDH-ES").public_dict())
        meta |= {"request_object_encryption_alg": "ECDH-ES", "authorization_encrypted_response_alg": "ECDH-ES"}
    unbound = tmp_path / "unbound.json"
    unbound.write_text(json.dumps(meta))
    issuer = ("--issuer", "https://as.example.com")
    out = jarmor("clients", "add", "--metadata", str(unbound), "--database", db, *issuer, cwd=tmp_path)
    error = one_line_error(out)
    assert "sender_constrained_tokens" in error and "dpop_bound_access_tokens" in error, error
    assert out.stdout == ""
    bound = tmp_path / "bound.json"
    bound.write_text(json.dumps({**meta, "dpop_bound_access_tokens": True}))
    out = jarmor("clients", "add", "--metadata", str(bound), "--database", db, *issuer, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["dpop_bound_access_tokens"] is True
