"""Session fixtures: a real ``jarmor serve``, a real oidc-provider, and per-session client keys (tmp dirs only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from jarmor.jose import Jwk, JwkSet, generate_jwk
from tests.e2e.conftest import RunningServer, free_port, start_server, stop_server, without_assurance

from .peers import REDIRECT_URI, NodeProcess, require_peers, start_node

JARM_MODES = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")
PLAIN_MODES = ("query", "fragment", "form_post")


@dataclass(frozen=True)
class Profile:
    """One client setup, used in both directions: signing alg and, for encrypting clients, (alg, enc)."""

    name: str
    alg: str
    encryption: tuple[str, str] | None = None
    enc_curve: str | None = None


PROFILES = (
    Profile("es256", "ES256"),
    Profile("ps256", "PS256"),
    Profile("enc-ecdh-es", "ES256", ("ECDH-ES", "A128GCM")),
    Profile("enc-rsa-oaep", "PS256", ("RSA-OAEP-256", "A256GCM")),
    Profile("ed25519", "Ed25519"),
    Profile("enc-x25519", "Ed25519", ("ECDH-ES", "A256GCM"), enc_curve="X25519"),
)


@dataclass(frozen=True)
class PeerClient:
    profile: Profile
    client_id: str
    sig: Jwk
    enc: Jwk | None

    @property
    def private_jwks(self) -> dict[str, Any]:
        return {"keys": [k.private_dict() for k in (self.sig, self.enc) if k is not None]}

    @property
    def decryption_keys(self) -> JwkSet | None:
        return JwkSet((self.enc,)) if self.enc is not None else None


def new_keys(profile: Profile) -> tuple[Jwk, Jwk | None]:
    sig = generate_jwk(profile.alg, use="sig")
    enc = (
        generate_jwk(profile.encryption[0], use="enc", crv=profile.enc_curve) if profile.encryption else None
    )
    return sig, enc


def client_metadata(profile: Profile, sig: Jwk, enc: Jwk | None) -> dict[str, Any]:
    """RFC 7591 / OIDC Registration metadata understood by both jarmor and oidc-provider."""
    alg = profile.alg
    meta: dict[str, Any] = {
        "redirect_uris": [REDIRECT_URI],
        "response_types": ["code"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "response_modes": list(JARM_MODES),
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": alg,
        "request_object_signing_alg": alg,
        "authorization_signed_response_alg": alg,
        "id_token_signed_response_alg": alg,
        "jwks": {"keys": [k.public_dict() for k in (sig, enc) if k is not None]},
    }
    if profile.encryption:
        key_alg, content = profile.encryption
        meta |= {
            "request_object_encryption_alg": key_alg,
            "request_object_encryption_enc": content,
            "authorization_encrypted_response_alg": key_alg,
            "authorization_encrypted_response_enc": content,
        }
    return meta


@pytest.fixture(scope="session")
def node() -> str:
    return require_peers()


@pytest.fixture(scope="session")
def jarmor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """jarmor for openid-client (Node) to drive: it follows redirects to the callback with ``--auto-approve``,
    which signs nobody in, so the high and critical flows it runs (about JAR, JARM, PAR, DPoP interop, not
    sign-in) are served under the explicit loosening ``without_assurance``."""
    workdir = tmp_path_factory.mktemp("interop-jarmor")
    server = start_server(workdir, *without_assurance(workdir))
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def jarmor_clients(jarmor_server: RunningServer) -> dict[str, PeerClient]:
    """One client per profile registered at jarmor: ``high`` tier, ``critical`` when it encrypts."""
    clients = {}
    for profile in PROFILES:
        sig, enc = new_keys(profile)
        meta = client_metadata(profile, sig, enc)
        meta["risk_tier"] = "critical" if profile.encryption else "high"
        meta["dpop_bound_access_tokens"] = True  # both tiers require sender-constrained tokens
        body = jarmor_server.register(meta)
        clients[profile.name] = PeerClient(profile, str(body["client_id"]), sig, enc)
    return clients


@dataclass(frozen=True)
class OidcProvider:
    issuer: str
    clients: dict[str, PeerClient]
    process: NodeProcess


@pytest.fixture(scope="session")
def oidc_provider(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """oidc-provider 9 (FAPI 2.0, JAR, PAR, JARM, encryption) with one client per profile, whose keys the
    test generated (so jarmor's client library signs and decrypts with them)."""
    workdir = tmp_path_factory.mktemp("interop-oidc-provider")
    clients = {}
    metadata = []
    for profile in PROFILES:
        sig, enc = new_keys(profile)
        client_id = f"jarmor-{profile.name}"
        metadata.append(
            {
                "client_id": client_id,
                **client_metadata(profile, sig, enc),
                "require_pushed_authorization_requests": True,
                "require_signed_request_object": True,
            }
        )
        if profile.name == "es256":  # also plain modes, to check RFC 9207 iss interop
            metadata[-1]["response_modes"] += list(PLAIN_MODES)
        clients[profile.name] = PeerClient(profile, client_id, sig, enc)
    (workdir / "clients.json").write_text(json.dumps(metadata))
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    op = start_node(
        node,
        "op-oidc-provider.mjs",
        env={"PORT": str(port), "CLIENTS_FILE": str(workdir / "clients.json")},
        log=workdir / "oidc-provider.log",
        ready_url=f"{issuer}/.well-known/openid-configuration",
    )
    try:
        yield OidcProvider(issuer, clients, op)
    finally:
        op.stop()
