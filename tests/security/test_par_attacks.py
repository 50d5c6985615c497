"""Hostile input at the PAR endpoint (attack catalog group P, A42-A49, and beyond).

PAR errors are JSON with ``Cache-Control: no-store`` and never a redirect; ``invalid_client`` is 401 and a
wrong method 405. A refused push mints no ``request_uri`` and leaves no request-object replay mark; when the
body cannot even be parsed, the client assertion is not spent either.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from jarmor.jose.testing import segment
from jarmor.protocol.authorization import pushed_request_key
from tests.kit import ASSERTION_TYPE, Clock, Kit, TestClient
from tests.server.support import (
    PAR_NS,
    assert_error_page,
    assert_json_error,
    code_from,
    plain_request,
    push,
)

from .support import FORM, assert_unchanged, bounded, form, raw_request, snapshot

URN = "urn:ietf:params:oauth:request_uri:"
BUDGET = {"seconds": 0.5, "megabytes": 16.0}



def encoded(params: dict[str, str]) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


# --- A48: a request_uri never outlives its request object -------------------------------------------------


async def test_request_uri_never_outlives_the_request_object(kit: Kit, base: TestClient, clock: Clock) -> None:
    """Regression: an object expiring in 2 s used to get a 5 s request_uri (a code was issued after its exp)."""
    t = kit.env.now()
    ro, _ = base.request_object(exp=t + 2, nbf=t, iat=t)
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert r.status_code == 201 and r.json()["expires_in"] == 2
    clock.advance(3)
    before = snapshot(kit)
    r = await kit.authorize({"client_id": base.client_id, "request_uri": r.json()["request_uri"]})
    assert_error_page(r, "invalid_request_uri")
    assert_unchanged(kit, before)


async def test_request_object_expiring_now_is_not_pushed(kit: Kit, base: TestClient) -> None:
    """An object past its exp but inside the clock skew verifies, yet leaves no time to use a request_uri."""
    t = kit.env.now()
    ro, _ = base.request_object(exp=t - 5, nbf=t - 60, iat=t - 60)
    before = snapshot(kit)
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert_json_error(r, "invalid_request_object")
    # nothing pushed; the (expired) object's jti mark and the spent assertion are all that remain
    assert_unchanged(kit, before, allow=("ro-jti", "assertion-jti"))


# --- malformed bodies: refused before client authentication ---------------------------------------------------


def _bodies(client: TestClient) -> list[tuple[str, str, str, int]]:
    params, _ = plain_request(client)
    good = encoded({**params, **client.auth_form()})
    return [
        ("repeated client_assertion", good + "&client_assertion=x", "invalid_request", 400),
        ("repeated client_id", good + "&client_id=" + client.client_id, "invalid_request", 400),
        ("repeated request", good + "&request=a&request=b", "invalid_request", 400),
        ("NUL in a value", good + "&nonce=%00", "invalid_request", 400),
        ("invalid UTF-8", good + "&nonce=%ff%fe", "invalid_request", 400),
        ("129 parameters", good + "".join(f"&p{i}=1" for i in range(121)), "invalid_request", 400),
        ("too many separators", good + "&" * 200, "invalid_request", 400),
        ("over 64 KiB", good + "&pad=" + "a" * (64 * 1024), "invalid_request", 413),
        ("empty", "", "invalid_client", 401),
        ("only separators", "&&&", "invalid_client", 401),
        ("repeated empty name", "=&=", "invalid_request", 400),
    ]


async def test_malformed_bodies(kit: Kit, base: TestClient) -> None:
    """RFC 6749 §3.1 / RFC 9126 §2.1: refused as JSON, bounded; nothing pushed and no assertion spent."""
    for _case, body, error, status in _bodies(base):
        before = snapshot(kit)
        with bounded(**BUDGET):
            r = await raw_request(kit, "POST", "/par", body=body.encode(), headers=FORM)
        assert_json_error(r, error, status)
        assert_unchanged(kit, before)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405(kit: Kit, base: TestClient, method: str) -> None:
    """A46 / FAPI2*PARRejectInvalidHttpVerb."""
    params, _ = plain_request(base)
    before = snapshot(kit)
    r = await raw_request(kit, method, "/par", query=encoded({**params, **base.auth_form()}).encode())
    assert r.status_code == 405
    assert_unchanged(kit, before)


@pytest.mark.parametrize(
    ("ctype", "accepted"),
    [
        ("application/json", False),
        ("multipart/form-data; boundary=x", False),
        ("text/plain", False),
        ("", False),
        ("application/x-www-form-urlencoded-x", False),
        ("application/x-www-form-urlencoded; charset=UTF-8", True),
        ("APPLICATION/X-WWW-FORM-URLENCODED", True),
    ],
)
async def test_content_types(kit: Kit, base: TestClient, ctype: str, accepted: bool) -> None:
    params, _ = plain_request(base)
    body = encoded({**params, **base.auth_form()}).encode()
    before = snapshot(kit)
    r = await raw_request(kit, "POST", "/par", body=body, headers={"content-type": ctype} if ctype else {})
    if accepted:
        assert r.status_code == 201, r.text
        return
    assert_json_error(r, "invalid_request")
    assert_unchanged(kit, before)


async def test_streamed_oversized_body_is_413(kit: Kit, base: TestClient) -> None:
    async def chunks() -> Any:
        yield encoded(base.auth_form()).encode() + b"&pad="
        for _ in range(100):
            yield b"a" * 16384

    before = snapshot(kit)
    with bounded(seconds=1.0, megabytes=8.0):
        r = await kit.http.post("/par", content=chunks(), headers=FORM)
    assert_json_error(r, "invalid_request", 413)
    assert_unchanged(kit, before)


# --- A46 / A58: client authentication at PAR -------------------------------------------------------------------


async def test_two_authentication_methods(kit: Kit, base: TestClient) -> None:
    """RFC 6749 §2.3: exactly one method. Basic + assertion, secret + assertion: invalid_request."""
    params, _ = plain_request(base)
    before = snapshot(kit)
    r = await kit.http.post(
        "/par", data={**params, **base.auth_form()}, headers={"Authorization": "Basic " + "eDp5"}
    )
    assert_json_error(r, "invalid_request")
    r = await kit.http.post("/par", data={**params, **base.auth_form(), "client_secret": "s"})
    assert_json_error(r, "invalid_request")
    assert_unchanged(kit, before)


@pytest.mark.parametrize(
    "assertion_type",
    [ASSERTION_TYPE.upper(), ASSERTION_TYPE + "\t", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", ""],
)
async def test_assertion_type_variants(kit: Kit, base: TestClient, assertion_type: str) -> None:
    params, _ = plain_request(base)
    form_ = {**params, "client_assertion": base.assertion(), "client_assertion_type": assertion_type}
    before = snapshot(kit)
    r = await kit.http.post("/par", data={k: v for k, v in form_.items() if v})
    assert_json_error(r, "invalid_client", 401)
    assert_unchanged(kit, before)


async def test_failed_authentication_leaves_the_request_object_unused(kit: Kit, base: TestClient) -> None:
    """Client authentication precedes request validation: a refused client burns no request-object jti."""
    ro, _ctx = base.request_object()
    before = snapshot(kit)
    r = await kit.http.post("/par", data={"request": ro, "client_id": base.client_id})
    assert_json_error(r, "invalid_client", 401)
    assert_unchanged(kit, before)
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert r.status_code == 201, r.text


# --- A29 / A45 / A20 at PAR -------------------------------------------------------------------------------------


async def test_request_object_signed_with_another_clients_key(kit: Kit, base: TestClient) -> None:
    """A29(c): the key must belong to the authenticated client, whatever the object claims."""
    other = await kit.add_client(risk_tier="baseline")
    ro, _ = base.request_object(key=other.key)
    before = snapshot(kit)
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert_json_error(r, "invalid_request_object")
    assert_unchanged(kit, before, allow=("assertion-jti",))


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e.f",
        " " + "a.b.c",
        f"{segment({'alg': 'none'})}.{segment([1, 2])}.",
        f"{segment('[' * 5000 + ']' * 5000)}.{segment({})}.AAAA",
    ],
    ids=["empty", "dot", "two parts", "four parts", "six parts", "leading space", "array payload", "deep header"],
)
async def test_structurally_broken_request_objects(kit: Kit, base: TestClient, token: str) -> None:
    """A9 / A25 at PAR: invalid_request_object (an empty value counts as absent: a plain request)."""
    params = {"request": token, "client_id": base.client_id}
    before = snapshot(kit)
    with bounded(**BUDGET):
        r = await kit.par(base, params)
    if not token:
        assert_json_error(r, "invalid_request")  # no request object: the plain request lacks response_type
    else:
        assert_json_error(r, "invalid_request_object")
    assert_unchanged(kit, before, allow=("assertion-jti",))


# --- A35 / S57: request_uri values cannot be predicted ----------------------------------------------------------


async def test_request_uris_are_unique_and_unpredictable(kit: Kit, base: TestClient) -> None:
    refs = set()
    for _ in range(50):
        uri, _ = await push(kit, base)
        ref = uri.removeprefix(URN)
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", ref), ref  # 32 random bytes, base64url
        refs.add(ref)
    assert len(refs) == 50
    assert len(set(await _live_refs(kit))) == 50


async def _live_refs(kit: Kit) -> list[str]:
    return sorted(snapshot(kit).namespace(PAR_NS))


async def test_pushed_request_for_one_client_is_not_a_template_for_another(kit: Kit, base: TestClient) -> None:
    """A43: a second client presenting the URN with its own client_id gets a page; the owner still completes."""
    other = await kit.add_client(risk_tier="baseline")
    uri, ctx = await push(kit, base)
    before = snapshot(kit)
    for client_id in (other.client_id, base.client_id.upper(), base.client_id + " ", "", "\u0000"):
        r = await kit.authorize({"client_id": client_id, "request_uri": uri})
        assert r.status_code == 400 and "location" not in r.headers, client_id
    assert_unchanged(kit, before)
    params = code_from(kit, base, await kit.authorize({"client_id": base.client_id, "request_uri": uri}))
    assert params["state"] == ctx["state"]


async def test_form_body_is_read_not_the_query(kit: Kit, base: TestClient) -> None:
    """Parameters in the PAR URL are ignored: only the authenticated form body is the request."""
    params, _ = plain_request(base, state="in-query")
    r = await kit.http.post("/par", params=params, data={**plain_request(base, state="in-body")[0], **base.auth_form()})
    assert r.status_code == 201, r.text
    key = pushed_request_key(base.client_id, r.json()["request_uri"].removeprefix(URN))
    stored = await kit.store.ephemeral.get("par", key)
    assert stored is not None and b'"in-body"' in stored and b"in-query" not in stored


async def test_par_response_never_echoes_input(kit: Kit, base: TestClient) -> None:
    """Error descriptions name the problem, never the attacker's bytes (no reflection into JSON consumers)."""
    payload = "<script>alert(1)</script>"
    params, _ = plain_request(base, response_type=payload, scope=payload)
    r = await kit.par(base, params)
    assert_json_error(r, "unsupported_response_type")
    assert payload not in r.text
    r = await raw_request(kit, "POST", "/par", body=form({**params, "x": payload}), headers=FORM)
    assert payload not in r.text
