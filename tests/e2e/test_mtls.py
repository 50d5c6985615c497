"""Mutual TLS over real TLS (RFC 8705): ``jarmor serve --ssl-certfile --ssl-keyfile --ssl-ca-certs`` and
``jarmor.client`` with a client certificate. Certificates are generated here with ``cryptography``.

The server asks for a client certificate on every connection but does not require one (discovery and
registration work without); a client certificate that does not chain to the CA file ends the handshake
(Python's ``ssl`` has no verify callback: the documented limit of direct TLS, ``server/mtls.py``)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from jarmor.client import ClientConfig, OAuthClient
from jarmor.jose import generate_jwk
from tests.certs import Issued, issue, make_ca, subject_dn

from .conftest import REGISTRATION_TOKEN, free_port

pytestmark = pytest.mark.e2e
REDIRECT = "http://127.0.0.1:5000/callback"


@dataclass
class TlsServer:
    issuer: str
    ca: Issued
    ca_file: str
    directory: Path
    process: subprocess.Popen[bytes]

    def http(self, cert: Issued | None = None, name: str = "client") -> httpx.Client:
        context = ssl.create_default_context(cafile=self.ca_file)
        if cert is not None:
            context.load_cert_chain(*cert.write(self.directory, name))
        return httpx.Client(base_url=self.issuer, verify=context)

    def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        with self.http() as http:  # no client certificate: requested, not required
            r = http.post("/register", json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def files(self, cert: Issued, name: str) -> tuple[str, str]:
        return cert.write(self.directory, name)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    directory = tmp_path_factory.mktemp("mtls-e2e")
    ca = make_ca()
    ca_file = str(directory / "ca.pem")
    Path(ca_file).write_bytes(ca.pem)
    server_cert, server_key = issue(ca, "127.0.0.1", ips=("127.0.0.1",), server=True).write(directory, "server")
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    args = [
        sys.executable, "-m", "jarmor.cli.main", "serve", "--port", str(port), "--issuer", issuer,
        "--database", f"sqlite:///{directory / 'jarmor.db'}", "--registration-token", REGISTRATION_TOKEN,
        "--auto-approve", "alice", "--ssl-certfile", server_cert, "--ssl-keyfile", server_key,
        "--ssl-ca-certs", ca_file,
    ]
    log = open(directory / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, cwd=directory, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    server = TlsServer(issuer, ca, ca_file, directory, proc)
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError((directory / "serve.log").read_text())
            try:
                with server.http() as http:
                    if http.get("/.well-known/oauth-authorization-server", timeout=1).status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("jarmor serve did not start over TLS")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_discovery_over_tls_advertises_mtls(tls_server: TlsServer) -> None:
    with tls_server.http() as http:
        meta = http.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == tls_server.issuer
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(meta["token_endpoint_auth_methods_supported"])


def test_machine_client_authenticates_with_its_certificate(tls_server: TlsServer) -> None:
    cert = issue(tls_server.ca, "machine-a")
    reg = tls_server.register({
        "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": subject_dn(cert),
        "grant_types": ["client_credentials"],
    })
    config = ClientConfig.from_registration(
        reg, issuer=tls_server.issuer, client_certificate=tls_server.files(cert, "machine-a"),
        tls_ca_certs=tls_server.ca_file,
    )
    with OAuthClient(config) as client:
        tokens = client.client_credentials()
    assert tokens.access_token
    # the same client_id over a connection with another (CA-issued) certificate: refused
    other = issue(tls_server.ca, "machine-b")
    with tls_server.http(other, "machine-b") as http:
        r = http.post("/token", data={"grant_type": "client_credentials", "client_id": reg["client_id"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # and without any certificate
    with tls_server.http() as http:
        r = http.post("/token", data={"grant_type": "client_credentials", "client_id": reg["client_id"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_authorization_code_flow_with_tls_client_auth(tls_server: TlsServer) -> None:
    cert = issue(tls_server.ca, "web-a")
    key = generate_jwk("ES256")
    reg = tls_server.register({
        "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": subject_dn(cert),
        "redirect_uris": [REDIRECT], "jwks": {"keys": [key.public_dict()]},
        "authorization_signed_response_alg": "ES256", "id_token_signed_response_alg": "ES256",
        "request_object_signing_alg": "ES256",
    })
    config = ClientConfig.from_registration(
        reg, issuer=tls_server.issuer, signing_key=key, client_certificate=tls_server.files(cert, "web-a"),
        tls_ca_certs=tls_server.ca_file, allow_insecure_http=True,
    )
    with OAuthClient(config) as client:
        start = client.start_authorization(scope="openid")
        with tls_server.http() as browser:
            r = browser.get(start.url)
        assert r.status_code == 303, r.text[:300]
        done = client.complete_authorization(r.headers["location"], expected_state=start.state)
    assert done.tokens.access_token and done.claims["sub"] == "alice"


def test_certificate_from_an_unknown_ca_ends_the_handshake(tls_server: TlsServer) -> None:
    """The documented limit of direct TLS: a self-signed (or unknown-CA) certificate is refused by OpenSSL;
    self-signed clients go through the proxy path (RFC 9440 Client-Cert)."""
    stranger = issue(None, "self-signed")
    with tls_server.http(stranger, "self-signed") as http, pytest.raises(httpx.HTTPError):
        http.get("/.well-known/oauth-authorization-server")
