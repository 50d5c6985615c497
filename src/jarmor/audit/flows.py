"""Building and sending the requests the probes compare, with ``jarmor.client``'s building blocks.

A probe never guesses what the server wants: it starts from the *reference request* — the strongest
request the client can make (PAR when offered, a signed request object when the client has a key, JARM,
PKCE S256, ``nbf``, encryption when the client registered it) — and changes exactly one thing (a
``Variant``). The server's answer is read, never followed beyond the issuer's own endpoints: a redirect to
the client's ``redirect_uri`` completes the authorization (an auto-approving test deployment), a redirect
anywhere else on the issuer is the interaction (sign-in) the request was accepted into.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urljoin, urlsplit

import httpx

from jarmor.client.errors import ClientError
from jarmor.client.metadata import ServerMetadata, discovery_urls, parse_jwks, parse_metadata
from jarmor.client.pkce import new_jti, new_nonce, new_pkce, new_state
from jarmor.client.request_object import (
    client_assertion_claims,
    encrypt_request_object,
    plain_parameters,
    request_object_claims,
    sign_client_assertion,
    sign_request_object,
)
from jarmor.jose import (
    CONTENT_ENCRYPTION_ALGS,
    KEY_MANAGEMENT_ALGS,
    JoseError,
    JwkSet,
    b64url_decode,
    b64url_encode,
    decrypt_jwe,
    peek_claims,
)
from jarmor.jose.forgery import hmac_raw, segment
from jarmor.protocol.vocabulary import CLIENT_ASSERTION_TYPE, REQUEST_OBJECT_TYP

from .clients import AuditClient
from .transport import AuditAborted, AuditHttp, origin, strip_url

FORGED_AUD = "https://jarmor-audit.invalid"
MAX_FORM_PAGE = 64 * 1024
MAX_INTERACTION_HOPS = 5
ENDPOINTS = (
    "authorization_endpoint", "token_endpoint", "jwks_uri", "pushed_authorization_request_endpoint",
    "registration_endpoint", "revocation_endpoint",
)


@dataclass(slots=True)
class Target:
    """The audited issuer: validated metadata, its keys, the bounded transport and a clock."""

    issuer: str
    metadata: ServerMetadata
    http: AuditHttp
    clock: Callable[[], float]
    jwks: JwkSet | None = None
    registration_token: str | None = field(default=None, repr=False)

    def now(self) -> int:
        return int(self.clock())

    def endpoint(self, name: str) -> str | None:
        """A metadata endpoint the transport may contact (on the issuer's origin), else ``None``."""
        value = self.metadata.raw.get(name)
        if isinstance(value, str) and self.http.allowed(value):
            return value
        return None


def _loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "::1", "localhost")


def discover(http: AuditHttp, issuer: str, clock: Callable[[], float]) -> Target:
    """RFC 8414 §3 (then OIDC Discovery §4): the document's ``issuer`` must equal the audited issuer."""
    insecure_ok = _loopback(urlsplit(issuer).hostname)
    last = "no discovery document"
    for url in discovery_urls(issuer):
        http.allow(url)
        response = http.get(url)
        if response.status_code != 200:
            last = f"{strip_url(url)} answered {response.status_code}"
            continue
        try:
            metadata = parse_metadata(response.content, expected_issuer=issuer, allow_insecure_http=insecure_ok)
        except ClientError as exc:
            raise AuditAborted(f"discovery document refused: {exc}") from exc
        for name in ENDPOINTS:
            value = metadata.raw.get(name)
            if isinstance(value, str):
                http.allow(value)
        target = Target(issuer=issuer, metadata=metadata, http=http, clock=clock)
        jwks_uri = target.endpoint("jwks_uri")
        if jwks_uri is not None:
            r = http.get(jwks_uri)
            if r.status_code == 200:
                try:
                    target.jwks = parse_jwks(r.content)
                except ClientError:
                    target.jwks = None
        return target
    raise AuditAborted(f"discovery failed: {last}")


@dataclass(frozen=True, slots=True)
class Variant:
    """One authorization request. ``reference(...)`` builds the strongest; probes ``replace`` one field."""

    par: bool
    signed: bool
    response_mode: str
    pkce: str | None = "S256"  # "S256", "plain", or None (no code_challenge)
    encrypt: bool = False
    nbf: bool = True
    forge: str | None = None  # "none" | "hmac_public_key" | "bad_signature"
    claims: Mapping[str, Any] = field(default_factory=dict)
    redirect_uri: str | None = None
    request_object: str | None = None  # send exactly this (replay)
    assertion: str | None = None  # authenticate with exactly this (replay)
    forge_assertion: str | None = None  # "none" | "hmac_public_key"
    authenticate: bool = True


@dataclass(slots=True)
class Outcome:
    """How the server answered one ``Variant``."""

    accepted: bool
    stage: str
    error: str | None = None
    completed: bool = False
    params: dict[str, str] = field(default_factory=dict)  # the callback parameters (plain or JARM outer)
    jarm: str | None = None  # the JARM response as received
    jarm_claims: dict[str, Any] | None = None  # its claims (after decryption, unverified)
    redirected_to_sent: bool = False
    state: str = ""
    verifier: str = field(default="", repr=False)
    redirect_uri: str = ""
    request_object: str | None = field(default=None, repr=False)
    assertion: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        if not self.accepted:
            return f"refused at {self.stage} ({self.error})"
        return "accepted and completed" if self.completed else "accepted (interaction started)"

    @property
    def code(self) -> str | None:
        if self.jarm_claims is not None:
            code = self.jarm_claims.get("code")
            return code if isinstance(code, str) else None
        return self.params.get("code")


def jarm_supported(md: ServerMetadata) -> bool:
    return "jwt" in md.response_modes_supported


def par_endpoint(t: Target) -> str | None:
    return t.endpoint("pushed_authorization_request_endpoint")


def request_objects_supported(t: Target) -> bool:
    return bool(t.metadata.supported("request_object_signing_alg_values_supported"))


def client_modes(t: Target, c: AuditClient) -> tuple[str, ...]:
    """The response modes the server advertises and the client registered (all advertised, if unknown)."""
    advertised = t.metadata.response_modes_supported
    return tuple(m for m in advertised if c.response_modes is None or m in c.response_modes)


def reference(t: Target, c: AuditClient) -> Variant:
    modes = client_modes(t, c)
    preferred = [m for m in ("jwt", "query.jwt", "query", "fragment.jwt", "fragment") if m in modes]
    return Variant(
        par=par_endpoint(t) is not None,
        signed=c.can_sign and request_objects_supported(t),
        response_mode=preferred[0] if preferred else "query",
        encrypt=c.request_object_encryption is not None,
    )


def forged_assertion(t: Target, c: AuditClient, forge: str) -> str:
    """A client assertion that must be refused: unsigned (``alg: none``) or MACed with the client's public key
    (RFC 8725 §2.1/§3.1)."""
    claims = client_assertion_claims(client_id=c.client_id, issuer=t.issuer, now=t.now(), lifetime=60,
                                     jti=new_jti())
    if forge == "none":
        return f"{segment({'alg': 'none'})}.{segment(claims)}."
    assert c.signing_key is not None
    public = json.dumps(c.signing_key.public_dict(), separators=(",", ":")).encode("utf-8")
    return hmac_raw({"alg": "HS256", "kid": c.signing_key.kid}, claims, public)


def client_auth(
    t: Target, c: AuditClient, assertion: str | None = None
) -> tuple[dict[str, str], dict[str, str], str | None]:
    """RFC 7523 §2.2 / RFC 6749 §2.3.1 with ``jarmor.client``'s assertion builder (``aud`` = issuer)."""
    if c.auth_method == "private_key_jwt":
        if assertion is None:
            assert c.signing_key is not None and c.signing_alg is not None
            claims = client_assertion_claims(
                client_id=c.client_id, issuer=t.issuer, now=t.now(), lifetime=60, jti=new_jti()
            )
            assertion = sign_client_assertion(claims, c.signing_key, c.signing_alg)
        form = {"client_id": c.client_id, "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion}
        return form, {}, assertion
    if c.auth_method == "client_secret_post":
        return {"client_id": c.client_id, "client_secret": c.client_secret or ""}, {}, None
    if c.auth_method == "client_secret_basic":
        # RFC 6749 §2.3.1: form-encode id and secret before base64, as jarmor.client does
        basic = f"{quote_plus(c.client_id)}:{quote_plus(c.client_secret or '')}".encode()
        return {}, {"Authorization": "Basic " + base64.b64encode(basic).decode("ascii")}, None
    return {"client_id": c.client_id}, {}, None


def _encryption_choice(t: Target, c: AuditClient) -> tuple[str, str] | None:
    if c.request_object_encryption is not None:
        return c.request_object_encryption
    algs = t.metadata.supported("request_object_encryption_alg_values_supported")
    encs = t.metadata.supported("request_object_encryption_enc_values_supported")
    if t.jwks is None or not algs:
        return None
    enc = "A256GCM" if "A256GCM" in encs or not encs else encs[0]
    for alg in algs:
        try:
            t.jwks.select_encryption_key(alg)
        except JoseError:
            continue
        return alg, enc
    return None


def build_request_object(t: Target, c: AuditClient, v: Variant, params: Mapping[str, object]) -> str:
    """RFC 9101 §4 claims from ``jarmor.client``; a forged variant breaks exactly what it names."""
    now = t.now()
    claims = request_object_claims(
        client_id=c.client_id, issuer=t.issuer, params=params, now=now, lifetime=300, jti=new_jti()
    )
    if not v.nbf:
        claims.pop("nbf", None)
    claims.update(v.claims)
    if v.forge == "none":
        token = f"{segment({'alg': 'none', 'typ': REQUEST_OBJECT_TYP})}.{segment(claims)}."
    elif v.forge == "hmac_public_key":
        assert c.signing_key is not None
        public = json.dumps(c.signing_key.public_dict(), separators=(",", ":")).encode("utf-8")
        header = {"alg": "HS256", "typ": REQUEST_OBJECT_TYP, "kid": c.signing_key.kid}
        token = hmac_raw(header, claims, public)
    else:
        assert c.signing_key is not None and c.signing_alg is not None
        token = sign_request_object(claims, c.signing_key, c.signing_alg, typ=REQUEST_OBJECT_TYP)
        if v.forge == "bad_signature":
            head, body, sig = token.split(".")
            raw = bytearray(b64url_decode(sig))
            raw[len(raw) // 2] ^= 0x01  # one bit of the signature flipped: well-formed, not valid
            token = f"{head}.{body}.{b64url_encode(bytes(raw))}"
    if v.encrypt:
        choice = _encryption_choice(t, c)
        if choice is None or t.jwks is None:
            raise AuditAborted("no server encryption key for request objects")
        token, _ = encrypt_request_object(token, t.jwks, *choice)
    return token


def _callback_params(location: str) -> dict[str, str]:
    parts = urlsplit(location)
    out: dict[str, str] = {}
    for name, value in parse_qsl(parts.query) + parse_qsl(parts.fragment):
        out.setdefault(name, value)
    return out


class _AutoSubmitForm(HTMLParser):
    """The first ``<form>`` of a form_post page (OAuth 2.0 Form Post Response Mode §2): action and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._open = a.get("action", ""), True
        elif tag == "input" and self._open and a.get("name"):
            self.fields.setdefault(a["name"], a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = False


def form_post_fields(html: str, redirect_uri: str) -> dict[str, str] | None:
    """The fields a form_post page would submit to ``redirect_uri``, or ``None`` if it is no such page."""
    form = _AutoSubmitForm()
    try:
        form.feed(html[:MAX_FORM_PAGE])
    except (AssertionError, ValueError):
        return None
    if form.action != redirect_uri:
        return None
    return form.fields


def _same_endpoint(a: str, b: str) -> bool:
    return strip_url(a) == strip_url(b)


def jarm_jws(c: AuditClient, token: str) -> str | None:
    """The JWS of a JARM response: decrypted with the client's ``use=enc`` key when it is a JWE (JARM §2.3)."""
    if token.count(".") != 4:
        return token
    if c.decryption_keys is None:
        return None
    try:
        return decrypt_jwe(
            token, c.decryption_keys, algorithms=list(KEY_MANAGEMENT_ALGS),
            encryptions=list(CONTENT_ENCRYPTION_ALGS),
        ).plaintext.decode("ascii")
    except (JoseError, UnicodeDecodeError):
        return None


def _read_jarm(c: AuditClient, token: str) -> dict[str, Any] | None:
    """The JARM claims, unverified (verification is ``jarm_response_validity``'s job)."""
    jws = jarm_jws(c, token)
    if jws is None:
        return None
    try:
        return peek_claims(jws)
    except JoseError:
        return None


def printable(text: str, limit: int = 64) -> str:
    """Server-supplied text kept to RFC 6749's error charset (%x20-21 / %x23-5B / %x5D-7E), bounded."""
    return "".join(ch if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\' else "?" for ch in text[:limit])


def error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return printable(str(body["error"]))
    return f"HTTP {response.status_code}"


def authorize(t: Target, c: AuditClient, v: Variant) -> Outcome:
    """Send one authorization request (via PAR when ``v.par``) and classify the answer."""
    pkce = new_pkce()
    state = new_state()
    redirect_uri = v.redirect_uri or c.redirect_uri
    params: dict[str, object] = {
        "response_type": "code",
        "client_id": c.client_id,
        "redirect_uri": redirect_uri,
        "scope": c.scope,
        "state": state,
        "response_mode": v.response_mode,
    }
    if "openid" in c.scope.split():
        params["nonce"] = new_nonce()
    if v.pkce == "S256":
        params["code_challenge"] = pkce.challenge
        params["code_challenge_method"] = "S256"
    elif v.pkce == "plain":
        params["code_challenge"] = pkce.verifier
        params["code_challenge_method"] = "plain"
    outcome = Outcome(accepted=False, stage="par" if v.par else "authorize", state=state,
                      verifier=pkce.verifier, redirect_uri=redirect_uri)
    ro: str | None = None
    if v.signed or v.forge is not None or v.request_object is not None:
        ro = v.request_object or build_request_object(t, c, v, params)
        outcome.request_object = ro
    endpoint = t.endpoint("authorization_endpoint")
    if endpoint is None:
        raise AuditAborted("the authorization endpoint is not on the issuer's origin")
    if v.par:
        par = par_endpoint(t)
        if par is None:
            raise AuditAborted("the server offers no pushed authorization request endpoint")
        form: dict[str, str] = {}
        headers: dict[str, str] = {}
        if v.authenticate:
            given = forged_assertion(t, c, v.forge_assertion) if v.forge_assertion else v.assertion
            form, headers, outcome.assertion = client_auth(t, c, given)
        else:
            form = {"client_id": c.client_id}
        if ro is not None:
            form["request"] = ro
            form.setdefault("client_id", c.client_id)
        else:
            form.update(dict(plain_parameters(params)))
        r = t.http.post_form(par, form, headers)
        if r.status_code not in (200, 201):
            outcome.error = error_of(r)
            return outcome
        try:
            request_uri = r.json()["request_uri"]
        except (ValueError, KeyError, TypeError):
            outcome.error = "PAR response without request_uri"
            return outcome
        query = [("client_id", c.client_id), ("request_uri", str(request_uri))]
    elif ro is not None:
        query = [("client_id", c.client_id), ("request", ro)]
    else:
        query = plain_parameters(params)
    outcome.stage = "authorize"
    r = t.http.get(endpoint, query)
    url = str(r.request.url)
    for _ in range(MAX_INTERACTION_HOPS + 1):
        location = r.headers.get("location")
        if r.status_code not in (301, 302, 303, 307, 308) or not location:
            break
        location = urljoin(url, location)
        if _same_endpoint(location, redirect_uri) and location.startswith(redirect_uri.split("?")[0]):
            return _callback(c, outcome, _callback_params(location))
        outcome.accepted = True  # an interaction (sign-in, consent) on the server
        if not t.http.follow_interactions or origin(location) != t.http.issuer_origin:
            return outcome
        url = location
        r = t.http.follow(url)
    else:
        return outcome
    if r.status_code == 200:
        fields = form_post_fields(r.text, redirect_uri) if "form" in v.response_mode else None
        if fields is not None:
            return _callback(c, outcome, fields)
        outcome.accepted = True
        return outcome
    outcome.error = error_of(r)
    return outcome


def _callback(c: AuditClient, outcome: Outcome, cb: dict[str, str]) -> Outcome:
    """An authorization response delivered to the redirect URI: an error, or a completed authorization."""
    outcome.redirected_to_sent = True
    outcome.params = cb
    if "error" in cb:
        outcome.error = printable(cb["error"])
        return outcome
    if "response" in cb:
        outcome.jarm = cb["response"]
        outcome.jarm_claims = _read_jarm(c, cb["response"])
        if outcome.jarm_claims is not None and "error" in outcome.jarm_claims:
            outcome.error = printable(str(outcome.jarm_claims["error"]))
            return outcome
    outcome.accepted = True
    outcome.completed = "code" in cb or "response" in cb
    return outcome


def with_changes(v: Variant, **changes: Any) -> Variant:
    return replace(v, **changes)


def redeem(t: Target, c: AuditClient, code: str, verifier: str, redirect_uri: str) -> httpx.Response:
    """RFC 6749 §4.1.3 with RFC 7636 §4.5. The tokens are never used against any API."""
    token = t.endpoint("token_endpoint")
    if token is None:
        raise AuditAborted("the token endpoint is not on the issuer's origin")
    form, headers, _ = client_auth(t, c)
    form.update({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                 "code_verifier": verifier})
    return t.http.post_form(token, form, headers)


def revoke_tokens(t: Target, c: AuditClient, *responses: httpx.Response) -> None:
    """RFC 7009: the audit revokes the tokens it obtained (never used) when the server offers revocation on
    its origin; it leaves nothing usable behind."""
    endpoint = t.endpoint("revocation_endpoint")
    if endpoint is None:
        return
    for response in responses:
        if response.status_code != 200:
            continue
        body = response.json()
        for hint in ("refresh_token", "access_token"):
            token = body.get(hint) if isinstance(body, dict) else None
            if isinstance(token, str):
                form, headers, _ = client_auth(t, c)
                t.http.post_form(endpoint, {**form, "token": token, "token_type_hint": hint}, headers)
