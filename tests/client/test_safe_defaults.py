"""Safe by default (issues 19 and 12.5): one call for a validated login, ``max_age``/``acr_values``/``claims``
checked on the way back, one error hierarchy whose messages carry the server's answer, a configuration
taken from the registration, and a client that has only a secret."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jarmor.client import (
    AuthorizationResponseError,
    AuthorizationServerError,
    ClientConfig,
    ClientError,
    CompletedAuthorization,
    ConfigurationError,
    IdTokenValidationError,
    JarmValidationError,
    OAuthClient,
    ParError,
    ServerResponseError,
    TokenError,
    UnverifiedErrorResponse,
)

from .fake_server import CLIENT_ID, DROP, ISSUER, REDIRECT_URI, callback

# -- 19.4: a completed login is a validated login -----------------------------------------------------


async def test_complete_authorization_returns_validated_tokens_and_claims(
    client: Any, fake: Any, begin: Any
) -> None:
    ro = await begin(client, scope="openid accounts")
    login = await client.complete_authorization(
        callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"]
    )
    assert isinstance(login, CompletedAuthorization)
    assert login.subject == "alice" and login.claims["nonce"] == ro["nonce"]
    assert login.tokens.access_token and login.tokens.id_token_claims == login.claims
    assert login.flow.state == ro["state"] and fake.calls("/token") == 1


def test_complete_authorization_sync(sync_client: OAuthClient, fake: Any) -> None:
    start = sync_client.start_authorization(scope="openid")
    ro = fake.authorize(start.url)
    login = sync_client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=start.state)
    assert login.subject == "alice"


async def test_complete_authorization_fails_on_an_invalid_id_token(client: Any, fake: Any, begin: Any) -> None:
    """``handle_callback`` alone would have succeeded: the login is not complete until the ID token is valid."""
    fake.id_token_claims_override = {"nonce": "other"}
    ro = await begin(client, scope="openid")
    with pytest.raises(AuthorizationResponseError) as info:  # the README's except clause catches it
        await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert isinstance(info.value, IdTokenValidationError) and info.value.reason == "nonce_mismatch"


async def test_complete_authorization_requires_the_session_state(client: Any, fake: Any, begin: Any) -> None:
    ro = await begin(client, scope="openid")
    with pytest.raises(AuthorizationResponseError) as info:
        await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=None)
    assert info.value.reason == "no_session_state" and fake.calls("/token") == 0


@pytest.mark.parametrize(
    ("acr", "reason"), [(DROP, "acr_missing"), ("urn:low", "acr_not_satisfied"), (["urn:mfa"], "acr_not_satisfied")]
)
async def test_acr_values_are_checked_on_the_way_back(
    client: Any, fake: Any, begin: Any, acr: Any, reason: str
) -> None:
    """OIDC Core §3.1.3.7-12: the asserted ``acr`` must be one of the requested ``acr_values``."""
    fake.id_token_claims_override = {"acr": acr}
    ro = await begin(client, scope="openid", acr_values=["urn:mfa", "urn:hw"])
    assert ro["acr_values"] == "urn:mfa urn:hw"  # inside the signed request object
    with pytest.raises(IdTokenValidationError) as info:
        await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert info.value.reason == reason


async def test_acr_values_satisfied(client: Any, fake: Any, begin: Any) -> None:
    fake.id_token_claims_override = {"acr": "urn:hw"}
    ro = await begin(client, scope="openid", acr_values="urn:mfa urn:hw")
    login = await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert login.claims["acr"] == "urn:hw"


async def test_claims_parameter_essential_acr_and_auth_time(
    client: Any, fake: Any, begin: Any, clock: Any
) -> None:
    """OIDC Core §5.5.1.1 (essential ``acr`` values) and §2 (essential ``auth_time`` is REQUIRED)."""
    claims = {"id_token": {"acr": {"essential": True, "value": "urn:mfa"}, "auth_time": {"essential": True}}}
    fake.id_token_claims_override = {"acr": "urn:mfa", "auth_time": DROP}
    ro = await begin(client, scope="openid", claims=claims)
    assert ro["claims"] == claims
    with pytest.raises(IdTokenValidationError) as info:
        await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert info.value.reason == "auth_time_missing"
    fake.id_token_claims_override = {"acr": "urn:pwd", "auth_time": clock.t}
    ro = await begin(client, scope="openid", claims=claims)
    with pytest.raises(IdTokenValidationError) as info:
        await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert info.value.reason == "acr_not_satisfied"
    fake.id_token_claims_override = {"acr": "urn:mfa", "auth_time": clock.t}
    ro = await begin(client, scope="openid", claims=claims)
    login = await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert login.claims["auth_time"] == clock.t


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"extra": {"max_age": 60}}, "pass max_age="),
        ({"extra": {"acr_values": "x"}}, "pass acr_values="),
        ({"extra": {"claims": {}}}, "pass claims="),
        ({"scope": "accounts", "max_age": 60}, "openid"),
        ({"acr_values": ["a b"]}, "acr value"),
        ({"claims": {"id_token": ["acr"]}}, "claims member"),
        ({"max_age": -1}, "max_age"),
    ],
)
async def test_checked_parameters_are_first_class(
    client: Any, fake: Any, kwargs: dict[str, Any], message: str
) -> None:
    kwargs.setdefault("scope", "openid")
    with pytest.raises(ConfigurationError) as info:
        await client.start_authorization(**kwargs)
    assert message in str(info.value)
    assert fake.requests == []


# -- 19.3 / 12.5: one hierarchy; messages say what was checked and what the server answered --------------


def test_error_hierarchy() -> None:
    for cls in (AuthorizationServerError, UnverifiedErrorResponse, JarmValidationError, IdTokenValidationError):
        assert issubclass(cls, AuthorizationResponseError)
    for cls in (ParError, TokenError):
        assert issubclass(cls, ServerResponseError)
    for cls in (AuthorizationResponseError, ServerResponseError, ConfigurationError):
        assert issubclass(cls, ClientError)


async def test_token_error_message_carries_the_server_answer(client: Any, fake: Any) -> None:
    fake.token_override = lambda form: httpx.Response(
        400, json={"error": "invalid_client", "error_description": "client authentication failed\r\nFAKE LOG"}
    )
    with pytest.raises(TokenError) as info:
        await client.client_credentials("accounts")
    text = str(info.value)
    assert "HTTP 400" in text and "invalid_client: 'client authentication failed??FAKE LOG'" in text
    assert "\n" not in text and info.value.description == "client authentication failed\r\nFAKE LOG"


async def test_par_error_message_carries_the_server_answer(client: Any, fake: Any) -> None:
    fake.par_override = lambda: httpx.Response(
        400, json={"error": "invalid_request_object", "error_description": "risk_tier high requires control par"}
    )
    with pytest.raises(ParError) as info:
        await client.start_authorization(scope="accounts")
    assert "invalid_request_object: 'risk_tier high requires control par'" in str(info.value)


def test_insecure_issuer_message_names_the_setting(make_config: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_config(issuer="http://127.0.0.1:8000")
    assert "allow_insecure_http" in str(info.value)
    assert make_config(issuer="http://127.0.0.1:8000", redirect_uri="http://127.0.0.1/cb", allow_insecure_http=True)


async def test_alg_mismatch_message_names_the_setting(client: Any, fake: Any, begin: Any) -> None:
    fake.id_token_claims_override = {}
    ro = await begin(client)
    token = fake.jarm(ro)
    from jarmor.jose import b64url_encode

    head = b64url_encode(b'{"alg":"PS256","kid":"as-sig-1"}')
    forged = ".".join([head, *token.split(".")[1:]])
    with pytest.raises(JarmValidationError) as info:
        await client.handle_callback(callback(ro, {"response": forged}), expected_state=ro["state"])
    assert "ClientConfig.authorization_signed_response_alg" in str(info.value)
    assert "from_registration" in str(info.value)


# -- 12.5: the configuration comes from the registration --------------------------------------------------


def _registration(**members: Any) -> dict[str, Any]:
    return {"client_id": CLIENT_ID, "redirect_uris": [REDIRECT_URI], **members}


def test_from_registration_takes_the_registered_algorithms(keys: Any) -> None:
    config = ClientConfig.from_registration(
        _registration(
            token_endpoint_auth_method="private_key_jwt",
            authorization_signed_response_alg="PS256",
            id_token_signed_response_alg="EdDSA",
            request_object_signing_alg="ES256",
            registration_access_token="ignored",
        ),
        issuer=ISSUER,
        signing_key=keys.client_sig,
    )
    assert config.authorization_signed_response_alg == "PS256"
    assert config.id_token_signed_response_alg == "EdDSA"
    assert config.signing_alg == "ES256" and config.token_endpoint_auth_method == "private_key_jwt"
    assert config.redirect_uri == REDIRECT_URI


async def test_machine_client_from_registration(make_client: Any, fake: Any) -> None:
    """A registration without redirect URIs (``client_credentials`` only) gives a usable machine client."""
    config = ClientConfig.from_registration(
        {"client_id": CLIENT_ID, "client_secret": "s", "grant_types": ["client_credentials"]}, issuer=ISSUER
    )
    assert config.redirect_uri is None
    client = make_client(config)
    assert (await client.client_credentials("accounts")).scope == "accounts"
    with pytest.raises(ConfigurationError, match="only use client_credentials"):
        await client.start_authorization(scope="accounts")


def test_from_registration_defaults_follow_the_specifications() -> None:
    config = ClientConfig.from_registration(_registration(client_secret="s3cret"), issuer=ISSUER)
    assert config.token_endpoint_auth_method == "client_secret_basic"  # RFC 7591 §2
    assert config.authorization_signed_response_alg == "RS256"  # JARM §3
    assert config.id_token_signed_response_alg == "RS256"  # OIDC Registration §2
    assert config.client_secret == "s3cret" and config.signing_key is None


@pytest.mark.parametrize(
    ("registration", "kwargs", "message"),
    [
        ({"redirect_uris": [REDIRECT_URI]}, {}, "no client_id"),
        (_registration(redirect_uris=[REDIRECT_URI, "https://rp.example/other"]), {}, "redirect_uri="),
        (_registration(), {"redirect_uri": "https://rp.example/other"}, "not one of"),
        (_registration(), {"client_id": "x"}, "come from the registration"),
        (_registration(token_endpoint_auth_method="private_key_jwt"), {}, "needs signing_key"),
        (_registration(token_endpoint_auth_method="client_secret_jwt"), {}, "not supported"),
        (_registration(token_endpoint_auth_method="tls_client_auth"), {}, "needs client_certificate"),
        (_registration(token_endpoint_auth_method="tls_client_auth"), {"client_certificate": "c.pem"}, "a pair"),
        (_registration(id_token_signed_response_alg=5), {}, "must be a string"),
        (_registration(redirect_uris="https://rp.example/cb"), {}, "array of strings"),
        (_registration(request_object_signing_alg="ES256"), {"signing_alg": "PS256"}, "differs from the registered"),
    ],
)
def test_from_registration_refusals(registration: dict[str, Any], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ClientConfig.from_registration({"client_secret": "s", **registration}, issuer=ISSUER, **kwargs)
    assert message in str(info.value)


# -- 12.5: a client with only a secret works ------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
@pytest.mark.parametrize("use_par", [True, False])
async def test_secret_only_client(
    make_client: Any, make_config: Any, fake: Any, method: str, use_par: bool
) -> None:
    client = make_client(
        make_config(signing_key=None, token_endpoint_auth_method=method, client_secret="s3cret")
    )
    start = await client.start_authorization(scope="openid accounts", use_par=use_par)
    ro = fake.authorize(start.url)
    sent = fake.par_forms[0] if use_par else ro
    assert "request" not in sent and sent["code_challenge_method"] == "S256" and sent["state"] == start.state
    login = await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=start.state)
    assert login.subject == "alice"
    token_request = next(r for r in fake.requests if r.url.path == "/token")
    assert ("authorization" in token_request.headers) == (method == "client_secret_basic")


async def test_secret_only_client_sends_checked_parameters_as_strings(
    make_client: Any, make_config: Any, fake: Any
) -> None:
    client = make_client(make_config(signing_key=None, token_endpoint_auth_method="client_secret_post", client_secret="s"))
    claims = {"id_token": {"auth_time": {"essential": True}}}
    await client.start_authorization(scope="openid", max_age=0, claims=claims)
    form = fake.par_forms[0]
    assert form["max_age"] == "0" and form["claims"] == '{"id_token":{"auth_time":{"essential":true}}}'


def test_signing_key_is_required_where_it_is_used(make_config: Any) -> None:
    with pytest.raises(ConfigurationError, match="private_key_jwt needs signing_key"):
        make_config(signing_key=None)
    with pytest.raises(ConfigurationError, match="signed request objects need signing_key"):
        make_config(
            signing_key=None,
            token_endpoint_auth_method="client_secret_basic",
            client_secret="s",
            request_object_signing_alg="ES256",
        )
