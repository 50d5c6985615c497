"""Using a client's registered keys, with one refetch when the client has rotated them.

A client that publishes its keys at a ``jwks_uri`` may rotate them at any time: a token naming a ``kid`` the
cached copy does not have is the sign of it. ``using_client_keys`` runs a key operation on the cached set
and, only when it failed for a reason a fresh copy can cure, once more on a refetched set (the adapter
bounds refetches per client: ``client_jwks_refetch_interval``). Request objects, client assertions and
encrypted JARM responses all go through it, so the trigger is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..jose import JoseError, JwkSet
from .clients import Client
from .context import Environment

T = TypeVar("T")

# Key selection failures a fresh copy of the client's key set can cure (a rotated key).
REFETCH_REASONS = frozenset({"unknown_kid", "key_not_found"})


def rotated_key(exc: BaseException) -> bool:
    """The operation failed on a key the cached set lacks (the JOSE error itself, or the cause of the
    protocol error that wraps it)."""
    cause = exc if isinstance(exc, JoseError) else exc.__cause__
    return isinstance(cause, JoseError) and cause.reason in REFETCH_REASONS


async def using_client_keys(
    env: Environment,
    client: Client,
    use: Callable[[JwkSet], T],
    *,
    refetch_on: Callable[[BaseException], bool] = rotated_key,
) -> T:
    """``use(keys)`` with the client's keys; when it fails and ``refetch_on`` says a fresh copy may cure it,
    once more with the keys fetched again."""
    try:
        return use(await env.client_keys.keys_for(client))
    except Exception as exc:
        if not refetch_on(exc):
            raise
    return use(await env.client_keys.keys_for(client, refresh=True))
