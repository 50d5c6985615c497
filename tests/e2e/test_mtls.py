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
from starlette.requests import Request
from starlette.responses import JSONResponse

from jarmor.client import ClientConfig, OAuthClient
from jarmor.jose import generate_jwk
from jarmor.protocol.mtls import ClientCertificate
from jarmor.resource import IntrospectionVerifier, JwtAccessTokenVerifier, Requirement, ResourceServer
from tests.certs import Issued, issue, make_ca, subject_dn

from .conftest import REGISTRATION_TOKEN, controls_without_assurance, free_port
from .resource_api import AUDIENCE, Api, register_resource_server
from .resource_api import CONFIG as API_CONFIG

pytestmark = pytest.mark.e2e
REDIRECT = "http://127.0.0.1:5000/callback"
# about certificate-bound tokens, not sign-in: high flows are auto-approved under a tier without assurance
CONFIG = API_CONFIG.replace("[policy.tiers.high]\n", f"[policy.tiers.high]\n{controls_without_assurance('high')}\n", 1)
assert CONFIG != API_CONFIG


@dataclass
class TlsServer:
    issuer: str
    database: str
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
    (directory / "jarmor.toml").write_text(CONFIG)
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    args = [
        sys.executable, "-m", "jarmor.cli.main", "serve", "--port", str(port), "--issuer", issuer,
        "--database", f"sqlite:///{directory / 'jarmor.db'}", "--registration-token", REGISTRATION_TOKEN,
        "--auto-approve", "alice", "--ssl-certfile", server_cert, "--ssl-keyfile", server_key,
        "--ssl-ca-certs", ca_file, "--config", str(directory / "jarmor.toml"),
    ]
    log = open(directory / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, cwd=directory, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    server = TlsServer(issuer, f"sqlite:///{directory / 'jarmor.db'}", ca, ca_file, directory, proc)
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


# --- the last hop: certificate-bound tokens at a real API protected by jarmor.resource (issue 13) ---------


@pytest.fixture(scope="module")
def rs_credentials(tls_server: TlsServer) -> dict[str, Any]:
    return register_resource_server(tls_server.database, tls_server.directory, "Orders API")


@pytest.fixture(scope="module")
def api(tls_server: TlsServer, rs_credentials: dict[str, Any]) -> Iterator[Api]:
    """A real API over TLS, client certificates requested, protected by ``jarmor.resource``."""
    introspection = httpx.AsyncClient(verify=ssl.create_default_context(cafile=tls_server.ca_file))
    rs = ResourceServer(
        verifier=IntrospectionVerifier(endpoint=f"{tls_server.issuer}/introspect",
                                       client_id=rs_credentials["client_id"],
                                       client_secret=rs_credentials["client_secret"], issuer=tls_server.issuer,
                                       http=introspection),
        jwt_verifier=JwtAccessTokenVerifier(issuer=tls_server.issuer, audience=AUDIENCE, http=introspection),
    )

    async def orders(request: Request) -> JSONResponse:
        p = request.state.principal
        return JSONResponse({"sub": p.subject, "binding": p.binding.method if p.binding else None})

    cert, key = issue(tls_server.ca, "127.0.0.1", ips=("127.0.0.1",), server=True).write(tls_server.directory, "api")
    with Api(rs, free_port(), "/orders", orders, Requirement(scopes=["openid"]),
             tls=(cert, key, tls_server.ca_file)) as running:
        yield running


def _bound_client(tls_server: TlsServer, tier: str, cert: Issued, name: str) -> OAuthClient:
    key = generate_jwk("ES256")
    reg = tls_server.register({
        "client_name": f"{tier} app", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]}, "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256", "request_object_signing_alg": "ES256",
        "token_endpoint_auth_signing_alg": "ES256", "grant_types": ["authorization_code", "refresh_token"],
        "risk_tier": tier, "tls_client_certificate_bound_access_tokens": True,
    })
    return OAuthClient(ClientConfig.from_registration(
        reg, issuer=tls_server.issuer, signing_key=key, client_certificate=tls_server.files(cert, name),
        tls_ca_certs=tls_server.ca_file, allow_insecure_http=True,
    ))


def _get(tls_server: TlsServer, url: str, token: str, cert: Issued | None, name: str) -> httpx.Response:
    with tls_server.http(cert, name) as http:
        return http.get(url, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("tier", "jwt"), [("high", True), ("elevated", False)])
def test_bound_token_is_refused_from_another_certificate_or_none(
    tls_server: TlsServer, api: Api, rs_credentials: dict[str, Any], tier: str, jwt: bool
) -> None:
    cert = issue(tls_server.ca, f"{tier}-app")
    with _bound_client(tls_server, tier, cert, f"{tier}-app") as rp:
        start = rp.start_authorization(scope="openid", response_mode="jwt")
        with tls_server.http() as browser:
            r = browser.get(start.url)
        assert r.status_code == 303, r.text[:300]
        tokens = rp.complete_authorization(r.headers["location"], expected_state=start.state).tokens
        assert tokens.token_type == "Bearer" and (tokens.access_token.count(".") == 2) is jwt
        ok = rp.request("GET", f"{api.url}/orders", tokens)  # the client's own connection, its certificate
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"sub": "alice", "binding": "mtls"}
    token = tokens.access_token
    x5t = ClientCertificate(cert.der, chain_verified=True).thumbprint

    # introspection (RFC 8705 §3.2): the binding travels as cnf
    with tls_server.http() as http:
        info = http.post("/introspect", data={"token": token},
                         auth=(rs_credentials["client_id"], rs_credentials["client_secret"])).json()
    assert info["active"] is True and info["cnf"] == {"x5t#S256": x5t}

    thief = issue(tls_server.ca, "thief")  # a certificate from the same CA: still not the bound one
    for presented, name in ((thief, "thief"), (None, "none")):
        stolen = _get(tls_server, f"{api.url}/orders", token, presented, name)
        assert stolen.status_code == 401, (name, stolen.text)
        challenge = stolen.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token", error_description='), challenge
        assert stolen.json()["error"] == "invalid_token"
