"""Fixed inputs shared by the fuzz targets: a key set, a clock, a client, a server environment, a client core.

Everything is deterministic except the keys and signatures: ``NOW`` is a constant, and the key set
(``keys.json``) and the seed corpus made with it (``make_corpus.py``) are generated on first use on each
machine and never committed (generated keys stay out of the repository). A crash found once reproduces with
the same ``keys.json`` (``python fuzz/fuzz_<target>.py CRASH_FILE``): keep the two together.

Each target's ``test_one_input(data)`` raises only for a bug: an exception outside the layer's own error
family (``JoseError``, ``OAuthError``, ``ClientError``), or a broken invariant (``Finding``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from jarmor.client.config import ClientConfig
from jarmor.client.core import ClientCore
from jarmor.client.metadata import parse_metadata as parse_server_metadata
from jarmor.client.store import MemoryFlowStateStore
from jarmor.jose import Jwk, JwkSet, import_jwk
from jarmor.protocol.clients import Client, ServerCapabilities, validate_client_metadata
from jarmor.protocol.context import Endpoints, Environment, Settings
from jarmor.protocol.policy import Policy
from jarmor.store.memory import MemoryStore

HERE = Path(__file__).resolve().parent
NOW = 1_800_000_000
ISSUER = "https://as.example"
CLIENT_ID = "client-1"
REDIRECT = "https://c1.example/cb"
REDIRECT2 = "https://c1.example/cb2"
RP_REDIRECT = "https://rp.example/cb"
T = TypeVar("T")


class Finding(AssertionError):
    """An invariant the fuzzer broke (as opposed to an uncaught exception, which is also a finding)."""


def ensure_seed_corpus() -> None:
    """Generate ``keys.json`` and ``corpus/`` (both gitignored) when this checkout has none yet."""
    if not (HERE / "keys.json").exists() or not (HERE / "corpus").is_dir():
        import make_corpus  # imported here: it imports this module

        make_corpus.main()


@cache
def keys() -> dict[str, Jwk]:
    """The fixed key cast (private halves): see ``make_corpus.py --new-keys``."""
    if not (HERE / "keys.json").exists():
        ensure_seed_corpus()
    raw = json.loads((HERE / "keys.json").read_text())
    return {name: import_jwk(jwk, allow_private=True) for name, jwk in raw.items()}


def public(*names: str) -> JwkSet:
    return JwkSet(tuple(import_jwk(keys()[n].public_dict(), allow_private=False) for n in names))


def private(*names: str) -> JwkSet:
    return JwkSet(tuple(keys()[n] for n in names))


@dataclass
class FixedKeyring:
    """``ServerKeyring`` over the committed server keys."""

    def signing_key(self, alg: str) -> Jwk:
        return {"ES256": keys()["as_es256"], "PS256": keys()["as_ps256"]}[alg]

    def decryption_keys(self) -> JwkSet:
        return private("as_enc_rsa", "as_enc_p256")

    def public_jwks(self) -> dict[str, object]:
        return {"keys": [k.public_dict() for k in private("as_es256", "as_ps256", "as_enc_rsa", "as_enc_p256")]}

    def signing_algs(self) -> tuple[str, ...]:
        return ("ES256", "PS256")


class Directory:
    def __init__(self, *clients: Client) -> None:
        self.clients = {c.client_id: c for c in clients}

    async def get(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)


def capabilities() -> ServerCapabilities:
    return ServerCapabilities(signing_algs=("ES256", "PS256"), scopes=frozenset({"openid", "profile", "email"}))


def client_metadata(**overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "risk_tier": "baseline",
        "redirect_uris": [REDIRECT, REDIRECT2],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [keys()["c1_es256"].public_dict()]},
        "authorization_signed_response_alg": "ES256",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    meta.update(overrides)
    return meta


@cache
def client() -> Client:
    normalized = validate_client_metadata(client_metadata(), policy=Policy(), server=capabilities())
    return Client.from_metadata(CLIENT_ID, normalized)


def environment() -> Environment:
    """A server environment on a fresh in-memory store, its clock fixed at ``NOW``."""
    store = MemoryStore(lambda: float(NOW))
    return Environment(
        issuer=ISSUER,
        endpoints=Endpoints.for_issuer(ISSUER),
        policy=Policy(),
        settings=Settings(),
        store=store,  # type: ignore[arg-type]
        clients=Directory(client()),
        keys=FixedKeyring(),
        clock=lambda: float(NOW),
    )


_LOOP: asyncio.AbstractEventLoop | None = None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on one event loop kept for the whole fuzzing session (creating one per input is slow)."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    return _LOOP.run_until_complete(coro)


def server_metadata_document() -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "pushed_authorization_request_endpoint": f"{ISSUER}/par",
        "authorization_response_iss_parameter_supported": True,
        "response_modes_supported": ["query", "fragment", "form_post", "jwt", "query.jwt", "fragment.jwt",
                                     "form_post.jwt"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_signing_alg_values_supported": ["ES256", "PS256"],
        "request_object_signing_alg_values_supported": ["ES256"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
    }


# One pending flow per response mode; the state names the mode, so the seed corpus can address each.
JARM_FLOW_MODES = ("query.jwt", "fragment.jwt", "form_post.jwt", "query", "fragment", "form_post")


def flow_state(mode: str) -> str:
    return "state-" + mode.replace(".", "-")


def client_config(*, encrypted: bool = False) -> ClientConfig:
    k = keys()
    return ClientConfig(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        redirect_uri=RP_REDIRECT,
        signing_key=k["c1_es256"],
        signing_alg="ES256",
        authorization_signed_response_alg="ES256",
        authorization_encrypted_response_alg="ECDH-ES+A128KW" if encrypted else None,
        decryption_keys=private("c1_enc_p256") if encrypted else None,
    )


def client_core(*, encrypted: bool = False) -> ClientCore:
    """A client whose discovery and JWKS are already cached (no request is needed to validate a response)."""
    core = ClientCore(client_config(encrypted=encrypted), store=MemoryFlowStateStore(), clock=lambda: float(NOW))
    core.metadata = parse_server_metadata(
        json.dumps(server_metadata_document()).encode(), expected_issuer=ISSUER, allow_insecure_http=False
    )
    core._jwks = public("as_es256", "as_ps256")
    core._jwks_fetched_at = NOW
    return core


def jwks_body() -> bytes:
    return json.dumps({"keys": [k.public_dict() for k in private("as_es256", "as_ps256")]}).encode()


def text(data: bytes) -> str:
    """Fuzzer bytes as a ``str``: UTF-8 when valid, else Latin-1 (so every byte string reaches the parser)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def fuzz_main(target: Any) -> None:
    """``python fuzz/fuzz_X.py [libFuzzer options] [corpus dirs | crash files]``."""
    import sys

    import atheris

    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
