"""The test clients an audit drives, read from ``--client`` JSON files.

A file holds ``client_id``, ``redirect_uri`` (or ``redirect_uris`` with one entry), ``scope``, the
``token_endpoint_auth_method``, and the credentials: ``client_secret`` and/or a private ``jwk`` (or a
``jwks`` set of private keys: the first signing key signs, ``use=enc`` keys decrypt JARM). Optional:
``signing_alg``, ``request_object_encryption_alg``/``_enc`` (when the client registered them) and
``registration`` (metadata a probe client registered with ``--registration-token`` copies, e.g.
``{"risk_tier": "high"}``). The registration response ``jarmor clients add`` prints, plus the key, is a
valid file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jarmor.jose import SIGNING_ALGS, JoseError, Jwk, JwkSet, import_jwk, loads_object

AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")


# Members of a registration response a probe registration (``https_redirect_uris``) copies, so that the
# throwaway client differs from this one only in its redirect URI; the file's ``registration`` wins.
COPIED_MEMBERS = (
    "risk_tier", "token_endpoint_auth_signing_alg", "request_object_signing_alg",
    "request_object_encryption_alg", "request_object_encryption_enc", "authorization_signed_response_alg",
    "authorization_encrypted_response_alg", "authorization_encrypted_response_enc",
    "id_token_signed_response_alg", "response_modes", "grant_types", "response_types",
    "dpop_bound_access_tokens",
)


class ClientFileError(ValueError):
    """A ``--client`` file is unreadable or malformed; the message names the member."""


@dataclass(frozen=True, slots=True)
class AuditClient:
    client_id: str
    redirect_uri: str
    scope: str
    auth_method: str
    signing_key: Jwk | None = field(default=None, repr=False)
    signing_alg: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    decryption_keys: JwkSet | None = field(default=None, repr=False)
    request_object_encryption: tuple[str, str] | None = None
    registration: Mapping[str, Any] = field(default_factory=dict)
    response_modes: tuple[str, ...] | None = None  # the modes the client registered (None: any)

    @property
    def can_sign(self) -> bool:
        return self.signing_key is not None and self.signing_alg is not None


def _string(data: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ClientFileError(f"member {name} is required")
        return None
    if not isinstance(value, str) or not value:
        raise ClientFileError(f"member {name} must be a non-empty string")
    return value




def parse_client(data: Mapping[str, Any]) -> AuditClient:
    """Build an ``AuditClient``; registration-response members the audit does not use are ignored."""
    client_id = _string(data, "client_id", required=True)
    redirect = _string(data, "redirect_uri")
    uris = data.get("redirect_uris")
    if redirect is None:
        if not isinstance(uris, list) or len(uris) != 1 or not isinstance(uris[0], str):
            raise ClientFileError("give redirect_uri (or redirect_uris with exactly one URI)")
        redirect = uris[0]
    method = _string(data, "token_endpoint_auth_method") or "client_secret_basic"
    if method not in AUTH_METHODS:
        raise ClientFileError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    keys: list[Jwk] = []
    try:
        if data.get("jwk") is not None:
            if not isinstance(data["jwk"], dict):
                raise ClientFileError("member jwk must be a JSON object")
            keys.append(import_jwk(data["jwk"], allow_private=True))
        if data.get("jwks") is not None:
            keys.extend(JwkSet.from_dict(data["jwks"], allow_private=True).keys)
    except JoseError as exc:
        raise ClientFileError(f"key refused: {exc}") from exc
    # a registration response echoes the public keys beside the private ones: keep one of each, private first
    unique: dict[str, Jwk] = {}
    for key in sorted(keys, key=lambda k: not k.is_private):
        unique.setdefault(key.thumbprint(), key)
    keys = list(unique.values())
    signing = next((k for k in keys if k.is_private and k.use in (None, "sig")), None)
    alg = _string(data, "signing_alg") or (signing.alg if signing is not None else None)
    if signing is not None and (alg is None or alg not in SIGNING_ALGS or not signing.fits_signing_alg(alg)):
        raise ClientFileError("give signing_alg: an algorithm the private key can sign with")
    enc_keys = [k for k in keys if k.is_private and k.use == "enc"]
    secret = _string(data, "client_secret")
    if method == "private_key_jwt" and signing is None:
        raise ClientFileError("private_key_jwt needs a private signing key (jwk)")
    if method in ("client_secret_basic", "client_secret_post") and secret is None:
        raise ClientFileError(f"{method} needs client_secret")
    ro_alg = _string(data, "request_object_encryption_alg")
    ro_enc = _string(data, "request_object_encryption_enc") or ("A256GCM" if ro_alg else None)
    given = data.get("registration") or {}
    if not isinstance(given, dict):
        raise ClientFileError("member registration must be a JSON object")
    registration = {name: data[name] for name in COPIED_MEMBERS if data.get(name) is not None}
    registration.update(given)
    if keys:
        registration.setdefault("jwks", {"keys": [k.public_dict() for k in keys]})
    scope = _string(data, "scope") or "openid"
    modes = data.get("response_modes")
    if modes is not None and (not isinstance(modes, list) or not modes or not all(isinstance(m, str) for m in modes)):
        raise ClientFileError("member response_modes must be a non-empty array of strings")
    return AuditClient(
        client_id=client_id or "",
        redirect_uri=redirect,
        scope=scope,
        auth_method=method,
        signing_key=signing,
        signing_alg=alg if signing is not None else None,
        client_secret=secret,
        decryption_keys=JwkSet(tuple(enc_keys)) if enc_keys else None,
        request_object_encryption=(ro_alg, ro_enc) if ro_alg and ro_enc else None,
        registration=registration,
        response_modes=tuple(modes) if modes is not None else None,
    )


def load_client(path: str) -> AuditClient:
    try:
        data = loads_object(Path(path).read_bytes())
    except OSError as exc:
        raise ClientFileError(f"cannot read {path}: {exc.strerror}") from exc
    except JoseError as exc:
        raise ClientFileError(f"{path} is not a JSON object") from exc
    try:
        return parse_client(data)
    except ClientFileError as exc:
        raise ClientFileError(f"{path}: {exc}") from exc
