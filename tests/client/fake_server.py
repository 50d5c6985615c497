"""A fake authorization server for the client tests, reached through ``httpx.MockTransport``.

It publishes metadata and a JWKS, accepts PAR (verifying the client's assertion and request object with
the client's public key), issues codes, signs (and optionally encrypts) JARM responses and ID tokens with
``jarmor.jose``, and records every request so tests can assert what was — and was not — called.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson

from jarmor.jose import (
    Jwk,
    JwkSet,
    b64url_encode,
    decrypt_jwe,
    encrypt_jwe,
    generate_jwk,
    import_jwk,
    is_jwe,
    peek_header,
    sign_jws,
    verify_jws,
)

ISSUER = "https://as.example"
EVIL_ISSUER = "https://evil.example"
CLIENT_ID = "client-1"
REDIRECT_URI = "https://rp.example/cb"
NOW = 1_800_000_000
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Clock:
    def __init__(self, t: int = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return float(self.t)


def public(key: Jwk) -> Jwk:
    return import_jwk(key.public_dict(), allow_private=False)


def s256(verifier: str) -> str:
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


class FakeAS:
    """One authorization server. Mutate ``metadata``, ``published`` or the ``*_override`` hooks per test."""

    def __init__(self, issuer: str, keys: Keys, clock: Clock) -> None:
        self.issuer = issuer
        self.clock = clock
        self.keys = keys
        self.sig_key = keys.as_sig if issuer == ISSUER else keys.evil_sig
        self.enc_key = keys.as_enc
        self.published: list[Jwk] = [self.sig_key, self.enc_key]
        self.metadata: dict[str, Any] = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
            "pushed_authorization_request_endpoint": f"{issuer}/par",
            "require_pushed_authorization_requests": False,
            "authorization_response_iss_parameter_supported": True,
            "response_types_supported": ["code"],
            "response_modes_supported": [
                "query",
                "fragment",
                "form_post",
                "jwt",
                "query.jwt",
                "fragment.jwt",
                "form_post.jwt",
            ],
            "code_challenge_methods_supported": ["S256"],
            "authorization_signing_alg_values_supported": ["ES256", "PS256"],
            "authorization_encryption_alg_values_supported": ["ECDH-ES+A128KW"],
            "authorization_encryption_enc_values_supported": ["A128CBC-HS256", "A256GCM"],
            "request_object_signing_alg_values_supported": ["ES256", "PS256"],
            "request_object_encryption_alg_values_supported": ["RSA-OAEP-256"],
            "request_object_encryption_enc_values_supported": ["A128CBC-HS256", "A256GCM"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": [
                "private_key_jwt",
                "client_secret_basic",
                "client_secret_post",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "PS256"],
        }
        self.requests: list[httpx.Request] = []
        self.pushed: dict[str, dict[str, Any]] = {}  # request_uri -> request object claims
        self.par_forms: list[dict[str, str]] = []
        self.token_forms: list[dict[str, str]] = []
        self.codes: dict[str, dict[str, Any]] = {}
        self.metadata_status = 200
        self.jwks_status = 200
        self.par_override: Callable[[], httpx.Response] | None = None
        self.token_override: Callable[[dict[str, str]], httpx.Response] | None = None
        self.token_extra: dict[str, Any] = {}
        self.token_drop: tuple[str, ...] = ()
        self.id_token_claims_override: dict[str, Any] = {}
        self.id_token_key: Jwk | None = None
        self.last_state: str | None = None
        # DPoP (RFC 9449): proofs seen (claims, jkt), the nonce demanded, and misbehaviours to test
        self.dpop_proofs: list[tuple[dict[str, Any], str]] = []
        self.dpop_nonce: str | None = None
        self.dpop_always_challenge = False
        self.dpop_downgrade = False
        self.bound: dict[str, str] = {}  # access token -> jkt

    # -- HTTP ---------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(self.metadata_status, json=self.metadata)
        if path == "/jwks":
            return httpx.Response(self.jwks_status, json={"keys": [k.public_dict() for k in self.published]})
        if path == "/par" and request.method == "POST":
            return self._par(request)
        if path == "/token" and request.method == "POST":
            return self._token(request)
        return httpx.Response(404, json={"error": "not_found"})

    def calls(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)

    @staticmethod
    def _form(request: httpx.Request) -> dict[str, str]:
        pairs = parse_qsl(request.content.decode(), keep_blank_values=True)
        form = dict(pairs)
        assert len(form) == len(pairs), "duplicate form fields"
        return form

    def _check_assertion(self, form: dict[str, str], request: httpx.Request) -> None:
        if "client_secret" in form or "authorization" in request.headers:
            return
        assert form["client_assertion_type"] == ASSERTION_TYPE
        verified = verify_jws(form["client_assertion"], self.keys.client_sig_public, algorithms=["ES256"])
        claims = verified.claims
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == self.issuer

    def request_object(self, token: str) -> dict[str, Any]:
        if is_jwe(token):
            token = decrypt_jwe(
                token,
                JwkSet((self.enc_key,)),
                algorithms=["RSA-OAEP-256"],
                encryptions=["A128CBC-HS256", "A256GCM"],
            ).plaintext.decode()
        verified = verify_jws(
            token, self.keys.client_sig_public, algorithms=["ES256"], typ=["oauth-authz-req+jwt"]
        )
        return verified.claims

    def _dpop(self, request: httpx.Request) -> tuple[str | None, httpx.Response | None]:
        """Check a DPoP proof when one is sent: its thumbprint, or the ``use_dpop_nonce`` answer."""
        proofs = request.headers.get_list("dpop")
        if not proofs:
            return None, None
        assert len(proofs) == 1
        claims, jkt = check_proof(proofs[0], request.method, str(request.url), self.clock.t)
        self.dpop_proofs.append((claims, jkt))
        if self.dpop_always_challenge or (self.dpop_nonce is not None and claims.get("nonce") != self.dpop_nonce):
            nonce = self.dpop_nonce or secrets.token_urlsafe(16)
            headers = {"DPoP-Nonce": nonce}
            return jkt, httpx.Response(400, json={"error": "use_dpop_nonce"}, headers=headers)
        return jkt, None

    def _par(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        self.par_forms.append(form)
        if self.par_override is not None:
            return self.par_override()
        jkt, challenge = self._dpop(request)
        if challenge is not None:
            return challenge
        self._check_assertion(form, request)
        request_uri = "urn:ietf:params:oauth:request_uri:" + secrets.token_urlsafe(16)
        if "request" in form:
            self.pushed[request_uri] = self.request_object(form["request"])
        else:  # plain parameters pushed by a client without keys (RFC 9126 §2.1), authenticated by its secret
            assert "client_secret" in form or "authorization" in request.headers
            self.pushed[request_uri] = {k: v for k, v in form.items() if k != "client_secret"}
        if jkt is not None:
            self.pushed[request_uri]["_dpop_jkt"] = jkt
        return httpx.Response(201, json={"request_uri": request_uri, "expires_in": 60})

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        self.token_forms.append(form)
        if self.token_override is not None:
            return self.token_override(form)
        jkt, challenge = self._dpop(request)
        if challenge is not None:
            return challenge
        self._check_assertion(form, request)
        token_type = "DPoP" if jkt is not None and not self.dpop_downgrade else "Bearer"
        body: dict[str, Any] = {"access_token": "at-" + secrets.token_urlsafe(8), "token_type": token_type}
        body["expires_in"] = 300
        if jkt is not None:
            self.bound[body["access_token"]] = jkt
        if form["grant_type"] == "authorization_code":
            ro = self.codes.pop(form["code"])
            bound = ro.get("_dpop_jkt") or ro.get("dpop_jkt")
            if bound is not None and bound != jkt:
                return httpx.Response(400, json={"error": "invalid_grant"})
            assert form["redirect_uri"] == ro["redirect_uri"]
            assert s256(form["code_verifier"]) == ro["code_challenge"]
            body["scope"] = ro["scope"]
            body["refresh_token"] = "rt-" + secrets.token_urlsafe(8)
            if "openid" in ro["scope"].split():
                body["id_token"] = self.id_token(ro, body["access_token"])
        elif form["grant_type"] == "refresh_token":
            body["refresh_token"] = "rt-" + secrets.token_urlsafe(8)
        body.update(self.token_extra)
        for name in self.token_drop:
            body.pop(name, None)
        return httpx.Response(200, json=body)

    # -- the front channel (what the browser would carry) ---------------------------------------------

    def authorize(self, url: str) -> dict[str, Any]:
        """Resolve the authorization URL to its request object claims and issue a code for it."""
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.metadata["authorization_endpoint"]
        query = dict(parse_qsl(parts.query))
        if "request_uri" in query:
            ro = self.pushed.pop(query["request_uri"])
        elif "request" in query:
            ro = self.request_object(query["request"])
        else:
            ro = dict(query)
        assert query["client_id"] == ro["client_id"] == CLIENT_ID
        code = "code-" + secrets.token_urlsafe(12)
        self.codes[code] = ro
        self.last_state = ro["state"]  # what the user agent's session holds for the latest flow
        return {**ro, "_code": code}

    def response_claims(self, ro: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        now = self.clock.t
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "code": ro["_code"],
            "state": ro["state"],
        }
        for name, value in overrides.items():
            if value is DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(
        self, claims: dict[str, Any], *, key: Jwk | None = None, alg: str = "ES256", **header: Any
    ) -> str:
        return sign_jws(claims, key or self.sig_key, alg, extra_header=header or None)

    def encrypt_to_client(self, plaintext: str, *, enc: str = "A128CBC-HS256", key: Jwk | None = None) -> str:
        return encrypt_jwe(plaintext, key or self.keys.client_enc_public, "ECDH-ES+A128KW", enc, cty="JWT")

    def jarm(self, ro: dict[str, Any], *, encrypt: bool = False, **overrides: Any) -> str:
        token = self.sign(self.response_claims(ro, **overrides))
        return self.encrypt_to_client(token) if encrypt else token

    def id_token(self, ro: dict[str, Any], access_token: str) -> str:
        now = self.clock.t
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "alice",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 600,
            "nonce": ro.get("nonce"),
        }
        half = hashlib.sha256(access_token.encode()).digest()[:16]
        claims["at_hash"] = b64url_encode(half)
        for name, value in self.id_token_claims_override.items():
            if value is DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        if self.id_token_key is not None:
            return self.sign(claims, key=self.id_token_key)
        return self.sign(claims)


DROP = object()


def check_proof(
    proof: str, method: str, url: str, now: int, *, access_token: str | None = None
) -> tuple[dict[str, Any], str]:
    """Verify a DPoP proof as RFC 9449 §4.3 does (typ, public jwk, signature, htm, htu, iat, ath)."""
    header = peek_header(proof)
    assert header["typ"] == "dpop+jwt"
    jwk = header["jwk"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk), "private member in the proof jwk"
    key = import_jwk(jwk, allow_private=False)
    assert header.get("kid") in (None, key.kid)
    claims = verify_jws(proof, JwkSet((key,)), algorithms=[header["alg"]], typ=["dpop+jwt"]).claims
    assert claims["htm"] == method
    parts = urlsplit(url)
    assert claims["htu"] == f"{parts.scheme}://{parts.netloc}{parts.path}"
    assert claims["iat"] == now
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    if access_token is not None:
        assert claims["ath"] == b64url_encode(hashlib.sha256(access_token.encode()).digest())
    else:
        assert "ath" not in claims
    return claims, key.thumbprint()


def callback(ro: dict[str, Any], params: dict[str, str]) -> str | dict[str, str]:
    """Deliver ``params`` the way the request's response_mode says (query, fragment or form body)."""
    mode = ro["response_mode"]
    if mode.startswith("form_post"):
        return dict(params)
    if mode.startswith("fragment"):
        return f"{REDIRECT_URI}#{urlencode(params)}"
    return f"{REDIRECT_URI}?{urlencode(params)}"


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token built by hand, for algorithms ``jarmor.jose`` refuses to produce (``none``, ``HS256``)."""
    h = b64url_encode(orjson.dumps(header))
    p = b64url_encode(orjson.dumps(claims))
    return f"{h}.{p}.{b64url_encode(signature)}"


class Keys:
    def __init__(self) -> None:
        self.client_sig = generate_jwk("ES256", kid="client-sig-1")
        self.client_sig_public = JwkSet((public(self.client_sig),))
        self.client_enc = generate_jwk("ECDH-ES+A128KW", kid="client-enc-1")
        self.client_enc_public = public(self.client_enc)
        self.as_sig = generate_jwk("ES256", kid="as-sig-1")
        self.as_sig_2 = generate_jwk("ES256", kid="as-sig-2")
        self.as_enc = generate_jwk("RSA-OAEP-256", kid="as-enc-1")
        self.evil_sig = generate_jwk("ES256", kid="evil-sig-1")
        self.attacker = generate_jwk("ES256", kid="as-sig-1")  # same kid as the real key


class Network:
    """Routes requests by host to the fake servers; anything else is a test failure."""

    def __init__(self, *servers: FakeAS) -> None:
        self.servers = {urlsplit(s.issuer).hostname: s for s in servers}
        self.log: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.log.append(request)
        server = self.servers.get(request.url.host)
        if server is None:
            raise AssertionError(f"unexpected request to {request.url}")
        return server.handle(request)


def es256_sign(key: Jwk, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """ES256 over an arbitrary header (``jarmor.jose`` refuses to emit ``crit``/``b64``), via ``cryptography``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from jarmor.jose import b64url_decode

    d = int.from_bytes(b64url_decode(key.private_dict()["d"]), "big")
    private = ec.derive_private_key(d, ec.SECP256R1())
    h = b64url_encode(orjson.dumps(header))
    p = b64url_encode(orjson.dumps(claims))
    der = private.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return f"{h}.{p}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


RS = "https://rs.example"


class FakeRS:
    """A protected resource at ``RS`` accepting the tokens ``fake`` issued: a DPoP-bound one only with a
    proof of its key carrying ``ath`` (RFC 9449 §7), and the nonce it demands once ``nonce`` is set."""

    def __init__(self, fake: FakeAS, clock: Clock) -> None:
        self.issuer = RS  # for Network's routing
        self.fake = fake
        self.clock = clock
        self.nonce: str | None = None
        self.always_challenge = False
        self.challenge_scheme = "DPoP"
        self.step_up: str | None = None  # a WWW-Authenticate value answered with 401 once the token checks out
        self.requests: list[httpx.Request] = []
        self.proofs: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        scheme, token = request.headers["authorization"].split(" ", 1)
        if scheme == "Bearer":
            assert token not in self.fake.bound, "a DPoP-bound token was sent as a bearer token"
            if self.step_up is not None:
                return httpx.Response(401, headers={"WWW-Authenticate": self.step_up})
            return httpx.Response(200, json={"scheme": "Bearer"})
        assert scheme == "DPoP"
        proof = request.headers["dpop"]
        claims, jkt = check_proof(proof, request.method, str(request.url), self.clock.t, access_token=token)
        self.proofs.append(claims)
        assert self.fake.bound[token] == jkt
        if self.always_challenge or (self.nonce is not None and claims.get("nonce") != self.nonce):
            challenge = f'{self.challenge_scheme} algs="ES256 PS256", error="use_dpop_nonce"'
            nonce = self.nonce or secrets.token_urlsafe(16)
            return httpx.Response(
                401,
                json={"error": "use_dpop_nonce"},
                headers={"WWW-Authenticate": challenge, "DPoP-Nonce": nonce},
            )
        if self.step_up is not None:
            return httpx.Response(401, headers={"WWW-Authenticate": self.step_up})
        return httpx.Response(200, json={"scheme": "DPoP", "jkt": jkt, "body": request.content.decode()})
