"""``jarmor audit`` usage errors: one line on stderr, exit 2, never a traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from jarmor.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(["audit", *argv])  # the CLI turns every error into an exit code ...
    except SystemExit as exc:  # ... or exits, as argparse does
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return code, err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"client_id": "c", "redirect_uri": "http://127.0.0.1:1/cb",
                                "token_endpoint_auth_method": "client_secret_basic", "client_secret": "s"}))
    return path


def test_issuer_must_be_https_or_loopback(capsys: pytest.CaptureFixture[str], client_file: Path) -> None:
    code, err = run(capsys, "http://as.example.com", "--client", str(client_file))
    assert code == 2 and "ISSUER must use https" in err


def test_missing_and_malformed_client_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(capsys, "https://as.example.com", "--client", str(tmp_path / "none.json"))
    assert code == 2 and "cannot read" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"client_id": "c", "redirect_uri": "https://rp/cb",
                               "token_endpoint_auth_method": "private_key_jwt"}))
    code, err = run(capsys, "https://as.example.com", "--client", str(bad))
    assert code == 2 and "private_key_jwt needs a private signing key" in err


def test_unknown_check_and_no_client(capsys: pytest.CaptureFixture[str], client_file: Path) -> None:
    code, err = run(capsys, "https://as.example.com", "--client", str(client_file), "--check", "pkce")
    assert code == 2 and "unknown check 'pkce'" in err
    code, err = run(capsys, "https://as.example.com")
    assert code == 2 and "--registration-token" in err


def test_unreachable_issuer(capsys: pytest.CaptureFixture[str], client_file: Path) -> None:
    code, err = run(capsys, f"http://127.0.0.1:{closed_port()}", "--client", str(client_file))
    assert code == 2 and "audit stopped" in err and "ConnectError" in err


def test_bounds_are_checked(capsys: pytest.CaptureFixture[str], client_file: Path) -> None:
    code, err = run(capsys, "https://as.example.com", "--client", str(client_file), "--max-requests", "0")
    assert code == 2 and "--max-requests" in err
    code, err = run(capsys, "https://as.example.com", "--client", str(client_file), "--rate", "0")
    assert code == 2 and "--rate" in err


def test_bad_tier_login_script_and_mix_up_issuer(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 client_file: Path) -> None:
    tiered = tmp_path / "t.json"
    tiered.write_text(json.dumps({**json.loads(client_file.read_text()), "tier": "hihg"}))
    code, err = run(capsys, "https://as.example.com", "--client", str(tiered))
    assert code == 2 and "member tier must be one of" in err
    script = tmp_path / "login.json"
    for body, named in (({"fields": {}}, "member fields"), ({"fields": {"u": 1}}, "to a string"),
                        ({"fields": {"u": "a"}, "max_forms": 99}, "max_forms"),
                        ({"fields": {"u": "a"}, "selector": "#x"}, "unknown member 'selector'")):
        script.write_text(json.dumps(body))
        code, err = run(capsys, "https://as.example.com", "--client", str(client_file), "--login-script", str(script))
        assert code == 2 and named in err, err
    code, err = run(capsys, "https://as.example.com", "--client", str(client_file), "--login-script",
                    str(tmp_path / "none.json"))
    assert code == 2 and "cannot read" in err
    code, err = run(capsys, "https://as.example.com", "--client", str(client_file), "--mix-up-issuer",
                    "https://as.example.com")
    assert code == 2 and "must differ" in err
    code, err = run(capsys, "https://as.example.com", "--client", str(client_file), "--mix-up-client",
                    str(client_file))
    assert code == 2 and "--mix-up-client needs --mix-up-issuer" in err
