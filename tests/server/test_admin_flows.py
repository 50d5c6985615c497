"""The dashboard's flow-record pages (list with filters, one flow, chain verification), the report page with its
inline SVG charts, and the "Recent flows" section of a client's page."""

from __future__ import annotations

import re

import httpx

from tests.kit import Clock, Kit, TestClient

from .test_admin import admin_kit, cheap_hashing, csrf, signed_in  # noqa: F401  (fixtures)


async def some_flows(kit: Kit) -> TestClient:
    client = await kit.add_client(risk_tier="baseline", client_name="Shop <b>&</b>")
    for _ in range(2):
        assert (await kit.full_flow(client))["token"].status_code == 200
    await kit.http.get("/authorize", params={"client_id": client.client_id, "redirect_uri": "https://evil.example/"})
    await kit.server.flows.flush()
    return client


def flow_ids(page: httpx.Response) -> list[str]:
    return re.findall(r'data-flow-id="([^"]+)"', page.text)


async def test_pages_need_an_administrator(admin_kit: Kit) -> None:  # noqa: F811
    for path in ("/admin/flows", "/admin/flow?id=x", "/admin/report"):
        r = await admin_kit.http.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert (await admin_kit.http.post("/admin/flows/verify", data={})).status_code == 403


async def test_flow_list_and_filters(admin_kit: Kit) -> None:  # noqa: F811
    kit = admin_kit
    client = await some_flows(kit)
    await signed_in(kit)
    page = await kit.http.get("/admin/flows")
    assert page.status_code == 200 and len(flow_ids(page)) == 3
    assert 'id="chain-head"' in page.text and "PAR RO:ES256 iss PKCE pkjwt" in page.text
    assert len(flow_ids(await kit.http.get("/admin/flows", params={"outcome": "success"}))) == 2
    assert len(flow_ids(await kit.http.get("/admin/flows", params={"outcome": "invalid_request"}))) == 1
    assert len(flow_ids(await kit.http.get("/admin/flows", params={"client": client.client_id}))) == 3
    assert flow_ids(await kit.http.get("/admin/flows", params={"client": "nobody"})) == []
    assert len(flow_ids(await kit.http.get("/admin/flows", params={"since": "1h"}))) == 3
    bad = await kit.http.get("/admin/flows", params={"since": "<script>"})
    assert bad.status_code == 400 and "<script>" not in bad.text


async def test_one_flow(admin_kit: Kit) -> None:  # noqa: F811
    kit = admin_kit
    await some_flows(kit)
    await signed_in(kit)
    listing = await kit.http.get("/admin/flows", params={"outcome": "success"})
    page = await kit.http.get("/admin/flow", params={"id": flow_ids(listing)[0]})
    assert page.status_code == 200
    assert 'id="flow-outcome">success' in page.text and "Decision: allow" in page.text
    assert page.text.count("<td class=\"num\">") == 3  # par, code, token records
    assert "private_key_jwt" in page.text and "&#34;iss&#34;: &#34;parameter&#34;" in page.text
    assert (await kit.http.get("/admin/flow", params={"id": "nope"})).status_code == 404


async def test_verify_needs_csrf_and_reports_tampering(admin_kit: Kit) -> None:  # noqa: F811
    kit = admin_kit
    await some_flows(kit)
    token = await signed_in(kit)
    assert (await kit.http.post("/admin/flows/verify", data={"csrf_token": "forged"})).status_code == 403
    ok = await kit.http.post("/admin/flows/verify", data={"csrf_token": token})
    assert ok.status_code == 200 and 'class="notice ok" id="verify-result"' in ok.text
    row = next(r for r in kit.store.flows.rows() if '"alice"' in r.body)
    kit.store.flows.tamper(row.seq, body=row.body.replace('"alice"', '"mallory"'))
    bad = await kit.http.post("/admin/flows/verify", data={"csrf_token": token})
    assert bad.status_code == 409 and "edited" in bad.text and f"<td class=\"num\">{row.seq}</td>" in bad.text


async def test_report_page_has_inline_charts_and_escapes(admin_kit: Kit, clock: Clock) -> None:  # noqa: F811
    kit = admin_kit
    await some_flows(kit)
    clock.advance(2 * 86400)  # the client is now stale (and its name, from its registration, on the page)
    await signed_in(kit)
    page = await kit.http.get("/admin/report", params={"days": "7", "stale_days": "1"})
    assert page.status_code == 200 and page.text.count("<svg") >= 4
    assert 'id="governance-report"' in page.text and 'id="coverage-by-tier"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert " style=" not in page.text  # presentation attributes only: the CSP allows no inline style attribute
    assert "Shop &lt;b&gt;&amp;&lt;/b&gt;" in page.text and "Shop <b>" not in page.text
    assert 'href="/admin/client?id=' in page.text  # stale clients link to their page
    odd = await kit.http.get("/admin/report", params={"days": "many"})
    assert odd.status_code == 200 and 'value="30"' in odd.text


async def test_client_page_shows_recent_flows(admin_kit: Kit) -> None:  # noqa: F811
    kit = admin_kit
    client = await some_flows(kit)
    await signed_in(kit)
    page = await kit.http.get("/admin/client", params={"id": client.client_id})
    section = page.text.split('id="client-flows"', 1)[1].split("</div>", 1)[0]
    assert len(re.findall(r'href="/admin/flow\?id=', section)) == 3
    assert f"/admin/flows?client={client.client_id}" in section
