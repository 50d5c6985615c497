"""Every JARM rejection (C1-C9, attack catalog A71-A81, A85). A rejected response never reaches the token
endpoint, and checks that need no keys (iss, aud, times, alg) fail without fetching any."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from jarmor.client import (
    AsyncOAuthClient,
    AuthorizationResponseError,
    AuthorizationServerError,
    JarmValidationError,
    MemoryFlowStateStore,
    UnverifiedErrorResponse,
)
from jarmor.jose import b64url_encode, encrypt_jwe, generate_jwk

from .fake_server import CLIENT_ID, DROP, EVIL_ISSUER, ISSUER, REDIRECT_URI, callback, forge


async def rejects(
    client: AsyncOAuthClient, fake: Any, response: str | dict[str, str], reason: str, **kwargs: Any
) -> JarmValidationError:
    with pytest.raises(JarmValidationError) as info:
        kwargs.setdefault("expected_state", fake.last_state)
        await client.handle_callback(response, **kwargs)
    assert info.value.reason == reason, info.value
    assert fake.calls("/token") == 0
    return info.value


def flip_signature_bit(token: str) -> str:
    head, payload, sig = token.split(".")
    first = "A" if sig[0] != "A" else "B"
    return f"{head}.{payload}.{first}{sig[1:]}"


async def test_tampered_signature(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    await rejects(
        client, fake, callback(ro, {"response": flip_signature_bit(fake.jarm(ro))}), "bad_signature"
    )


async def test_tampered_payload(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    head, _, sig = fake.jarm(ro).split(".")
    other = b64url_encode(orjson.dumps(fake.response_claims(ro, code="attacker-code")))
    await rejects(client, fake, callback(ro, {"response": f"{head}.{other}.{sig}"}), "bad_signature")


async def test_alg_none(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    token = forge({"alg": "none"}, fake.response_claims(ro))
    await rejects(client, fake, callback(ro, {"response": token}), "alg_mismatch")
    assert fake.calls("/jwks") == 0


async def test_hs256_keyed_with_server_public_key(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    secret = orjson.dumps(fake.sig_key.public_dict())
    head = b64url_encode(orjson.dumps({"alg": "HS256", "kid": "as-sig-1"}))
    payload = b64url_encode(orjson.dumps(fake.response_claims(ro)))
    mac = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{head}.{payload}.{b64url_encode(mac)}"
    await rejects(client, fake, callback(ro, {"response": token}), "alg_mismatch")


async def test_other_registered_alg(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    token = forge({"alg": "PS256", "kid": "as-sig-1"}, fake.response_claims(ro), b"x" * 256)
    await rejects(client, fake, callback(ro, {"response": token}), "alg_mismatch")


async def test_alg_registered_but_not_advertised(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    client.core.metadata = None
    fake.metadata["authorization_signing_alg_values_supported"] = ["PS256"]
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro)}), "alg_not_advertised")


async def test_attacker_key_with_real_kid_and_embedded_jwk(
    client: AsyncOAuthClient, fake: Any, begin: Any, keys: Any
) -> None:
    ro = await begin(client)
    token = fake.sign(fake.response_claims(ro), key=keys.attacker, jwk=keys.attacker.public_dict())
    await rejects(client, fake, callback(ro, {"response": token}), "bad_signature")


async def test_wrong_issuer_fetches_nothing(
    client: AsyncOAuthClient, fake: Any, evil: Any, network: Any, begin: Any
) -> None:
    """C3 / A73: AS-B's validly signed response to a flow started at AS-A: rejected before any key fetch."""
    ro = await begin(client)
    token = evil.sign(fake.response_claims(ro, iss=EVIL_ISSUER), jku=f"{EVIL_ISSUER}/jwks")
    before = len(network.log)
    await rejects(client, fake, callback(ro, {"response": token}), "iss_mismatch")
    assert network.log[before:] == []  # no JWKS, no token endpoint, nothing at evil.example
    assert evil.requests == [] and fake.calls("/jwks") == 0


@pytest.mark.parametrize(
    ("iss", "reason"),
    [
        (DROP, "iss_missing"),
        (ISSUER + "/", "iss_mismatch"),
        ("HTTPS://AS.EXAMPLE", "iss_mismatch"),
        ("https://as.example:443", "iss_mismatch"),
        ([ISSUER], "iss_mismatch"),
    ],
)
async def test_issuer_variants(
    client: AsyncOAuthClient, fake: Any, begin: Any, iss: Any, reason: str
) -> None:
    ro = await begin(client)
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro, iss=iss)}), reason)
    assert fake.calls("/jwks") == 0


@pytest.mark.parametrize(
    ("aud", "reason"),
    [
        (DROP, "aud_missing"),
        ("client-2", "aud_mismatch"),
        (["client-2"], "aud_mismatch"),
        (ISSUER, "aud_mismatch"),
        ([CLIENT_ID, "client-2"], "aud_mismatch"),
        ([], "aud_mismatch"),
    ],
)
async def test_audience_variants(
    client: AsyncOAuthClient, fake: Any, begin: Any, aud: Any, reason: str
) -> None:
    ro = await begin(client)
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro, aud=aud)}), reason)
    assert fake.calls("/jwks") == 0


async def test_audience_single_element_array_accepted(
    client: AsyncOAuthClient, fake: Any, begin: Any
) -> None:
    ro = await begin(client)
    result = await client.handle_callback(callback(ro, {"response": fake.jarm(ro, aud=[CLIENT_ID])}), expected_state=ro["state"])
    assert result.code == ro["_code"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": DROP}, "exp_missing"),
        ({"exp": -31}, "expired"),
        ({"exp": "soon"}, "exp_invalid"),
        ({"exp": True}, "exp_invalid"),
        ({"exp": 1000}, "exp_too_far"),
        ({"iat": 3600}, "iat_in_future"),
        ({"iat": 31}, "iat_in_future"),
        ({"nbf": 3600}, "not_yet_valid"),
    ],
)
async def test_time_claims(
    client: AsyncOAuthClient, fake: Any, begin: Any, clock: Any, overrides: dict[str, Any], reason: str
) -> None:
    ro = await begin(client)
    now = clock.t
    shifted = {
        k: (v if v is DROP or not isinstance(v, int) or isinstance(v, bool) else now + v)
        for k, v in overrides.items()
    }
    if overrides.get("exp") == 1000:
        shifted["exp"] = now * 1000
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro, **shifted)}), reason)
    assert fake.calls("/jwks") == 0


async def test_within_skew_accepted(client: AsyncOAuthClient, fake: Any, begin: Any, clock: Any) -> None:
    ro = await begin(client)
    token = fake.jarm(ro, exp=clock.t - 29, iat=clock.t + 29, nbf=clock.t + 29)
    assert (await client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])).code == ro["_code"]


async def test_non_finite_exp(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    head = b64url_encode(orjson.dumps({"alg": "ES256", "kid": "as-sig-1"}))
    raw = orjson.dumps(fake.response_claims(ro, exp=DROP))[:-1] + b',"exp":Infinity}'
    token = f"{head}.{b64url_encode(raw)}.AAAA"
    await rejects(client, fake, callback(ro, {"response": token}), "malformed")


async def test_state_missing(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro, state=DROP)}), "state_missing")
    # with the session's state the flow is found, verified, then the missing state is caught (C7)
    ro = await begin(client)
    token = fake.jarm(ro, state=DROP)
    await rejects(
        client, fake, callback(ro, {"response": token}), "state_missing", expected_state=ro["state"]
    )


async def test_state_of_another_session(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro_a = await begin(client)
    ro_b = await begin(client)
    token = fake.jarm(ro_b)
    await rejects(
        client, fake, callback(ro_b, {"response": token}), "state_mismatch", expected_state=ro_a["state"]
    )
    # a validly signed response for another flow is not authentic for session A: A's flow stays pending
    # for its own response, and B's flow (the attacker's login, say) was not completed either
    genuine = callback(ro_a, {"response": fake.jarm(ro_a)})
    assert (await client.handle_callback(genuine, expected_state=ro_a["state"])).code == ro_a["_code"]
    result = await client.handle_callback(callback(ro_b, {"response": token}), expected_state=ro_b["state"])
    assert result.code == ro_b["_code"]


@pytest.mark.parametrize("state", ["unknown-state", 123, ""])
async def test_state_unknown_or_malformed(
    client: AsyncOAuthClient, fake: Any, begin: Any, state: Any
) -> None:
    ro = await begin(client)
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro, state=state)}), "state_mismatch")


async def test_replayed_response(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    response = callback(ro, {"response": fake.jarm(ro)})
    result = await client.handle_callback(response, expected_state=ro["state"])
    await client.exchange_code(result)
    with pytest.raises(JarmValidationError) as info:
        await client.handle_callback(response, expected_state=ro["state"])
    assert info.value.reason == "state_replayed"
    assert fake.calls("/token") == 1


@pytest.mark.parametrize(
    ("outer", "reason"),
    [
        ({"code": "attacker"}, "unexpected_parameter"),
        ({"state": "x"}, "unexpected_parameter"),
        ({"error": "access_denied"}, "unexpected_parameter"),
        ({"iss": ISSUER}, "unexpected_parameter"),
        ({"iss": EVIL_ISSUER}, "iss_mismatch"),  # C8: two issuer identifiers disagree
    ],
)
async def test_outer_parameters_next_to_response(
    client: AsyncOAuthClient, fake: Any, begin: Any, outer: dict[str, str], reason: str
) -> None:
    ro = await begin(client)
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro), **outer}), reason)


async def test_response_twice_or_empty(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    token = fake.jarm(ro)
    with pytest.raises(AuthorizationResponseError) as info:
        await client.handle_callback(f"{REDIRECT_URI}?response={token}&response={token}", expected_state=ro["state"])
    assert info.value.reason == "duplicate_parameter"
    await rejects(client, fake, f"{REDIRECT_URI}?response=", "malformed")
    await rejects(client, fake, f"{REDIRECT_URI}?response=a.b", "malformed")


async def test_downgrade_to_plain_parameters(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    """A71: JARM was requested; a plain code response is refused."""
    ro = await begin(client)
    with pytest.raises(AuthorizationResponseError) as info:
        await client.handle_callback(callback(ro, {"code": ro["_code"], "state": ro["state"], "iss": ISSUER}), expected_state=ro["state"])
    assert info.value.reason == "response_mode_mismatch"


async def test_wrong_channel(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="query.jwt")
    await rejects(client, fake, f"{REDIRECT_URI}#response={fake.jarm(ro)}", "response_mode_mismatch")


async def test_verified_error_response(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    token = fake.jarm(ro, code=DROP, error="access_denied", error_description="<script>alert(1)</script>")
    with pytest.raises(AuthorizationServerError) as info:
        await client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])
    assert info.value.error == "access_denied"
    assert info.value.description == "<script>alert(1)</script>"  # verified, still free text: escape it
    assert "access_denied: '<script>alert(1)</script>'" in str(info.value)  # what the server answered
    assert isinstance(info.value, AuthorizationResponseError)  # one `except` catches every failed login
    await rejects(client, fake, callback(ro, {"response": token}), "state_replayed")  # a verified end


async def test_error_code_outside_charset_is_neutralised(
    client: AsyncOAuthClient, fake: Any, begin: Any
) -> None:
    ro = await begin(client)
    token = fake.jarm(ro, code=DROP, error='bad"<code>')
    with pytest.raises(AuthorizationServerError) as info:
        await client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])
    assert info.value.error == "invalid_error_code"


async def test_bare_error_without_jarm(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    params = {
        "error": "access_denied",
        "error_description": "Account locked, call +1-555-0100",
        "state": ro["state"],
    }
    with pytest.raises(UnverifiedErrorResponse) as info:
        await client.handle_callback(callback(ro, params), expected_state=ro["state"])
    assert info.value.error == "access_denied" and "555" not in str(info.value)
    # anyone can send a bare error: the JARM flow waits for its signed response, which completes it
    result = await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert result.code == ro["_code"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"code": DROP}, "code_missing"),
        ({"code": ["a", "b"]}, "code_invalid"),
        ({"code": {"x": 1}}, "code_invalid"),
        ({"code": ""}, "code_invalid"),
        ({"response": "nested"}, "unexpected_claim"),
    ],
)
async def test_payload_types(
    client: AsyncOAuthClient, fake: Any, begin: Any, claims: dict[str, Any], reason: str
) -> None:
    ro = await begin(client)
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro, **claims)}), reason)


async def test_unknown_kid_refetches_once_then_rate_limits(
    client: AsyncOAuthClient, fake: Any, begin: Any, clock: Any
) -> None:
    ro = await begin(client)
    await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert fake.calls("/jwks") == 1
    stranger = generate_jwk("ES256", kid="unknown-1")
    ro = await begin(client)
    await rejects(
        client,
        fake,
        callback(ro, {"response": fake.sign(fake.response_claims(ro), key=stranger)}),
        "unknown_kid",
    )
    assert fake.calls("/jwks") == 2  # one refetch
    stranger2 = generate_jwk("ES256", kid="unknown-2")
    ro = await begin(client)
    await rejects(
        client,
        fake,
        callback(ro, {"response": fake.sign(fake.response_claims(ro), key=stranger2)}),
        "unknown_kid",
    )
    assert fake.calls("/jwks") == 2  # inside the window: no refetch
    clock.t += 61
    ro = await begin(client)
    await rejects(
        client,
        fake,
        callback(ro, {"response": fake.sign(fake.response_claims(ro), key=stranger2)}),
        "unknown_kid",
    )
    assert fake.calls("/jwks") == 3


async def test_failed_refetch_keeps_cached_keys(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    fake.jwks_status = 503
    stranger = generate_jwk("ES256", kid="unknown-1")
    ro = await begin(client)
    await rejects(
        client,
        fake,
        callback(ro, {"response": fake.sign(fake.response_claims(ro), key=stranger)}),
        "unknown_kid",
    )
    assert fake.calls("/jwks") == 2
    ro = await begin(client)
    assert (await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])).code == ro["_code"]


async def test_expired_flow(client: AsyncOAuthClient, fake: Any, begin: Any, clock: Any) -> None:
    ro = await begin(client)
    clock.t += 601
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro)}), "flow_expired")


async def test_flow_of_another_client_in_a_shared_store(
    make_client: Any, make_config: Any, fake: Any, begin: Any
) -> None:
    store = MemoryFlowStateStore()
    client_a = make_client(store=store)
    client_b = make_client(make_config(client_id="client-2"), store=store)
    ro = await begin(client_a)
    await rejects(client_b, fake, callback(ro, {"response": fake.jarm(ro)}), "flow_mismatch")


async def test_oversized_callback(client: AsyncOAuthClient, fake: Any) -> None:
    with pytest.raises(AuthorizationResponseError) as info:
        await client.handle_callback(f"{REDIRECT_URI}?response=" + "a" * (1 << 20), expected_state="session-state")
    assert info.value.reason == "too_large"
    with pytest.raises(AuthorizationResponseError) as info:
        await client.handle_callback(f"{REDIRECT_URI}?" + "&".join(f"p{i}=1" for i in range(1000)), expected_state="session-state")
    assert info.value.reason == "malformed"
    with pytest.raises(AuthorizationResponseError):
        await client.handle_callback({f"p{i}": "1" for i in range(1000)}, expected_state="session-state")
    with pytest.raises(JarmValidationError):
        await client.handle_callback({"response": "." * 1000}, expected_state="session-state")
    assert fake.requests == []


# -- encrypted responses (C2, A79) --------------------------------------------------------------------


@pytest.fixture
def enc_client(make_client: Any, make_config: Any) -> AsyncOAuthClient:
    return make_client(make_config(authorization_encrypted_response_alg="ECDH-ES+A128KW"))  # type: ignore[no-any-return]


async def test_unencrypted_when_encryption_registered(
    enc_client: AsyncOAuthClient, fake: Any, begin: Any
) -> None:
    ro = await begin(enc_client)
    await rejects(enc_client, fake, callback(ro, {"response": fake.jarm(ro)}), "not_encrypted")


async def test_encrypted_bare_claims(enc_client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    """The client's encryption key is public: an encrypted-only response is forgeable (JARM §2.2)."""
    ro = await begin(enc_client)
    token = fake.encrypt_to_client(orjson.dumps(fake.response_claims(ro)).decode())
    await rejects(enc_client, fake, callback(ro, {"response": token}), "not_signed")


async def test_double_encryption(enc_client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(enc_client)
    token = fake.encrypt_to_client(fake.jarm(ro, encrypt=True))
    await rejects(enc_client, fake, callback(ro, {"response": token}), "not_signed")


async def test_encrypted_with_attacker_signature(
    enc_client: AsyncOAuthClient, fake: Any, begin: Any, keys: Any
) -> None:
    ro = await begin(enc_client)
    token = fake.encrypt_to_client(fake.sign(fake.response_claims(ro), key=keys.attacker))
    await rejects(enc_client, fake, callback(ro, {"response": token}), "bad_signature")


async def test_unregistered_enc(enc_client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(enc_client)
    token = fake.encrypt_to_client(fake.jarm(ro), enc="A256GCM")
    await rejects(enc_client, fake, callback(ro, {"response": token}), "alg_mismatch")


async def test_encrypted_to_another_key(enc_client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(enc_client)
    other = generate_jwk("ECDH-ES+A128KW", kid="client-enc-1")
    from .fake_server import public

    token = fake.encrypt_to_client(fake.jarm(ro), key=public(other))
    await rejects(enc_client, fake, callback(ro, {"response": token}), "decryption_failed")


async def test_tampered_ciphertext(enc_client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(enc_client)
    parts = fake.jarm(ro, encrypt=True).split(".")
    parts[4] = parts[4][:-6]  # truncated tag
    await rejects(enc_client, fake, callback(ro, {"response": ".".join(parts)}), "decryption_failed")


async def test_jwe_when_no_encryption_registered(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro, encrypt=True)}), "unexpected_jwe")


async def test_rsa1_5_jwe_refused(enc_client: AsyncOAuthClient, fake: Any, begin: Any, keys: Any) -> None:
    ro = await begin(enc_client)
    token = encrypt_jwe(fake.jarm(ro), keys.client_enc_public, "ECDH-ES+A128KW", "A128CBC-HS256")
    head = b64url_encode(orjson.dumps({"alg": "RSA1_5", "enc": "A128CBC-HS256", "kid": "client-enc-1"}))
    forged = ".".join([head, *token.split(".")[1:]])
    await rejects(enc_client, fake, callback(ro, {"response": forged}), "alg_mismatch")


@pytest.mark.parametrize(
    "forgery",
    [
        "garbage",
        "signed_by_attacker",
        "tampered_signature",
        "wrong_issuer",
        "expired",
        "other_session",
        "outer_code",
    ],
)
async def test_an_unauthenticated_callback_does_not_cancel_the_login(
    client: AsyncOAuthClient, fake: Any, begin: Any, keys: Any, forgery: str
) -> None:
    """Issue 19.5: a callback injected into the user agent (CSRF to the redirect URI) is refused and leaves
    the session's flow pending; the real response then completes the login, once (A76, A77)."""
    ro = await begin(client)
    other = await begin(client)
    forged: str | dict[str, str] = {
        "garbage": f"{REDIRECT_URI}?response=garbage",
        "signed_by_attacker": callback(ro, {"response": fake.sign(fake.response_claims(ro), key=keys.attacker)}),
        "tampered_signature": callback(ro, {"response": flip_signature_bit(fake.jarm(ro))}),
        "wrong_issuer": callback(ro, {"response": fake.jarm(ro, iss=EVIL_ISSUER)}),
        "expired": callback(ro, {"response": fake.jarm(ro, exp=1, iat=DROP)}),
        "other_session": callback(other, {"response": fake.jarm(other)}),
        "outer_code": callback(ro, {"response": fake.jarm(ro), "code": "attacker"}),
    }[forgery]
    with pytest.raises(JarmValidationError):
        await client.handle_callback(forged, expected_state=ro["state"])
    genuine = callback(ro, {"response": fake.jarm(ro)})
    result = await client.handle_callback(genuine, expected_state=ro["state"])
    await client.exchange_code(result)
    with pytest.raises(JarmValidationError) as info:
        await client.handle_callback(genuine, expected_state=ro["state"])
    assert info.value.reason == "state_replayed"
    assert fake.calls("/token") == 1


async def test_without_a_session_state_nothing_is_accepted(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    """Issue 19.1: the flow is never found by the response's own state. A user agent without a login in
    progress (no state in its session) is refused, even with a validly signed response, and the pending
    flow that response belongs to is left alone."""
    ro = await begin(client)
    genuine = callback(ro, {"response": fake.jarm(ro)})
    for missing in (None, ""):
        with pytest.raises(AuthorizationResponseError) as info:
            await client.handle_callback(genuine, expected_state=missing)
        assert info.value.reason == "no_session_state"
    with pytest.raises(TypeError):
        await client.handle_callback(genuine)  # type: ignore[call-arg]  # the unsafe call does not exist
    assert (await client.handle_callback(genuine, expected_state=ro["state"])).code == ro["_code"]


async def test_concurrent_genuine_callbacks_complete_the_flow_once(
    client: AsyncOAuthClient, fake: Any, begin: Any
) -> None:
    """Validation no longer consumes up front; the final atomic take still lets only one of two concurrent
    deliveries of the same authentic response through (A77)."""
    import asyncio

    ro = await begin(client)
    genuine = callback(ro, {"response": fake.jarm(ro)})
    outcomes = await asyncio.gather(
        *(client.handle_callback(genuine, expected_state=ro["state"]) for _ in range(2)), return_exceptions=True
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], JarmValidationError)
    assert errors[0].reason == "state_replayed"
