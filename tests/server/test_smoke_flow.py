from __future__ import annotations

import pytest

from tests.kit import Kit


@pytest.mark.signs_in
async def test_full_flow_par_jarm(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="high", response_modes=["jwt"])
    out = await kit.full_flow(client, response_mode="jwt")
    assert out["token"].status_code == 200, out["token"].text
    body = out["token"].json()
    assert body["token_type"] == "DPoP" and body["access_token"] and body["id_token"]  # high: sender-constrained
