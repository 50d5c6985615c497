"""jarmor's client library with mutual TLS (RFC 8705) at oidc-provider 9 (``features.mTLS``): a
``tls_client_auth`` client (PKI certificate, SAN dNSName) completes PAR + code + JARM + refresh, gets
certificate-bound tokens (``x5t#S256``), and calls userinfo over its own connection; the same access token
from a connection with another certificate or none is refused by oidc-provider. A
``self_signed_tls_client_auth`` client (certificate registered as ``x5c`` in its JWKS) uses
``client_credentials``; another self-signed certificate is ``invalid_client``. Certificates are generated
in the test with ``cryptography``."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from jarmor.client import ClientConfig, OAuthClient
from tests.certs import Issued, issue, make_ca
from tests.e2e.conftest import free_port

from .peers import HERE, REDIRECT_URI, NodeProcess

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("node")]
SAN = "client.jarmor.example"


@dataclass
class MtlsProvider:
    issuer: str
    ca_file: str
    directory: Path
    pki: Issued
    self_signed: Issued
    process: NodeProcess

    def context(self, cert: Issued | None, name: str) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if cert is not None:
            context.load_cert_chain(*cert.write(self.directory, name))
        return context

    def config(self, client_id: str, cert: Issued, name: str, method: str) -> ClientConfig:
        return ClientConfig(
            issuer=self.issuer, client_id=client_id, redirect_uri=REDIRECT_URI, token_endpoint_auth_method=method,  # type: ignore[arg-type]
            client_certificate=cert.write(self.directory, name), tls_ca_certs=self.ca_file,
            allow_insecure_http=True,
        )


def _metadata(pki: Issued, self_signed: Issued) -> list[dict[str, object]]:
    common = {"redirect_uris": [REDIRECT_URI], "response_types": ["code"],
              "authorization_signed_response_alg": "ES256", "id_token_signed_response_alg": "ES256",
              "tls_client_certificate_bound_access_tokens": True}
    jwk = self_signed.jwk().public_dict() | {"x5c": [base64.b64encode(self_signed.der).decode()]}
    return [
        common | {"client_id": "jarmor-mtls-pki", "token_endpoint_auth_method": "tls_client_auth",
                  "tls_client_auth_san_dns": SAN,
                  "grant_types": ["authorization_code", "refresh_token", "client_credentials"]},
        common | {"client_id": "jarmor-mtls-self", "token_endpoint_auth_method": "self_signed_tls_client_auth",
                  "jwks": {"keys": [jwk]}, "grant_types": ["client_credentials"], "redirect_uris": [],
                  "response_types": []},
    ]


@pytest.fixture(scope="module")
def provider(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MtlsProvider]:
    directory = tmp_path_factory.mktemp("interop-oidc-provider-mtls")
    ca = make_ca()
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.pem)
    server_cert, server_key = issue(ca, "127.0.0.1", ips=("127.0.0.1",), server=True).write(directory, "op")
    pki, self_signed = issue(ca, "pki client", dns=(SAN,)), issue(None, "self-signed client")
    (directory / "clients.json").write_text(json.dumps(_metadata(pki, self_signed)))
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    log = directory / "oidc-provider.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [node, str(HERE / "op-oidc-provider-mtls.mjs")], cwd=HERE, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PORT": str(port), "CLIENTS_FILE": str(directory / "clients.json"),
                 "SERVER_CERT": server_cert, "SERVER_KEY": server_key, "CA_FILE": str(ca_file)},
        )
    running = NodeProcess(proc, log)
    deadline = time.monotonic() + 30
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(running.output())
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", verify=context, timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("oidc-provider did not start:\n" + running.output())
            time.sleep(0.1)
        yield MtlsProvider(issuer, str(ca_file), directory, pki, self_signed, running)
    finally:
        running.stop()


def browse(provider: MtlsProvider, url: str) -> str:
    """The user agent (no client certificate): follow redirects until the redirect URI."""
    with httpx.Client(verify=provider.context(None, "browser"), timeout=10) as http:
        for _ in range(10):
            r = http.get(url)
            location = r.headers.get("location")
            assert r.is_redirect and location, r.text[:300]
            url = urljoin(url, location)
            if url.startswith(REDIRECT_URI):
                return url
    raise AssertionError("the authorization did not reach the redirect URI")


def test_tls_client_auth_flow_with_certificate_bound_tokens(provider: MtlsProvider) -> None:
    config = provider.config("jarmor-mtls-pki", provider.pki, "pki", "tls_client_auth")
    with OAuthClient(config) as rp:
        meta = rp.discover()
        assert meta.raw["tls_client_certificate_bound_access_tokens"] is True
        start = rp.start_authorization(scope="openid offline_access", response_mode="jwt")
        done = rp.complete_authorization(browse(provider, start.url), expected_state=start.state)
        tokens = done.tokens
        assert done.claims["sub"] == "alice" and tokens.token_type.lower() == "bearer"
        userinfo = str(meta.raw["userinfo_endpoint"])
        ok = rp.request("GET", userinfo, tokens)  # over the client's own connection: its certificate
        assert ok.status_code == 200, ok.text
        assert ok.json()["sub"] == "alice"
        assert tokens.refresh_token
        refreshed = rp.refresh(tokens.refresh_token)
        assert refreshed.access_token != tokens.access_token
    other = issue(make_ca("another CA"), "thief", dns=(SAN,))
    for cert, name in ((other, "thief"), (None, "none")):
        with httpx.Client(verify=provider.context(cert, name), timeout=10) as http:
            r = http.get(userinfo, headers={"Authorization": f"Bearer {tokens.access_token}"})
        assert r.status_code == 401, (name, r.text)
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_self_signed_tls_client_auth_client_credentials(provider: MtlsProvider) -> None:
    config = provider.config("jarmor-mtls-self", provider.self_signed, "self", "self_signed_tls_client_auth")
    with OAuthClient(config) as rp:
        assert rp.client_credentials().access_token
    stranger = issue(None, "self-signed client")
    with httpx.Client(verify=provider.context(stranger, "stranger"), timeout=10) as http:
        meta = http.get(f"{provider.issuer}/.well-known/openid-configuration").json()
        r = http.post(meta["token_endpoint"], data={"grant_type": "client_credentials",
                                                    "client_id": "jarmor-mtls-self"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
