"""The client library's mutual TLS (RFC 8705): the certificate on the connection, the client_id alone in the
form for the mTLS methods (§2), and the token/PAR endpoint aliases a server advertises (§5)."""

from __future__ import annotations

import ssl
from pathlib import Path

import orjson
import pytest

from jarmor.client import ClientConfig
from jarmor.client.endpoints import client_authentication
from jarmor.client.errors import ConfigurationError, DiscoveryError
from jarmor.client.metadata import parse_metadata
from jarmor.client.mtls import tls_context, with_mtls_aliases
from tests.certs import issue, make_ca

ISSUER = "https://as.example.com"


def _metadata(**extra: object) -> bytes:
    return orjson.dumps({
        "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize", "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks", "pushed_authorization_request_endpoint": f"{ISSUER}/par", **extra,
    })


def _files(tmp_path: Path) -> tuple[str, str]:
    return issue(make_ca(), "client").write(tmp_path, "client")


def test_mtls_methods_send_only_the_client_id(tmp_path: Path) -> None:
    config = ClientConfig(issuer=ISSUER, client_id="c1", token_endpoint_auth_method="tls_client_auth",
                          client_certificate=_files(tmp_path))
    assert client_authentication(config, issuer=ISSUER, now=0, jti="j") == ({"client_id": "c1"}, ())


def test_mtls_methods_need_a_certificate() -> None:
    with pytest.raises(ConfigurationError, match="needs client_certificate"):
        ClientConfig(issuer=ISSUER, client_id="c1", token_endpoint_auth_method="self_signed_tls_client_auth")


def test_tls_context_presents_the_certificate(tmp_path: Path) -> None:
    context = tls_context(_files(tmp_path), None)
    assert isinstance(context, ssl.SSLContext)
    assert tls_context(None, None) is None
    with pytest.raises(ConfigurationError, match="TLS files"):
        tls_context((str(tmp_path / "missing.pem"), str(tmp_path / "missing.key")), None)


def test_aliases_replace_the_token_and_par_endpoints() -> None:
    aliases = {"token_endpoint": "https://mtls.as.example.com/token",
               "pushed_authorization_request_endpoint": "https://mtls.as.example.com/par"}
    md = parse_metadata(_metadata(mtls_endpoint_aliases=aliases), expected_issuer=ISSUER, allow_insecure_http=False)
    assert md.token_endpoint == f"{ISSUER}/token"
    aliased = with_mtls_aliases(md, allow_insecure_http=False)
    assert aliased.token_endpoint == aliases["token_endpoint"]
    assert aliased.pushed_authorization_request_endpoint == aliases["pushed_authorization_request_endpoint"]
    assert aliased.authorization_endpoint == md.authorization_endpoint


@pytest.mark.parametrize("aliases", [["x"], {"token_endpoint": "http://mtls.example.com/token"},
                                     {"token_endpoint": "https://10.0.0.1/token"}])
def test_bad_aliases_are_refused(aliases: object) -> None:
    md = parse_metadata(_metadata(mtls_endpoint_aliases=aliases), expected_issuer=ISSUER, allow_insecure_http=False)
    with pytest.raises(DiscoveryError):
        with_mtls_aliases(md, allow_insecure_http=False)
