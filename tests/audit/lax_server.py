"""A deliberately lax authorization server on ``httpx.MockTransport``: it accepts every request, verifies no
signature, remembers nothing and answers without ``iss`` — each seeded weakness one probe must report."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from jarmor.jose import b64url_decode, generate_jwk, peek_claims, sign_jws

ISSUER = "https://lax.example"


class LaxServer:
    def __init__(self, *, token_host: str | None = None, par: bool = True,
                 interaction_host: str | None = None, login_form: bool = False, encryption: bool = False,
                 zip_ok: bool = True, iss: bool = False, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.key = generate_jwk("ES256")
        self.enc_key = generate_jwk("ECDH-ES")
        self.login_form = login_form  # the sign-in page is a form (username/password, a CSRF field)
        self.encryption = encryption  # advertises encrypted request objects (accepts any JWE unread)
        self.zip_ok = zip_ok  # with encryption: accepts zip: DEF
        self.iss = iss  # adds RFC 9207 iss (advertised) to plain responses
        self.codes: set[str] = set()
        self.logins: list[dict[str, str]] = []
        self.counter = itertools.count()
        self.pushed: dict[str, dict[str, Any]] = {}
        self.hosts: list[str] = []
        self.token_host = token_host or urlsplit(issuer).netloc
        self.par = par
        self.interaction_host = interaction_host  # sign-in page first, on this host
        self.waiting: dict[str, str] = {}

    def metadata(self) -> dict[str, Any]:
        md: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"https://{self.token_host}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_modes_supported": ["query", "jwt"],
            "code_challenge_methods_supported": ["S256"],
            "request_object_signing_alg_values_supported": ["ES256"],
            "authorization_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }
        if self.par:
            md["pushed_authorization_request_endpoint"] = f"{self.issuer}/par"
        if self.encryption:
            md["request_object_encryption_alg_values_supported"] = ["ECDH-ES"]
            md["request_object_encryption_enc_values_supported"] = ["A256GCM"]
        if self.iss:
            md["authorization_response_iss_parameter_supported"] = True
        return md

    def _params(self, pairs: dict[str, str]) -> dict[str, Any]:
        if "request_uri" in pairs:
            return self.pushed.get(pairs["request_uri"], {})
        if "request" in pairs:
            token = pairs["request"]
            return peek_claims(token) if token.count(".") == 2 else {}  # never verified
        return dict(pairs)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(200, json=self.metadata())
        if path == "/jwks":
            keys = [self.key.public_dict()] + ([self.enc_key.public_dict()] if self.encryption else [])
            return httpx.Response(200, json={"keys": keys})
        if path == "/par":
            form = dict(parse_qsl(request.content.decode()))
            ref = f"urn:lax:{next(self.counter)}"
            self.pushed[ref] = self._params(form)
            return httpx.Response(201, json={"request_uri": ref, "expires_in": 60})
        if path == "/authorize":
            pairs = dict(parse_qsl(urlsplit(str(request.url)).query))
            if pairs.get("request", "").count(".") == 4:  # a JWE: accepted unread, unless compressed and refused
                header = json.loads(b64url_decode(pairs["request"].split(".")[0]))
                if "zip" in header and not self.zip_ok:
                    return httpx.Response(400, json={"error": "invalid_request_object"})
                return httpx.Response(303, headers={"location": f"{self.issuer}/consent"})
            params = self._params(pairs)
            redirect = str(params.get("redirect_uri", ""))
            code = f"code-{next(self.counter)}"
            self.codes.add(code)
            state = str(params.get("state", ""))
            if params.get("response_mode") == "jwt":
                claims = {"iss": self.issuer, "aud": "someone-else", "exp": 2**31, "code": code, "state": state}
                query = urlencode({"response": sign_jws(claims, self.key, "ES256")})
            else:
                query = urlencode({"code": code, "state": state, **({"iss": self.issuer} if self.iss else {})})
            if self.interaction_host is not None:
                ref = str(next(self.counter))
                self.waiting[ref] = f"{redirect}?{query}"
                return httpx.Response(303, headers={"location": f"https://{self.interaction_host}/login/{ref}"})
            return httpx.Response(303, headers={"location": f"{redirect}?{query}"})
        if path.startswith("/login/") and self.login_form:
            return self._login(request, path.rsplit("/", 1)[1])
        if path.startswith("/login/"):  # a sign-in that approves at once, then back to the client
            return httpx.Response(303, headers={"location": self.waiting.pop(path.rsplit("/", 1)[1], "/")})
        if path == "/token":  # any client authentication passes; unknown codes are a grant error
            form = dict(parse_qsl(request.content.decode()))
            if form.get("code") not in self.codes:
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer", "expires_in": 60})
        return httpx.Response(404, content=json.dumps({"error": "not_found"}))

    def _login(self, request: httpx.Request, ref: str) -> httpx.Response:
        """GET: a sign-in form; POST with alice's password (and the CSRF field): back to the client."""
        if request.method == "POST":
            form = dict(parse_qsl(request.content.decode()))
            self.logins.append(form)
            if form == {"csrf": f"csrf-{ref}", "username": "alice", "password": "pw", "go": "in"}:
                return httpx.Response(303, headers={"location": self.waiting.pop(ref, "/")})
        page = (f'<html><form method="get" action="/search"><input name="q"></form>'
                f'<form method="post" action="/login/{ref}"><input type="hidden" name="csrf" value="csrf-{ref}">'
                '<input name="username"><input type="password" name="password">'
                '<button type="submit" name="go" value="in">Sign in</button></form></html>')
        return httpx.Response(200, html=page)
