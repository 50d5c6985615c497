"""What a client must catch, from an authorization server that lies: a tiny AS on loopback (discovery, JWKS,
PAR, an authorization endpoint that answers in every JARM mode, a token endpoint that counts its callers)
whose JARM responses are tampered, mis-addressed, expired or replayed, or validly signed but for another
user's login (login CSRF). jarmor's client must raise ``JarmValidationError`` with the precise ``reason``
and never reach the token endpoint with the refused response's code.

The real peers are not weakened for this: oidc-provider only ever produces valid responses.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
import pytest

from jarmor.client import (
    AuthorizationResponseError,
    ClientConfig,
    JarmValidationError,
    OAuthClient,
    ResponseMode,
    TokenResponse,
)
from jarmor.jose import b64url_decode, b64url_encode, generate_jwk, peek_claims, sign_jws

from .conftest import JARM_MODES
from .peers import REDIRECT_URI, user_agent

pytestmark = pytest.mark.interop

CLIENT_ID = "victim-client"


class MaliciousAS:
    """Serves whatever JARM response ``attack`` asks for; records every token request."""

    def __init__(self) -> None:
        self.key = generate_jwk("ES256", use="sig")
        self.impostor = generate_jwk("ES256", use="sig", kid=self.key.kid)  # same kid, other key
        self.attack: str | None = None
        self.pushed: dict[str, dict[str, Any]] = {}
        self.token_calls = 0
        self.user = "victim"  # who signs in at /authorize: the code is theirs
        self.code_owner: dict[str, str] = {}
        self.redeemed: list[str] = []  # whose codes reached the token endpoint
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def metadata(self) -> dict[str, Any]:
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "jwks_uri": f"{i}/jwks",
            "pushed_authorization_request_endpoint": f"{i}/par",
            "response_types_supported": ["code"],
            "response_modes_supported": list(JARM_MODES),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
            "request_object_signing_alg_values_supported": ["ES256"],
            "authorization_signing_alg_values_supported": ["ES256"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "authorization_response_iss_parameter_supported": True,
        }

    def jarm(self, request: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": request["client_id"],
            "iat": now,
            "exp": now + 60,
            "state": request["state"],
            "code": secrets.token_urlsafe(24),
        }
        self.code_owner[claims["code"]] = self.user
        if self.attack == "wrong_iss":
            claims["iss"] = "https://honest-as.example"
        elif self.attack == "wrong_aud":
            claims["aud"] = "another-client"
        elif self.attack == "expired":
            claims |= {"iat": now - 900, "exp": now - 300}
        token = sign_jws(claims, self.impostor if self.attack == "impostor_key" else self.key, "ES256")
        if self.attack == "tampered_signature":  # payload swapped after signing, signature kept
            header, payload, signature = token.split(".")
            forged = {**orjson.loads(b64url_decode(payload)), "code": "attacker-chosen-code"}
            token = f"{header}.{b64url_encode(orjson.dumps(forged))}.{signature}"
        return token

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: bytes, ctype: str = "application/json", **headers: str
            ) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/oauth-authorization-server":
                    return self._send(200, orjson.dumps(server.metadata()))
                if url.path == "/jwks":
                    return self._send(200, orjson.dumps({"keys": [server.key.public_dict()]}))
                if url.path == "/authorize":
                    request = server.pushed[dict(parse_qsl(url.query))["request_uri"]]
                    response = server.jarm(request)
                    mode = request["response_mode"]
                    if mode == "form_post.jwt":
                        page = (
                            f'<form method="post" action="{html.escape(REDIRECT_URI)}">'
                            f'<input type="hidden" name="response" value="{html.escape(response)}"></form>'
                        )
                        return self._send(200, page.encode(), "text/html")
                    sep = "#" if mode == "fragment.jwt" else "?"
                    location = f"{REDIRECT_URI}{sep}{urlencode({'response': response})}"
                    return self._send(303, b"", "text/plain", location=location)
                return self._send(404, b"{}")

            def do_POST(self) -> None:
                form = dict(parse_qsl(self.rfile.read(int(self.headers["content-length"])).decode()))
                if self.path == "/par":
                    uri = f"urn:ietf:params:oauth:request_uri:{secrets.token_urlsafe(16)}"
                    server.pushed[uri] = peek_claims(form["request"])  # a liar does not verify
                    return self._send(201, orjson.dumps({"request_uri": uri, "expires_in": 60}))
                if self.path == "/token":
                    server.token_calls += 1
                    server.redeemed.append(server.code_owner.get(form.get("code", ""), "?"))
                    tokens = {
                        "access_token": secrets.token_urlsafe(32),
                        "token_type": "Bearer",
                        "expires_in": 60,
                    }
                    return self._send(200, orjson.dumps(tokens))
                return self._send(404, b"{}")

        return Handler


@pytest.fixture(scope="module")
def malicious_as() -> Iterator[MaliciousAS]:
    server = MaliciousAS()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def rp(malicious_as: MaliciousAS) -> Iterator[OAuthClient]:
    malicious_as.attack = None
    malicious_as.token_calls = 0
    malicious_as.user = "victim"
    malicious_as.redeemed.clear()
    config = ClientConfig(
        issuer=malicious_as.issuer,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        signing_key=generate_jwk("ES256"),
        allow_insecure_http=True,
    )
    with OAuthClient(config) as client:
        yield client


def redeem(rp: OAuthClient, delivered: str | dict[str, str], state: str | None) -> TokenResponse:
    """What an application does with a callback: validate it against the state its session holds, then
    (only then) redeem the code."""
    return rp.complete_authorization(delivered, expected_state=state).tokens


ATTACKS = {
    "tampered_signature": "bad_signature",
    "impostor_key": "bad_signature",
    "wrong_iss": "iss_mismatch",
    "wrong_aud": "aud_mismatch",
    "expired": "expired",
}


@pytest.mark.parametrize("mode", JARM_MODES)
@pytest.mark.parametrize("attack", ATTACKS)
def test_forged_jarm_is_refused_before_the_token_endpoint(
    malicious_as: MaliciousAS, rp: OAuthClient, attack: str, mode: str
) -> None:
    malicious_as.attack = attack
    start = rp.start_authorization(scope="accounts", response_mode=cast(ResponseMode, mode))
    with pytest.raises(JarmValidationError) as info:
        redeem(rp, user_agent(start.url), start.state)
    assert info.value.reason == ATTACKS[attack]
    assert malicious_as.token_calls == 0


@pytest.mark.parametrize("mode", JARM_MODES)
def test_replayed_jarm_is_refused(malicious_as: MaliciousAS, rp: OAuthClient, mode: str) -> None:
    start = rp.start_authorization(scope="accounts", response_mode=cast(ResponseMode, mode))
    delivered = user_agent(start.url)
    assert redeem(rp, delivered, start.state).access_token  # the genuine response, once
    assert malicious_as.token_calls == 1
    with pytest.raises(JarmValidationError) as info:
        redeem(rp, delivered, start.state)
    assert info.value.reason == "state_replayed"
    other = rp.start_authorization(scope="accounts", response_mode=cast(ResponseMode, mode))
    with pytest.raises(JarmValidationError) as info:  # replayed into another session: not that session's
        redeem(rp, delivered, other.state)
    assert info.value.reason == "state_mismatch"
    with pytest.raises(AuthorizationResponseError) as error:  # into a session with no login in progress
        redeem(rp, delivered, None)
    assert error.value.reason == "no_session_state"
    assert malicious_as.token_calls == 1


@pytest.mark.parametrize("mode", JARM_MODES)
def test_login_csrf_with_a_validly_signed_response_for_another_user(
    malicious_as: MaliciousAS, rp: OAuthClient, mode: str
) -> None:
    """Login CSRF (RFC 6749 §10.12, JARM §2.4 step 2): the attacker starts a login of their own at the same
    client, stops at the callback, and makes the victim's browser deliver that validly signed response. It
    is refused because it is not the victim's session's flow; the victim's own login still completes, with
    the victim's code, and the attacker's code is never redeemed."""
    malicious_as.user = "attacker"
    attackers = rp.start_authorization(scope="accounts", response_mode=cast(ResponseMode, mode))
    attackers_response = user_agent(attackers.url)
    malicious_as.user = "victim"
    victims = rp.start_authorization(scope="accounts", response_mode=cast(ResponseMode, mode))
    victims_response = user_agent(victims.url)
    with pytest.raises(JarmValidationError) as info:
        redeem(rp, attackers_response, victims.state)
    assert info.value.reason == "state_mismatch"
    assert malicious_as.token_calls == 0
    assert redeem(rp, victims_response, victims.state).access_token
    assert malicious_as.redeemed == ["victim"]
