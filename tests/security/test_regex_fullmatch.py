"""Regex validation matches the whole value (issue 10 item 6).

``re.match`` with a ``$`` anchor also accepts a value followed by one ``"\\n"`` (``$`` matches before a final
newline), so a validation written that way lets a trailing newline through. Every validation in jarmor uses
``fullmatch`` without anchors; these tests pin each value that used to slip through.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest

from jarmor.client.errors import TokenError
from tests.kit import Kit, TestClient
from tests.server.support import assert_json_error, code_from, plain_request, redeem

from .support import assert_unchanged, snapshot


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


async def test_pkce_verifier_with_a_trailing_newline_is_refused(kit: Kit, base: TestClient) -> None:
    """RFC 7636 §4.1: exactly 43-128 unreserved characters; ``verifier + "\\n"`` is not a code_verifier, even
    when the challenge was computed over it."""
    verifier = secrets.token_urlsafe(32) + "\n"
    params, _ = plain_request(base, code_challenge=s256(verifier))
    code = code_from(kit, base, await kit.authorize(params))["code"]
    body = assert_json_error(await redeem(kit, base, code, verifier), "invalid_grant")
    assert "code_verifier" in body["error_description"]


async def test_pkce_verifier_without_the_newline_still_works(kit: Kit, base: TestClient) -> None:
    verifier = secrets.token_urlsafe(32)
    params, _ = plain_request(base, code_challenge=s256(verifier))
    code = code_from(kit, base, await kit.authorize(params))["code"]
    assert (await redeem(kit, base, code, verifier)).status_code == 200


async def test_code_challenge_with_a_trailing_newline_is_refused(kit: Kit, base: TestClient) -> None:
    """RFC 7636 §4.2: an S256 challenge is exactly 43 base64url characters."""
    params, _ = plain_request(base)
    params["code_challenge"] += "\n"
    before = snapshot(kit)
    r = await kit.par(base, params)
    body = assert_json_error(r, "invalid_request")
    assert "code_challenge" in body["error_description"]
    assert_unchanged(kit, before, allow=("assertion-jti",))


async def test_code_challenge_with_a_trailing_newline_in_a_request_object(kit: Kit, base: TestClient) -> None:
    ro, _ = base.request_object(code_challenge=s256(secrets.token_urlsafe(32)) + "\n")
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert_json_error(r, "invalid_request")


async def test_contact_with_a_trailing_newline_is_refused(kit: Kit) -> None:
    """RFC 7591 §2 contacts are e-mail addresses shown to administrators: no line break may ride along."""
    r = await kit.http.post(
        "/register",
        json={"redirect_uris": ["http://127.0.0.1:9999/cb"], "token_endpoint_auth_method": "client_secret_basic",
              "contacts": ["ops@rp.example\n"]},
        headers={"Authorization": "Bearer initial-token"},
    )
    assert_json_error(r, "invalid_client_metadata")


def test_client_library_error_code_with_a_trailing_newline_is_neutralised() -> None:
    """RFC 6749 §5.2 error codes are within the NQSCHAR set; the client library never passes on a line break."""
    assert TokenError("x", error="invalid_grant\n").error == "invalid_error_code"
    assert TokenError("x", error="invalid_grant").error == "invalid_grant"
