"""The README's "Client library" section runs as written against a real ``jarmor serve`` (issues 19.6, 12.5).

Every fenced ``sh`` and ``python`` block of the section is executed in order, in the server's working
directory (where ``jarmor clients add`` finds the server's default database ``jarmor.db``), with one
substitution: the README's issuer ``http://127.0.0.1:8000`` becomes the test server's. The Python blocks share
one namespace, as a reader pasting them one after another would. Then the test plays the browser: it opens
the async web app's ``/login`` (in process, over ASGI), follows the redirect to the real server (which
auto-approves ``alice``), and brings the callback back to the app — after a forged callback that must not
cancel the login. The sync functions and the machine client are driven the same way.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import RunningServer, start_server, stop_server

pytestmark = pytest.mark.e2e
# the app's AsyncOAuthClient keeps connections across requests, as in a server: one event loop for the module
ASYNC = pytest.mark.asyncio(loop_scope="module")

README = Path(__file__).resolve().parents[2] / "README.md"
README_ISSUER = "http://127.0.0.1:8000"
APP = "http://127.0.0.1:5000"


def client_section_blocks() -> list[tuple[str, int, str]]:
    """(language, line, code) of each fenced block between ``## Client library`` and the next section."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Client library\n")
    end = text.index("\n## ", start + 1)
    first_line = text[:start].count("\n") + 2
    blocks = []
    for match in re.finditer(r"^```(\w+)\n(.*?)^```$", text[start:end], flags=re.M | re.S):
        line = first_line + text[start : start + match.start()].count("\n")
        blocks.append((match.group(1), line, match.group(2)))
    return blocks


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("readme-client")
    server = start_server(workdir, database=f"sqlite:///{workdir / 'jarmor.db'}")
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def readme(readme_server: RunningServer) -> dict[str, Any]:
    """Run the section's blocks; return the namespace the Python blocks built."""
    blocks = client_section_blocks()
    assert [lang for lang, _, _ in blocks].count("python") >= 4, "the README lost its client examples"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    namespace: dict[str, Any] = {"__name__": "readme"}
    cwd = os.getcwd()
    os.chdir(readme_server.workdir)
    try:
        for lang, line, code in blocks:
            code = code.replace(README_ISSUER, readme_server.issuer)
            if lang == "sh":
                done = subprocess.run(["sh", "-e", "-c", code], env=env, capture_output=True, text=True)
                assert done.returncode == 0, f"README.md:{line}: {done.stderr}"
            elif lang == "python":
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            else:
                raise AssertionError(f"README.md:{line}: unexpected block language {lang!r}")
    finally:
        os.chdir(cwd)
    return namespace


def authorize(url: str) -> str:
    """The browser at the authorization server: ``--auto-approve`` answers at once with a redirect."""
    response = httpx.get(url)
    assert response.status_code == 303, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(f"{APP}/callback?")
    return str(location)


@ASYNC
async def test_async_web_app(readme: dict[str, Any]) -> None:
    transport = httpx.ASGITransport(app=readme["app"])
    async with httpx.AsyncClient(transport=transport, base_url=APP) as browser:
        r = await browser.get("/login")
        assert r.status_code == 303 and "oauth_state" in browser.cookies
        callback = authorize(r.headers["location"])
        # a forged callback, injected before the real one, is refused and does not cancel the login
        forged = await browser.get("/callback", params={"response": "eyJhbGciOiJub25lIn0.e30."})
        assert forged.status_code == 400 and "oauth_state" in browser.cookies
        r = await browser.get(callback.removeprefix(APP))
        assert (r.status_code, r.text) == (200, "hello alice")
        assert "oauth_state" not in browser.cookies
        # the same callback again (a replay) is refused
        r = await browser.get(callback.removeprefix(APP))
        assert r.status_code == 400 and "no_session_state" in r.text


@ASYNC
async def test_async_web_app_refuses_another_browsers_response(readme: dict[str, Any]) -> None:
    """Login CSRF: a validly signed response for someone else's login is refused in this browser."""
    transport = httpx.ASGITransport(app=readme["app"])
    async with (
        httpx.AsyncClient(transport=transport, base_url=APP) as victim,
        httpx.AsyncClient(transport=transport, base_url=APP) as attacker,
    ):
        attackers_callback = authorize((await attacker.get("/login")).headers["location"])
        victims_callback = authorize((await victim.get("/login")).headers["location"])
        r = await victim.get(attackers_callback.removeprefix(APP))
        assert r.status_code == 400 and "state_mismatch" in r.text
        assert (await victim.get(victims_callback.removeprefix(APP))).text == "hello alice"


def test_sync_web_functions(readme: dict[str, Any]) -> None:
    session: dict[str, str] = {}
    url = readme["start_login"](session)
    assert readme["finish_login"](session, authorize(url)) == "alice"
    assert session == {}


def test_machine_client(readme: dict[str, Any]) -> None:
    tokens = readme["tokens"]
    assert tokens.token_type == "Bearer" and tokens.scope == "profile" and tokens.access_token
    assert readme["machine"].signing_key is None and readme["machine"].redirect_uri is None
