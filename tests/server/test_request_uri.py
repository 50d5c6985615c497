"""Request objects by reference (RFC 9101 §5.2): off by default; when enabled, only registered URLs, fetched
by the hardened fetcher, and the object verified exactly like one sent by value.

Every refusal asserts the error code, the channel (an error page: nothing is verified yet), a bounded time
and that no state changed (no code, no ``jti`` mark).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest

from jarmor.jose import generate_jwk
from jarmor.protocol.context import Settings
from jarmor.server.fetch import FetchLimits
from tests.kit import REDIRECT, Kit, TestClient, ephemeral_keys, response_params

from .conftest import KitFactory
from .origin import Origin, run_origin
from .support import (
    RO_JTI_NS,
    assert_error_page,
    assert_json_error,
    assert_no_code,
    assert_redirect_error,
    count_connections,
    redeem,
)

RO_TYPE = "application/oauth-authz-req+jwt"
REF = Settings(
    request_uri_parameter_supported=True, fetch_timeout=1.0, fetch_connect_timeout=0.5, fetch_read_timeout=0.5
)
TOKEN = {"Authorization": "Bearer initial-token"}


@pytest.fixture
def origin() -> Iterator[Origin]:
    with run_origin() as o:
        yield o


@pytest.fixture
async def ref(make: KitFactory) -> Kit:
    return await make(settings=REF)


async def by_reference_client(kit: Kit, *uris: str, **meta: Any) -> TestClient:
    return await kit.add_client(risk_tier="baseline", request_uris=list(uris), **meta)


async def authorize_by_reference(kit: Kit, client: TestClient, uri: str) -> tuple[Any, float]:
    started = time.monotonic()
    r = await kit.authorize({"client_id": client.client_id, "request_uri": uri})
    return r, time.monotonic() - started


def assert_refused_without_trace(kit: Kit, r: Any, elapsed: float, error: str) -> None:
    assert_error_page(r, error)
    assert elapsed < REF.fetch_timeout + 1.0, f"took {elapsed:.2f} s"
    assert_no_code(kit)
    assert ephemeral_keys(kit, RO_JTI_NS) == []


# --- off by default -------------------------------------------------------------------------------------


async def test_off_by_default(kit: Kit, origin: Origin) -> None:
    md = (await kit.http.get("/.well-known/oauth-authorization-server")).json()
    assert md["request_uri_parameter_supported"] is False
    client = await kit.add_client(risk_tier="baseline")
    ro, _ = client.request_object()
    url = origin.put("/ro", ro, RO_TYPE)
    r, elapsed = await authorize_by_reference(kit, client, url)
    assert_refused_without_trace(kit, r, elapsed, "request_uri_not_supported")
    assert origin.hits.total() == 0
    body = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "request_uris": [url]}
    assert_json_error(await kit.http.post("/register", json=body, headers=TOKEN), "invalid_client_metadata")


async def test_advertised_when_enabled(ref: Kit) -> None:
    md = (await ref.http.get("/.well-known/oauth-authorization-server")).json()
    assert md["request_uri_parameter_supported"] is True
    assert md["require_request_uri_registration"] is True


# --- registration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uris",
    [
        [f"https://rp.example/ro/{i}" for i in range(REF.max_request_uris + 1)],
        ["https://rp.example/" + "a" * 500],
        ["http://rp.example/ro"],
        ["https://user:pw@rp.example/ro"],
        ["https://rp.example/ro", "https://rp.example/ro"],
        [""],
        "https://rp.example/ro",
        [["https://rp.example/ro"]],
        ["file:///etc/passwd"],
        ["https://169.254.169.254/latest/meta-data/"],
        ["https://[fe80::1]/ro"],
        ["https://10.0.0.1/ro"],
    ],
    ids=lambda u: str(u)[:40],
)
async def test_registration_refusals(ref: Kit, uris: Any) -> None:
    body = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "request_uris": uris}
    before = await ref.store.clients.count()
    assert_json_error(await ref.http.post("/register", json=body, headers=TOKEN), "invalid_client_metadata")
    assert await ref.store.clients.count() == before


@pytest.mark.parametrize("extra", [{"risk_tier": "high"}, {"require_pushed_authorization_requests": True}])
async def test_clients_that_must_push_cannot_register_request_uris(ref: Kit, extra: dict[str, Any]) -> None:
    """FAPI 2.0 §5.3.2.2-3: PAR only, so a hosted request_uri would only ever be fetched to be refused."""
    key = generate_jwk("ES256")
    body = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]},
        "request_uris": ["https://rp.example/ro"],
        **extra,
    }
    assert_json_error(await ref.http.post("/register", json=body, headers=TOKEN), "invalid_client_metadata")


async def test_registration_accepts_https_and_fragments(ref: Kit) -> None:
    uris = ["https://rp.example/ro#sha256-abc", "https://rp.example/" + "a" * 490]
    client = await by_reference_client(ref, *uris)
    assert client.metadata["request_uris"] == uris


# --- flows ----------------------------------------------------------------------------------------------


async def test_flow_by_reference(ref: Kit, origin: Origin) -> None:
    client = await by_reference_client(ref, origin.base + "/ro/1")
    ro, ctx = client.request_object()
    origin.put("/ro/1", ro, RO_TYPE)
    r, _ = await authorize_by_reference(ref, client, origin.base + "/ro/1")
    params = response_params(r)
    assert params["state"] == ctx["state"] and "code" in params
    t = await redeem(ref, client, params["code"], ctx["code_verifier"])
    assert t.status_code == 200, t.text
    assert origin.hits["/ro/1"] == 1


async def test_registered_fragment_is_not_sent(ref: Kit, origin: Origin) -> None:
    uri = origin.base + "/ro/2#v1"
    client = await by_reference_client(ref, uri)
    origin.put("/ro/2", client.request_object()[0], RO_TYPE)
    r, _ = await authorize_by_reference(ref, client, uri)
    assert "code" in response_params(r)
    r, _ = await authorize_by_reference(ref, client, origin.base + "/ro/2")  # not the registered string
    assert_error_page(r, "invalid_request_uri")


async def test_outer_parameters_are_ignored(ref: Kit, origin: Origin) -> None:
    """RFC 9101 §6.3: only the object's parameters count, as for an object sent by value."""
    client = await by_reference_client(ref, origin.base + "/ro")
    ro, ctx = client.request_object()
    origin.put("/ro", ro, RO_TYPE)
    r = await ref.authorize(
        {
            "client_id": client.client_id,
            "request_uri": origin.base + "/ro",
            "state": "outer",
            "scope": "profile",
        }
    )
    assert response_params(r)["state"] == ctx["state"]


async def test_replayed_object_is_refused(ref: Kit, origin: Origin) -> None:
    client = await by_reference_client(ref, origin.base + "/ro")
    ro, ctx = client.request_object()
    origin.put("/ro", ro, RO_TYPE)
    r, _ = await authorize_by_reference(ref, client, origin.base + "/ro")
    assert "code" in response_params(r)
    r, _ = await authorize_by_reference(ref, client, origin.base + "/ro")
    assert_redirect_error(ref, r, "invalid_request_object", state=ctx["state"])


@pytest.mark.parametrize(
    "change",
    [
        {"key": "other"},
        {"iss": "someone-else"},
        {"aud": "https://other-as.example"},
        {"client_id": "another-client"},
        {"exp": 1},
        {"alg": "none"},
    ],
    ids=lambda c: next(iter(c)),
)
async def test_fetched_object_is_verified_like_one_by_value(
    ref: Kit, origin: Origin, change: dict[str, Any]
) -> None:
    client = await by_reference_client(ref, origin.base + "/ro")
    if "key" in change:
        ro, _ = client.request_object(key=generate_jwk("ES256"))
    elif "alg" in change:
        import base64
        import json

        def seg(v: Any) -> str:
            return base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()

        ro = seg({"alg": "none"}) + "." + seg({"iss": client.client_id, "client_id": client.client_id}) + "."
    else:
        ro, _ = client.request_object(**change)
    origin.put("/ro", ro, RO_TYPE)
    r, elapsed = await authorize_by_reference(ref, client, origin.base + "/ro")
    if "exp" in change:  # signature and binding verified: the error may use the verified redirect URI
        assert_redirect_error(ref, r, "invalid_request_object")
        assert_no_code(ref)
        assert ephemeral_keys(ref, RO_JTI_NS) == []
    else:
        assert_refused_without_trace(ref, r, elapsed, "invalid_request_object")


# --- fetch abuse ----------------------------------------------------------------------------------------


async def test_unregistered_request_uri_is_never_fetched(ref: Kit, origin: Origin) -> None:
    client = await by_reference_client(ref, origin.base + "/ro")
    origin.put("/other", client.request_object()[0], RO_TYPE)
    for uri in (
        origin.base + "/other",
        "https://169.254.169.254/latest/meta-data/",
        origin.base + "/ro?x=1",
        origin.base + "/" + "a" * 600,
    ):
        r, elapsed = await authorize_by_reference(ref, client, uri)
        assert_refused_without_trace(ref, r, elapsed, "invalid_request_uri")
    assert origin.hits.total() == 0


@pytest.mark.parametrize(
    "path",
    ["/silent", "/drip", "/huge-chunked", "/huge-declared", "/redirect/ro", "/error", "/missing", "/gzip"],
)
async def test_misbehaving_origin(ref: Kit, origin: Origin, path: str) -> None:
    client = await by_reference_client(ref, origin.base + path)
    origin.put("/ro", client.request_object()[0], RO_TYPE)  # where the redirect points
    r, elapsed = await authorize_by_reference(ref, client, origin.base + path)
    assert_refused_without_trace(ref, r, elapsed, "invalid_request_uri")
    assert origin.hits["/ro"] == 0, "redirects are never followed"


@pytest.mark.parametrize("ctype", ["application/jwt", "text/html", "application/json", "text/plain", ""])
async def test_wrong_content_type(ref: Kit, origin: Origin, ctype: str) -> None:
    client = await by_reference_client(ref, origin.base + "/ro")
    origin.put("/ro", client.request_object()[0], ctype)
    r, elapsed = await authorize_by_reference(ref, client, origin.base + "/ro")
    assert_refused_without_trace(ref, r, elapsed, "invalid_request_uri")


@pytest.mark.parametrize("body", [b"hello", b"\xff\xfe.a.b", b"a.b", b""])
async def test_not_a_jwt(ref: Kit, origin: Origin, body: bytes) -> None:
    client = await by_reference_client(ref, origin.base + "/ro")
    origin.put("/ro", body, RO_TYPE)
    r, elapsed = await authorize_by_reference(ref, client, origin.base + "/ro")
    assert_refused_without_trace(ref, r, elapsed, "invalid_request_uri")


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "169.254.169.254", "192.168.1.1", "fd00::1", "::ffff:10.0.0.1"]
)
async def test_private_addresses_are_never_contacted(ref: Kit, address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A34: an IP literal is refused at registration; a name resolving to it is refused before connecting."""
    literal = f"[{address}]" if ":" in address else address
    body = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "request_uris": [f"https://{literal}/ro"],
    }
    assert_json_error(await ref.http.post("/register", json=body, headers=TOKEN), "invalid_client_metadata")

    async def resolve(host: str, port: int) -> list[str]:
        return [address]

    ref.server.fetcher.resolver = resolve
    seen = count_connections(ref, monkeypatch)
    uri = "https://rebind.rp.example/ro"
    client = await by_reference_client(ref, uri)
    r, elapsed = await authorize_by_reference(ref, client, uri)
    assert_refused_without_trace(ref, r, elapsed, "invalid_request_uri")
    assert seen == []  # refused at the resolved address: no connection was even attempted


async def test_loopback_and_http_refused_when_issuer_not_loopback(ref: Kit, origin: Origin) -> None:
    """A non-loopback deployment: http and loopback targets (``::1``, 127.0.0.1) are refused."""
    uris = [
        origin.base + "/ro",
        f"https://[::1]:{origin.port}/ro",
        f"https://127.0.0.1:{origin.port}/ro",
        f"https://localhost:{origin.port}/ro",
    ]
    client = await by_reference_client(ref, *uris)
    origin.put("/ro", client.request_object()[0], RO_TYPE)
    ref.server.fetcher.limits = FetchLimits(total_timeout=1.0, allow_loopback=False)
    for uri in uris:
        r, elapsed = await authorize_by_reference(ref, client, uri)
        assert_refused_without_trace(ref, r, elapsed, "invalid_request_uri")
    assert origin.hits.total() == 0


async def test_request_uri_at_par_is_refused(ref: Kit, origin: Origin) -> None:
    client = await by_reference_client(ref, origin.base + "/ro")
    r = await ref.par(client, {"client_id": client.client_id, "request_uri": origin.base + "/ro"})
    assert_json_error(r, "invalid_request")
    assert origin.hits.total() == 0


async def test_every_fetch_failure_reads_the_same(ref: Kit, origin: Origin) -> None:
    """A34: no network oracle — the page never tells which names resolve where or which ports answer."""
    from jarmor.server.references import UNAVAILABLE

    origin.put("/typed", "a.b.c", "text/html")
    origin.put("/notjwt", "hello", RO_TYPE)
    uris = [origin.base + p for p in ("/error", "/redirect/ro", "/typed", "/notjwt", "/missing")]
    uris += ["https://internal.rp.example/ro", "https://unresolvable.invalid/ro"]
    client = await by_reference_client(ref, *uris)
    system = ref.server.fetcher.resolver

    async def resolve(host: str, port: int) -> list[str]:
        return ["10.0.0.1"] if host == "internal.rp.example" else await system(host, port)

    ref.server.fetcher.resolver = resolve
    for uri in uris:
        r, elapsed = await authorize_by_reference(ref, client, uri)
        assert_refused_without_trace(ref, r, elapsed, "invalid_request_uri")
        match = re.search(r'id="error-description">([^<]*)<', r.text)
        assert match and unescape(match.group(1)) == UNAVAILABLE, (uri, r.text[:400])
