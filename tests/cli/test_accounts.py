"""``jarmor users ...`` and ``jarmor admins ...``: the account lifecycle, its audit records, and a locked
administrator shown as locked (issue 12, "what users expect")."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jarmor.cli.main import main
from jarmor.protocol.context import Settings
from jarmor.server import signin
from jarmor.server.account.enrolment import ENROLMENT_NS
from jarmor.store import open_store
from jarmor.store.base import ClientRecord, GrantRecord, Store, TokenRecord

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'jarmor.db'}"
    assert main(["db", "upgrade", "--database", url]) == 0
    return url


@pytest.fixture
def jarmor(database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*args, "--database", database])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def with_store(database: str, action: Callable[[Store], Any]) -> Any:
    async def go() -> Any:
        store = open_store(database)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(go())


async def _audit(store: Store) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.action, e.target) for e in reversed(await store.audit.list(limit=1000))]


def test_user_lifecycle_is_recorded(jarmor: Run, database: str) -> None:
    assert jarmor("users", "add", "bob", "--password-stdin", "--by", "carol", stdin="bob's password\n")[0] == 0
    code, _, err = jarmor("users", "add", "bob", "--password-stdin", stdin="bob's password\n")
    assert code == 2 and err == "jarmor: user bob already exists\n"
    assert jarmor("users", "disable", "bob", "--by", "carol")[0] == 0
    assert json.loads(jarmor("users", "show", "bob", "--format", "json")[1])["state"] == "disabled"
    assert jarmor("users", "enable", "bob", "--by", "carol")[0] == 0
    assert jarmor("users", "reset-password", "bob", "--password-stdin", "--by", "carol", stdin="new password!\n")[0] == 0
    code, out, _ = jarmor("users", "unlock", "bob", "--by", "carol")
    assert code == 0 and "was not locked" in out
    listing = json.loads(jarmor("users", "list", "--format", "json")[1])
    assert [(u["username"], u["state"]) for u in listing] == [("bob", "active")]
    events = with_store(database, _audit)
    assert [(a, act) for a, act, target in events if target == "user:bob"] == [
        ("carol", "user.add"), ("carol", "user.disable"), ("carol", "user.enable"),
        ("carol", "user.reset_password"), ("carol", "user.unlock"),
    ]
    code, _, err = jarmor("users", "disable", "nobody")
    assert code == 2 and err == "jarmor: no user 'nobody'\n"


def test_removing_a_user_revokes_their_access_and_keeps_the_name(jarmor: Run, database: str) -> None:
    assert jarmor("users", "add", "bob", "--password-stdin", stdin="bob's password\n")[0] == 0

    async def grant(store: Store) -> None:
        await store.clients.create(ClientRecord("app", {"client_name": "App"}, 1, 1))
        for gid, subject in (("g-bob", "bob"), ("g-eve", "eve")):
            await store.grants.create(GrantRecord(gid, "app", subject, "openid", 1))
            await store.tokens.create(TokenRecord(f"t-{gid}", "refresh_token", "app", subject, "openid", gid, 1, 2**40))

    with_store(database, grant)
    code, out, _ = jarmor("users", "remove", "bob", "--by", "carol")
    assert code == 0 and "revoked 1 grant(s) and 1 token(s)" in out

    async def state(store: Store) -> tuple[Any, ...]:
        return (
            (await store.grants.get("g-bob")).revoked_at,  # type: ignore[union-attr]
            (await store.tokens.get("t-g-bob")).revoked_at,  # type: ignore[union-attr]
            (await store.grants.get("g-eve")).revoked_at,  # type: ignore[union-attr]
            (await store.tokens.get("t-g-eve")).revoked_at,  # type: ignore[union-attr]
        )

    bob_grant, bob_token, eve_grant, eve_token = with_store(database, state)
    assert bob_grant is not None and bob_token is not None and eve_grant is None and eve_token is None
    code, _, err = jarmor("users", "add", "bob", "--password-stdin", stdin="another password\n")
    assert code == 2 and "removed" in err and "never" in err
    assert json.loads(jarmor("users", "show", "bob", "--format", "json")[1])["state"] == "removed"
    assert ("carol", "user.remove", "user:bob") in with_store(database, _audit)


def test_admins_remove_unlock_and_locked_state(jarmor: Run, database: str) -> None:
    assert jarmor("admins", "add", "ops", "--password-stdin", "--by", "root", stdin="a long admin password\n")[0] == 0

    async def fail_sign_ins(store: Store) -> None:
        for _ in range(signin.ADMIN_MAX_ATTEMPTS):
            await signin.reserve(store.ephemeral, [(signin.ADMIN_ACCOUNT, "ops")])

    with_store(database, fail_sign_ins)
    listing = json.loads(jarmor("admins", "list", "--format", "json")[1])
    assert [(a["name"], a["state"]) for a in listing] == [("ops", "locked")]
    assert "locked" in jarmor("admins", "list")[1]
    code, out, _ = jarmor("admins", "unlock", "ops", "--by", "root")
    assert code == 0 and "ops unlocked" in out
    assert json.loads(jarmor("admins", "list", "--format", "json")[1])[0]["state"] == "active"
    assert jarmor("admins", "remove", "ops", "--by", "root")[0] == 0
    assert json.loads(jarmor("admins", "list", "--format", "json")[1])[0]["state"] == "removed"
    code, _, err = jarmor("admins", "add", "ops", "--password-stdin", stdin="a long admin password\n")
    assert code == 2 and "removed" in err
    code, _, err = jarmor("admins", "unlock", "ghost")
    assert code == 2 and err == "jarmor: no administrator 'ghost'\n"
    events = [(a, act) for a, act, target in with_store(database, _audit) if target == "admin:ops"]
    assert events == [("root", "admin.add"), ("root", "admin.unlock"), ("root", "admin.remove")]


def test_key_rotation_and_retirement_are_recorded(jarmor: Run, database: str) -> None:
    from jarmor.config import load_config
    from jarmor.server.app import JarmorServer

    async def start(store: Store) -> None:  # the server generates its keys on first start
        server = JarmorServer(load_config(None, {"database": database}, environ={}), store)
        await server.start()
        await server.stop()

    with_store(database, start)
    code, out, err = jarmor("keys", "rotate", "--alg", "ES256", "--format", "json", "--by", "root")
    assert code == 0, err
    new_kid = json.loads(out)["rotations"][0]["new_kid"]
    code, _, err = jarmor("keys", "retire", new_kid, "--force", "--by", "root")
    assert code == 0, err
    events = with_store(database, _audit)
    assert ("root", "key.rotate", f"key:{new_kid}") in events
    assert ("root", "key.retire.force", f"key:{new_kid}") in events
    listed = json.loads(jarmor("keys", "list", "--format", "json")[1])
    assert listed == json.loads(jarmor("keys", "list", "--json")[1])  # the deprecated spelling still works
    code, _, err = jarmor("keys", "rotate", "--alg", "HS256")
    assert code == 2 and "ES256" in err and "RSA-OAEP-256" in err and len(err.splitlines()) == 1


def test_review_revoke_keeps_the_database_given_before_it(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def grant(store: Store) -> None:
        await store.clients.create(ClientRecord("app", {"client_name": "App"}, 1, 1))
        await store.grants.create(GrantRecord("g1", "app", "bob", "openid", 1))

    with_store(database, grant)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no jarmor.db here: the parent's --database must be the one used
    assert main(["review", "--database", database, "revoke", "g1", "--by", "carol"]) == 0
    assert "grant g1 of client app" in capsys.readouterr().out


def test_a_locked_user_is_shown_and_unlocked(jarmor: Run, database: str) -> None:
    assert jarmor("users", "add", "bob", "--password-stdin", stdin="bob's password\n")[0] == 0
    limit = signin.UserLimits.from_settings(Settings()).account

    async def fail_sign_ins(store: Store) -> None:
        for _ in range(limit.max_attempts):
            await signin.reserve(store.ephemeral, [(limit, "bob")])

    with_store(database, fail_sign_ins)
    assert json.loads(jarmor("users", "show", "bob", "--format", "json")[1])["state"] == "locked"
    assert "locked" in jarmor("users", "list")[1]
    code, out, _ = jarmor("users", "unlock", "bob", "--by", "carol")
    assert code == 0 and "bob unlocked" in out
    assert json.loads(jarmor("users", "list", "--format", "json")[1])[0]["state"] == "active"
    attempt = with_store(database, lambda store: signin.reserve(store.ephemeral, [(limit, "bob")]))
    assert attempt.refused is None  # the next sign-in is checked again


def test_passkey_only_user_gets_a_one_time_enrolment_link(jarmor: Run, database: str) -> None:
    code, out, err = jarmor("users", "add", "dora", "--passkey-only", "--issuer", "https://login.example")
    assert code == 0, err
    link = out.split()[-1]
    assert link.startswith("https://login.example/account/enrol/") and len(link.rsplit("/", 1)[1]) >= 40
    user = with_store(database, lambda store: store.users.get("dora"))
    assert user is not None and user.password_hash == "!passkey-only"
    code, _, err = jarmor("users", "add", "dora", "--passkey-only")
    assert code == 2 and err.strip() == "jarmor: user dora already exists"
    code, _, err = jarmor("users", "add", "eve", "--passkey-only", "--password-stdin", stdin="x\n")
    assert code == 2 and err.count("\n") == 1
    code, out2, _ = jarmor("users", "enrol-link", "dora", "--issuer", "https://login.example")
    assert code == 0 and out2.split()[-1] != link
    code, _, err = jarmor("users", "enrol-link", "nobody")
    assert code == 2 and "no user 'nobody'" in err and "Traceback" not in err
    code, _, err = jarmor("admins", "enrol-link", "nobody")
    assert code == 2 and "no enabled administrator" in err


def test_enrolment_links_live_as_long_as_the_setting_says(jarmor: Run, database: str, tmp_path: Path) -> None:
    """``[settings] enrolment_link_lifetime``: every command that issues a link stores it for that long and says
    so; a lifetime out of range is one line naming the key."""
    config = tmp_path / "jarmor.toml"
    config.write_text('[server]\nissuer = "https://login.example"\n[settings]\nenrolment_link_lifetime = 5400\n')
    links = []
    code, out, err = jarmor("users", "add", "dora", "--passkey-only", "--config", str(config))
    assert code == 0 and "(valid 90 min, single use): https://login.example/account/enrol/" in out, err
    links.append(out.split()[-1])
    assert jarmor("admins", "add", "root", "--password-stdin", stdin="a long admin password\n")[0] == 0
    for command in (("users", "enrol-link", "dora"), ("admins", "enrol-link", "root")):
        code, out, err = jarmor(*command, "--config", str(config))
        assert code == 0 and "(valid 90 min, single use)" in out, err
        links.append(out.split()[-1])
    # each link is in the store a minute before its lifetime is over, and gone a second after it
    assert all(_link_alive(database, link, 5400 - 60) for link in links)
    assert not any(_link_alive(database, link, 5400 + 1) for link in links)
    config.write_text("[settings]\nenrolment_link_lifetime = 864000\n")
    code, _, err = jarmor("users", "enrol-link", "dora", "--config", str(config))
    assert code == 2 and err.count("\n") == 1 and "enrolment_link_lifetime must be between 300 and 604800" in err


def _link_alive(database: str, link: str, after: float) -> bool:
    """Whether the store, ``after`` seconds from now, still holds the link's record."""
    digest = hashlib.sha256(link.rsplit("/", 1)[1].encode()).hexdigest()

    async def go() -> bool:
        store = open_store(database, clock=lambda: time.time() + after)
        try:
            return await store.ephemeral.get(ENROLMENT_NS, digest) is not None
        finally:
            await store.close()

    return asyncio.run(go())
