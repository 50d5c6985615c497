"""DPoP across two ``jarmor serve`` nodes sharing PostgreSQL and Redis (RFC 9449 §11.1, §8): a proof is used
once however many nodes it is sent to at the same moment, and a nonce one node issued is accepted by the other."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest

from jarmor.jose import generate_jwk, sign_jws_embedded_jwk

from ..e2e.conftest import REGISTRATION_TOKEN, RunningServer
from ..kit import TestClient
from .cluster import Cluster, http_client, url

pytestmark = [pytest.mark.scale, pytest.mark.postgres, pytest.mark.redis]

DPOP_KEY = generate_jwk("ES256")


async def _machine(http: httpx.AsyncClient, node: RunningServer, issuer: str, **meta: Any) -> TestClient:
    key = generate_jwk("ES256")
    body = {"grant_types": ["client_credentials"], "redirect_uris": [], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_dict()]}, "scope": "profile", **meta}
    r = await http.post(url(node, "/register"), json=body, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
    assert r.status_code == 201, r.text
    return TestClient(r.json()["client_id"], key, "ES256", r.json(), issuer=issuer)


def _proof(issuer: str, nonce: str | None = None) -> str:
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": f"{issuer}/token",
                              "iat": int(time.time())}
    if nonce is not None:
        claims["nonce"] = nonce
    return sign_jws_embedded_jwk(claims, DPOP_KEY, "ES256", typ="dpop+jwt")


async def _token(http: httpx.AsyncClient, node: RunningServer, client: TestClient, proof: str) -> httpx.Response:
    form = {**client.auth_form(), "grant_type": "client_credentials"}
    return await http.post(url(node, "/token"), data=form, headers={"DPoP": proof})


async def test_a_proof_sent_to_both_nodes_at_once_is_used_once(cluster: Cluster) -> None:
    a, b = cluster.nodes[:2]
    async with http_client() as http:
        client = await _machine(http, a, cluster.issuer)
        for _ in range(20):
            proof = _proof(cluster.issuer)
            results = await asyncio.gather(_token(http, a, client, proof), _token(http, b, client, proof),
                                           _token(http, a, client, proof), _token(http, b, client, proof))
            assert sorted(r.status_code for r in results) == [200, 400, 400, 400], [r.text for r in results]
            assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_dpop_proof"}
            assert next(r for r in results if r.status_code == 200).json()["token_type"] == "DPoP"


async def test_a_nonce_from_one_node_is_accepted_by_the_other(cluster: Cluster) -> None:
    a, b = cluster.nodes[:2]
    async with http_client() as http:
        client = await _machine(http, a, cluster.issuer, risk_tier="high", dpop_bound_access_tokens=True)
        r = await _token(http, a, client, _proof(cluster.issuer))
        assert r.status_code == 400 and r.json()["error"] == "use_dpop_nonce", r.text
        nonce = r.headers["dpop-nonce"]
        r = await _token(http, b, client, _proof(cluster.issuer, nonce))
        assert r.status_code == 200, r.text
        assert r.json()["token_type"] == "DPoP" and r.headers["dpop-nonce"]
