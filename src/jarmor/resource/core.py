"""One call that decides whether a request to a protected resource may proceed.

``ResourceServer.authenticate(method=, url=, authorization=, dpop=, client_cert=...)`` returns the verified
``Principal`` or raises ``ResourceError`` carrying the exact error and ``WWW-Authenticate`` value. The
checks, in order (a failure stops the list):

1. ``check_credentials`` — one ``Authorization`` header, scheme ``Bearer`` (RFC 6750 §2.1) or ``DPoP``
   (RFC 9449 §7.1), compared case-insensitively, with a ``token68`` value; none → 401 with a challenge per
   accepted scheme and no error code (RFC 6750 §3.1); two headers or a malformed one → 400 ``invalid_request``.
2. ``check_proof`` — with the ``DPoP`` scheme, exactly one ``DPoP`` header holding a proof that passes the
   twelve checks of RFC 9449 §4.3 for this method and URL, including ``ath`` over the presented token
   (§7.1) and, when the resource issues nonces, a current ``nonce`` (§9: ``use_dpop_nonce`` plus a fresh
   ``DPoP-Nonce``) → else 401 ``invalid_dpop_proof``.
3. the token — introspection (RFC 7662) or a JWT access token (RFC 9068), whichever the resource configured
   (a token shaped like a JWT goes to the JWT verifier when both are) → else 401 ``invalid_token``.
4. ``check_binding`` — ``cnf.jkt`` must equal the proof key's thumbprint, and a DPoP-bound token presented
   with the ``Bearer`` scheme is refused (RFC 9449 §7.1, §7.2); the ``DPoP`` scheme with an unbound token
   is refused; ``cnf["x5t#S256"]`` must equal the thumbprint of the TLS client certificate (RFC 8705 §3);
   a resource that requires sender-constrained tokens refuses unbound ones → else 401 ``invalid_token``.
5. ``jti`` replay — the proof is marked used in the replay store (§11.1), atomically → a repeat is 401
   ``invalid_dpop_proof``. Marked only once everything above passed, so a refused request burns nothing.
6. ``check_requirement`` — the route's scopes (RFC 6750 §3.1: 403 ``insufficient_scope`` with ``scope``)
   and its authentication assurance (RFC 9470 §3: 401 ``insufficient_user_authentication`` with
   ``acr_values`` and/or ``max_age``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..protocol.dpop import DPoPError, DPoPProof, NonceService, single_header, verify_proof
from .errors import (
    INSUFFICIENT_SCOPE,
    INSUFFICIENT_USER_AUTHENTICATION,
    INVALID_DPOP_PROOF,
    INVALID_REQUEST,
    INVALID_TOKEN,
    USE_DPOP_NONCE,
    ResourceError,
    Scheme,
    refuse,
)
from .introspection import TokenRejected
from .jwt import looks_like_jwt
from .principal import Principal, Requirement, TokenClaims
from .replay import NAMESPACE, MemoryReplayStore, ReplayStore, replay_key

__all__ = ["ResourceServer", "TokenVerifier", "assurance_problem", "certificate_thumbprint", "step_up_error"]

DEFAULT_DPOP_ALGS = ("ES256", "PS256", "EdDSA", "Ed25519")
# RFC 7235 §2.1 token68
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9!#$%&'*+\-.^_`|~]*) +(\S+)")

HeaderValues = str | Sequence[str] | None


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> TokenClaims: ...


def certificate_thumbprint(cert: bytes | str) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: base64url (unpadded) SHA-256 of the DER certificate (``cert``: DER
    bytes or a PEM string/bytes)."""
    if isinstance(cert, str) or cert.lstrip().startswith(b"-----BEGIN"):
        pem = cert.encode("ascii") if isinstance(cert, str) else cert
        der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    else:
        der = x509.load_der_x509_certificate(cert).public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def _values(headers: HeaderValues) -> list[str]:
    if headers is None:
        return []
    return [headers] if isinstance(headers, str) else list(headers)


@dataclass(frozen=True, slots=True)
class _Presented:
    scheme: Scheme
    token: str


@dataclass
class ResourceServer:
    """A protected resource's view of access tokens. ``verifier`` / ``jwt_verifier``: at least one of an
    ``IntrospectionVerifier`` and a ``JwtAccessTokenVerifier``. ``replay_store``: shared across nodes when
    the API runs on several (``RedisReplayStore``). ``nonces``: a ``NonceService`` to require
    resource-issued DPoP nonces (RFC 9449 §9). ``require_sender_constrained``: refuse unbound tokens (FAPI 2.0
    §5.3.4: resource servers "shall support and verify sender-constrained access tokens")."""

    verifier: TokenVerifier | None = None
    jwt_verifier: TokenVerifier | None = None
    realm: str | None = None
    dpop_algs: Sequence[str] = DEFAULT_DPOP_ALGS
    replay_store: ReplayStore = field(default_factory=MemoryReplayStore)
    nonces: NonceService | None = None
    proof_max_age: int = 300
    proof_future_skew: int = 5
    require_sender_constrained: bool = False
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.verifier is None and self.jwt_verifier is None:
            raise ValueError("ResourceServer needs an introspection verifier, a JWT verifier, or both")
        if isinstance(self.dpop_algs, str) or not self.dpop_algs:
            raise ValueError("dpop_algs must be a non-empty sequence of algorithm names")

    def _refuse(self, error: str | None, description: str, scheme: Scheme | None, **kw: object) -> ResourceError:
        return refuse(error, description, scheme=scheme, realm=self.realm, dpop_algs=self.dpop_algs,
                      offer_bearer=not self.require_sender_constrained, **kw)  # type: ignore[arg-type]

    async def authenticate(
        self,
        *,
        method: str,
        url: str,
        authorization: HeaderValues,
        dpop: HeaderValues = None,
        client_cert: bytes | str | None = None,
        client_cert_thumbprint: str | None = None,
        requirement: Requirement | None = None,
    ) -> Principal:
        """Steps 1-6 of the module docstring. ``url``: the resource's external URL for this request (its
        configured base URL plus the path; never built from the ``Host`` header), query allowed."""
        presented = self.check_credentials(authorization)
        proof = self.check_proof(presented, dpop, method=method, url=url)
        token = await self._verify_token(presented)
        if client_cert_thumbprint is None and client_cert is not None:
            client_cert_thumbprint = certificate_thumbprint(client_cert)
        self.check_binding(presented, token, proof, client_cert_thumbprint)
        if proof is not None:
            ttl = self.proof_max_age + self.proof_future_skew + 1
            if not await self.replay_store.add_once(NAMESPACE, replay_key(proof.jkt, proof.jti), ttl):
                raise self._refuse(INVALID_DPOP_PROOF, "the DPoP proof has already been used", "DPoP")
        principal = Principal.from_token(token)
        if requirement is not None:
            self.check_requirement(principal, requirement)
        return principal

    def check_credentials(self, authorization: HeaderValues) -> _Presented:
        values = _values(authorization)
        if len(values) > 1:
            raise self._refuse(INVALID_REQUEST, "more than one Authorization header", None)
        match = _CREDENTIALS.fullmatch(values[0].strip()) if values else None
        scheme = match.group(1).lower() if match else None
        if match is None or scheme not in ("bearer", "dpop"):
            if values and values[0].strip().lower().split(" ")[0] in ("bearer", "dpop"):
                raise self._refuse(INVALID_REQUEST, "the Authorization header is malformed", None)
            raise self._refuse(None, "no access token", None)  # RFC 6750 §3.1: no error code
        presented = _Presented("DPoP" if scheme == "dpop" else "Bearer", match.group(2))
        if _TOKEN68.fullmatch(presented.token) is None:
            raise self._refuse(INVALID_REQUEST, "the access token is not a token68 value", presented.scheme)
        return presented

    def check_proof(self, presented: _Presented, dpop: HeaderValues, *, method: str, url: str) -> DPoPProof | None:
        """RFC 9449 §7.1: the proof, its ``ath`` and (§9) the resource's nonce. Only for the DPoP scheme."""
        if presented.scheme != "DPoP":
            return None
        now = int(self.clock())
        try:
            header = single_header(_values(dpop))
            if header is None:
                raise DPoPError("a DPoP proof is required with the DPoP scheme")
            return verify_proof(
                header, method=method, url=url, now=now, allowed_algs=self.dpop_algs,
                access_token=presented.token, nonce_ok=self.nonces.checker(now) if self.nonces else None,
                max_age=self.proof_max_age, future_skew=self.proof_future_skew,
            )
        except DPoPError as exc:
            if exc.error == USE_DPOP_NONCE and self.nonces is not None:
                raise self._refuse(USE_DPOP_NONCE, "the resource server requires a fresh DPoP nonce", "DPoP",
                                   nonce=self.nonces.issue(now)) from exc
            raise self._refuse(INVALID_DPOP_PROOF, str(exc.description), "DPoP") from exc

    async def _verify_token(self, presented: _Presented) -> TokenClaims:
        verifier = self.verifier
        if self.jwt_verifier is not None and (verifier is None or looks_like_jwt(presented.token)):
            verifier = self.jwt_verifier
        assert verifier is not None
        try:
            return await verifier.verify(presented.token)
        except TokenRejected as exc:
            raise self._refuse(INVALID_TOKEN, str(exc), presented.scheme) from exc

    def check_binding(
        self, presented: _Presented, token: TokenClaims, proof: DPoPProof | None, cert_thumbprint: str | None
    ) -> None:
        """RFC 9449 §7.1/§7.2 (``cnf.jkt``) and RFC 8705 §3 (``cnf["x5t#S256"]``)."""
        cnf = token.cnf or {}
        jkt, x5t = cnf.get("jkt"), cnf.get("x5t#S256")
        scheme = presented.scheme
        if jkt is not None or (token.token_type is not None and token.token_type.lower() == "dpop"):
            if scheme != "DPoP":
                raise self._refuse(INVALID_TOKEN, "a DPoP-bound access token must be presented with a DPoP proof",
                                   scheme)
            if not isinstance(jkt, str) or proof is None or not hmac.compare_digest(jkt, proof.jkt):
                raise self._refuse(INVALID_TOKEN, "the DPoP proof key is not the key the access token is bound to",
                                   scheme)
        elif scheme == "DPoP":
            raise self._refuse(INVALID_TOKEN, "the access token is not bound to a DPoP key", scheme)
        if x5t is not None:
            if not isinstance(x5t, str) or cert_thumbprint is None or not hmac.compare_digest(x5t, cert_thumbprint):
                raise self._refuse(INVALID_TOKEN, "the access token is bound to another TLS client certificate",
                                   scheme)
        elif jkt is None and self.require_sender_constrained:
            raise self._refuse(INVALID_TOKEN, "this resource accepts sender-constrained access tokens only", scheme)

    def check_requirement(self, principal: Principal, requirement: Requirement) -> None:
        """RFC 6750 §3.1 ``insufficient_scope``; RFC 9470 §3 ``insufficient_user_authentication``."""
        scheme: Scheme = "DPoP" if principal.binding is not None and principal.binding.method == "dpop" else "Bearer"
        missing = [s for s in requirement.scopes if s not in principal.scopes]
        if missing:
            raise self._refuse(INSUFFICIENT_SCOPE, "the access token lacks a scope this resource requires",
                               scheme, scope=tuple(requirement.scopes))
        problem = assurance_problem(principal, requirement, int(self.clock()))
        if problem is not None:
            raise self._refuse(INSUFFICIENT_USER_AUTHENTICATION, problem, scheme,
                               acr_values=tuple(requirement.acr_values), max_age=requirement.max_age)


def assurance_problem(principal: Principal, requirement: Requirement, now: int) -> str | None:
    """RFC 9470 §3: why the token's authentication event falls short of ``requirement`` (None when it does
    not): an ``acr`` outside ``acr_values``, or an ``auth_time`` missing or older than ``max_age``."""
    if requirement.acr_values and principal.acr not in requirement.acr_values:
        return "a stronger authentication is required (acr)"
    if requirement.max_age is not None and (
        principal.auth_time is None or now - principal.auth_time > requirement.max_age
    ):
        return "a more recent authentication is required (max_age)"
    return None


def step_up_error(
    acr_values: Sequence[str] = (),
    max_age: int | None = None,
    *,
    scheme: Scheme = "Bearer",
    realm: str | None = None,
    dpop_algs: Sequence[str] = DEFAULT_DPOP_ALGS,
    description: str = "a stronger or more recent authentication is required",
) -> ResourceError:
    """The RFC 9470 §3 challenge on its own, for code that judges assurance itself: 401
    ``insufficient_user_authentication`` with ``acr_values`` and/or ``max_age``."""
    return refuse(INSUFFICIENT_USER_AUTHENTICATION, description, scheme=scheme, realm=realm,
                  dpop_algs=dpop_algs, offer_bearer=True, acr_values=tuple(acr_values), max_age=max_age)
