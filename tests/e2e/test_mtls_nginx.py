"""Mutual TLS behind a TLS-terminating proxy: nginx (Debian's package) with ``ssl_verify_client
optional_no_ca`` forwards the client certificate to ``jarmor serve`` in the RFC 9440 ``Client-Cert`` header;
jarmor trusts the header only from ``--trusted-proxies`` and verifies CA-issued chains itself
(``--ssl-ca-certs``). This is the path for ``self_signed_tls_client_auth`` (direct TLS cannot accept an
unknown self-signed certificate, ``server/mtls.py``).

nginx has no variable holding the DER certificate in base64, so the configuration below (also in
docs/mtls.md) rebuilds it from ``$ssl_client_raw_cert`` (PEM) with a ``map`` that joins its lines.
"""

from __future__ import annotations

import os
import shutil
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
from tests.certs import Issued, issue, make_ca, subject_dn

from .conftest import REGISTRATION_TOKEN, free_port

pytestmark = pytest.mark.e2e
MAX_PEM_LINES = 64  # a 4096-bit RSA certificate is about 30 PEM lines


def client_cert_map() -> str:
    """The nginx ``map`` that turns ``$ssl_client_raw_cert`` (PEM) into an RFC 9440 sf-binary item."""
    groups = "".join(f"(?:(?<l{i}>[A-Za-z0-9+/=]+)\\n)?" for i in range(MAX_PEM_LINES))
    joined = "".join(f"$l{i}" for i in range(MAX_PEM_LINES))
    return (
        "map $ssl_client_raw_cert $client_cert_header {\n"
        '    default "";\n'
        f'    "~^-----BEGIN CERTIFICATE-----\\n{groups}-----END CERTIFICATE-----\\n?$" ":{joined}:";\n'
        "}\n"
    )


NGINX_CONF = """
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    {map}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_verify_client optional_no_ca;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header Client-Cert $client_cert_header;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        if os.environ.get("JARMOR_REQUIRE_PEERS") == "1":
            pytest.fail("JARMOR_REQUIRE_PEERS=1 but nginx is not installed", pytrace=False)
        pytest.skip("nginx is not installed")
    return found


@dataclass
class Proxied:
    issuer: str
    ca: Issued
    ca_file: str
    directory: Path

    def http(self, cert: Issued | None = None, name: str = "client") -> httpx.Client:
        context = ssl.create_default_context(cafile=self.ca_file)
        if cert is not None:
            context.load_cert_chain(*cert.write(self.directory, name))
        return httpx.Client(base_url=self.issuer, verify=context, timeout=10)

    def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        with self.http() as http:
            r = http.post("/register", json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def token(self, client_id: str, cert: Issued | None, name: str, **headers: str) -> httpx.Response:
        with self.http(cert, name) as http:
            return http.post("/token", data={"grant_type": "client_credentials", "client_id": client_id},
                             headers=headers)


def _wait(url: str, ca_file: str | None, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + 30
    verify: Any = ssl.create_default_context(cafile=ca_file) if ca_file else True
    while True:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
        try:
            if httpx.get(url, verify=verify, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    nginx = nginx_binary()
    directory = tmp_path_factory.mktemp("mtls-nginx")
    ca = make_ca()
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.pem)
    front, upstream = free_port(), free_port()
    issuer = f"https://127.0.0.1:{front}"
    serve_log = directory / "serve.log"
    serve = subprocess.Popen(
        [sys.executable, "-m", "jarmor.cli.main", "serve", "--port", str(upstream), "--issuer", issuer,
         "--database", f"sqlite:///{directory / 'jarmor.db'}", "--registration-token", REGISTRATION_TOKEN,
         "--trusted-proxies", "127.0.0.1", "--ssl-ca-certs", str(ca_file)],
        cwd=directory, stdout=serve_log.open("wb"), stderr=subprocess.STDOUT, env=dict(os.environ),
    )
    cert, key = issue(ca, "127.0.0.1", ips=("127.0.0.1",), server=True).write(directory, "nginx")
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, map=client_cert_map(), port=front, cert=cert, key=key,
                                      upstream=upstream))
    nginx_log = directory / "nginx.out"
    proxy = subprocess.Popen([nginx, "-c", str(conf), "-p", str(directory)], cwd=directory,
                             stdout=nginx_log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait(f"{issuer}/.well-known/oauth-authorization-server", str(ca_file), [serve, proxy],
              [serve_log, nginx_log])
        yield Proxied(issuer, ca, str(ca_file), directory)
    finally:
        _stop(proxy)
        _stop(serve)


def test_tls_client_auth_through_nginx(proxied: Proxied) -> None:
    cert = issue(proxied.ca, "machine-n")
    reg = proxied.register({"token_endpoint_auth_method": "tls_client_auth",
                            "tls_client_auth_subject_dn": subject_dn(cert), "grant_types": ["client_credentials"]})
    config = ClientConfig.from_registration(reg, issuer=proxied.issuer, tls_ca_certs=proxied.ca_file,
                                            client_certificate=cert.write(proxied.directory, "machine-n"))
    with OAuthClient(config) as client:
        assert client.client_credentials().access_token
    # a certificate from another CA, forwarded by nginx (optional_no_ca), fails jarmor's own chain check
    stranger = issue(make_ca("another CA"), subject_dn(cert).split(",")[0].removeprefix("CN="))
    r = proxied.token(reg["client_id"], stranger, "stranger")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_self_signed_tls_client_auth_through_nginx(proxied: Proxied) -> None:
    cert = issue(None, "self-signed-n")
    reg = proxied.register({"token_endpoint_auth_method": "self_signed_tls_client_auth",
                            "jwks": {"keys": [cert.jwk().public_dict()]}, "grant_types": ["client_credentials"],
                            "tls_client_certificate_bound_access_tokens": True})
    r = proxied.token(reg["client_id"], cert, "self-signed-n")
    assert r.status_code == 200, r.text
    other = issue(None, "self-signed-n")
    r = proxied.token(reg["client_id"], other, "other-n")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_a_forged_header_sent_to_nginx_is_replaced(proxied: Proxied) -> None:
    cert = issue(proxied.ca, "machine-f")
    reg = proxied.register({"token_endpoint_auth_method": "tls_client_auth",
                            "tls_client_auth_subject_dn": subject_dn(cert), "grant_types": ["client_credentials"]})
    r = proxied.token(reg["client_id"], None, "none", **{"Client-Cert": cert.header()})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
