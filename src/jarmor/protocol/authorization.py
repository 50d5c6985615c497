"""The authorization request, validated by an ordered list of small checks (one job each, spec cited).

The same checks serve the authorization endpoint and the PAR endpoint (RFC 9126 §2.1: a pushed request is
validated as the authorization endpoint would). One table at the bottom of this module (``STEPS``) lists every
step with the situations it runs in — an authorization request by value, one redeeming a PAR ``request_uri``,
a request pushed at PAR — so that what runs where is read in one place; the risk tier decides which controls
a check enforces. Steps write evidence for flow records; decisions read typed state only.

Error channel: until the ``redirect_uri`` is verified (``check_redirect_uri``) errors go to an error page;
after it, they are redirected in the requested response mode. Before verification a *provisional* target is
used only when the unverified ``redirect_uri`` exactly matches one the client registered (rule R of the
checklist) — so jarmor never redirects to an unregistered URI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..jose import JoseError, JwkSet, peek_claims
from . import errors
from .authorization_state import AuthorizationRequest as AuthorizationRequest
from .authorization_state import AuthorizationState as AuthorizationState
from .authorization_state import Situation as Situation
from .authorization_state import Step as Step
from .client_auth import check_authentication_for_tier
from .clients import MAX_REQUEST_URI_LENGTH, Client, registered_redirect
from .errors import RedirectTarget
from .interaction.assurance import check_authentication_assurance, check_authentication_request
from .policy import Control, PolicyError
from .redirect_uris import meets_https_redirect_rule
from .refetch import using_client_keys
from .request_object import (
    RequestObject,
    authorization_parameters,
    check_request_object_alg,
    check_request_object_claims,
    check_request_object_times,
    decode_request_object,
)
from .signing import check_assertion_signing, check_id_token_signing, check_jarm_signing
from .vocabulary import (
    JARM_MODES,
    PAR_URN_PREFIX,
    RESPONSE_MODES,
    is_jarm,
    resolve_response_mode,
)

_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_MAX_AGE_LIMIT = 10**9
_MAX_AGE = re.compile(r"[0-9]{1,9}")


# --- checks -------------------------------------------------------------------------------------------


async def load_client(st: AuthorizationState) -> None:
    """RFC 9101 §5 / RFC 6749 §4.1.1: ``client_id`` is required and must name a known, active client."""
    if st.client is not None:
        return
    client_id = st.outer.get("client_id")
    if not client_id:
        raise errors.InvalidRequest("client_id is required")
    client = await st.env.clients.get(client_id) if len(client_id) <= 256 else None
    if client is None:
        raise errors.InvalidRequest("unknown client_id")
    if client.disabled:
        raise errors.InvalidClient("this client has been disabled", status=400)
    st.client = client


def choose_provisional_target(st: AuthorizationState) -> None:
    """Rule R (RFC 6749 §4.1.2.1): redirect errors only to a URI registered for this client.

    Before the request object is verified, its unverified ``redirect_uri`` (or the outer one) may be used as
    the error destination only if it exactly matches a registered URI; otherwise errors stay on a page.
    """
    assert st.client is not None
    source: dict[str, Any] = st.outer
    if "request" in st.outer:
        try:
            source = peek_claims(st.outer["request"])
        except JoseError:
            source = {}
    uri = source.get("redirect_uri")
    uri = registered_redirect(st.client, uri if isinstance(uri, str) else None)
    if uri is None:
        return
    scope = source.get("scope")
    st.claimed_scope = scope if isinstance(scope, str) else None
    mode = source.get("response_mode")
    mode = mode if isinstance(mode, str) and mode in st.client.response_modes else _default_mode(st.client)
    state = source.get("state")
    st.target = RedirectTarget(uri, resolve_response_mode(mode), state if isinstance(state, str) else None,
                               st.client.client_id)


def _default_mode(client: Client) -> str:
    return "query" if "query" in client.response_modes else "jwt"


def check_request_and_request_uri_exclusive(st: AuthorizationState) -> None:
    """RFC 9101 §5: ``request`` and ``request_uri`` must not both be present."""
    if "request" in st.outer and "request_uri" in st.outer:
        raise errors.InvalidRequest("request and request_uri must not both be present")


def check_no_request_uri_at_par(st: AuthorizationState) -> None:
    """RFC 9126 §2.1: ``request_uri`` must not be provided to the PAR endpoint."""
    if "request_uri" in st.outer:
        raise errors.InvalidRequest("request_uri is not allowed at the pushed authorization request endpoint")


def pushed_request_key(client_id: str, ref: str) -> str:
    """Where a pushed request is stored: bound to the client that pushed it (RFC 9126 §2.2)."""
    return f"{client_id}\x00{ref}"


async def load_pushed_request(st: AuthorizationState) -> None:
    """RFC 9126 §4: resolve a PAR ``request_uri`` — one-time use, unexpired, bound to the pushing client.

    The entry is consumed atomically here, so a ``request_uri`` yields at most one authorization even under
    concurrent use (RFC 9101 §10.2(d)); it is consumed at this first use, stricter than FAPI 2.0 Note 3.
    Another client presenting it does not consume it (attack catalog A43: seeing a URN must not let anyone
    burn it). §7.4: the pushed redirect URI must still be registered. Failures go to an error page: no
    redirect URI is trusted yet.
    """
    assert st.client is not None
    uri = st.outer["request_uri"]
    st.target = None
    ref = uri[len(PAR_URN_PREFIX):]
    if not ref or len(ref) > 128:
        raise errors.InvalidRequestUri("unknown request_uri")
    # The entry is stored under the pushing client's id (``pushed_request_key``): another client's take
    # misses, so it can neither use nor burn the URN, and the right client consumes it in one statement.
    raw = await st.env.store.ephemeral.take("par", pushed_request_key(st.client.client_id, ref))
    if raw is None:
        raise errors.InvalidRequestUri(
            "request_uri is unknown, expired, already used, or was pushed by another client"
        )
    pushed = AuthorizationRequest.from_json(raw)
    if registered_redirect(st.client, pushed.redirect_uri) is None:
        raise errors.InvalidRequestUri("the pushed redirect_uri is no longer registered for this client")
    st.pushed = pushed
    st.flow_id = pushed.flow_id or st.flow_id
    _load_verified_request_object(st, pushed.evidence.get("request_object"))
    st.evidence.update(pushed.evidence)
    st.evidence["par"] = True
    st.params = {}
    st.redirect_uri = pushed.redirect_uri
    st.response_type = pushed.response_type
    st.response_mode = pushed.response_mode
    st.scopes = pushed.scope
    st.target = pushed.target()


def _load_verified_request_object(st: AuthorizationState, verified: object) -> None:
    """The request object PAR verified, as its stored record describes it, turned back into typed state once,
    here where the record is loaded (``RequestObject.evidence`` wrote it)."""
    if not isinstance(verified, dict) or not verified.get("signed"):
        return
    alg = verified.get("alg")
    st.request_signed = True
    st.request_alg = alg if isinstance(alg, str) else None
    if verified.get("encrypted"):
        st.request_encryption = (str(verified.get("enc_alg")), str(verified.get("enc")))


async def load_request_uri(st: AuthorizationState) -> None:
    """RFC 9101 §5.2 / §6.2: fetch a request object by reference, then verify it like one sent by value.

    Off unless ``request_uri_parameter_supported``; only a URL the client registered in ``request_uris``
    is fetched (A34: the server is never an open fetcher), with the adapter's limits (https, no private
    addresses, no redirects, size and time bounds). Failures go to an error page: nothing is verified yet.
    """
    assert st.client is not None
    uri = st.outer.get("request_uri")
    if uri is None:
        return
    st.target = None
    env = st.env
    if not env.settings.request_uri_parameter_supported or env.request_objects is None:
        raise errors.RequestUriNotSupported(
            "only request_uri values issued by the PAR endpoint are supported"
        )
    if len(uri) > MAX_REQUEST_URI_LENGTH:
        raise errors.InvalidRequestUri(f"request_uri is longer than {MAX_REQUEST_URI_LENGTH} characters")
    if uri not in st.client.request_uris:
        raise errors.InvalidRequestUri("request_uri is not registered for this client (request_uris)")
    st.fetched_request = await env.request_objects.fetch_request_object(st.client, uri)
    st.evidence["request_uri"] = uri


async def load_request_object(st: AuthorizationState) -> None:
    """RFC 9101 §6.1/§6.2: decrypt and verify the request object with the client's registered keys.

    §6.3: only the request object's parameters are used, even when the same parameter is also sent
    outside it; the outer ``client_id`` must equal the object's.
    """
    assert st.client is not None
    client = st.client
    token = st.fetched_request if st.fetched_request is not None else st.outer.get("request")
    if token is None:
        st.params = dict(st.outer)
        st.evidence["request_object"] = {"signed": False}
        return
    env = st.env
    if st.fetched_request is None and not env.settings.request_parameter_supported:
        raise errors.RequestNotSupported("the request parameter is not supported")
    def decode(ks: JwkSet) -> RequestObject:
        return decode_request_object(
            token,
            client,
            ks,
            server_decryption_keys=env.keys.decryption_keys(),
            signing_algs=env.keys.signing_algs(),
            require_typ=env.settings.require_request_object_typ,
        )

    ro = await using_client_keys(env, client, decode)  # a rotated key is worth one refetch (refetch.py)
    check_request_object_claims(ro, client_id=st.client.client_id, issuer=env.issuer)
    st.request_object = ro
    st.request_signed, st.request_alg, st.request_encryption = True, ro.alg, ro.encrypted
    st.params = authorization_parameters(ro)
    st.evidence["request_object"] = ro.evidence()


def check_redirect_uri(st: AuthorizationState) -> None:
    """RFC 6749 §3.1.2.3: exact match against a registered URI; on failure never redirect (§4.1.2.1)."""
    assert st.client is not None
    uri = st.params.get("redirect_uri")
    if uri is not None and not isinstance(uri, str):
        uri = None
    verified = registered_redirect(st.client, uri)
    if verified is None:
        st.target = None
        if uri is None:
            raise errors.InvalidRequest("redirect_uri is required")
        raise errors.InvalidRequest("redirect_uri does not match a registered redirect URI")
    st.redirect_uri = verified
    state = st.params.get("state")
    mode = st.params.get("response_mode")
    mode = mode if isinstance(mode, str) and mode in st.client.response_modes else _default_mode(st.client)
    st.target = RedirectTarget(verified, resolve_response_mode(mode), state if isinstance(state, str) else None,
                               st.client.client_id)


def check_response_type(st: AuthorizationState) -> None:
    """RFC 6749 §3.1.1; FAPI 2.0 §5.3.2.2-1: only ``code``."""
    rt = st.params.get("response_type")
    if rt is None:
        raise errors.InvalidRequest("response_type is required")
    if rt != "code":
        raise errors.UnsupportedResponseType("only response_type=code is supported")
    st.response_type = rt


def check_scope(st: AuthorizationState) -> None:
    """RFC 6749 §3.3: every scope must be known to the server and allowed for the client."""
    assert st.client is not None
    scope = st.params.get("scope")
    if scope is None:
        raise errors.InvalidRequest("scope is required")
    if len(scope) > st.env.settings.max_scope_length:
        raise errors.InvalidScope("scope is too long")
    scopes = tuple(dict.fromkeys(scope.split()))
    if not scopes:
        raise errors.InvalidRequest("scope is required")
    known = st.env.all_scopes()
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise errors.InvalidScope("the request names a scope this server does not know")
    if st.client.scopes is not None:
        denied = [s for s in scopes if s not in st.client.scopes]
        if denied:
            raise errors.InvalidScope(f"scope(s) not allowed for this client: {', '.join(denied)}")
    st.scopes = scopes


def resolve_effective_tier(st: AuthorizationState) -> None:
    """The strictest of the client's tier and the requested scopes' tiers decides the controls."""
    assert st.client is not None
    try:
        st.effective = st.env.policy.effective(st.client.risk_tier, st.scopes)
    except PolicyError as exc:  # the client's tier was removed from the policy: never a 500, never a downgrade
        raise errors.UnauthorizedClient("the client's risk tier is not defined by the current policy") from exc
    st.evidence["tier"] = st.effective.tier.name
    st.evidence["tier_reasons"] = st.effective.reasons()


def check_tier_available(st: AuthorizationState) -> None:
    """A tier whose controls this server cannot enforce is never silently downgraded."""
    missing = st.env.policy.missing_implementation(st.tier_required.tier)
    if missing:
        raise errors.InvalidScope(
            f"tier {st.tier_required.tier.name} requires {', '.join(sorted(missing))}, "
            "which this server does not implement"
        )


def check_redirect_uri_for_tier(st: AuthorizationState) -> None:
    """``https_redirect_uris`` per request: the redirect URI must satisfy the rule registration applies
    (``clients.check_redirect_uri_value``: https, or http on a loopback host per RFC 8252 §7.3; FAPI 1.0
    Baseline §5.2.2-20), because a scope can raise the tier above the one the URI was registered under. Never
    redirect to a URI the tier forbids: the error goes to the page (to JSON at PAR).
    """
    if not st.requires(Control.HTTPS_REDIRECT_URIS):
        return
    assert st.redirect_uri is not None
    if not meets_https_redirect_rule(st.redirect_uri):
        st.target = None
        raise errors.InvalidRequest(st.missing(
            Control.HTTPS_REDIRECT_URIS, "the redirect_uri must be https (or http on a loopback address)"
        ))
    st.evidence["https_redirect_uri"] = True


def check_response_mode(st: AuthorizationState) -> None:
    """JARM §2.3 / OAuth Response Modes: a supported mode the client registered (JARM's ``jwt`` by default
    when the tier requires JARM)."""
    assert st.client is not None
    requested = st.params.get("response_mode")
    if requested is None:
        requested = "jwt" if st.requires(Control.JARM) else _default_mode(st.client)
    if requested not in RESPONSE_MODES:
        raise errors.InvalidRequest("unsupported response_mode")
    if requested not in st.client.response_modes:
        raise errors.InvalidRequest(f"response_mode {requested} is not registered for this client")
    mode = resolve_response_mode(requested, str(st.response_type))
    st.response_mode = mode
    st.target = RedirectTarget(st.redirect_uri or "", mode, st.params.get("state"), st.client.client_id)


def check_response_mode_for_tier(st: AuthorizationState) -> None:
    """JARM §2.3, §3 under the effective tier: a JARM mode when it requires ``jarm``, and a registered
    response encryption when it requires ``encrypted_jarm`` (a pushed request is held to it again, JARM §2.4:
    the scopes' tier governs every hop)."""
    assert st.client is not None and st.response_mode is not None
    mode = st.response_mode
    if st.requires(Control.JARM) and not is_jarm(mode):
        raise errors.InvalidRequest(st.missing(Control.JARM, f"response_mode must be one of {', '.join(JARM_MODES)}"))
    if st.requires(Control.ENCRYPTED_JARM) and st.client.authorization_encryption is None:
        raise errors.UnauthorizedClient(
            st.missing(Control.ENCRYPTED_JARM, "the client has not registered authorization_encrypted_response_alg")
        )
    st.evidence["response_mode"] = mode


def check_response_signing_for_tier(st: AuthorizationState) -> None:
    """JARM §2.2, OIDC Core §2 and FAPI 2.0 §5.4.1 under the effective tier: the algorithms the client
    registered for its JARM responses and ID tokens must be ones the tier allows (``signing``). Refused here,
    before any response exists — never signed with an algorithm the client did not register.

    A JARM response the tier forbids cannot carry the error either, so that error goes to the page (JSON at
    PAR); an ID token algorithm the tier forbids is an ordinary redirected error.
    """
    assert st.client is not None and st.response_mode is not None
    tier = st.tier_required.tier
    if is_jarm(st.response_mode):
        try:
            check_jarm_signing(st.client, tier)
        except errors.OAuthError:
            st.target = None
            raise
        st.evidence["jarm_alg"] = st.client.authorization_signed_response_alg
    if "openid" in st.scopes:
        check_id_token_signing(st.client, tier)
        st.evidence["id_token_alg"] = st.client.id_token_signed_response_alg


def check_par_required(st: AuthorizationState) -> None:
    """RFC 9126 §4 / §6: requests must come through PAR when the tier or the client requires it."""
    assert st.client is not None
    if st.situation is not Situation.BY_VALUE:
        st.evidence["par"] = True
        return
    st.evidence["par"] = False
    if st.requires(Control.PAR):
        raise errors.InvalidRequest(st.missing(Control.PAR, "use the pushed authorization request endpoint"))
    if st.client.require_pushed_authorization_requests:
        raise errors.InvalidRequest("this client must use pushed authorization requests")


def check_signed_request_object_required(st: AuthorizationState) -> None:
    """RFC 9101 §10.5 / RFC 9126 §2.3: a signed request object is required by the tier or the client."""
    assert st.client is not None
    if st.request_signed:
        return
    if st.requires(Control.SIGNED_REQUEST_OBJECT):
        raise errors.InvalidRequest(st.missing(Control.SIGNED_REQUEST_OBJECT, "send a signed request object"))
    if st.client.require_signed_request_object:
        raise errors.InvalidRequest("this client must send a signed request object")


def check_request_object_policy(st: AuthorizationState) -> None:
    """FAPI 1.0 Adv. §5.2.2-13/-17, FAPI 2.0 §5.4.1: tier algorithm allowlist, exp/nbf/iat bounds."""
    ro = st.request_object
    if ro is None:
        return
    tier = st.tier_required.tier
    check_request_object_alg(ro, tier)
    check_request_object_times(
        ro,
        tier,
        now=st.now,
        future_skew=st.env.settings.future_skew,
        max_age=st.env.settings.request_object_max_age,
        require_nbf=tier.requires(Control.REQUEST_OBJECT_NBF),
    )


def check_pushed_request_object_alg(st: AuthorizationState) -> None:
    """FAPI 2.0 §5.4.1 at every hop: the algorithm of the request object PAR verified must still be one the
    effective tier allows when its ``request_uri`` is used."""
    alg = st.request_alg
    if alg is not None and not st.tier_required.tier.allows_alg(alg):
        raise errors.InvalidRequestObject(f"tier {st.tier_required.tier.name} does not allow {alg}")


def check_request_object_encryption(st: AuthorizationState) -> None:
    """RFC 9101 §4/§6.1: an encrypted request object is required by the tier, or by the client's own
    registration of ``request_object_encryption_alg`` (stricter than OIDC Registration's MAY: once a client
    says it encrypts, a plain signed object from it is refused), with exactly the registered alg/enc.
    """
    assert st.client is not None
    if not st.request_signed:
        return
    encrypted = st.request_encryption is not None
    registered = st.client.request_object_encryption
    if st.requires(Control.ENCRYPTED_REQUEST_OBJECT) and not encrypted:
        raise errors.InvalidRequestObject(
            st.missing(Control.ENCRYPTED_REQUEST_OBJECT, "encrypt the request object to the server's key")
        )
    if registered is None:
        return
    if not encrypted:
        raise errors.InvalidRequestObject(
            "this client registered request_object_encryption_alg: its request objects must be encrypted"
        )
    if st.request_encryption != registered:
        raise errors.InvalidRequestObject(
            f"request object must be encrypted with {registered[0]}/{registered[1]} as registered"
        )


def check_client_authentication_for_tier(st: AuthorizationState) -> None:
    """Client authentication under the effective tier (RFC 7523, FAPI 2.0 §5.3.2.1).

    The registration: ``private_key_jwt`` when the tier requires it, and a registered
    ``token_endpoint_auth_signing_alg`` the tier allows — else the code could never be redeemed
    (``unauthorized_client``). At PAR the client has authenticated before its scopes were known, under its
    own tier: that authentication (method, assertion algorithm, ``aud`` form) must satisfy the effective tier
    too (``client_auth.check_authentication_for_tier``, ``invalid_client``).
    """
    assert st.client is not None
    if st.requires(Control.PRIVATE_KEY_JWT) and st.client.token_endpoint_auth_method != "private_key_jwt":
        raise errors.UnauthorizedClient(
            st.missing(Control.PRIVATE_KEY_JWT, "this client is not registered for private_key_jwt")
        )
    check_assertion_signing(st.client, st.tier_required.tier)
    if st.authenticated is not None:
        check_authentication_for_tier(st.authenticated, st.tier_required.tier)


def check_pkce(st: AuthorizationState) -> None:
    """RFC 7636 §4.3/§4.4.1; FAPI 2.0 §5.3.2.2-5: a code_challenge with method S256 is always required."""
    challenge = st.params.get("code_challenge")
    method = st.params.get("code_challenge_method")
    if challenge is None:
        raise errors.InvalidRequest("code_challenge is required (PKCE)")
    if method is None:
        raise errors.InvalidRequest("code_challenge_method is required and must be S256")
    if method != "S256":
        raise errors.InvalidRequest("code_challenge_method must be S256")
    if not isinstance(challenge, str) or _PKCE_CHALLENGE.fullmatch(challenge) is None:
        raise errors.InvalidRequest("code_challenge must be 43 base64url characters (S256)")
    st.evidence["pkce"] = "S256"


def check_state_and_nonce(st: AuthorizationState) -> None:
    """FAPI 2.0 Note 4 / §5.3.2.2: long values are returned intact or refused, never truncated."""
    settings = st.env.settings
    state = st.params.get("state")
    if state is not None and len(state) > settings.max_state_length:
        raise errors.InvalidRequest("state is too long")
    nonce = st.params.get("nonce")
    if nonce is not None and len(nonce) > settings.max_nonce_length:
        raise errors.InvalidRequest("nonce is too long")
    prompt = st.params.get("prompt")
    if prompt is not None:
        values = prompt.split()
        if any(v not in ("none", "login", "consent", "select_account") for v in values):
            raise errors.InvalidRequest("unsupported prompt value")
        if "none" in values and len(values) > 1:
            raise errors.InvalidRequest("prompt=none cannot be combined with other values")


def check_max_age(st: AuthorizationState) -> None:
    """OIDC Core §3.1.2.1: ``max_age`` is a non-negative integer number of seconds — a JSON number in a
    request object (RFC 9101 §4), decimal digits in a query or form."""
    value = st.params.get("max_age")
    if value is None:
        return
    if isinstance(value, str):
        ok = _MAX_AGE.fullmatch(value) is not None
    else:
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        ok = ok and 0 <= value <= _MAX_AGE_LIMIT and value == int(value)  # NaN and inf fail the range
    if not ok:
        raise errors.InvalidRequest("max_age must be a non-negative integer number of seconds")


async def record_request_object_jti(st: AuthorizationState) -> None:
    """RFC 9101 §10.2 / attack catalog A31: a request object is accepted once (``jti`` replay mark).

    Runs last, so an invalid request leaves no replay mark behind.
    """
    ro = st.request_object
    if ro is None:
        return
    jti = ro.claims.get("jti")
    if jti is None:
        raise errors.InvalidRequestObject("request object jti is required (replay protection)")
    exp = int(ro.claims["exp"])
    ttl = max(exp - st.now, 0) + st.env.settings.future_skew + 1
    assert st.client is not None
    if not await st.env.store.ephemeral.add_once("ro-jti", f"{st.client.client_id}\x00{jti}", ttl):
        raise errors.InvalidRequestObject("request object has already been used (jti replay)")


# --- pipelines ----------------------------------------------------------------------------------------

V, U, P = Situation.BY_VALUE, Situation.PUSHED_URI, Situation.PAR

# One table: each step, and the situations it runs in (by value at the authorization endpoint, redeeming a
# PAR request_uri there, pushed at PAR). A pushed request was validated in full at PAR (RFC 9126 §2.1);
# redeeming it re-runs only what its effective tier governs at every hop.
STEPS: Sequence[tuple[Step, frozenset[Situation]]] = tuple((step, frozenset(where)) for step, where in (
    (load_client,                               (V, U)),
    (choose_provisional_target,                 (V, U)),
    (check_request_and_request_uri_exclusive,   (V, U)),
    (check_no_request_uri_at_par,               (P,)),
    (load_pushed_request,                       (U,)),
    (load_request_uri,                          (V,)),
    (load_request_object,                       (V, P)),
    (check_redirect_uri,                        (V, P)),
    (check_response_type,                       (V, P)),
    (check_scope,                               (V, P)),
    (resolve_effective_tier,                    (V, U, P)),
    (check_tier_available,                      (V, U, P)),
    (check_redirect_uri_for_tier,               (V, U, P)),
    (check_response_mode,                       (V, P)),
    (check_response_mode_for_tier,              (V, U, P)),
    (check_response_signing_for_tier,           (V, U, P)),
    (check_par_required,                        (V, U, P)),
    (check_signed_request_object_required,      (V, U, P)),
    (check_request_object_policy,               (V, P)),
    (check_pushed_request_object_alg,           (U,)),
    (check_request_object_encryption,           (V, U, P)),
    (check_client_authentication_for_tier,      (V, U, P)),
    (check_pkce,                                (V, P)),
    (check_state_and_nonce,                     (V, P)),
    (check_max_age,                             (V, P)),
    (check_authentication_request,              (V, P)),
    (check_authentication_assurance,            (V, U, P)),
    (record_request_object_jti,                 (V, P)),
))


def steps_for(*situations: Situation) -> tuple[Step, ...]:
    """The column(s) of ``STEPS``, in table order."""
    return tuple(step for step, where in STEPS if where & set(situations))


AUTHORIZATION_ENDPOINT: Sequence[Step] = steps_for(Situation.BY_VALUE, Situation.PUSHED_URI)
PAR_ENDPOINT: Sequence[Step] = steps_for(Situation.PAR)


async def run_checks(steps: Sequence[Step], st: AuthorizationState) -> AuthorizationRequest:
    """Run those of ``steps`` that ``STEPS`` lists for the request's situation, in order; an ``OAuthError``
    leaves carrying the error target known at that point."""
    column = set(steps_for(st.situation))
    for step in steps:
        if step not in column:
            continue
        try:
            outcome = step(st)
            if outcome is not None:
                await outcome
        except errors.OAuthError as exc:
            raise exc.with_target(st.target) from None
    return st.result()
