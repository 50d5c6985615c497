"""The TLS and mutual-TLS options of ``[server]`` (``ssl_certfile``, ``ssl_keyfile``, ``ssl_ca_certs``,
``mtls_issuer``): strict like every other key, and consistent with each other and with the issuer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jarmor.config import ConfigError, load_config
from tests.certs import issue, make_ca


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    ca = make_ca()
    cert, key = issue(ca, "127.0.0.1", ips=("127.0.0.1",), server=True).write(tmp_path, "server")
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    return {"cert": cert, "key": key, "ca": str(tmp_path / "ca.pem")}


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "jarmor.toml"
    path.write_text(text)
    return load_config(path, environ={})


def test_tls_options_load(tmp_path: Path, files: dict[str, str]) -> None:
    config = _load(tmp_path, f"""[server]
ssl_certfile = "{files['cert']}"
ssl_keyfile = "{files['key']}"
ssl_ca_certs = "{files['ca']}"
port = 8443
mtls_issuer = "https://mtls.127.0.0.1.nip.example:8443"
""")
    assert config.issuer == "https://127.0.0.1:8443"  # type: ignore[attr-defined]
    assert config.mtls  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('ssl_certfle = "x"', "'ssl_certfle' (did you mean 'ssl_certfile'?)"),
        ("ssl_certfile = 1", "ssl_certfile must be a string"),
        ('ssl_certfile = "{cert}"', "ssl_certfile and ssl_keyfile go together"),
        ('ssl_certfile = "{cert}"\nssl_keyfile = "/nonexistent/key.pem"', "ssl_keyfile: cannot read"),
        ('ssl_certfile = "{cert}"\nssl_keyfile = "{key}"\nissuer = "http://127.0.0.1:8000"', "must be an https URL"),
        ('ssl_ca_certs = "{ca}"', "ssl_ca_certs needs ssl_certfile"),
        ('trusted_proxies = ["127.0.0.1"]\nmtls_issuer = "http://127.0.0.1:9"', "mtls_issuer must be an https URL"),
        ('mtls_issuer = "https://mtls.example.com"', "mtls_issuer needs client certificates"),
        ('issuer = "https://as.example.com"\ntrusted_proxies = ["127.0.0.1"]\nmtls_issuer = "https://AS.example.com:443/mtls"',
         "mtls_issuer must differ from the issuer in host or port"),
    ],
)
def test_bad_tls_options_are_refused(tmp_path: Path, files: dict[str, str], body: str, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "[server]\n" + body.format(**files) + "\n")
    assert named in str(info.value)


def test_serve_refuses_a_key_that_does_not_fit_in_one_line(tmp_path: Path, files: dict[str, str]) -> None:
    from tests.e2e.conftest import free_port

    other_key = issue(make_ca(), "x").write(tmp_path, "other")[1]
    done = subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", "serve", "--ssl-certfile", files["cert"], "--ssl-keyfile", other_key,
         "--database", f"sqlite:///{tmp_path / 'j.db'}", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot use the TLS files" in lines[0], done.stderr


def test_serve_in_process_leaves_no_metrics_directory_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused in-process ``serve`` removes its metrics directory and the variable naming it together."""
    from jarmor.server.multiproc import MULTIPROC_ENV, prepare_multiprocess

    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    cleanup = prepare_multiprocess()
    path = os.environ[MULTIPROC_ENV]
    cleanup()
    assert MULTIPROC_ENV not in os.environ and not Path(path).exists()
