"""Sealed server keys: a key in the clear is refused while sealing is configured (a planted key is never
used), ``jarmor keys seal`` seals a deployment's keys, and the key-encryption key rotates without downtime."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from jarmor.server.keyprotect import KeyProtectionError, KeyProtector
from jarmor.server.keys import ensure_keys, load_keyring, seal_keys
from jarmor.store import MemoryStore, open_store

ALGS = ("ES256",)


def kek() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


async def test_a_key_in_the_clear_is_refused_while_sealing_is_configured() -> None:
    store = MemoryStore()
    await ensure_keys(store.keys, KeyProtector(None), algs=ALGS)  # written before sealing, or planted
    sealed = KeyProtector.from_env(kek(), "")
    with pytest.raises(KeyProtectionError, match="keys seal"):
        await load_keyring(store.keys, sealed)
    assert await seal_keys(store.keys, sealed)
    assert all(sealed.is_current(r.private_jwk) for r in await store.keys.list())
    assert (await load_keyring(store.keys, sealed)).signing_algs() == ALGS
    assert await seal_keys(store.keys, sealed) == []  # nothing left to do


async def test_the_key_encryption_key_rotates() -> None:
    store = MemoryStore()
    old, new = kek(), kek()
    await ensure_keys(store.keys, KeyProtector.from_env(old, ""), algs=ALGS)
    with pytest.raises(KeyProtectionError, match="wrong"):
        await load_keyring(store.keys, KeyProtector.from_env(new, ""))
    both = KeyProtector.from_env(new, old)
    assert (await load_keyring(store.keys, both)).signing_algs() == ALGS  # served during the change
    resealed = await seal_keys(store.keys, both)
    assert len(resealed) == len(await store.keys.list())
    assert (await load_keyring(store.keys, KeyProtector.from_env(new, ""))).signing_algs() == ALGS
    with pytest.raises(KeyProtectionError):
        await load_keyring(store.keys, KeyProtector.from_env(old, ""))


def test_keys_seal_command(tmp_path: Path) -> None:
    import asyncio

    db = f"sqlite:///{tmp_path / 'jarmor.db'}"

    async def plain() -> None:
        store = open_store(db)
        try:
            await ensure_keys(store.keys, KeyProtector(None), algs=ALGS)
        finally:
            await store.close()

    asyncio.run(plain())
    env = {k: v for k, v in os.environ.items() if not k.startswith("JARMOR_")}
    cmd = [sys.executable, "-m", "jarmor.cli.main", "keys", "seal", "--database", db, "--by", "ops"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "JARMOR_KEY_ENCRYPTION_KEY" in out.stderr and len(out.stderr.splitlines()) == 1
    env["JARMOR_KEY_ENCRYPTION_KEY"] = kek()
    listed = [sys.executable, "-m", "jarmor.cli.main", "keys", "list", "--database", db]
    refused = subprocess.run(listed, env=env, capture_output=True, text=True, timeout=60)
    assert "keys seal" in refused.stderr  # the listing names the problem
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "sealed 2 key(s)" in out.stdout, out.stderr
    assert subprocess.run(listed, env=env, capture_output=True, text=True, timeout=60).returncode == 0
