"""Test kit: a jarmor server in-process (ASGI) and a hand-built client with full control over every token.

Negative tests need to forge exactly the malformed request object or assertion they are about, so this kit
builds them with ``jarmor.jose`` directly rather than through the client library.

Who approves a flow: by default the server's loopback ``auto_approve`` setting, which signs nobody in and so
can only approve flows whose tier asks for no authentication assurance (``baseline``, ``elevated``). A kit
made with ``user="alice"`` instead runs the server without auto-approve, enrols that user (a password, a
device-bound passkey on a software authenticator and a TOTP app, through the account pages) and signs in for
real, through the sign-in and consent pages, whenever ``Kit.authorize`` meets the sign-in page: what a flow at
the built-in ``high`` (AAL2) and ``critical`` (AAL3) tiers needs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from html import unescape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import httpx

from jarmor.config import ServerConfig
from jarmor.jose import (
    JoseError,
    Jwk,
    JwkSet,
    generate_jwk,
    peek_claims,
    sign_jws,
    sign_jws_embedded_jwk,
    verify_jws,
)
from jarmor.protocol.context import ServerKeyring, Settings
from jarmor.protocol.policy import Control, Policy
from jarmor.protocol.registration import register
from jarmor.server.app import JarmorServer, build_routes, starlette_app
from jarmor.store.base import ServerKeyRecord, Store, TokenRecord
from jarmor.store.memory import MemoryStore

if TYPE_CHECKING:
    import pyotp

    from jarmor.cli.soft_authenticator import SoftAuthenticator

ISSUER = "http://127.0.0.1:8000"
REDIRECT = "http://127.0.0.1:9999/cb"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class TestClient:
    """A registered client plus the private key it signs with."""

    __test__ = False

    client_id: str
    key: Jwk
    alg: str
    metadata: dict[str, Any]
    secret: str | None = None
    issuer: str = ISSUER
    # the DPoP key the kit registered for this client because its tier requires sender-constrained tokens
    # and the test asked for no binding itself; the kit then proves it on /token (``dpop_hook``)
    dpop_key: Jwk | None = None

    def request_object(
        self,
        *,
        omit: tuple[str, ...] = (),
        header: Mapping[str, Any] | None = None,
        key: Jwk | None = None,
        alg: str | None = None,
        **claims: Any,
    ) -> tuple[str, dict[str, Any]]:
        """A valid signed request object; keyword arguments override claims; returns (jwt, context)."""
        now = int(time.time())
        verifier, challenge = pkce_pair()
        body: dict[str, Any] = {
            "iss": self.client_id,
            "aud": self.issuer,
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(16),
        }
        body.update(claims)
        for name in omit:
            body.pop(name, None)
        k = key or self.key
        token = sign_jws(body, k, alg or self.alg, typ="oauth-authz-req+jwt", extra_header=header)
        return token, {**body, "code_verifier": verifier}

    def assertion(
        self,
        *,
        omit: tuple[str, ...] = (),
        key: Jwk | None = None,
        alg: str | None = None,
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.issuer,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        }
        body.update(claims)
        for name in omit:
            body.pop(name, None)
        return sign_jws(body, key or self.key, alg or self.alg, extra_header=header)

    def auth_form(self, **claims: Any) -> dict[str, str]:
        if self.metadata.get("token_endpoint_auth_method") == "private_key_jwt":
            return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": self.assertion(**claims)}
        if self.metadata.get("token_endpoint_auth_method") == "client_secret_post":
            return {"client_id": self.client_id, "client_secret": self.secret or ""}
        return {"client_id": self.client_id}

    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


USER_PASSWORD = "correct horse battery staple"
# the order in which the kit's user picks among the sign-in methods a page offers: a passkey when the page
# offers one (one step, reaching AAL3), else the password and then the further factor the page asks for
PREFERENCE = ("passkey", "password", "totp")


@dataclass
class KitUser:
    """The user a kit signs in as (``make_kit(user=...)``): a password, a device-bound passkey on a software
    authenticator, and a TOTP app (``totp``), all enrolled through the account pages."""

    name: str
    password: str
    device: SoftAuthenticator
    totp: pyotp.TOTP
    last_step: int = 0  # the newest TOTP time step used (a code is accepted once: RFC 6238 §5.2)


@dataclass(frozen=True, slots=True)
class PageForm:
    action: str
    fields: dict[str, str]
    options: str | None = None  # a WebAuthn ceremony's options (``data-options``)

    @property
    def method(self) -> str | None:
        return self.fields.get("method")


def page_forms(html: str) -> list[PageForm]:
    """The forms of an interaction page: action, hidden fields and button values, WebAuthn options."""
    out = []
    for attrs, body in re.findall(r"<form\b([^>]*)>(.*?)</form>", html, re.S):
        action = re.search(r'action="([^"]*)"', attrs)
        options = re.search(r'data-options="([^"]*)"', attrs)
        fields = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]*)" value="([^"]*)"', body)}
        out.append(PageForm(unescape(action.group(1)) if action else "", fields,
                            unescape(options.group(1)) if options else None))
    return out


@dataclass
class Kit:
    server: JarmorServer
    store: MemoryStore
    http: httpx.AsyncClient
    config: ServerConfig
    clients: dict[str, TestClient] = field(default_factory=dict)
    user: KitUser | None = None
    # what each flow ``Kit.authorize`` signed in used: the methods, in order (one list per sign-in)
    sign_ins: list[list[str]] = field(default_factory=list)

    @property
    def env(self) -> Any:
        return self.server.env

    async def add_client(
        self, *, alg: str = "ES256", client_id: str | None = None, key: Jwk | None = None, **metadata: Any
    ) -> TestClient:
        key = key or generate_jwk(alg)
        meta: dict[str, Any] = {
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_dict()]},
            "authorization_signed_response_alg": "ES256",
            "id_token_signed_response_alg": "ES256",
            "grant_types": ["authorization_code", "refresh_token"],
        }
        meta.update(metadata)
        dpop_key = None
        if needs_binding(self.config.policy, meta):
            meta["dpop_bound_access_tokens"] = True
            dpop_key = generate_jwk("ES256")
        meta = {k: v for k, v in meta.items() if v is not None}
        body = await register(self.server.env, meta, client_id=client_id)
        tc = TestClient(body["client_id"], key, alg, body, secret=body.get("client_secret"), dpop_key=dpop_key)
        self.clients[tc.client_id] = tc
        return tc

    async def par(self, client: TestClient, form: Mapping[str, str], **assertion: Any) -> httpx.Response:
        return await self.http.post("/par", data={**client.auth_form(**assertion), **form})

    async def authorize(self, params: Mapping[str, str], *, methods: Sequence[str] = PREFERENCE) -> httpx.Response:
        """GET /authorize; with a kit user, the sign-in and consent pages are completed (``sign_in``)."""
        r = await self.http.get("/authorize", params=dict(params))
        if self.user is not None and _interaction_page(r):
            r = await self.sign_in(r, methods=methods)
        return r

    async def sign_in(self, r: httpx.Response, *, methods: Sequence[str] = PREFERENCE) -> httpx.Response:
        """Sign the kit's user in on the sign-in page ``r`` and allow on the consent page, as a person would:
        on each page the first of ``methods`` the page offers (``passkey`` stands for either passkey method);
        returns the response that leaves the interaction (the redirect or the form_post page). A page that
        offers none of ``methods`` is returned as it is."""
        assert self.user is not None, "make_kit(user=...) signs in"
        used: list[str] = []
        self.sign_ins.append(used)
        for _ in range(8):
            if r.status_code == 303 and "/interaction/" in r.headers["location"]:
                r = await self.http.get(r.headers["location"])
                continue
            if not _interaction_page(r):
                return r
            forms = page_forms(r.text)
            consent = [f for f in forms if f.action.endswith("/consent")]
            if consent:
                r = await self.http.post(consent[0].action, data={**consent[0].fields, "decision": "approve"})
                continue
            chosen = _choose(forms, methods)
            if chosen is None:
                return r
            used.append(str(chosen.method))
            r = await self.http.post(chosen.action, data={**chosen.fields, **self._credentials(chosen)})
        raise AssertionError(f"the interaction did not end: {r.status_code} {r.text[:300]}")

    def _credentials(self, form: PageForm) -> dict[str, str]:
        user = self.user
        assert user is not None
        if form.method == "password":
            return {"username": user.name, "password": user.password}
        if form.method == "totp":
            # the code of the first time step not used yet, within the server's one-step drift window
            step = max(int(self.env.now()) // 30 - 1, user.last_step + 1)
            user.last_step = step
            return {"code": user.totp.at(step * 30)}
        assert form.options is not None, form
        return {"credential": user.device.get(form.options)}

    async def token(self, client: TestClient, form: Mapping[str, str]) -> httpx.Response:
        return await self.http.post("/token", data={**client.auth_form(), **form})

    def jarm(self, client: TestClient, token: str) -> dict[str, Any]:
        keys = JwkSet.from_dict(self.server.keyring.public_jwks())
        return verify_jws(
            token, keys, algorithms=[client.metadata["authorization_signed_response_alg"]]
        ).claims

    async def full_flow(self, client: TestClient, **claims: Any) -> dict[str, Any]:
        """PAR + signed request object -> authorize (auto-approve, or the kit user signs in) -> response params
        -> token response."""
        ro, ctx = client.request_object(**claims)
        r = await self.par(client, {"request": ro, "client_id": client.client_id})
        assert r.status_code == 201, r.text
        r = await self.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
        params = response_params(r)
        if "response" in params:
            params = self.jarm(client, params["response"])
        assert "code" in params, params
        t = await self.token(
            client,
            {
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": ctx["redirect_uri"],
                "code_verifier": ctx["code_verifier"],
            },
        )
        return {"authorization": params, "token": t, "context": ctx}


def without_assurance(policy: Policy | None = None) -> Policy:
    """``policy`` (default: the built-in one) with no tier requiring ``authentication_assurance``: an
    explicit, named loosening for tests about something else (key rotation, ...) whose many flows are
    approved by the loopback auto-approve setting, which signs nobody in and so cannot meet a tier's
    assurance. Tests of the default product paths sign in for real instead (``make_kit(user=...)``)."""
    base = policy or Policy()
    tiers = {name: replace(t, controls=t.controls - {Control.AUTHENTICATION_ASSURANCE})
             for name, t in base.tiers.items()}
    return replace(base, tiers=tiers)


BINDING_FLAGS = ("dpop_bound_access_tokens", "tls_client_certificate_bound_access_tokens")


def needs_binding(policy: Policy, meta: Mapping[str, Any]) -> bool:
    """Whether the client's tier requires ``sender_constrained_tokens`` and the test left the binding to the
    kit (neither binding flag given, not even as None/False)."""
    if any(flag in meta for flag in BINDING_FLAGS):
        return False
    tier = policy.tiers.get(str(meta.get("risk_tier") or policy.default_client_tier))
    return tier is not None and tier.requires(Control.SENDER_CONSTRAINED_TOKENS)


def _client_of(request: httpx.Request, form: Mapping[str, str]) -> str | None:
    if "client_id" in form:
        return form["client_id"]
    if "client_assertion" in form:
        try:
            iss = peek_claims(form["client_assertion"]).get("iss")
        except JoseError:
            return None
        return iss if isinstance(iss, str) else None
    basic = request.headers.get("authorization", "")
    if basic.startswith("Basic "):
        with contextlib.suppress(ValueError):
            return unquote_plus(base64.b64decode(basic[6:]).decode().split(":", 1)[0])
    return None


def dpop_hook(kit: Kit) -> Any:
    """An httpx request hook: a POST to /token without a ``DPoP`` header, from a client the kit bound
    (``TestClient.dpop_key``), gets a valid proof with a current server nonce (RFC 9449 §4.2, §8), as a DPoP
    client would send it after its first ``use_dpop_nonce``. PAR is left alone: a proof there would bind the
    code to the kit's key (§10.1), and tests about proofs send their own headers."""
    from jarmor.protocol.sender import nonce_service

    async def attach(request: httpx.Request) -> None:
        if request.method != "POST" or request.url.path != "/token" or "dpop" in request.headers:
            return
        form = dict(parse_qsl(request.content.decode("utf-8", "replace")))
        client = kit.clients.get(_client_of(request, form) or "")
        if client is None or client.dpop_key is None:
            return
        now = int(kit.env.now())
        claims = {
            "jti": secrets.token_urlsafe(16),
            "htm": "POST",
            # the URI it is sent to (an mTLS alias too)
            "htu": f"{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}",
            "iat": now,
            "nonce": nonce_service(kit.env).issue(now),
        }
        request.headers["DPoP"] = sign_jws_embedded_jwk(claims, client.dpop_key, "ES256", typ="dpop+jwt")

    return attach


def _interaction_page(r: httpx.Response) -> bool:
    """A sign-in or consent page of an interaction (or the redirect to one)."""
    if r.status_code == 303:
        return "/interaction/" in r.headers.get("location", "")
    return r.status_code in (200, 401) and 'action="/interaction/' in r.text


def _choose(forms: list[PageForm], methods: Sequence[str]) -> PageForm | None:
    for wanted in methods:
        for form in forms:
            if form.method and (form.method == wanted or (wanted == "passkey" and form.method.startswith("passkey"))):
                return form
    return None


async def enrol_user(kit: Kit, name: str) -> KitUser:
    """Create ``name`` with a password and enrol, through the account pages (in a browser of its own), a
    device-bound passkey on a software authenticator and a TOTP app."""
    from jarmor.cli.soft_authenticator import SoftAuthenticator
    from jarmor.server.accounts import add_user
    from tests.server.account_support import enrol_passkey, enrol_totp, password_login

    await add_user(kit.store.users, name, USER_PASSWORD)
    device = SoftAuthenticator(origin=ISSUER)
    async with httpx.AsyncClient(transport=kit.http._transport, base_url=ISSUER) as browser:
        r = await password_login(browser, name, USER_PASSWORD)
        assert r.status_code == 303, r.text[:300]
        now = kit.env.now()
        totp = await enrol_totp(browser, now)
        r = await enrol_passkey(browser, device)
        assert r.status_code in (200, 303), r.text[:300]
    return KitUser(name, USER_PASSWORD, device, totp, last_step=int(now) // 30)


def response_params(r: httpx.Response) -> dict[str, str]:
    """Parameters delivered to the redirect URI by a 303 (query or fragment) or a form_post page."""
    if r.status_code in (302, 303):
        loc = r.headers["location"]
        parts = urlsplit(loc)
        return dict(parse_qsl(parts.fragment or parts.query))
    if r.status_code == 200 and "<form" in r.text:
        import re
        from html import unescape

        return {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]*)" value="([^"]*)"', r.text)}
    raise AssertionError(f"not an authorization response: {r.status_code} {r.text[:300]}")


async def make_kit(
    *,
    policy: Policy | None = None,
    settings: Settings | None = None,
    auto_approve: str | None = "alice",
    registration_token: str | None = "initial-token",
    clock: Clock | None = None,
    reuse_server_keys: bool = False,
    store: Store | None = None,
    user: str | None = None,
) -> Kit:
    """``user``: sign in as this user for real (enrolled with a password, a device-bound passkey and a TOTP
    app; the server runs without ``auto_approve``): ``Kit.authorize`` completes the sign-in and consent pages.

    ``clock``: share a controllable clock between the server and its store (default: wall clock).

    ``reuse_server_keys``: seed the store with server keys generated once per process (RSA generation costs
    about half a second per kit); the keys are still loaded and published the normal way.

    ``store``: run on this store (e.g. ``open_store("sqlite:///...")``) instead of a fresh ``MemoryStore``;
    helpers that read the in-memory store's internals (``ephemeral_keys``, ``all_tokens``) need the default.
    """
    if store is None:
        store = MemoryStore(clock) if clock is not None else MemoryStore()
    if reuse_server_keys:
        for rec in _SERVER_KEYS:
            await store.keys.add(replace(rec))
    s = settings or Settings()
    if user is not None:
        auto_approve = None  # auto-approve signs nobody in: the kit's user signs in through the pages
    if auto_approve:
        s = replace(s, auto_approve=auto_approve)
    config = ServerConfig(
        issuer=ISSUER,
        policy=policy or Policy(),
        settings=s,
        registration_token=registration_token,
        auto_approve=auto_approve,
    )
    server = JarmorServer(config, store)
    if reuse_server_keys and _SERVER_KEYS:
        # what ``start`` does, minus re-importing the RSA private keys (about 45 ms each)
        await server.start(keyring=_KEYRING[0])  # type: ignore[arg-type]
    else:
        await server.start()
    if reuse_server_keys and not _SERVER_KEYS:
        _SERVER_KEYS.extend(await store.keys.list())
        _KEYRING.append(server.env.keys)
    if clock is not None:
        server.env.clock = clock
    app = starlette_app(server, build_routes(server))  # what create_app serves, minus its middleware
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
    kit = Kit(server=server, store=store, http=http, config=config)
    http.event_hooks["request"].append(dpop_hook(kit))
    if user is not None:
        kit.user = await enrol_user(kit, user)
    return kit


# --- helpers added for the protocol/server test suites --------------------------------------------------

_SERVER_KEYS: list[ServerKeyRecord] = []
_KEYRING: list[ServerKeyring] = []


class Clock:
    """Wall-clock time plus an offset the test controls (``advance``), for lifetimes and expiry."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def ephemeral_keys(kit: Kit, namespace: str) -> list[str]:
    """Live keys in one namespace of the in-memory ephemeral store (PAR entries, codes, jti marks)."""
    data: dict[tuple[str, str], tuple[bytes, float]] = kit.store.ephemeral._data
    now = kit.store.ephemeral._clock()
    return [k for (ns, k), (_v, exp) in data.items() if ns == namespace and exp > now]


def all_tokens(kit: Kit) -> list[TokenRecord]:
    """Every access and refresh token record the server has stored."""
    return list(kit.store.tokens._data.values())
