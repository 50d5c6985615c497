"""Client keys by reference (``jwks_uri``, RFC 7591 §2): registration, fetching, caching, rotation.

The keys are served by a local origin (loopback is allowed because the kit's issuer is loopback). A client
can rotate its keys without re-registering: an unknown ``kid`` triggers one rate-limited refetch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from jarmor.jose import JwkSet, decrypt_jwe, generate_jwk, verify_jws
from jarmor.protocol import errors
from jarmor.protocol.clients import ServerCapabilities, validate_client_metadata
from jarmor.protocol.context import Settings
from jarmor.protocol.policy import Policy
from jarmor.server.references import RemoteClientKeys
from tests.kit import REDIRECT, Kit, TestClient, ephemeral_keys, response_params

from .conftest import KitFactory
from .origin import Origin, run_origin
from .support import PAR_NS, assert_error_page, assert_json_error, assert_redirect_error, count_connections

FAST = Settings(fetch_timeout=1.0, fetch_connect_timeout=0.5, fetch_read_timeout=0.5)
JWKS_TYPE = "application/jwk-set+json"


@pytest.fixture
def origin() -> Iterator[Origin]:
    with run_origin() as o:
        yield o


@pytest.fixture
async def fast(make: KitFactory) -> Kit:
    return await make(settings=FAST)


class Ticks:
    """A monotonic clock for the client-key cache that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def serve_keys(origin: Origin, *keys: Any, path: str = "/jwks") -> str:
    return origin.put(path, orjson.dumps({"keys": [k.public_dict() for k in keys]}), JWKS_TYPE)


async def remote_client(kit: Kit, origin: Origin, *, key: Any = None, **meta: Any) -> TestClient:
    key = key or generate_jwk("ES256")
    url = serve_keys(origin, key)
    return await kit.add_client(key=key, jwks=None, jwks_uri=url, **meta)


def controlled_keys(kit: Kit, ticks: Ticks, **kw: Any) -> RemoteClientKeys:
    keys = RemoteClientKeys(
        kit.server.fetcher, ttl=kw.get("ttl", 300), refetch_interval=kw.get("interval", 30), clock=ticks
    )
    kit.env.client_keys = keys
    return keys


# --- registration ---------------------------------------------------------------------------------------


async def test_registration_accepts_jwks_uri(fast: Kit, origin: Origin) -> None:
    client = await remote_client(fast, origin)
    assert client.metadata["jwks_uri"] == origin.base + "/jwks"
    assert "jwks" not in client.metadata
    assert origin.hits.total() == 0, "registration never fetches (the protocol core does no I/O)"


@pytest.mark.parametrize(
    "changes",
    [
        {"jwks_uri": "https://client.example/jwks"},  # together with jwks (RFC 7591 §2)
        {"jwks": None, "jwks_uri": "http://client.example/jwks"},
        {"jwks": None, "jwks_uri": "https://user:pw@client.example/jwks"},
        {"jwks": None, "jwks_uri": "https://client.example/jwks#k"},
        {"jwks": None, "jwks_uri": "ftp://client.example/jwks"},
        {"jwks": None, "jwks_uri": "/jwks"},
        {"jwks": None, "jwks_uri": ["https://client.example/jwks"]},
        {"jwks": None, "jwks_uri": "https://client.example/" + "a" * 2000},
        {"jwks": None, "jwks_uri": "https://169.254.169.254/latest/meta-data/"},
        {"jwks": None, "jwks_uri": "https://[::ffff:a9fe:a9fe]/jwks"},
    ],
    ids=str,
)
async def test_registration_refusals(fast: Kit, changes: dict[str, Any]) -> None:
    key = generate_jwk("ES256")
    meta = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]},
        **changes,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    before = await fast.store.clients.count()
    r = await fast.http.post("/register", json=meta, headers={"Authorization": "Bearer initial-token"})
    assert_json_error(r, "invalid_client_metadata")
    assert await fast.store.clients.count() == before


def test_loopback_http_jwks_uri_needs_a_loopback_issuer() -> None:
    meta = {
        "redirect_uris": ["https://rp.example/cb"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": "http://127.0.0.1:8080/jwks",
    }
    caps = ServerCapabilities(signing_algs=("ES256",), scopes=frozenset({"openid"}))
    with pytest.raises(errors.OAuthError) as info:
        validate_client_metadata(meta, policy=Policy(), server=caps)
    assert info.value.error == "invalid_client_metadata"
    out = validate_client_metadata(meta, policy=Policy(), server=replace(caps, loopback_references=True))
    assert out["jwks_uri"] == meta["jwks_uri"]


# --- flows ---------------------------------------------------------------------------------------------


async def test_flow_with_keys_by_reference(fast: Kit, origin: Origin) -> None:
    client = await remote_client(fast, origin)
    out = await fast.full_flow(client)
    assert out["token"].status_code == 200, out["token"].text
    assert origin.hits["/jwks"] == 1, "PAR assertion, request object and token assertion share one fetch"


async def test_client_rotates_its_key_without_reregistering(fast: Kit, origin: Origin) -> None:
    old = generate_jwk("ES256")
    client = await remote_client(fast, origin, key=old)
    assert (await fast.full_flow(client))["token"].status_code == 200
    new = generate_jwk("ES256")
    serve_keys(origin, old, new)  # the client publishes its next key, then switches to it
    rotated = replace(client, key=new)
    assert (await fast.full_flow(rotated))["token"].status_code == 200
    assert origin.hits["/jwks"] == 2, "one refetch on the unknown kid"
    serve_keys(origin, new)  # and drops the old one later
    assert (await fast.full_flow(rotated))["token"].status_code == 200


async def test_unknown_kid_refetch_is_rate_limited(fast: Kit, origin: Origin) -> None:
    ticks = Ticks()
    controlled_keys(fast, ticks, interval=30)
    client = await remote_client(fast, origin)
    assert (await fast.full_flow(client))["token"].status_code == 200
    assert origin.hits["/jwks"] == 1
    for _ in range(10):  # a flood of assertions with unknown kids
        r = await fast.par(
            client,
            {"request": client.request_object()[0], "client_id": client.client_id},
            key=generate_jwk("ES256"),
        )
        assert_json_error(r, "invalid_client", 401)
    assert origin.hits["/jwks"] == 2, "at most one refetch per interval"
    ticks.now += 31
    r = await fast.par(
        client,
        {"request": client.request_object()[0], "client_id": client.client_id},
        key=generate_jwk("ES256"),
    )
    assert_json_error(r, "invalid_client", 401)
    assert origin.hits["/jwks"] == 3
    assert ephemeral_keys(fast, PAR_NS) == []


async def test_cached_set_expires_after_ttl(fast: Kit, origin: Origin) -> None:
    ticks = Ticks()
    controlled_keys(fast, ticks, ttl=300)
    client = await remote_client(fast, origin)
    await fast.full_flow(client)
    ticks.now += 299
    await fast.full_flow(client)
    assert origin.hits["/jwks"] == 1
    ticks.now += 2
    await fast.full_flow(client)
    assert origin.hits["/jwks"] == 2


async def test_failed_refresh_keeps_the_last_good_set(fast: Kit, origin: Origin) -> None:
    ticks = Ticks()
    controlled_keys(fast, ticks, ttl=300)
    client = await remote_client(fast, origin)
    await fast.full_flow(client)
    origin.documents.pop("/jwks")  # the client's key server goes down (404)
    ticks.now += 301
    assert (await fast.full_flow(client))["token"].status_code == 200
    assert origin.hits["/jwks"] == 2


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/error", None),
        ("/silent", None),
        ("/drip", None),
        ("/huge-chunked", None),
        ("/redirect/jwks", None),
        ("/typed", ("text/html", b"<html>")),
        ("/notjson", (JWKS_TYPE, b"keys")),
        ("/private", (JWKS_TYPE, None)),
        ("/dup", (JWKS_TYPE, b'{"keys": [], "keys": []}')),
    ],
)
async def test_unusable_jwks_uri_fails_authentication(
    fast: Kit, origin: Origin, path: str, content: tuple[str, bytes | None] | None
) -> None:
    """Every fetch failure ends as invalid_client (JSON, 401) in bounded time, with no PAR entry."""
    key = generate_jwk("ES256")
    if content is not None:
        body = content[1] if content[1] is not None else orjson.dumps({"keys": [key.private_dict()]})
        origin.put(path, body, content[0])
    origin.put("/jwks", orjson.dumps({"keys": [key.public_dict()]}), JWKS_TYPE)  # the redirect target
    client = await fast.add_client(key=key, jwks=None, jwks_uri=origin.base + path)
    started = time.monotonic()
    r = await fast.par(client, {"request": client.request_object()[0], "client_id": client.client_id})
    assert time.monotonic() - started < 2 * FAST.fetch_timeout + 1
    assert_json_error(r, "invalid_client", 401)
    assert ephemeral_keys(fast, PAR_NS) == []
    assert origin.hits["/jwks"] == 0


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "fd00::1", "::ffff:10.0.0.1"])
async def test_private_address_jwks_uri_is_never_contacted(
    fast: Kit, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A69: refused at registration as an IP literal, and at fetch time behind a name resolving there."""
    key = generate_jwk("ES256")
    literal = f"[{address}]" if ":" in address else address
    meta = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": f"https://{literal}/jwks",
    }
    r = await fast.http.post("/register", json=meta, headers={"Authorization": "Bearer initial-token"})
    assert_json_error(r, "invalid_client_metadata")

    async def resolve(host: str, port: int) -> list[str]:
        return [address]

    fast.server.fetcher.resolver = resolve
    connections = count_connections(fast, monkeypatch)
    client = await fast.add_client(key=key, jwks=None, jwks_uri="https://keys.client.example/jwks")
    r = await fast.par(client, {"request": client.request_object()[0], "client_id": client.client_id})
    assert connections == []  # refused at the resolved address: no connection was even attempted
    assert_json_error(r, "invalid_client", 401)
    assert ephemeral_keys(fast, PAR_NS) == []


async def test_request_object_by_value_verified_with_fetched_keys(fast: Kit, origin: Origin) -> None:
    client = await remote_client(fast, origin, risk_tier="baseline", response_modes=["query"])
    ro, _ctx = client.request_object()
    r = await fast.authorize({"client_id": client.client_id, "request": ro})
    assert "code" in response_params(r)
    forged, _ = client.request_object(key=generate_jwk("ES256"))
    r = await fast.authorize({"client_id": client.client_id, "request": forged})
    assert_redirect_error(fast, r, "invalid_request_object")  # rule R: the registered redirect URI


async def test_encrypted_jarm_to_a_key_from_jwks_uri(fast: Kit, origin: Origin) -> None:
    sig, enc = generate_jwk("ES256"), generate_jwk("ECDH-ES")
    url = serve_keys(origin, sig, enc)
    client = await fast.add_client(
        key=sig,
        jwks=None,
        jwks_uri=url,
        risk_tier="elevated",
        authorization_encrypted_response_alg="ECDH-ES",
        authorization_encrypted_response_enc="A128GCM",
    )
    ro, _ = client.request_object()
    r = await fast.par(client, {"request": ro, "client_id": client.client_id})
    r = await fast.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    token = response_params(r)["response"]
    inner = decrypt_jwe(token, JwkSet((enc,)), algorithms=["ECDH-ES"], encryptions=["A128GCM"])
    claims = verify_jws(
        inner.plaintext.decode(), JwkSet.from_dict(fast.server.keyring.public_jwks()), algorithms=["ES256"]
    ).claims
    assert "code" in claims


async def test_missing_encryption_key_at_jwks_uri_is_an_error_page(fast: Kit, origin: Origin) -> None:
    sig = generate_jwk("ES256")
    url = serve_keys(origin, sig)  # no use=enc key
    client = await fast.add_client(
        key=sig,
        jwks=None,
        jwks_uri=url,
        risk_tier="elevated",
        authorization_encrypted_response_alg="ECDH-ES",
        authorization_encrypted_response_enc="A128GCM",
    )
    ro, _ = client.request_object()
    r = await fast.par(client, {"request": ro, "client_id": client.client_id})
    r = await fast.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    assert_error_page(r, "invalid_request")

