"""Server key lifecycle (server/keys.py, ``jarmor keys``): publish before use, keep until expiry, retire.

The flow tests drive the real client library against in-process servers on a controllable clock while the
keys rotate underneath, and require zero failed flows; the cluster test runs two server processes' worth of
state (two ``JarmorServer`` over one store) behind a round-robin "load balancer".
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import sqlite3
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from jarmor.cli.common import open_state
from jarmor.cli.main import main
from jarmor.client import AsyncOAuthClient, ClientConfig
from jarmor.config import ServerConfig, load_config
from jarmor.jose import JwkSet, generate_jwk, peek_header, sign_jws
from jarmor.protocol.context import Settings
from jarmor.protocol.registration import register
from jarmor.server.accounts import add_user
from jarmor.server.app import JarmorServer, build_routes
from jarmor.server.keyprotect import KeyProtectionError, KeyProtector
from jarmor.server.keys import (
    KeyLifecycleError,
    Keyring,
    KeyTimings,
    current_keys,
    describe_keys,
    ensure_keys,
    load_keyring,
    retire_key,
    rotate_keys,
    sweep_keys,
)
from jarmor.store.base import ServerKeyRecord
from jarmor.store.memory import MemoryStore
from tests.kit import ISSUER, REDIRECT, Clock, Kit, without_assurance

from .conftest import KitFactory

T = KeyTimings()  # the defaults: refresh 30 s, JWKS max-age 60 s, publish delay 120 s
PLAIN = KeyProtector(None)


def kid_of(records: list[ServerKeyRecord], alg: str, role: str, now: float) -> str:
    found = [s.kid for s in describe_keys(records, now) if s.record.alg == alg and s.role == role]
    assert len(found) == 1, (alg, role, found)
    return found[0]


async def memory_keys(now: int, algs: tuple[str, ...] = ("ES256", "ECDH-ES")) -> MemoryStore:
    store = MemoryStore()
    await ensure_keys(store.keys, PLAIN, algs=algs, now=now)
    return store


# --- timings --------------------------------------------------------------------------------------------


def test_default_timings() -> None:
    t = KeyTimings.from_settings(Settings())
    assert t.publish_delay == 2 * 30 + 60
    assert t.hold("sig") == 30 + 300 + 10  # a lagging process + the longest JWT signed (JARM/ID token) + skew
    assert t.hold("enc") == 30 + 3600 + 3600 + 10  # + client JWKS caching + longest request object
    assert t.hold("secret") == 30 + 600 + 10  # + interaction lifetime
    t = KeyTimings.from_settings(Settings(key_publish_delay=5, jarm_lifetime=900, id_token_lifetime=60))
    assert t.publish_delay == 5 and t.hold("sig") == 30 + 900 + 10


# --- the lifecycle on a store ---------------------------------------------------------------------------


async def test_rotation_publishes_first_signs_later_retires_after_expiry() -> None:
    t0 = 1_700_000_000
    store = await memory_keys(t0 - 1000)
    old = kid_of(await store.keys.list(), "ES256", "current", t0)
    [rot], notes = await rotate_keys(store.keys, PLAIN, T, algs=["ES256"], now=t0)
    assert notes == [] and rot.new.active_at == t0 + T.publish_delay
    assert [r.kid for r in rot.replaced] == [old]
    assert rot.replaced[0].retired_at == rot.new.active_at + T.hold("sig")

    ring = await load_keyring(store.keys, PLAIN, now=t0)
    published = {k["kid"] for k in ring.public_jwks()["keys"]}  # type: ignore[union-attr]
    assert {old, rot.new.kid} <= published, "the new key is published at once"
    assert ring.signing_key("ES256").kid == old, "but not used before active_at"

    ring = await load_keyring(store.keys, PLAIN, now=rot.new.active_at)
    assert ring.signing_key("ES256").kid == rot.new.kid
    assert old in {k["kid"] for k in ring.public_jwks()["keys"]}, "kept for verification"  # type: ignore[union-attr]

    due = rot.new.active_at + T.hold("sig")
    assert await sweep_keys(store.keys, T, now=due - 1) == []
    ring = await load_keyring(store.keys, PLAIN, now=due)
    assert old not in {k["kid"] for k in ring.public_jwks()["keys"]}  # type: ignore[union-attr]
    changed = await sweep_keys(store.keys, T, now=due)
    assert [(r.kid, r.state) for r in changed] == [(old, "retired")]
    assert await sweep_keys(store.keys, T, now=due) == [], "idempotent"


async def test_encryption_keys_load_everywhere_before_publication() -> None:
    t0 = 1_700_000_000
    store = await memory_keys(t0 - 1000)
    old = kid_of(await store.keys.list(), "ECDH-ES", "current", t0)
    [rot], _ = await rotate_keys(store.keys, PLAIN, T, algs=["ECDH-ES"], now=t0)
    new = rot.new.kid

    def state(ring: Keyring) -> tuple[set[str], set[str]]:
        published = {k["kid"] for k in ring.public_jwks()["keys"]}  # type: ignore[union-attr]
        return published, {k.kid for k in ring.decryption_keys()}

    published, decrypts = state(await load_keyring(store.keys, PLAIN, now=t0))
    assert old in published and new not in published
    assert {old, new} <= decrypts, "decrypts with the new key before any client can know it"
    published, decrypts = state(await load_keyring(store.keys, PLAIN, now=rot.new.active_at))
    assert new in published and old not in published, "one published key per algorithm"
    assert old in decrypts, "clients with a cached JWKS may still encrypt to the old key"
    due = rot.new.active_at + T.hold("enc")
    published, decrypts = state(await load_keyring(store.keys, PLAIN, now=due))
    assert old not in decrypts and new in decrypts


async def test_rotate_refuses_a_second_rotation_under_way() -> None:
    t0 = 1_700_000_000
    store = await memory_keys(t0 - 1000)
    await rotate_keys(store.keys, PLAIN, T, algs=["ES256"], now=t0)
    with pytest.raises(KeyLifecycleError, match="already under way"):
        await rotate_keys(store.keys, PLAIN, T, algs=["ES256"], now=t0 + 10)
    rotations, notes = await rotate_keys(store.keys, PLAIN, T, now=t0 + 10)  # all algorithms
    assert [r.alg for r in rotations] == ["ECDH-ES", "secret"] and "ES256" in notes[0]


async def test_concurrent_rotations_converge() -> None:
    """Two processes that both added a successor: the sweep marks the superseded one retiring."""
    t0 = 1_700_000_000
    store = await memory_keys(t0 - 1000)
    a = await memory_keys(t0)  # steal two fresh records made elsewhere
    b = await memory_keys(t0 + 1)
    for rec in (await a.keys.list()) + (await b.keys.list()):
        if rec.alg == "ES256":
            await store.keys.add(replace(rec, active_at=rec.created_at + 100))
    now = t0 + 200
    await sweep_keys(store.keys, T, now=now)
    roles = {s.kid: s.role for s in describe_keys(await store.keys.list(), now) if s.record.alg == "ES256"}
    assert sorted(roles.values()) == ["current", "previous", "previous"]
    states = {r.kid: r.state for r in await store.keys.list() if r.alg == "ES256"}
    assert sorted(states.values()) == ["active", "retiring", "retiring"]


async def test_retire_safety_checks() -> None:
    t0 = 1_700_000_000
    store = await memory_keys(t0 - 1000)
    old = kid_of(await store.keys.list(), "ES256", "current", t0)
    with pytest.raises(KeyLifecycleError, match="in use"):
        await retire_key(store.keys, PLAIN, T, old, now=t0)
    [rot], _ = await rotate_keys(store.keys, PLAIN, T, algs=["ES256"], now=t0)
    with pytest.raises(KeyLifecycleError, match="in use"):  # still signing until the new key activates
        await retire_key(store.keys, PLAIN, T, old, now=t0 + 1)
    with pytest.raises(KeyLifecycleError, match="tokens signed with it may still be valid"):
        await retire_key(store.keys, PLAIN, T, old, now=rot.new.active_at + 1)
    with pytest.raises(KeyLifecycleError, match="no server key"):
        await retire_key(store.keys, PLAIN, T, "nope", now=t0)
    with pytest.raises(KeyLifecycleError, match="may still be needed until"):
        await retire_key(store.keys, PLAIN, T, old, now=rot.new.active_at + T.hold("sig") - 1)
    done = await retire_key(store.keys, PLAIN, T, old, now=rot.new.active_at + T.hold("sig"))
    assert done == [f"{old} is already retired"]  # due: recorded as retired
    assert {r.kid: r.state for r in await store.keys.list()}[old] == "retired"
    done = await retire_key(store.keys, PLAIN, T, old, force=True, now=t0 + 10_000)
    assert done == [f"{old} is already retired"]


async def test_forced_retirement_of_the_key_in_use_activates_a_replacement() -> None:
    t0 = 1_700_000_000
    store = await memory_keys(t0 - 1000)
    old = kid_of(await store.keys.list(), "ES256", "current", t0)
    done = await retire_key(store.keys, PLAIN, T, old, force=True, now=t0)
    assert "emergency" in done[-1]
    ring = await load_keyring(store.keys, PLAIN, now=t0)
    assert ring.signing_key("ES256").kid != old
    assert old not in {k["kid"] for k in ring.public_jwks()["keys"]}  # type: ignore[union-attr]
    # with a rotation under way, the pending successor takes over at once instead
    [rot], _ = await rotate_keys(store.keys, PLAIN, T, algs=["ES256"], now=t0 + 5)
    current = ring.signing_key("ES256").kid
    await retire_key(store.keys, PLAIN, T, current, force=True, now=t0 + 6)
    ring = await load_keyring(store.keys, PLAIN, now=t0 + 6)
    assert ring.signing_key("ES256").kid == rot.new.kid


async def test_retiring_a_successor_cancels_the_rotation() -> None:
    t0 = 1_700_000_000
    store = await memory_keys(t0 - 1000)
    old = kid_of(await store.keys.list(), "ES256", "current", t0)
    [rot], _ = await rotate_keys(store.keys, PLAIN, T, algs=["ES256"], now=t0)
    done = await retire_key(store.keys, PLAIN, T, rot.new.kid, now=t0 + 1)
    assert "cancelled" in done[0] and f"{old} stays in service" in done[1]
    far = t0 + 100_000
    await sweep_keys(store.keys, T, now=far)
    ring = await load_keyring(store.keys, PLAIN, now=far)
    assert ring.signing_key("ES256").kid == old


async def test_first_start_does_not_count_a_pending_key() -> None:
    """A key rotated in before the server ever ran must not leave the algorithm without a usable key."""
    t0 = 1_700_000_000
    store = MemoryStore()
    await rotate_keys(store.keys, PLAIN, T, algs=["ES256"], now=t0)
    await ensure_keys(store.keys, PLAIN, algs=("ES256",), now=t0)
    assert ("sig", "ES256") in current_keys(await store.keys.list(), t0)


async def test_keyring_is_an_immutable_snapshot() -> None:
    t0 = 1_700_000_000
    store = await memory_keys(t0 - 1000)
    ring = await load_keyring(store.keys, PLAIN, now=t0)
    before = (ring.signing_key("ES256").kid, orjson.dumps(ring.public_jwks()))
    [rot], _ = await rotate_keys(store.keys, PLAIN, T, algs=["ES256"], now=t0)
    await sweep_keys(store.keys, T, now=rot.new.active_at + 10_000)
    assert (ring.signing_key("ES256").kid, orjson.dumps(ring.public_jwks())) == before


# --- flows while the keys rotate ------------------------------------------------------------------------


@dataclass
class Rp:
    """A relying party on the real client library; ``encrypt`` for the critical tier (encrypted RO + JARM)."""

    client: AsyncOAuthClient
    encrypt: bool


async def make_rp(env: Any, http: httpx.AsyncClient, clock: Clock, *, critical: bool = False) -> Rp:
    sig = generate_jwk("ES256")
    enc = generate_jwk("ECDH-ES")
    meta: dict[str, Any] = {
        "risk_tier": "critical" if critical else "elevated",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [sig.public_dict(), enc.public_dict()]},
        "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256",
        "response_modes": ["jwt", "query.jwt"],
    }
    extra: dict[str, Any] = {}
    if critical:
        meta.update(
            request_object_encryption_alg="ECDH-ES",
            request_object_encryption_enc="A128GCM",
            authorization_encrypted_response_alg="ECDH-ES",
            authorization_encrypted_response_enc="A128GCM",
        )
        extra = {
            "request_object_encryption_alg": "ECDH-ES",
            "request_object_encryption_enc": "A128GCM",
            "authorization_encrypted_response_alg": "ECDH-ES",
            "authorization_encrypted_response_enc": "A128GCM",
            "decryption_keys": JwkSet((enc,)),
        }
        meta["dpop_bound_access_tokens"] = True  # the tier requires sender-constrained tokens
        extra["dpop"] = True
    body = await register(env, meta)
    config = ClientConfig(
        issuer=ISSUER,
        client_id=body["client_id"],
        redirect_uri=REDIRECT,
        signing_key=sig,
        allow_insecure_http=True,
        **extra,
    )
    return Rp(AsyncOAuthClient(config, http=http, clock=clock), critical)


class Flows:
    """Runs flows in two halves (PAR, then authorize + callback + token) so they straddle clock jumps."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.failures: list[BaseException] = []
        self.completed = 0
        self.jarm_kids: set[str] = set()

    async def begin(self, rp: Rp) -> tuple[Rp, Any] | None:
        try:
            return rp, await rp.client.start_authorization(
                scope="openid", response_mode="jwt", use_par=True, encrypt_request=rp.encrypt
            )
        except Exception as exc:  # every failure is a test failure, reported at the end
            self.failures.append(exc)
            return None

    async def finish(self, begun: tuple[Rp, Any] | None) -> None:
        if begun is None:
            return
        rp, start = begun
        try:
            r = await self.http.get(start.url)
            assert r.status_code == 303, r.text[:300]
            location = r.headers["location"]
            token = dict(httpx.URL(location).params)["response"]
            if not rp.encrypt:
                self.jarm_kids.add(peek_header(token)["kid"])
            result = await rp.client.handle_callback(location, expected_state=start.state)
            tokens = await rp.client.exchange_code(result)
            assert tokens.id_token
            self.completed += 1
        except Exception as exc:
            self.failures.append(exc)

    async def round(self, rps: list[Rp], clock: Clock, step: float, during: Any = None) -> None:
        """Begin a flow per RP, move the clock (and run ``during``) while they are open, finish them."""
        begun = await asyncio.gather(*(self.begin(rp) for rp in rps))
        clock.advance(step)
        if during is not None:
            await during
        await asyncio.gather(*(self.finish(b) for b in begun), *(self.whole(rp) for rp in rps))

    async def whole(self, rp: Rp) -> None:
        await self.finish(await self.begin(rp))


async def jwks_kids(http: httpx.AsyncClient) -> set[str]:
    return {k["kid"] for k in (await http.get(ISSUER + "/jwks")).json()["keys"]}


async def test_flows_never_fail_during_a_rotation(make: KitFactory, clock: Clock) -> None:
    # about keys, not sign-in: the critical RP's flows are auto-approved under a policy without assurance
    kit: Kit = await make(policy=without_assurance())
    server = kit.server
    rps = [await make_rp(kit.env, kit.http, clock) for _ in range(3)]
    rps.append(await make_rp(kit.env, kit.http, clock, critical=True))
    flows = Flows(kit.http)
    await flows.round(rps, clock, 1)
    old = server.keyring.signing_key("ES256").kid
    old_enc = server.keyring.decryption_keys().keys

    async def rotate() -> Any:
        return await rotate_keys(kit.store.keys, server.protector, server.key_timings, now=int(clock()))

    rotation = asyncio.ensure_future(rotate())
    await flows.round(rps, clock, 5, during=rotation)  # the rotation lands while flows are open
    rotations, _ = rotation.result()
    new = next(r.new for r in rotations if r.alg == "ES256")
    assert {r.alg for r in rotations} >= {
        "ES256",
        "PS256",
        "RS256",
        "EdDSA",
        "ECDH-ES",
        "RSA-OAEP-256",
        "secret",
    }

    retire_at = new.active_at + server.key_timings.hold("sig")
    published_early = False
    while clock() < retire_at + 2 * server.key_timings.refresh_interval:
        await flows.round(rps, clock, 15)
        kids = await jwks_kids(kit.http)
        if clock() < new.active_at:
            published_early |= new.kid in kids
            assert old in kids
    assert not flows.failures, flows.failures[:3]
    assert flows.completed > 100
    assert published_early, "the new key was in the JWKS before anything was signed with it"
    assert flows.jarm_kids == {old, new.kid}
    assert old not in await jwks_kids(kit.http), "retired after everything it signed expired"
    assert {r.kid: r.state for r in await kit.store.keys.list()}[old] == "retired"
    assert server.keyring.signing_key("ES256").kid == new.kid
    assert all(k.kid in {x.kid for x in server.keyring.decryption_keys()} for k in old_enc), (
        "replaced encryption keys still decrypt within their hold"
    )


class RoundRobin(httpx.AsyncBaseTransport):
    """A load balancer over several in-process servers: each request goes to the next one."""

    def __init__(self, *apps: Starlette) -> None:
        self._transports = [httpx.ASGITransport(app=a) for a in apps]
        self._next = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transports[self._next % len(self._transports)]
        self._next += 1
        return await transport.handle_async_request(request)


@pytest.fixture
async def cluster(clock: Clock) -> AsyncIterator[tuple[list[JarmorServer], httpx.AsyncClient, MemoryStore]]:
    store = MemoryStore(clock)
    # about keys, not sign-in: the critical RP's flows are auto-approved under a policy without assurance
    config = ServerConfig(issuer=ISSUER, policy=without_assurance(), settings=Settings(auto_approve="alice"),
                          auto_approve="alice")
    servers = [JarmorServer(config, store) for _ in range(3)]
    for s in servers:
        await s.start()
        s.env.clock = clock
    apps = [Starlette(routes=build_routes(s)) for s in servers]
    http = httpx.AsyncClient(transport=RoundRobin(*apps), base_url=ISSUER)
    yield servers, http, store
    await http.aclose()


async def test_a_cluster_converges_through_the_key_store(
    cluster: tuple[list[JarmorServer], httpx.AsyncClient, MemoryStore], clock: Clock
) -> None:
    """Three servers over one store; ``jarmor keys rotate`` runs elsewhere (straight on the store).

    Every request lands on another server, and the servers reload their keyrings at different moments, yet
    no flow fails and they all end on the same keys.
    """
    servers, http, store = cluster
    rps = [await make_rp(servers[0].env, http, clock) for _ in range(2)]
    rps.append(await make_rp(servers[0].env, http, clock, critical=True))
    flows = Flows(http)
    await flows.round(rps, clock, 1)
    timings = servers[0].key_timings
    rotations, _ = await rotate_keys(
        store.keys, PLAIN, timings, algs=["ES256", "ECDH-ES", "secret"], now=int(clock())
    )
    new = rotations[0].new
    step = 0
    while clock() < new.active_at + timings.hold("sig") + 2 * timings.refresh_interval:
        step += 1
        await servers[step % 3].refresh_keys(force=True)  # refreshes out of phase
        await flows.round(rps, clock, 7 + step % 5)
    for s in servers:
        await s.refresh_keys(force=True)
    assert not flows.failures, flows.failures[:3]
    assert flows.completed > 100
    assert len(flows.jarm_kids) == 2
    assert {s.keyring.signing_key("ES256").kid for s in servers} == {new.kid}
    assert len({orjson.dumps(s.keyring.public_jwks()) for s in servers}) == 1


async def test_sign_in_pages_survive_a_secret_rotation(make: KitFactory, clock: Clock) -> None:
    kit = await make(auto_approve=None)
    client = await kit.add_client(risk_tier="baseline")
    await add_user(kit.store.users, "alice", "correct horse battery")
    verifier_params = {
        "client_id": client.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "s1",
        "code_challenge": "A" * 43,
        "code_challenge_method": "S256",
        "response_mode": "query",
    }
    r = await kit.authorize(verifier_params)
    assert r.status_code == 200
    old_secrets = kit.server.keyring.secrets()
    await rotate_keys(kit.store.keys, PLAIN, kit.server.key_timings, algs=["secret"], now=int(clock()))
    clock.advance(kit.server.key_timings.publish_delay + 1)
    await kit.server.refresh_keys()
    assert kit.server.keyring.secret() not in old_secrets, "the new secret is in use"

    def form(html: str) -> tuple[str, str]:
        action = re.search(r'action="([^"]+)"', html)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert action and token, html[:300]
        return action.group(1), token.group(1)

    action, token = form(r.text)  # made with the old secret
    r = await kit.http.post(
        action, data={"csrf_token": token, "username": "alice", "password": "correct horse battery"}
    )
    assert r.status_code == 303, r.text[:300]
    r = await kit.http.get(r.headers["location"])
    action, token = form(r.text)
    r = await kit.http.post(action, data={"csrf_token": token, "decision": "approve"})
    assert r.status_code == 303 and "code=" in r.headers["location"]
    clock.advance(kit.server.key_timings.hold("secret"))
    await kit.server.refresh_keys()
    assert not set(old_secrets) & set(kit.server.keyring.secrets()), "the old secret is gone"


# --- at rest and the CLI --------------------------------------------------------------------------------


def kek() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


async def started_sqlite(tmp_path: Path, protector: KeyProtector) -> str:
    url = f"sqlite:///{tmp_path / 'jarmor.db'}"
    config = load_config(None, {"database": url}, environ={})
    server = JarmorServer(config, open_state(config, create=True), protector)
    await server.start()
    await server.stop()
    return url


async def test_private_keys_are_sealed_at_rest(tmp_path: Path) -> None:
    protector = KeyProtector.from_env(kek())
    url = await started_sqlite(tmp_path, protector)
    db = tmp_path / "jarmor.db"
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    rows = sqlite3.connect(db).execute("select kid, private_jwk from server_keys").fetchall()
    assert rows and all(v.startswith("aesgcm:v1:") for _, v in rows)
    assert not any('"d"' in v or '"k"' in v for _, v in rows)
    store = open_state(load_config(None, {"database": url}, environ={}))
    ring = await load_keyring(store.keys, protector)
    d = ring.signing_key("ES256").private_dict()["d"]
    secret = base64.urlsafe_b64encode(ring.secret()).rstrip(b"=")
    await store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("jarmor.db"))
    assert d.encode() not in raw and secret not in raw


async def test_wrong_or_missing_key_encryption_key_fails_clearly(tmp_path: Path) -> None:
    url = await started_sqlite(tmp_path, KeyProtector.from_env(kek()))
    store = open_state(load_config(None, {"database": url}, environ={}))
    with pytest.raises(KeyProtectionError, match="wrong JARMOR_KEY_ENCRYPTION_KEY"):
        await load_keyring(store.keys, KeyProtector.from_env(kek()))
    with pytest.raises(KeyProtectionError, match="set JARMOR_KEY_ENCRYPTION_KEY"):
        await load_keyring(store.keys, KeyProtector(None))
    before = len(await store.keys.list())
    with pytest.raises(KeyProtectionError, match="wrong"):  # a rotation never mixes keys
        await rotate_keys(store.keys, KeyProtector.from_env(kek()), T)
    assert len(await store.keys.list()) == before
    await store.close()
    with pytest.raises(KeyProtectionError, match="32 bytes"):
        KeyProtector.from_env("c2hvcnQ")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_cli_list_rotate_retire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = kek()
    monkeypatch.setenv("JARMOR_KEY_ENCRYPTION_KEY", key)
    url = await started_sqlite(tmp_path, KeyProtector.from_env(key))
    db = ("--database", url)
    code, out, _ = await asyncio.to_thread(run_cli, capsys, "keys", "list", "--json", *db)
    assert code == 0
    listed = orjson.loads(out)
    es256 = next(k for k in listed if k["alg"] == "ES256")
    assert es256["role"] == "current" and es256["published"] is True
    assert all(not k["published"] for k in listed if k["use"] == "secret")

    code, out, err = await asyncio.to_thread(run_cli, capsys, "keys", "rotate", "--alg", "ES256", *db)
    assert code == 0, err
    assert re.search(
        r"ES256: new key \S+ takes over .* \(in 1[12]\d s\); " + re.escape(es256["kid"]) + " retires", out
    )
    code, _, err = await asyncio.to_thread(run_cli, capsys, "keys", "rotate", "--alg", "ES256", *db)
    assert code == 2 and "already under way" in err

    code, out, _ = await asyncio.to_thread(run_cli, capsys, "keys", "list", *db)
    assert re.search(re.escape(es256["kid"]) + r"\s+ES256\s+sig\s+retiring\s+current\s+yes", out)
    assert re.search(r"\S+\s+ES256\s+sig\s+active\s+next\s+yes", out)

    code, _, err = await asyncio.to_thread(run_cli, capsys, "keys", "retire", es256["kid"], *db)
    assert code == 2 and "in use" in err
    code, out, _ = await asyncio.to_thread(run_cli, capsys, "keys", "retire", es256["kid"], "--force", *db)
    assert code == 0 and "retired" in out and "emergency" in out

    monkeypatch.setenv("JARMOR_KEY_ENCRYPTION_KEY", kek())
    code, _, err = await asyncio.to_thread(run_cli, capsys, "keys", "rotate", *db)
    assert code == 2 and "wrong JARMOR_KEY_ENCRYPTION_KEY" in err
    code, _, err = await asyncio.to_thread(run_cli, capsys, "keys", "list", *db)
    assert code == 0 and "wrong JARMOR_KEY_ENCRYPTION_KEY" in err


async def test_jwks_serves_the_next_key_before_the_switch(kit: Kit, clock: Clock) -> None:
    """Relying parties that fetched the JWKS before the switch can verify what is signed after it."""
    [rot], _ = await rotate_keys(
        kit.store.keys, PLAIN, kit.server.key_timings, algs=["ES256"], now=int(clock())
    )
    clock.advance(kit.server.key_timings.refresh_interval)
    r = await kit.http.get("/jwks")
    assert r.headers["cache-control"] == f"max-age={kit.env.settings.jwks_max_age}"
    jwks_before_switch = JwkSet.from_dict(r.json())
    assert kit.server.keyring.signing_key("ES256").kid != rot.new.kid
    clock.advance(kit.server.key_timings.publish_delay)
    await kit.server.refresh_keys()
    token = sign_jws({"x": 1}, kit.server.keyring.signing_key("ES256"), "ES256")
    assert peek_header(token)["kid"] == rot.new.kid
    assert jwks_before_switch.has_kid(rot.new.kid)


async def test_a_key_retired_by_force_elsewhere_stops_within_the_check_interval(kit: Kit, clock: Clock) -> None:
    """``jarmor keys retire --force`` (a compromised key) runs in another process, straight on the store: a
    serving process stops signing with the key, publishing it and decrypting or MAC-checking with it within
    ``key_check_interval`` (1 s), not the 30 s ``key_refresh_interval``."""
    client = await kit.add_client(risk_tier="baseline")
    assert (await kit.full_flow(client))["token"].status_code == 200
    old = kit.server.keyring.signing_key("ES256").kid
    records = await kit.store.keys.list()
    secret = kid_of(records, "secret", "current", clock())
    for kid in (old, secret):
        await retire_key(kit.store.keys, PLAIN, kit.server.key_timings, kid, force=True, now=int(clock()))

    assert kit.env.settings.key_check_interval == 1 < kit.env.settings.key_refresh_interval
    clock.advance(kit.env.settings.key_check_interval)
    flow = await kit.full_flow(client)
    assert flow["token"].status_code == 200
    assert peek_header(flow["token"].json()["id_token"])["kid"] != old
    assert old not in {k["kid"] for k in (await kit.http.get("/jwks")).json()["keys"]}
    assert kit.server.keyring.records() and secret not in {r.kid for r in kit.server.keyring.records()}
