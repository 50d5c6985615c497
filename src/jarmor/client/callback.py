"""Reading an authorization response off the redirect, and the checks that need no keys.

Order for JARM follows JARM §2.4: take only ``response`` (C1), decrypt if it is a JWE (C2), then the
issuer (C3), audience (C4) and times (C5) — all before any key is fetched — then the signature (C6, in
``core``), then ``state`` (C7) and finally the content (C9).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from jarmor.jose import AlgorithmNotAllowed, JoseError, JwkSet, decrypt_jwe, peek_claims, peek_header

from .config import JARM_MODES, MODE_CHANNEL, ClientConfig
from .errors import AuthorizationResponseError, ClientError, JarmValidationError
from .models import FlowState
from .validation import same

MAX_CALLBACK_LENGTH = 64 * 1024
MAX_CALLBACK_FIELDS = 64

# Response parameters that must only travel inside the JWT when JARM was requested (C1).
OUTER_RESPONSE_PARAMS = (
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
    "id_token",
    "access_token",
    "token_type",
)

Channel = Literal["query", "fragment", "form", "unknown"]
_URL_START = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|/)")


@dataclass(frozen=True, slots=True)
class CallbackParams:
    """The response parameters and, when known, where they arrived (query, fragment or a form body)."""

    params: Mapping[str, str]
    channel: Channel


def _parse_qs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_CALLBACK_FIELDS, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthorizationResponseError("callback parameters are malformed", reason="malformed") from exc


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise AuthorizationResponseError(f"parameter {name!r} given twice", reason="duplicate_parameter")
        params[name] = value
    return params


def parse_callback(data: Mapping[str, str] | str) -> CallbackParams:
    """Accept a redirect URL (query or fragment), a bare ``#fragment``/``?query``, an urlencoded form body
    or an already-parsed mapping. Oversized input is refused before any parsing (attack catalog A85)."""
    if isinstance(data, str):
        if len(data) > MAX_CALLBACK_LENGTH:
            raise AuthorizationResponseError("callback is too large", reason="too_large")
        if data.startswith("#"):
            return CallbackParams(_unique(_parse_qs(data[1:])), "fragment")
        if data.startswith("?"):
            return CallbackParams(_unique(_parse_qs(data[1:])), "query")
        if not _URL_START.match(data):
            return CallbackParams(_unique(_parse_qs(data)), "unknown")
        try:
            parts = urlsplit(data)
        except ValueError as exc:
            raise AuthorizationResponseError("callback URL is malformed", reason="malformed") from exc
        query = _parse_qs(parts.query)
        fragment = _parse_qs(parts.fragment)
        params = _unique(query + fragment)
        carriers = ("response", "code", "error")
        channel: Channel = "unknown"
        if any(name in carriers for name, _ in fragment):
            channel = "fragment"
        elif any(name in carriers for name, _ in query):
            channel = "query"
        return CallbackParams(params, channel)
    if not isinstance(data, Mapping):
        raise AuthorizationResponseError("callback must be a mapping or a string", reason="malformed")
    if len(data) > MAX_CALLBACK_FIELDS:
        raise AuthorizationResponseError("too many callback parameters", reason="too_large")
    total = 0
    for name, value in data.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise AuthorizationResponseError("callback parameters must be strings", reason="malformed")
        total += len(name) + len(value)
    if total > MAX_CALLBACK_LENGTH:
        raise AuthorizationResponseError("callback is too large", reason="too_large")
    return CallbackParams(dict(data), "unknown")


def jarm_response_token(cb: CallbackParams, expected_issuer: str) -> str:
    """C1: only ``response`` is read; a JARM callback carrying response parameters outside the JWT is
    refused. An outer ``iss`` that differs from the expected issuer is reported as the issuer mix-up it is
    (RFC 9207 §4, C8)."""
    token = cb.params["response"]
    if not token:
        raise JarmValidationError("response parameter is empty", reason="malformed")
    outer_iss = cb.params.get("iss")
    if outer_iss is not None and outer_iss != expected_issuer:
        raise JarmValidationError("outer iss differs from the expected issuer", reason="iss_mismatch")
    outer = [name for name in OUTER_RESPONSE_PARAMS if name in cb.params]
    if outer:
        raise JarmValidationError(
            f"parameters {outer} arrived outside the JARM response", reason="unexpected_parameter"
        )
    return token


def segments(token: str) -> int:
    count = token.count(".") + 1
    if count not in (3, 5):
        raise JarmValidationError("response is neither a JWS nor a JWE", reason="malformed")
    return count


def decrypt_jarm(token: str, config: ClientConfig) -> str:
    """C2 / JARM §2.4 step 1: decrypt with the client's ``use=enc`` key named by ``kid``; ``alg``/``enc``
    must equal the registered values; the plaintext must be a JWS (JARM §2.2: signed, or signed and
    encrypted — never encrypted only). A registered client refuses unencrypted responses (C2 policy)."""
    alg = config.authorization_encrypted_response_alg
    if segments(token) == 3:
        if alg is not None:
            raise JarmValidationError("response is not encrypted as registered", reason="not_encrypted")
        return token
    if alg is None or config.decryption_keys is None:
        raise JarmValidationError(
            "encrypted response, but no encryption is registered", reason="unexpected_jwe"
        )
    keys: JwkSet = config.decryption_keys
    try:
        plaintext = decrypt_jwe(
            token, keys, algorithms=[alg], encryptions=[config.effective_authorization_encrypted_response_enc]
        ).plaintext
    except AlgorithmNotAllowed as exc:
        raise JarmValidationError("JWE alg/enc is not the registered one", reason="alg_mismatch") from exc
    except JoseError as exc:
        raise JarmValidationError(f"decryption failed ({exc.reason})", reason="decryption_failed") from exc
    try:
        inner = plaintext.decode("ascii")
    except UnicodeDecodeError as exc:
        raise JarmValidationError("decrypted response is not a JWS", reason="not_signed") from exc
    if inner.count(".") != 2:
        raise JarmValidationError("decrypted response is not a JWS", reason="not_signed")
    return inner


def peek_jws(token: str, error: type[ClientError]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWS, strictly parsed and NOT yet verified (used only to reject early)."""
    try:
        return peek_header(token), peek_claims(token)
    except JoseError as exc:
        raise error(f"token is malformed ({exc.reason})", reason="malformed") from exc


def check_flow_binding(
    flow: FlowState, config: ClientConfig, cb: CallbackParams, error: type[ClientError]
) -> None:
    """The stored flow must belong to this client and this issuer (C12), and the response must arrive in
    the mode that was requested (JARM §2.3; no downgrade from JARM to plain parameters, A71)."""
    if flow.issuer != config.issuer or flow.client_id != config.client_id:
        raise error("the stored flow belongs to another issuer or client", reason="flow_mismatch")
    jarm = "response" in cb.params
    if jarm != (flow.response_mode in JARM_MODES):
        raise error(
            f"response does not use the requested response_mode {flow.response_mode}",
            reason="response_mode_mismatch",
        )
    if cb.channel in ("query", "fragment") and cb.channel != MODE_CHANNEL[flow.response_mode]:
        raise error(
            f"response arrived in the {cb.channel}, not as {flow.response_mode} requires",
            reason="response_mode_mismatch",
        )


def check_state(value: object, flow: FlowState, error: type[ClientError]) -> None:
    """C7 / JARM §2.4 step 2: the (verified) ``state`` must equal the stored one, exactly."""
    if value is None:
        raise error("state is missing", reason="state_missing")
    if not isinstance(value, str) or not same(value, flow.state):
        raise error("state does not match the stored flow", reason="state_mismatch")


def check_code(value: object, error: type[ClientError]) -> str:
    if value is None:
        raise error("authorization code is missing", reason="code_missing")
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise error("authorization code is malformed", reason="code_invalid")
    return value


def check_jarm_payload(claims: Mapping[str, Any]) -> None:
    """JARM §2.2/§2.3: a nested ``response`` inside the payload is refused (attack catalog A81)."""
    if "response" in claims:
        raise JarmValidationError("JARM payload contains a nested response", reason="unexpected_claim")


def check_plain_issuer(params: Mapping[str, str], flow: FlowState, *, required: bool) -> None:
    """RFC 9207 §2.4 (C11): a present ``iss`` must equal the flow's issuer (simple string comparison); a
    server that advertises ``authorization_response_iss_parameter_supported`` must send it."""
    iss = params.get("iss")
    if iss is None:
        if required:
            raise AuthorizationResponseError("iss parameter is missing", reason="iss_missing")
        return
    if iss != flow.issuer:
        raise AuthorizationResponseError("iss parameter is not the expected issuer", reason="iss_mismatch")
