"""``--auto-approve`` approves only requests from this machine (issue 12 item 3): the configuration refuses a
non-loopback listener, and the app itself refuses to auto-approve a connection from another host, for the
case where a process manager binds it elsewhere."""

from __future__ import annotations

import httpx

from tests.kit import ISSUER, REDIRECT, Kit


async def _authorize_from(kit: Kit, peer: str) -> httpx.Response:
    client = await kit.add_client()
    ro, _ctx = client.request_object()
    transport = httpx.ASGITransport(app=kit.http._transport.app, client=(peer, 40000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        return await http.get("/authorize", params={"client_id": client.client_id, "request": ro})


async def test_auto_approve_from_loopback(kit: Kit) -> None:
    r = await _authorize_from(kit, "127.0.0.1")
    assert r.status_code in (302, 303) and r.headers["location"].startswith(REDIRECT)  # approved as alice


async def test_no_auto_approve_for_another_host(kit: Kit) -> None:
    r = await _authorize_from(kit, "203.0.113.5")
    assert r.status_code == 200 and 'name="password"' in r.text  # the sign-in page, nothing approved
    assert "location" not in r.headers
