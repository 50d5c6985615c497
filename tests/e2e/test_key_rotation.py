"""Key rotation against a real ``jarmor serve`` (two worker processes) while flows run without pause.

``jarmor keys rotate`` runs in another process against the same database; the workers pick the new keys up
through the key store. Timings are shortened through the config file so the whole lifecycle — publish,
switch, retire — fits in a few seconds. Zero flows may fail, and the old signing key must end retired.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jarmor.client import ClientConfig, OAuthClient
from jarmor.jose import JwkSet, generate_jwk, peek_header

from .conftest import RunningServer, controls_without_assurance, start_server, stop_server

pytestmark = pytest.mark.e2e

REDIRECT = "http://127.0.0.1:9999/cb"
# about keys, not sign-in: the critical client's flows are auto-approved under a tier without assurance
CONFIG = f"""
[policy.tiers.critical]
{controls_without_assurance("critical")}

[settings]
key_refresh_interval = 1
jwks_max_age = 1
key_publish_delay = 5
jarm_lifetime = 4
id_token_lifetime = 4
future_skew = 2
"""
PUBLISH_DELAY, HOLD_SIG = 5, 1 + 4 + 2


@pytest.fixture(scope="module")
def rotating_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("jarmor-rotation")
    config = workdir / "jarmor.toml"
    config.write_text(CONFIG)
    env = {
        "JARMOR_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    }
    server = start_server(workdir, "--config", str(config), "--workers", "2", env=env)
    env["CONFIG"] = str(config)
    try:
        yield server, env
    finally:
        stop_server(server)


def jarmor(server: RunningServer, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jarmor.cli.main",
            *args,
            "--config",
            env["CONFIG"],
            "--database",
            server.database,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.workdir,
        env={**os.environ, "JARMOR_KEY_ENCRYPTION_KEY": env["JARMOR_KEY_ENCRYPTION_KEY"]},
    )


def make_client(server: RunningServer, *, critical: bool) -> tuple[OAuthClient, bool]:
    sig, enc = generate_jwk("ES256"), generate_jwk("ECDH-ES")
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
        names = {
            "request_object_encryption_alg": "ECDH-ES",
            "request_object_encryption_enc": "A128GCM",
            "authorization_encrypted_response_alg": "ECDH-ES",
            "authorization_encrypted_response_enc": "A128GCM",
        }
        meta.update(names)
        meta["dpop_bound_access_tokens"] = True  # critical requires sender-constrained tokens
        extra = {**names, "decryption_keys": JwkSet((enc,)), "dpop": True}
    body = server.register(meta)
    config = ClientConfig(
        issuer=server.issuer,
        client_id=str(body["client_id"]),
        redirect_uri=REDIRECT,
        signing_key=sig,
        allow_insecure_http=True,
        **extra,
    )
    return OAuthClient(config), critical


class Load:
    """Flows in threads until stopped; every failure is kept."""

    def __init__(self, clients: list[tuple[OAuthClient, bool]]) -> None:
        self.clients = clients
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.completed = 0
        self.kids: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(c,), daemon=True) for c in clients]

    def run(self, entry: tuple[OAuthClient, bool]) -> None:
        client, encrypted = entry
        with httpx.Client(timeout=10) as ua:
            while not self.stop.is_set():
                try:
                    start = client.start_authorization(
                        scope="openid", response_mode="jwt", use_par=True, encrypt_request=encrypted
                    )
                    r = ua.get(start.url)
                    assert r.status_code == 303, f"{r.status_code} {r.text[:200]}"
                    location = r.headers["location"]
                    result = client.handle_callback(location, expected_state=start.state)
                    tokens = client.exchange_code(result)
                    assert tokens.id_token
                    with self.lock:
                        self.completed += 1
                        if not encrypted:
                            token = dict(httpx.URL(location).params)["response"]
                            self.kids.append((time.time(), peek_header(token)["kid"]))
                except Exception as exc:
                    with self.lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


REFRESH = 1  # key_refresh_interval in CONFIG


def wait_until(condition: Any, what: str, deadline: float = 60.0) -> float:
    """Poll ``condition`` until it holds (returning the time it was seen to hold); fail after ``deadline`` s."""
    end = time.monotonic() + max(deadline, 1.0)
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)
    return time.time()


def keys_by_kid(server: RunningServer, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = jarmor(server, env, "keys", "list", "--all", "--format", "json")
    assert out.returncode == 0, out.stderr
    return {k["kid"]: k for k in json.loads(out.stdout)}


def jwks_kids(server: RunningServer) -> set[str]:
    return {k["kid"] for k in httpx.get(f"{server.issuer}/jwks").json()["keys"]}


def test_rotation_under_load(rotating_server: tuple[RunningServer, dict[str, str]]) -> None:
    server, env = rotating_server
    before = keys_by_kid(server, env)
    old = next(k for k, v in before.items() if v["alg"] == "ES256" and v["role"] == "current")
    clients = [make_client(server, critical=False) for _ in range(3)] + [make_client(server, critical=True)]
    with Load(clients) as load:
        wait_until(lambda: load.completed >= 5, "flows run before the rotation")
        rotated = jarmor(server, env, "keys", "rotate", "--format", "json")
        assert rotated.returncode == 0, rotated.stderr
        plan = {r["alg"]: r for r in json.loads(rotated.stdout)["rotations"]}
        assert {"ES256", "PS256", "RS256", "EdDSA", "ECDH-ES", "RSA-OAEP-256", "secret"} <= set(plan)
        new, active_at = plan["ES256"]["new_kid"], plan["ES256"]["active_at"]
        [replaced] = plan["ES256"]["replaced"]
        assert replaced["kid"] == old and replaced["retired_at"] == active_at + HOLD_SIG
        # published before it signs anything: every client verifies each JARM response against the JWKS it
        # fetches (refetching on an unknown kid), so a response signed with a key not yet published fails its
        # flow (load.failures below). The order is proven by those verifications, not by comparing this
        # thread's poll times with the clients' (a poll returns late on a loaded machine).
        wait_until(lambda: new in jwks_kids(server), "the new key is published")
        wait_until(lambda: any(k == new for _, k in list(load.kids)), "responses are signed with the new key")
        wait_until(lambda: old not in jwks_kids(server), "the replaced key leaves the JWKS",
                   deadline=active_at + HOLD_SIG + 30 - time.time())
        seen = len(load.kids)
        wait_until(lambda: len(load.kids) >= seen + 3, "flows go on after the old key is gone")
    assert not load.failures, load.failures[:5]
    assert load.completed > 20
    kids = [k for _, k in load.kids]
    assert old in kids and new in kids
    first_new = min(t for t, k in load.kids if k == new)
    assert first_new >= active_at - 1, "nothing is signed with the new key before its time"
    # every worker reloads its keyring within key_refresh_interval (1 s here): none signs with the old key after
    assert max(t for t, k in load.kids if k == old) < active_at + REFRESH + 5, "every worker switched keys"
    # every worker drops it within key_refresh_interval: 25 fetches in a row (over a second, both workers) lack it
    absent = [0]

    def gone_everywhere() -> bool:
        absent[0] = absent[0] + 1 if old not in jwks_kids(server) else 0
        return absent[0] >= 25

    wait_until(gone_everywhere, "every worker stops publishing the replaced key", deadline=REFRESH + 30)
    final = keys_by_kid(server, env)
    assert final[old]["state"] == "retired"
    assert final[new]["role"] == "current"
    assert not any(v["state"] == "active" and v["role"] == "previous" for v in final.values())
    conn = __import__("sqlite3").connect(server.database.removeprefix("sqlite:///"))
    sealed = [row[0] for row in conn.execute("select private_jwk from server_keys")]
    assert sealed and all(v.startswith("aesgcm:v1:") for v in sealed), "keys at rest stay sealed"
    log = Path(server.workdir).glob("serve-*.log")
    assert not any("Traceback" in p.read_text() for p in log)
