"""Token revocation (RFC 7009).

* The client authenticates as at the token endpoint (§2.1); a public client names itself with ``client_id``.
* ``token`` is required (``invalid_request``). ``token_type_hint`` may be ``access_token`` or
  ``refresh_token``; the lookup covers both whatever the hint says (§2.1: a wrong hint never hides a token).
  Any other hint is answered with ``unsupported_token_type`` (§2.2.1): this server revokes no other type.
* Revoking a refresh token ends its grant: every access and refresh token issued under it, the rotated
  family included, and the grant record itself (§2.1 SHOULD). Revoking an access token ends only that token.
* Unknown, expired or already revoked tokens, and tokens of *another* client, are answered with 200 and
  change nothing (§2.2). For another client's token RFC 7009 §2.1 says the request is "refused": jarmor
  refuses it silently rather than with an error, so a client cannot probe which token strings exist.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import errors
from .client_auth import authenticate_client
from .context import Environment
from .mtls import ClientCertificate
from .tokens import token_hash

TOKEN_TYPE_HINTS = ("access_token", "refresh_token")
# opaque tokens are 43 characters; a JWT access token (RFC 9068) a few hundred; only its hash is looked up
MAX_TOKEN_LENGTH = 8192


def token_parameter(form: Mapping[str, str]) -> str:
    """The ``token`` parameter of a revocation or introspection request (RFC 7009 §2.1, RFC 7662 §2.1)."""
    token = form.get("token")
    if not token:
        raise errors.InvalidRequest("token is required")
    return token


async def revoke_token(
    env: Environment, form: Mapping[str, str], authorization: str | None, *, certificate: ClientCertificate | None = None
) -> None:
    auth = await authenticate_client(env, form, authorization, endpoint="revocation", certificate=certificate)
    token = token_parameter(form)
    hint = form.get("token_type_hint")
    if hint is not None and hint not in TOKEN_TYPE_HINTS:
        raise errors.UnsupportedTokenType(
            "unsupported token_type_hint: this server revokes access_token and refresh_token"
        )
    record = await env.store.tokens.get(token_hash(token)) if len(token) <= MAX_TOKEN_LENGTH else None
    if record is None or record.client_id != auth.client.client_id:
        return
    now = env.now()
    if record.kind == "refresh_token" and record.grant_id:
        await env.store.tokens.revoke_grant(record.grant_id, now)
        await env.store.grants.revoke(record.grant_id, now, "refresh token revoked by the client (RFC 7009)")
    else:
        await env.store.tokens.revoke(record.token_hash, now)
