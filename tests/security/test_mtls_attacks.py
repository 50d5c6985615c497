"""RFC 8705 certificate mismatches, through the RFC 9440 proxy path: every wrong certificate is
``invalid_client`` (401), a forged ``Client-Cert`` from a peer outside ``trusted_proxies`` counts for nothing,
and a malformed header is never a 500."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests.certs import DAY, Issued, issue, make_ca, subject_dn
from tests.kit import Kit, all_tokens
from tests.server.mtls_support import STRANGER, MtlsKit, mtls_kit
from tests.server.support import plain_request

pytestmark = pytest.mark.anyio

CC = {"grant_type": "client_credentials"}


@pytest.fixture
async def mk(kit: Kit, tmp_path: Path) -> MtlsKit:
    return await mtls_kit(kit, tmp_path)


async def _tls_client(mk: MtlsKit, **subject: Any) -> str:
    tc = await mk.kit.add_client(
        token_endpoint_auth_method="tls_client_auth", grant_types=["client_credentials"], redirect_uris=None,
        **subject,
    )
    return tc.client_id


async def _refused(mk: MtlsKit, client_id: str, cert: Issued | None, **kw: Any) -> dict[str, Any]:
    before = len(all_tokens(mk.kit))
    r = await mk.post("/token", {**CC, "client_id": client_id}, cert, **kw)
    assert r.status_code == 401, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == "invalid_client"
    assert len(all_tokens(mk.kit)) == before  # nothing issued
    return body


async def test_the_registered_certificate_authenticates(mk: MtlsKit) -> None:
    cert = issue(mk.ca, "client-a")
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(cert))
    r = await mk.post("/token", {**CC, "client_id": client_id}, cert)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"


async def test_no_certificate(mk: MtlsKit) -> None:
    cert = issue(mk.ca, "client-a")
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(cert))
    await _refused(mk, client_id, None)


async def test_wrong_subject_dn(mk: MtlsKit) -> None:
    registered, other = issue(mk.ca, "client-a"), issue(mk.ca, "client-b")
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(registered))
    body = await _refused(mk, client_id, other)
    assert "registered subject" in body["error_description"]


@pytest.mark.parametrize(
    ("member", "registered", "presented"),
    [
        ("tls_client_auth_san_dns", "a.client.example", {"dns": ("b.client.example",)}),
        ("tls_client_auth_san_uri", "https://client.example/a", {"uris": ("https://client.example/b",)}),
        ("tls_client_auth_san_ip", "192.0.2.1", {"ips": ("192.0.2.2",)}),
        ("tls_client_auth_san_email", "a@client.example", {"emails": ("b@client.example",)}),
    ],
)
async def test_san_mismatch(mk: MtlsKit, member: str, registered: str, presented: dict[str, Any]) -> None:
    client_id = await _tls_client(mk, **{member: registered})
    await _refused(mk, client_id, issue(mk.ca, "client", **presented))
    # the same member carried by the DN instead of the SAN does not count either
    await _refused(mk, client_id, issue(mk.ca, registered))


async def test_unknown_ca(mk: MtlsKit) -> None:
    stranger_ca = make_ca("another CA")
    cert = issue(stranger_ca, "client-a")
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(cert))
    body = await _refused(mk, client_id, cert)
    assert "certificate authority" in body["error_description"]


async def test_self_signed_certificate_naming_the_subject(mk: MtlsKit) -> None:
    forged = issue(None, "client-a")
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(forged))
    await _refused(mk, client_id, forged)


@pytest.mark.parametrize("when", ["expired", "not-yet-valid"])
async def test_validity(mk: MtlsKit, when: str) -> None:
    now = dt.datetime.now(dt.UTC)
    window = {"not_before": now - 3 * DAY, "not_after": now - DAY} if when == "expired" else {
        "not_before": now + DAY, "not_after": now + 3 * DAY}
    cert = issue(mk.ca, "client-a", **window)
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(cert))
    await _refused(mk, client_id, cert)


async def test_self_signed_key_mismatch(mk: MtlsKit) -> None:
    registered, other = issue(None, "client-s"), issue(None, "client-s")
    tc = await mk.kit.add_client(
        key=registered.jwk(), token_endpoint_auth_method="self_signed_tls_client_auth",
        grant_types=["client_credentials"], redirect_uris=None,
    )
    r = await mk.post("/token", {**CC, "client_id": tc.client_id}, registered)
    assert r.status_code == 200, r.text
    body = await _refused(mk, tc.client_id, other)  # same subject, another key
    assert "registered keys" in body["error_description"]


async def test_header_from_an_untrusted_peer_is_ignored(mk: MtlsKit) -> None:
    cert = issue(mk.ca, "client-a")
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(cert))
    body = await _refused(mk, client_id, cert, peer=STRANGER)
    assert "required" in body["error_description"]  # as if no certificate had been sent


@pytest.mark.parametrize(
    "header",
    [
        "", ":", "::", ":not base64!:", "plain", ":AAAA:", ":" + "A" * 100_000 + ":", ":QUJD:;x=1",
        ":QUJD:, :QUJD:", '"abc"', ":QUJD", "\u00e9",
    ],
)
async def test_malformed_header_is_no_certificate(mk: MtlsKit, header: str) -> None:
    cert = issue(mk.ca, "client-a")
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(cert))
    await _refused(mk, client_id, None, header=header.encode("utf-8"))


async def test_repeated_header_is_refused(mk: MtlsKit) -> None:
    cert = issue(mk.ca, "client-a")
    client_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(cert))
    async with mk.http() as http:
        r = await http.post("/token", data={**CC, "client_id": client_id},
                            headers=[("Client-Cert", cert.header()), ("Client-Cert", cert.header())])
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_certificate_of_another_client_does_not_authenticate(mk: MtlsKit) -> None:
    a, b = issue(mk.ca, "client-a"), issue(mk.ca, "client-b")
    await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(a))
    b_id = await _tls_client(mk, tls_client_auth_subject_dn=subject_dn(b))
    await _refused(mk, b_id, a)


async def test_the_certificate_authenticates_at_par_introspection_and_revocation(mk: MtlsKit) -> None:
    cert = issue(mk.ca, "client-a")
    tc = await mk.kit.add_client(token_endpoint_auth_method="tls_client_auth", jwks=None,
                                 tls_client_auth_subject_dn=subject_dn(cert),
                                 grant_types=["client_credentials"], redirect_uris=None)
    r = await mk.post("/token", {**CC, "client_id": tc.client_id}, cert)
    token = r.json()["access_token"]
    r = await mk.post("/introspect", {"token": token, "client_id": tc.client_id}, cert)
    assert r.status_code == 200 and r.json()["active"] is True
    r = await mk.post("/introspect", {"token": token, "client_id": tc.client_id}, issue(mk.ca, "client-b"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await mk.post("/revoke", {"token": token, "client_id": tc.client_id}, None)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await mk.post("/revoke", {"token": token, "client_id": tc.client_id}, cert)
    assert r.status_code == 200
    r = await mk.post("/introspect", {"token": token, "client_id": tc.client_id}, cert)
    assert r.json() == {"active": False}


async def test_par_with_tls_client_auth(mk: MtlsKit) -> None:
    cert = issue(mk.ca, "web-a")
    tc = await mk.kit.add_client(token_endpoint_auth_method="tls_client_auth", jwks=None,
                                 tls_client_auth_subject_dn=subject_dn(cert))
    params, _ = plain_request(tc)
    r = await mk.post("/par", params, cert)
    assert r.status_code == 201, r.text
    r = await mk.post("/par", params, issue(mk.ca, "web-b"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
