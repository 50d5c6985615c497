"""DPoP in the client library (RFC 9449; checklist C30-C32): proofs, nonces, binding, protected resources."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jarmor.client import (
    AsyncOAuthClient,
    ClientConfig,
    ConfigurationError,
    DiscoveryError,
    OAuthClient,
    ParError,
    TokenError,
)
from jarmor.client.dpop import DPoP, access_token_hash, challenges, rs_nonce_challenge
from jarmor.jose import generate_jwk, peek_claims, peek_header

from .fake_server import CLIENT_ID, ISSUER, NOW, REDIRECT_URI, Clock, FakeAS, FakeRS, Network, callback

# -- proofs (C30) -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "kty"), [("ES256", "EC"), ("EdDSA", "OKP"), ("PS256", "RSA")])
def test_proof_header_and_claims(alg: str, kty: str) -> None:
    dpop = DPoP(None, alg)
    proof = dpop.proof("post", "https://AS.example/token?x=1#f", now=NOW)
    header, claims = peek_header(proof), peek_claims(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == alg and "kid" not in header
    jwk = header["jwk"]
    assert jwk["kty"] == kty and not {"d", "p", "q", "dp", "dq", "qi", "kid", "use", "alg"} & set(jwk)
    assert claims["htm"] == "POST" and claims["htu"] == "https://AS.example/token"
    assert claims["iat"] == NOW and len(claims["jti"]) >= 22
    assert "nonce" not in claims and "ath" not in claims
    again = peek_claims(dpop.proof("POST", "https://as.example/token", now=NOW))
    assert again["jti"] != claims["jti"]


def test_proof_carries_ath_and_the_nonce_of_its_origin_only() -> None:
    dpop = DPoP(None, None)
    assert dpop.alg == "ES256"
    assert dpop.remember("https://as.example/token", ["n-1"]) is True
    assert dpop.remember("https://as.example/par", ["n-1"]) is False
    claims = peek_claims(dpop.proof("GET", "https://as.example/userinfo", now=NOW, access_token="at-1"))
    assert claims["nonce"] == "n-1" and claims["ath"] == access_token_hash("at-1")
    other = peek_claims(dpop.proof("GET", "https://rs.example/data", now=NOW))
    assert "nonce" not in other


@pytest.mark.parametrize("values", [[], ["a", "b"], ["has space"], ['q"uote'], ["x" * 2000]])
def test_only_one_well_formed_nonce_header_is_kept(values: list[str]) -> None:
    dpop = DPoP(None, None)
    assert dpop.remember("https://as.example/token", values) is False
    assert dpop.nonce_for("https://as.example/token") is None


def test_given_keys_jwk_and_pem() -> None:
    key = generate_jwk("ES256", kid="mine")
    from_jwk = ClientConfig(
        issuer=ISSUER, client_id=CLIENT_ID, client_secret="s", token_endpoint_auth_method="client_secret_basic",
        dpop=True, dpop_key=key.private_dict(),
    )
    assert from_jwk.dpop_private_key is not None
    assert from_jwk.dpop_private_key.thumbprint() == key.thumbprint()
    assert from_jwk.dpop_signing_alg == "ES256"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    from_pem = ClientConfig(
        issuer=ISSUER, client_id=CLIENT_ID, client_secret="s", token_endpoint_auth_method="client_secret_basic",
        dpop=True, dpop_key=pem.decode(),
    )
    assert from_pem.dpop_private_key is not None and from_pem.dpop_private_key.kty == "EC"
    dpop = DPoP(from_jwk.dpop_private_key, from_jwk.dpop_signing_alg)
    assert dpop.jkt == key.thumbprint()
    assert peek_header(dpop.proof("GET", ISSUER, now=NOW))["jwk"]["x"] == key.public_dict()["x"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"dpop_key": "x"},  # without dpop=True
        {"send_dpop_jkt": True},
        {"allow_bearer_downgrade": True},
        {"dpop_signing_alg": "ES256"},
        {"dpop": True, "dpop_signing_alg": "HS256"},
        {"dpop": True, "dpop_signing_alg": "none"},
        {"dpop": True, "dpop_signing_alg": "RS256"},
        {"dpop": True, "dpop_key": "not a pem"},
        {"dpop": True, "dpop_key": {"kty": "oct", "k": "AAAA"}},
        {"dpop": True, "dpop_key": "KEY-PUBLIC"},
        {"dpop": True, "dpop_key": "KEY-ES256", "dpop_signing_alg": "PS256"},
        {"dpop": "yes"},
    ],
)
def test_bad_dpop_configuration(make_config: Callable[..., ClientConfig], overrides: dict[str, Any]) -> None:
    key = generate_jwk("ES256")
    if overrides.get("dpop_key") == "KEY-PUBLIC":
        overrides["dpop_key"] = key.public_dict()
    elif overrides.get("dpop_key") == "KEY-ES256":
        overrides["dpop_key"] = key
    with pytest.raises(ConfigurationError):
        make_config(**overrides)


def test_registration_metadata_turns_dpop_on(keys: Any) -> None:
    registration = {
        "client_id": CLIENT_ID,
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        "dpop_bound_access_tokens": True,
    }
    config = ClientConfig.from_registration(registration, issuer=ISSUER, signing_key=keys.client_sig)
    assert config.dpop and config.dpop_signing_alg == "ES256"
    with pytest.raises(ConfigurationError, match="dpop cannot be off"):
        ClientConfig.from_registration(registration, issuer=ISSUER, signing_key=keys.client_sig, dpop=False)
    with pytest.raises(ConfigurationError, match="boolean"):
        ClientConfig.from_registration(
            {**registration, "dpop_bound_access_tokens": "true"}, issuer=ISSUER, signing_key=keys.client_sig
        )
    plain = ClientConfig.from_registration(
        {**registration, "dpop_bound_access_tokens": False}, issuer=ISSUER, signing_key=keys.client_sig
    )
    assert not plain.dpop


# -- the flow against the fake server ----------------------------------------------------------------


@pytest.fixture
def rs(fake: FakeAS, clock: Clock) -> FakeRS:
    return FakeRS(fake, clock)


@pytest.fixture
def dpop_network(fake: FakeAS, rs: FakeRS) -> Network:
    return Network(fake, rs)  # type: ignore[arg-type]


@pytest.fixture
def dpop_client(
    dpop_network: Network, clock: Clock, make_config: Callable[..., ClientConfig]
) -> Callable[..., AsyncOAuthClient]:
    def make(**overrides: Any) -> AsyncOAuthClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(dpop_network.handle))
        return AsyncOAuthClient(make_config(dpop=True, **overrides), http=http, clock=clock)

    return make


@pytest.fixture
def sync_dpop_client(
    dpop_network: Network, clock: Clock, make_config: Callable[..., ClientConfig]
) -> Iterator[OAuthClient]:
    http = httpx.Client(transport=httpx.MockTransport(dpop_network.handle))
    with OAuthClient(make_config(dpop=True), http=http, clock=clock) as client:
        yield client
    http.close()


async def login(client: AsyncOAuthClient, fake: FakeAS, **kwargs: Any) -> Any:
    start = await client.start_authorization(scope="openid accounts", **kwargs)
    ro = fake.authorize(start.url)
    return await client.complete_authorization(callback(ro, {"response": fake.jarm(ro)}), expected_state=start.state)


async def test_par_token_and_refresh_carry_proofs_of_one_key(dpop_client: Any, fake: FakeAS) -> None:
    client = dpop_client()
    login_ = await login(client, fake)
    tokens = login_.tokens
    assert tokens.token_type == "DPoP"
    jkt = client.core.dpop.jkt
    assert login_.flow.dpop_jkt == jkt
    assert [(c["htm"], c["htu"]) for c, _ in fake.dpop_proofs] == [
        ("POST", f"{ISSUER}/par"),
        ("POST", f"{ISSUER}/token"),
    ]
    refreshed = await client.refresh(tokens.refresh_token)
    credentials = await client.client_credentials()
    assert refreshed.token_type == credentials.token_type == "DPoP"
    assert {k for _, k in fake.dpop_proofs} == {jkt} and len(fake.dpop_proofs) == 4
    assert len({c["jti"] for c, _ in fake.dpop_proofs}) == 4
    assert client.dpop_key is not None and client.dpop_key.thumbprint() == jkt


async def test_code_is_bound_to_the_key_of_the_par_proof(dpop_client: Any, fake: FakeAS) -> None:
    client, other = dpop_client(), dpop_client()
    start = await client.start_authorization(scope="accounts")
    ro = fake.authorize(start.url)
    result = await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=start.state)
    with pytest.raises(ConfigurationError, match="another DPoP key"):
        await other.exchange_code(result)
    assert fake.calls("/token") == 0
    assert (await client.exchange_code(result)).token_type == "DPoP"


@pytest.mark.parametrize(("use_par", "send", "expected"), [(False, True, True), (False, False, False), (True, True, False)])
async def test_dpop_jkt_without_par_when_asked(
    dpop_client: Any, fake: FakeAS, use_par: bool, send: bool, expected: bool
) -> None:
    client = dpop_client(send_dpop_jkt=send)
    start = await client.start_authorization(scope="accounts", use_par=use_par)
    ro = fake.authorize(start.url)
    assert ("dpop_jkt" in ro) is expected
    if expected:
        assert ro["dpop_jkt"] == client.core.dpop.jkt
    tokens = await client.complete_authorization(
        callback(ro, {"response": fake.jarm(ro)}), expected_state=start.state
    )
    assert tokens.tokens.token_type == "DPoP"


async def test_plain_parameters_carry_dpop_jkt(
    dpop_client: Any, fake: FakeAS
) -> None:
    client = dpop_client(
        signing_key=None, token_endpoint_auth_method="client_secret_basic", client_secret="s", send_dpop_jkt=True
    )
    start = await client.start_authorization(scope="accounts", use_par=False, response_mode="query")
    query = dict(parse_qsl(urlsplit(start.url).query))
    assert query["dpop_jkt"] == client.core.dpop.jkt


async def test_nonce_challenge_at_par_is_retried_once_with_fresh_credentials(
    dpop_client: Any, fake: FakeAS
) -> None:
    fake.dpop_nonce = "nonce-1"
    client = dpop_client()
    await login(client, fake)
    assert fake.calls("/par") == 2 and fake.calls("/token") == 1  # the token request reused the nonce
    nonces = [c.get("nonce") for c, _ in fake.dpop_proofs]
    assert nonces == [None, "nonce-1", "nonce-1"]
    first, second = fake.par_forms
    assert first["client_assertion"] != second["client_assertion"]
    assert first["request"] != second["request"]


async def test_nonce_rotation_at_the_token_endpoint(dpop_client: Any, fake: FakeAS) -> None:
    client = dpop_client()
    await client.client_credentials()
    fake.dpop_nonce = "nonce-2"
    tokens = await client.client_credentials()
    assert tokens.token_type == "DPoP" and fake.calls("/token") == 3
    assert fake.dpop_proofs[-1][0]["nonce"] == "nonce-2"


async def test_a_second_nonce_challenge_is_reported_not_looped(dpop_client: Any, fake: FakeAS) -> None:
    fake.dpop_always_challenge = True
    client = dpop_client()
    with pytest.raises(TokenError) as info:
        await client.client_credentials()
    assert info.value.error == "use_dpop_nonce" and fake.calls("/token") == 2
    with pytest.raises(ParError) as par:
        await client.start_authorization(scope="accounts")
    assert par.value.error == "use_dpop_nonce" and fake.calls("/par") == 2


async def test_nonce_challenge_is_ignored_without_dpop(client: AsyncOAuthClient, fake: FakeAS) -> None:
    def challenge(_form: dict[str, str]) -> httpx.Response:
        return httpx.Response(400, json={"error": "use_dpop_nonce"}, headers={"DPoP-Nonce": "n"})

    fake.token_override = challenge
    with pytest.raises(TokenError):
        await client.client_credentials()
    assert fake.calls("/token") == 1


async def test_bearer_downgrade_is_refused_unless_allowed(dpop_client: Any, fake: FakeAS) -> None:
    fake.dpop_downgrade = True
    with pytest.raises(TokenError) as info:
        await dpop_client().client_credentials()
    assert info.value.reason == "dpop_downgraded"
    tokens = await dpop_client(allow_bearer_downgrade=True).client_credentials()
    assert tokens.token_type == "Bearer"


async def test_dpop_token_type_without_dpop_is_refused(client: AsyncOAuthClient, fake: FakeAS) -> None:
    fake.token_extra = {"token_type": "DPoP"}
    with pytest.raises(TokenError) as info:
        await client.client_credentials()
    assert info.value.reason == "unsupported_token_type"


async def test_lower_case_dpop_token_type(dpop_client: Any, fake: FakeAS) -> None:
    fake.token_extra = {"token_type": "dpop"}
    assert (await dpop_client().client_credentials()).token_type == "DPoP"


async def test_advertised_dpop_algs_are_respected(dpop_client: Any, fake: FakeAS) -> None:
    fake.metadata["dpop_signing_alg_values_supported"] = ["PS256"]
    with pytest.raises(DiscoveryError, match="DPoP proof alg"):
        await dpop_client().client_credentials()
    assert fake.calls("/token") == 0
    tokens = await dpop_client(dpop_signing_alg="PS256").client_credentials()
    assert tokens.token_type == "DPoP" and peek_header_alg(fake) == "PS256"


def peek_header_alg(fake: FakeAS) -> str:
    proof = fake.requests[-1].headers["dpop"]
    return str(peek_header(proof)["alg"])


# -- protected resources (C32; RFC 9449 §7, §9) ------------------------------------------------------


async def test_resource_request_sends_dpop_scheme_and_ath(dpop_client: Any, fake: FakeAS, rs: FakeRS) -> None:
    client = dpop_client()
    tokens = await client.client_credentials()
    response = await client.request(
        "POST", "https://rs.example/data?page=2", tokens, json={"a": 1}, headers={"X-Trace": "1"}
    )
    assert response.status_code == 200 and response.json()["jkt"] == client.core.dpop.jkt
    sent = rs.requests[0]
    assert sent.headers["x-trace"] == "1" and sent.headers["authorization"] == f"DPoP {tokens.access_token}"
    assert rs.proofs[0]["htu"] == "https://rs.example/data"
    as_string = await client.request("GET", "https://rs.example/data", tokens.access_token)
    assert as_string.status_code == 200


@pytest.mark.parametrize("scheme", ["DPoP", "dpop", "DPOP"])
async def test_resource_nonce_challenge_retried_once(
    dpop_client: Any, fake: FakeAS, rs: FakeRS, scheme: str
) -> None:
    rs.nonce, rs.challenge_scheme = "rs-nonce", scheme
    client = dpop_client()
    tokens = await client.client_credentials()
    response = await client.request("GET", "https://rs.example/data", tokens)
    assert response.status_code == 200 and len(rs.requests) == 2
    assert [p.get("nonce") for p in rs.proofs] == [None, "rs-nonce"]
    assert rs.proofs[0]["jti"] != rs.proofs[1]["jti"]
    assert client.core.dpop.nonce_for(ISSUER) is None  # the RS nonce is not the AS's
    await client.request("GET", "https://rs.example/other", tokens)
    assert len(rs.requests) == 3


async def test_resource_second_challenge_is_returned(dpop_client: Any, fake: FakeAS, rs: FakeRS) -> None:
    rs.always_challenge = True
    client = dpop_client()
    tokens = await client.client_credentials()
    response = await client.request("GET", "https://rs.example/data", tokens)
    assert response.status_code == 401 and len(rs.requests) == 2


def test_sync_resource_request_and_retry(sync_dpop_client: OAuthClient, fake: FakeAS, rs: FakeRS) -> None:
    rs.nonce = "rs-nonce"
    tokens = sync_dpop_client.client_credentials()
    response = sync_dpop_client.request("DELETE", "https://rs.example/data", tokens)
    assert response.status_code == 200 and len(rs.requests) == 2
    assert rs.proofs[-1]["htm"] == "DELETE"


async def test_bearer_tokens_go_as_bearer(
    make_config: Any, clock: Clock, fake: FakeAS, rs: FakeRS, dpop_network: Network
) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(dpop_network.handle))
    client = AsyncOAuthClient(make_config(), http=http, clock=clock)
    tokens = await client.client_credentials()
    response = await client.request("GET", "https://rs.example/data", tokens)
    assert response.json() == {"scheme": "Bearer"}


@pytest.mark.parametrize(
    ("method", "url", "token"),
    [
        ("GET", "http://rs.example/data", "at"),
        ("GET", "https://rs.example/data#f", "at"),
        ("GE T", "https://rs.example/data", "at"),
        ("GET", "https://rs.example/data", "at\r\nX-Injected: 1"),
        ("GET", "https://rs.example/data", ""),
    ],
)
async def test_resource_request_arguments_are_checked(dpop_client: Any, method: str, url: str, token: str) -> None:
    with pytest.raises(ConfigurationError):
        await dpop_client().request(method, url, token)


# -- challenges (RFC 9110 §11.6.1) -------------------------------------------------------------------


def test_challenge_parser() -> None:
    values = ['Bearer realm="api", DPoP algs="ES256 PS256", error="use_dpop_nonce", error_description="x\\"y"']
    assert challenges(values) == [
        ("bearer", {"realm": "api"}),
        ("dpop", {"algs": "ES256 PS256", "error": "use_dpop_nonce", "error_description": 'x"y'}),
    ]
    assert challenges(["Basic dXNlcjpwYXNz", 'dpop error=use_dpop_nonce']) == [
        ("basic", {}),
        ("dpop", {"error": "use_dpop_nonce"}),
    ]
    assert rs_nonce_challenge(401, ['DPoP error="use_dpop_nonce"'], ["n"])
    assert not rs_nonce_challenge(401, ['Bearer error="use_dpop_nonce"'], ["n"])
    assert not rs_nonce_challenge(401, ['DPoP error="invalid_token"'], ["n"])
    assert not rs_nonce_challenge(400, ['DPoP error="use_dpop_nonce"'], ["n"])
    assert not rs_nonce_challenge(401, ['DPoP error="use_dpop_nonce"'], [])
    assert challenges(["=broken", ""]) == []
