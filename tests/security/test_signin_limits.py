"""Sign-in attempt limits hold under concurrency, across workers and across flows (server/signin.py).

The class: a limit on password attempts that reads a count, awaits the Argon2 check and writes the count
back lets every concurrent attempt through. Here each attempt is counted atomically in the store *before*
its password is checked, so these tests fire many attempts at once (``asyncio.gather`` against the ASGI
app; threads that each run a server on one database; two ``jarmor serve --workers 2`` processes) and
count the hash verifications that actually ran: never more than the limit, and the right password sent
afterwards is refused. Unknown names are counted like existing ones (no account enumeration), and the
dashboard's failed and refused sign-ins are in the audit log.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette

from jarmor.protocol.context import Settings
from jarmor.server import passwords, signin
from jarmor.server.accounts import add_user
from jarmor.server.admin.accounts import add_admin
from jarmor.server.app import INTERACTION_COOKIE, JarmorServer, build_routes
from jarmor.store import open_store
from tests.kit import ISSUER, Kit, TestClient, make_kit
from tests.security.test_concurrency_attacks import store_urls
from tests.server.conftest import KitFactory
from tests.server.support import assert_redirect_error, code_from, plain_request

PASSWORD = "correct horse battery staple"
ADMIN, ADMIN_PASSWORD = "root", "a long admin password"
WRONG = "not the password"
KINDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]
SHARED_KINDS = KINDS[1:]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with small parameters: these tests count verifications, not their cost."""
    monkeypatch.setattr(passwords.PASSWORDS, "hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


class Checked:
    """How many password hashes were verified (by any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> Checked:
    seen = Checked()
    real = passwords._verify

    def counting(hasher: PasswordHasher, stored: str, password: str) -> bool:
        seen.add()
        return real(hasher, stored, password)

    monkeypatch.setattr(passwords, "_verify", counting)
    return seen


# --- end users ------------------------------------------------------------------------------------------------


@dataclass
class Flow:
    """One pending interaction: where its sign-in form posts, its CSRF token and its cookie."""

    action: str
    csrf: str
    cookie: str


async def start_flow(kit: Kit, client: TestClient, http: httpx.AsyncClient | None = None) -> Flow:
    http = http or kit.http
    r = await http.get("/authorize", params=plain_request(client)[0])
    assert r.status_code == 200, r.text[:300]
    action = re.search(r'action="([^"]+)"', r.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    cookie = http.cookies.get(INTERACTION_COOKIE)
    assert action and csrf and cookie
    http.cookies.clear()  # every request names its own interaction
    return Flow(unescape(action.group(1)), unescape(csrf.group(1)), cookie)


async def sign_in(
    kit: Kit, flow: Flow, username: str, password: str, http: httpx.AsyncClient | None = None
) -> httpx.Response:
    return await (http or kit.http).post(
        flow.action,
        data={"csrf_token": flow.csrf, "username": username, "password": password},
        headers={"Cookie": f"{INTERACTION_COOKIE}={flow.cookie}"},
    )


def from_address(kit: Kit, address: str) -> httpx.AsyncClient:
    """A client of the same server whose requests come from ``address``."""
    app = Starlette(routes=build_routes(kit.server))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url=ISSUER)


def statuses(results: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in results)


def locked(r: httpx.Response) -> bool:
    return r.status_code == 429 and "Too many failed sign-in attempts" in r.text


@pytest.fixture(params=KINDS)
async def on_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    """A server that asks for sign-in (no auto-approval), on each kind of store."""
    with store_urls(request.param, tmp_path) as (url, redis_url):
        kit = await make_kit(reuse_server_keys=True, store=open_store(url, redis_url), auto_approve=None)
        await add_user(kit.store.users, "alice", PASSWORD)
        try:
            yield kit
        finally:
            await kit.http.aclose()
            await kit.server.stop()


@pytest.fixture
async def interactive(make: KitFactory) -> Kit:
    kit = await make(auto_approve=None)
    await add_user(kit.store.users, "alice", PASSWORD)
    return kit


async def test_concurrent_wrong_passwords_on_one_interaction(on_store: Kit, checked: Checked) -> None:
    """Issue 10 item 7: ten wrong passwords at once on one interaction. Five are checked, the fifth ends the
    flow (one access_denied to the client), the rest are refused unchecked; the right password afterwards
    is refused — on that interaction, and on a new one (the account is locked)."""
    kit = on_store
    client = await kit.add_client(risk_tier="baseline")
    flow = await start_flow(kit, client)
    results = await asyncio.gather(*(sign_in(kit, flow, "alice", f"{WRONG} {i}") for i in range(10)))
    assert checked.count == signin.MAX_INTERACTION_ATTEMPTS, "only the counted attempts reach Argon2"
    got = statuses(results)
    assert got[401] == signin.MAX_INTERACTION_ATTEMPTS - 1 and got[303] == 1 and got[400] == 5, got
    assert_redirect_error(kit, next(r for r in results if r.status_code == 303), "access_denied")

    r = await sign_in(kit, flow, "alice", PASSWORD)
    assert r.status_code == 400 and "location" not in r.headers, "the interaction has ended"
    r = await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD)
    assert locked(r), r.status_code
    assert checked.count == signin.MAX_INTERACTION_ATTEMPTS, "a refused attempt never reaches Argon2"


async def test_concurrent_wrong_passwords_for_one_account_across_flows(on_store: Kit, checked: Checked) -> None:
    """Issue 12: twelve wrong passwords at once, each on its own interaction, for one account: five are
    checked, and the right password in a new flow is refused without being checked."""
    kit = on_store
    client = await kit.add_client(risk_tier="baseline")
    flows = [await start_flow(kit, client) for _ in range(12)]
    results = await asyncio.gather(*(sign_in(kit, f, "alice", WRONG) for f in flows))
    limit = kit.env.settings.login_max_failures
    assert checked.count == limit
    assert statuses(results) == Counter({401: limit, 429: 12 - limit})
    assert all(locked(r) for r in results if r.status_code != 401)
    r = await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD)
    assert locked(r)
    assert checked.count == limit


async def test_account_lockout_survives_new_flows_and_ends_with_its_window(
    interactive: Kit, checked: Checked
) -> None:
    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    for tries in (3, 2):  # five failures over two flows (no single flow reaches its own limit)
        flow = await start_flow(kit, client)
        for _ in range(tries):
            assert (await sign_in(kit, flow, "alice", WRONG)).status_code == 401
    r = await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD)
    assert locked(r), "a new flow does not accept the password at once"
    assert checked.count == 5
    kit.env.clock.advance(kit.env.settings.login_lockout_window + 1)
    r = await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD)
    assert r.status_code == 200 and "consent" in r.text.lower(), "the lockout ends with its window"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("login_max_failures = 0", "login_max_failures"),
        ("login_max_failures = true", "login_max_failures"),
        ('login_lockout_window = "15m"', "login_lockout_window"),
        ("login_max_failures_per_address = -1", "login_max_failures_per_address"),
        ("login_max_failure = 3", "login_max_failure"),
    ],
)
def test_limits_are_configured_strictly(tmp_path: Path, line: str, problem: str) -> None:
    from jarmor.config import ConfigError, load_config

    path = tmp_path / "jarmor.toml"
    path.write_text(f"[settings]\n{line}\n")
    with pytest.raises(ConfigError, match=problem):
        load_config(path, environ={})
    path.write_text("[settings]\nlogin_max_failures = 3\nlogin_lockout_window = 60\nlogin_max_failures_per_address = 0\n")
    settings = load_config(path, environ={}).settings
    assert (settings.login_max_failures, settings.login_lockout_window, settings.login_max_failures_per_address) == (
        3, 60, 0
    )


async def test_configured_limit_and_window(make: KitFactory, checked: Checked) -> None:
    kit = await make(auto_approve=None, settings=replace(Settings(), login_max_failures=2, login_lockout_window=60))
    await add_user(kit.store.users, "alice", PASSWORD)
    client = await kit.add_client(risk_tier="baseline")
    flows = [await start_flow(kit, client) for _ in range(6)]
    results = await asyncio.gather(*(sign_in(kit, f, "alice", WRONG) for f in flows))
    assert checked.count == 2 and statuses(results) == Counter({401: 2, 429: 4})
    kit.env.clock.advance(61)
    assert (await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD)).status_code == 200


async def test_a_successful_sign_in_resets_the_account_count(interactive: Kit) -> None:
    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    for _ in range(3):
        flow = await start_flow(kit, client)
        for _ in range(4):
            assert (await sign_in(kit, flow, "alice", WRONG)).status_code == 401
        r = await sign_in(kit, flow, "alice", PASSWORD)
        assert r.status_code == 200, "four failures and a success, three times: never locked"


async def test_unknown_accounts_are_counted_and_answered_alike(interactive: Kit, checked: Checked) -> None:
    """No enumeration: an unknown name gets the same answers, the same lockout and the same number of hash
    checks as an existing one."""
    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    seen: dict[str, list[tuple[int, str]]] = {}
    checks: dict[str, int] = {}
    for name in ("alice", "nobody"):
        before = checked.count
        answers = []
        for _ in range(7):
            r = await sign_in(kit, await start_flow(kit, client), name, WRONG)
            error = re.search(r'class="error"[^>]*>([^<]*)<', r.text)
            assert error, r.text[:300]
            answers.append((r.status_code, error.group(1)))
        seen[name], checks[name] = answers, checked.count - before
    assert seen["alice"] == seen["nobody"]
    assert checks["alice"] == checks["nobody"] == 5
    assert [s for s, _ in seen["alice"]] == [401] * 5 + [429] * 2


async def test_address_limit_counts_before_the_check(make: KitFactory, checked: Checked) -> None:
    """Password spraying from one address (one password, many names) stops at the address limit, even when
    the attempts arrive at once; another address is unaffected, and successes do not use the budget up."""
    kit = await make(auto_approve=None, settings=replace(Settings(), login_max_failures_per_address=8))
    await add_user(kit.store.users, "alice", PASSWORD)
    client = await kit.add_client(risk_tier="baseline")
    for _ in range(10):  # successes give their reservation back
        assert (await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD)).status_code == 200
    flows = [await start_flow(kit, client) for _ in range(12)]
    results = await asyncio.gather(*(sign_in(kit, f, f"user{i}", "Summer2024!") for i, f in enumerate(flows)))
    assert checked.count == 10 + 8
    assert statuses(results) == Counter({401: 8, 429: 4})
    assert locked(await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD))
    async with from_address(kit, "192.0.2.7") as elsewhere:
        flow = await start_flow(kit, client, elsewhere)
        assert (await sign_in(kit, flow, "alice", PASSWORD, elsewhere)).status_code == 200


async def test_interactions_written_by_earlier_versions_still_load(interactive: Kit) -> None:
    """Interactions used to carry their own (read-then-written) attempt count; one stored that way by a
    node not yet upgraded still signs in."""
    import orjson

    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    flow = await start_flow(kit, client)
    ia_id = flow.action.split("/")[2]
    raw = await kit.store.ephemeral.get("interaction", ia_id)
    assert raw is not None
    await kit.store.ephemeral.put("interaction", ia_id, orjson.dumps({**orjson.loads(raw), "attempts": 3}), 60)
    assert (await sign_in(kit, flow, "alice", PASSWORD)).status_code == 200


async def test_a_locked_out_user_can_be_unlocked(interactive: Kit) -> None:
    """``signin.unlock_user`` (what ``jarmor users unlock`` calls) clears the account's count."""
    kit = interactive
    client = await kit.add_client(risk_tier="baseline")
    for _ in range(6):
        await sign_in(kit, await start_flow(kit, client), "alice", WRONG)
    assert locked(await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD))
    assert await signin.unlock_user(kit.store.ephemeral, "alice") is True
    assert await signin.unlock_user(kit.store.ephemeral, "alice") is False
    r = await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD)
    assert r.status_code == 200
    r = await kit.http.post(
        r.request.url.path.replace("/login", "/consent"),
        data={"csrf_token": unescape(re.findall(r'name="csrf_token" value="([^"]+)"', r.text)[0]),
              "decision": "approve"},
        headers={"Cookie": r.request.headers["cookie"]},
    )
    code_from(kit, client, r)


# --- administrators -------------------------------------------------------------------------------------------


@pytest.fixture(params=KINDS)
async def admin_on_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    with store_urls(request.param, tmp_path) as (url, redis_url):
        kit = await make_kit(reuse_server_keys=True, store=open_store(url, redis_url))
        await add_admin(kit.store.admins, ADMIN, ADMIN_PASSWORD, now=kit.env.now())
        try:
            yield kit
        finally:
            await kit.http.aclose()
            await kit.server.stop()


async def admin_form(http: httpx.AsyncClient) -> str:
    r = await http.get("/admin/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert r.status_code == 200 and match
    return unescape(match.group(1))


async def admin_sign_in(http: httpx.AsyncClient, csrf: str, name: str, password: str) -> httpx.Response:
    return await http.post("/admin/login", data={"csrf_token": csrf, "username": name, "password": password})


async def test_concurrent_wrong_admin_passwords_for_one_name(admin_on_store: Kit, checked: Checked) -> None:
    """Issue 10 item 8: twelve wrong passwords at once for one administrator name: five are checked, the
    right password afterwards is refused unchecked, and the audit log has every failure (name, address,
    time) and the lockout once — never a password."""
    kit = admin_on_store
    csrf = await admin_form(kit.http)
    results = await asyncio.gather(*(admin_sign_in(kit.http, csrf, ADMIN, f"{WRONG} {i}") for i in range(12)))
    assert checked.count == signin.ADMIN_MAX_ATTEMPTS
    assert statuses(results) == Counter({401: 5, 429: 7})
    assert locked(await admin_sign_in(kit.http, csrf, ADMIN, ADMIN_PASSWORD))
    assert checked.count == signin.ADMIN_MAX_ATTEMPTS

    events = await kit.store.audit.list(target=f"admin:{ADMIN}")
    actions = Counter(e.action for e in events)
    assert actions == Counter({"admin.login_failed": 5, "admin.login_locked": 1}), actions
    now = kit.env.now()
    for e in events:
        assert e.actor == "address:127.0.0.1" and e.details["address"] == "127.0.0.1"
        assert now - 60 <= e.at <= now
        assert WRONG not in repr(e) and ADMIN_PASSWORD not in repr(e)


async def test_admin_address_limit_counts_before_the_check(admin_on_store: Kit, checked: Checked) -> None:
    """Twenty-five names at once from one address: twenty are checked; the right password for the real
    administrator from that address is then refused, from another address accepted."""
    kit = admin_on_store
    csrf = await admin_form(kit.http)
    results = await asyncio.gather(*(admin_sign_in(kit.http, csrf, f"name{i}", WRONG) for i in range(25)))
    assert checked.count == signin.ADMIN_MAX_ATTEMPTS_PER_ADDRESS
    assert statuses(results) == Counter({401: 20, 429: 5})
    assert locked(await admin_sign_in(kit.http, csrf, ADMIN, ADMIN_PASSWORD))
    locks = [e for e in await kit.store.audit.list(limit=100) if e.action == "admin.login_locked"]
    assert len(locks) == 1 and locks[0].reason == "too many failed sign-ins from this address"
    async with from_address(kit, "192.0.2.8") as elsewhere:
        r = await admin_sign_in(elsewhere, await admin_form(elsewhere), ADMIN, ADMIN_PASSWORD)
        assert r.status_code == 303, r.text[:200]


async def test_a_locked_out_admin_can_be_unlocked(admin_on_store: Kit) -> None:
    kit = admin_on_store
    csrf = await admin_form(kit.http)
    for _ in range(6):
        await admin_sign_in(kit.http, csrf, ADMIN, WRONG)
    assert locked(await admin_sign_in(kit.http, csrf, ADMIN, ADMIN_PASSWORD))
    assert await signin.unlock_admin(kit.store.ephemeral, ADMIN) is True
    assert (await admin_sign_in(kit.http, csrf, ADMIN, ADMIN_PASSWORD)).status_code == 303


# --- several workers on one database (in process: one server and event loop per thread) -----------------------


def in_threads(kit: Kit, url: str, redis_url: str | None, jobs: list[Any], workers: int = 2) -> list[int]:
    """Run ``jobs`` (async callables taking an HTTP client) split over ``workers`` threads, each with its own
    server, store connection and event loop on one database, released together; every status."""
    barrier = threading.Barrier(workers)
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    async def work(mine: list[Any]) -> None:
        server = JarmorServer(kit.config, open_store(url, redis_url))
        await server.start(keyring=kit.server.keyring)
        app = Starlette(routes=build_routes(server))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
            try:
                await asyncio.get_running_loop().run_in_executor(None, barrier.wait, 30)
                results = await asyncio.gather(*(job(http) for job in mine))
                with lock:
                    got.extend(r.status_code for r in results)
            finally:
                await server.stop()

    def thread(mine: list[Any]) -> None:
        try:
            asyncio.run(work(mine))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=thread, args=(jobs[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return got


@pytest.fixture(params=SHARED_KINDS)
def shared_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    with store_urls(request.param, tmp_path) as urls:
        yield urls


async def test_workers_share_the_limits(shared_urls: tuple[str, str | None], checked: Checked) -> None:
    url, redis_url = shared_urls
    kit = await make_kit(reuse_server_keys=True, store=open_store(url, redis_url), auto_approve=None)
    try:
        await add_user(kit.store.users, "alice", PASSWORD)
        await add_admin(kit.store.admins, ADMIN, ADMIN_PASSWORD, now=kit.env.now())
        client = await kit.add_client(risk_tier="baseline")
        flows = [await start_flow(kit, client) for _ in range(12)]
        jobs = [lambda http, f=f: sign_in(kit, f, "alice", WRONG, http) for f in flows]
        got = await asyncio.to_thread(in_threads, kit, url, redis_url, jobs)
        assert checked.count == 5 and Counter(got) == Counter({401: 5, 429: 7}), (checked.count, got)
        assert locked(await sign_in(kit, await start_flow(kit, client), "alice", PASSWORD))

        csrf = await admin_form(kit.http)
        cookie = kit.http.cookies.get("jarmor_admin_login", path="/admin")
        admin_jobs = [
            lambda http, i=i: http.post(
                "/admin/login", data={"csrf_token": csrf, "username": ADMIN, "password": f"{WRONG} {i}"},
                headers={"Cookie": f"jarmor_admin_login={cookie}"},
            )
            for i in range(12)
        ]
        got = await asyncio.to_thread(in_threads, kit, url, redis_url, admin_jobs)
        assert checked.count == 5 + 5 and Counter(got) == Counter({401: 5, 429: 7}), (checked.count, got)
        assert locked(await admin_sign_in(kit.http, csrf, ADMIN, ADMIN_PASSWORD))
    finally:
        await kit.http.aclose()
        await kit.server.stop()


# --- two worker processes: ``jarmor serve --workers 2`` on one SQLite file --------------------------------------


def _form_fields(text: str) -> tuple[str, str]:
    action = re.search(r'action="([^"]+)"', text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert action and csrf, text[:300]
    return unescape(action.group(1)), unescape(csrf.group(1))


@pytest.mark.e2e
async def test_two_worker_processes_share_the_limits(tmp_path: Path) -> None:
    """The same races against a real server with two worker processes: at most five of twelve concurrent
    wrong passwords are checked (the others are refused as locked), for an end user and for an
    administrator, and the right password afterwards is refused."""
    from jarmor.store.sql import SqlStore
    from tests.e2e.conftest import start_server, stop_server
    from tests.scale.cluster import Driver, http_client, register

    database = f"sqlite:///{tmp_path / 'jarmor.db'}"
    seed = SqlStore.open(database)  # cheap hashes (see cheap_hashing): the verifications cost little CPU
    await add_user(seed.users, "alice", PASSWORD)
    await add_admin(seed.admins, ADMIN, ADMIN_PASSWORD, now=0)
    await seed.close()
    server = start_server(tmp_path, "--workers", "2", auto_approve=None, database=database)
    try:
        async with http_client() as http:
            driver = Driver(http, await register(http, server, server.issuer))

            async def new_flow() -> Flow:
                pending = await driver.par(server)
                r = await http.get(
                    server.issuer + "/authorize",
                    params={"client_id": driver.client.client_id, "request_uri": pending.request_uri},
                )
                assert r.status_code == 200, r.text[:300]
                action, csrf = _form_fields(r.text)
                return Flow(server.issuer + action, csrf, r.cookies[INTERACTION_COOKIE])

            async def user_attempt(flow: Flow, password: str) -> httpx.Response:
                return await http.post(
                    flow.action,
                    data={"csrf_token": flow.csrf, "username": "alice", "password": password},
                    headers={"Cookie": f"{INTERACTION_COOKIE}={flow.cookie}"},
                )

            flows = [await new_flow() for _ in range(12)]
            results = await asyncio.gather(*(user_attempt(f, WRONG) for f in flows))
            assert statuses(results) == Counter({401: 5, 429: 7})
            assert locked(await user_attempt(await new_flow(), PASSWORD))

            page = await http.get(server.issuer + "/admin/login")
            _action, csrf = _form_fields(page.text)
            binding = page.cookies["jarmor_admin_login"]

            async def admin_attempt(password: str) -> httpx.Response:
                return await http.post(
                    server.issuer + "/admin/login",
                    data={"csrf_token": csrf, "username": ADMIN, "password": password},
                    headers={"Cookie": f"jarmor_admin_login={binding}"},
                )

            results = await asyncio.gather(*(admin_attempt(f"{WRONG} {i}") for i in range(12)))
            assert statuses(results) == Counter({401: 5, 429: 7})
            assert locked(await admin_attempt(ADMIN_PASSWORD))
    finally:
        stop_server(server)
    store = SqlStore.open(database)
    try:
        actions = Counter(e.action for e in await store.audit.list(target=f"admin:{ADMIN}"))
        assert actions == Counter({"admin.login_failed": 5, "admin.login_locked": 1})
    finally:
        await store.close()
