"""DPoP for the client (RFC 9449): the proof key, proofs, the servers' nonces, and what a response asks for.

Sans-I/O like the rest of the core: ``DPoP`` builds proof JWTs (with ``jarmor.jose``) and remembers the
latest ``DPoP-Nonce`` of each origin; ``as_nonce_challenge`` and ``rs_nonce_challenge`` judge a response
the driver received. The library never retries more than once on a nonce challenge (C31).
``step_up_challenge`` turns a resource server's RFC 9470 challenge into ``StepUpRequired``.

``challenges`` reads ``WWW-Authenticate`` values. It is our own code because neither httpx nor Starlette
parses authentication challenges (RFC 9110 §11.6.1); it only needs the scheme and its auth-params
(``error``, and RFC 9470's ``acr_values``/``max_age``); anything it cannot read is treated as "no
challenge" (the response then goes to the caller).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from jarmor.jose import (
    SIGNING_ALGS,
    JoseError,
    Jwk,
    b64url_encode,
    generate_jwk,
    import_jwk,
    import_pem,
    loads_object,
    sign_jws_embedded_jwk,
)

from .errors import ConfigurationError, ServerResponseError, StepUpRequired
from .exchange import HttpResponse
from .pkce import new_jti

DPOP_TYP: Final = "dpop+jwt"  # RFC 9449 §4.2
USE_DPOP_NONCE: Final = "use_dpop_nonce"  # RFC 9449 §8, §9
INSUFFICIENT_USER_AUTHENTICATION: Final = "insufficient_user_authentication"  # RFC 9470 §3
DEFAULT_DPOP_ALG: Final = "ES256"
# Asymmetric algorithms only (RFC 9449 §11.6); RS256 is left out as FAPI 2.0 forbids it.
DPOP_ALGS: Final = frozenset(SIGNING_ALGS) - {"RS256"}
_NONCE: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,1024}")  # RFC 9449 §8.1: nonce = 1*NQCHAR
_TOKEN: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 9110 §5.6.2
_AUTH_PARAM: Final = re.compile(rf"[\s,]*({_TOKEN})\s*=\s*(\"(?:[^\"\\]|\\.)*\"|{_TOKEN})")
_AUTH_SCHEME: Final = re.compile(rf"[\s,]*({_TOKEN})(?:[ \t]+(?!{_TOKEN}\s*=)[A-Za-z0-9._~+/-]+=*)?(?=[\s,]|$)")
MAX_ORIGINS: Final = 256


def load_dpop_key(value: object, alg: str | None) -> Jwk:
    """A private DPoP key given as a ``Jwk``, a private JWK (a JSON object) or a PEM private key."""
    try:
        if isinstance(value, Jwk):
            key = value
        elif isinstance(value, Mapping):
            key = import_jwk(value, allow_private=True)
        elif isinstance(value, str | bytes):
            key = import_pem(value, alg=alg or DEFAULT_DPOP_ALG)
        else:
            raise ConfigurationError("dpop_key must be a Jwk, a private JWK object or a PEM private key")
    except JoseError as exc:
        raise ConfigurationError(f"dpop_key is not a usable private key ({exc.reason})") from exc
    if not key.is_private:
        raise ConfigurationError("dpop_key must be a private key")
    return key


def dpop_alg(key: Jwk | None, alg: str | None) -> str:
    """The proof algorithm: the configured one, else the key's own ``alg``, else ES256."""
    chosen = alg or (key.alg if key is not None and key.alg in DPOP_ALGS else None) or DEFAULT_DPOP_ALG
    if chosen not in DPOP_ALGS:
        raise ConfigurationError(f"dpop_signing_alg {chosen!r} is not allowed (RFC 9449 §11.6)")
    if key is not None and not key.fits_signing_alg(chosen):
        raise ConfigurationError(f"dpop_key cannot sign with {chosen}")
    return chosen


def htu(url: str) -> str:
    """RFC 9449 §4.2: the target URI without query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def origin(url: str) -> str:
    """Nonces are kept per server (RFC 9449 §8, §9): scheme, host and port, lower-cased."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url(SHA-256(ASCII(access token)))."""
    return b64url_encode(hashlib.sha256(access_token.encode("ascii")).digest())


class DPoP:
    """One client's proof key and the latest nonce of each server origin.

    ``key`` is created on first use when none is given (``generate_jwk(alg)``) and kept for the life of the
    client: a public client's refresh token is bound to it (RFC 9449 §5). Give ``dpop_key`` in the
    configuration to keep the binding across restarts.
    """

    def __init__(self, key: Jwk | None, alg: str | None) -> None:
        self.alg = dpop_alg(key, alg)
        given = key if key is not None else generate_jwk(self.alg)
        self.key = given
        self.jkt = given.thumbprint()
        self._nonces: OrderedDict[str, str] = OrderedDict()

    def nonce_for(self, url: str) -> str | None:
        return self._nonces.get(origin(url))

    def proof(self, method: str, url: str, *, now: int, access_token: str | None = None) -> str:
        """A new proof for one HTTP request (a fresh ``jti`` each time, retries included: §7.3)."""
        claims: dict[str, Any] = {"jti": new_jti(), "htm": method.upper(), "htu": htu(url), "iat": now}
        nonce = self.nonce_for(url)
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        try:
            return sign_jws_embedded_jwk(claims, self.key, self.alg, typ=DPOP_TYP)
        except JoseError as exc:  # pragma: no cover - the key and alg were checked at construction
            raise ConfigurationError(f"cannot sign a DPoP proof ({exc.reason})") from exc

    def remember(self, url: str, nonces: Iterable[str]) -> bool:
        """Keep the nonce a response carried (any status, 200 included: §8.2). Exactly one well-formed
        ``DPoP-Nonce`` header counts; returns whether it changed the nonce held for that origin."""
        values = list(nonces)
        if len(values) != 1 or not _NONCE.fullmatch(values[0]):
            return False
        key = origin(url)
        changed = self._nonces.get(key) != values[0]
        self._nonces[key] = values[0]
        self._nonces.move_to_end(key)
        while len(self._nonces) > MAX_ORIGINS:
            self._nonces.popitem(last=False)
        return changed


def response_nonces(response: HttpResponse) -> list[str]:
    value = response.headers.get("dpop-nonce")
    return [value] if value is not None else []


def as_nonce_challenge(response: HttpResponse) -> bool:
    """RFC 9449 §8: the authorization server answered 400 ``use_dpop_nonce`` with a ``DPoP-Nonce``."""
    if response.status != 400 or "dpop-nonce" not in response.headers:
        return False
    try:
        body = loads_object(response.body)
    except JoseError:
        return False
    return body.get("error") == USE_DPOP_NONCE


def challenges(values: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """The challenges of ``WWW-Authenticate`` header values: ``(scheme lower-cased, {param: value})``."""
    found: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pos = 0
        while pos < len(value):
            param = _AUTH_PARAM.match(value, pos)
            if param is not None and found:
                raw = param[2]
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                found[-1][1].setdefault(param[1].lower(), raw)
                pos = param.end()
                continue
            scheme = _AUTH_SCHEME.match(value, pos)
            if scheme is None or scheme.end() == pos:
                break
            found.append((scheme[1].lower(), {}))
            pos = scheme.end()
    return found


def rs_nonce_challenge(status: int, www_authenticate: Iterable[str], nonces: Iterable[str]) -> bool:
    """RFC 9449 §9: 401 with ``WWW-Authenticate: DPoP error="use_dpop_nonce"`` and one ``DPoP-Nonce``
    (the scheme compared case-insensitively)."""
    if status != 401 or len(list(nonces)) != 1:
        return False
    return any(s == "dpop" and p.get("error") == USE_DPOP_NONCE for s, p in challenges(www_authenticate))


_ACR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,255}")  # one acr value: a space-free NQCHAR run
_MAX_AGE = re.compile(r"[0-9]{1,10}")
MAX_ACR_VALUES = 16


def step_up_challenge(status: int, www_authenticate: Iterable[str]) -> StepUpRequired | None:
    """RFC 9470 §3: a 401 whose challenge (any scheme) carries ``error="insufficient_user_authentication"``
    becomes ``StepUpRequired`` with its ``acr_values`` (space-separated) and ``max_age`` (a number).
    Malformed auth-params are a ``ServerResponseError``: nothing usable to ask the server for."""
    if status != 401:
        return None
    for _scheme, params in challenges(www_authenticate):
        if params.get("error") != INSUFFICIENT_USER_AUTHENTICATION:
            continue
        acr = tuple(params.get("acr_values", "").split(" ")) if params.get("acr_values") else ()
        max_age = params.get("max_age")
        if len(acr) > MAX_ACR_VALUES or not all(_ACR.fullmatch(v) for v in acr) or (
            max_age is not None and not _MAX_AGE.fullmatch(max_age)
        ):
            raise ServerResponseError(
                "the resource server's step-up challenge has malformed acr_values or max_age (RFC 9470 §3)",
                reason="invalid_challenge",
                status=401,
                error=INSUFFICIENT_USER_AUTHENTICATION,
            )
        return StepUpRequired(
            acr_values=acr,
            max_age=int(max_age) if max_age is not None else None,
            description=params.get("error_description"),
        )
    return None
