"""docs/resource-server.md's Starlette example, executed as written, driven through each refusal (S89)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from jarmor.resource import MemoryReplayStore

from .support import BEARER, DPOP, KEY, NOW, STEP, FakeVerifier, claims, proof

DOC = Path(__file__).resolve().parents[2] / "docs" / "resource-server.md"


def _example_app() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    source = next(b for b in blocks if "Starlette(" in b)
    namespace: dict[str, Any] = {"INTROSPECTION_SECRET": "s3cret", "REPLAY_STORE": MemoryReplayStore()}
    exec(compile(source, str(DOC), "exec"), namespace)
    rs = namespace["rs"]
    rs.verifier = FakeVerifier({
        BEARER: claims(),
        DPOP: claims(cnf={"jkt": KEY.thumbprint()}),
        STEP: claims(scope="payments:write", acr="urn:loa:3", auth_time=NOW - 10),
        "weak": claims(scope="payments:write", acr="urn:loa:2", auth_time=NOW - 10),
    })
    rs.jwt_verifier = None
    rs.clock = lambda: NOW
    return namespace["app"]


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_example_app()),
                                 base_url="https://api.example") as c:
        yield c


async def test_public_route_and_missing_credentials(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    resp = await client.get("/orders")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer, DPoP algs="ES256 PS256 EdDSA Ed25519"'


async def test_bearer_and_dpop_tokens_reach_the_endpoint(client: httpx.AsyncClient) -> None:
    resp = await client.get("/orders", headers={"Authorization": f"Bearer {BEARER}"})
    assert resp.status_code == 200 and resp.json() == {"subject": "alice", "client_id": "app"}
    resp = await client.get("/orders?page=2", headers={"Authorization": f"DPoP {DPOP}", "DPoP": proof(DPOP)})
    assert resp.status_code == 200


async def test_refusals_carry_the_exact_challenge(client: httpx.AsyncClient) -> None:
    resp = await client.get("/orders", headers={"Authorization": f"Bearer {DPOP}"})
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    resp = await client.get("/orders", headers={"Authorization": f"DPoP {DPOP}",
                                                "DPoP": proof(DPOP, url="https://other.example/orders")})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_dpop_proof"
    resp = await client.get(f"/orders?access_token={BEARER}")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    resp = await client.get("/orders", headers=[("Authorization", f"Bearer {BEARER}"),
                                                ("Authorization", f"Bearer {BEARER}")])
    assert resp.status_code == 400


async def test_per_route_scope_and_step_up(client: httpx.AsyncClient) -> None:
    resp = await client.post("/payments", headers={"Authorization": f"Bearer {BEARER}"})
    assert resp.status_code == 403
    assert 'error="insufficient_scope", error_description=' in resp.headers["www-authenticate"]
    assert 'scope="payments:write"' in resp.headers["www-authenticate"]
    resp = await client.post("/payments", headers={"Authorization": "Bearer weak"})
    assert resp.status_code == 401
    assert 'acr_values="urn:loa:3", max_age=300' in resp.headers["www-authenticate"]
    resp = await client.post("/payments", headers={"Authorization": f"Bearer {STEP}"})
    assert resp.status_code == 200 and resp.json() == {"paid_by": "alice"}
