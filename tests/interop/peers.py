"""The Node.js peers (oidc-provider, openid-client) as the interop tests use them, and a headless user agent.

The peers are pinned by ``package.json``/``package-lock.json`` in this directory and installed with
``npm ci`` (``scripts/test`` does it). When they are missing the tests skip, unless
``JARMOR_REQUIRE_PEERS=1`` (set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

HERE = Path(__file__).resolve().parent
REDIRECT_URI = "http://127.0.0.1:9999/cb"  # never dereferenced: the user agent stops at it
# oidc-provider 9, openid-client 6 and jose 6 need Node.js ^20.19 || ^22.12 || >=23
NODE_RANGES = {20: (19, 0), 22: (12, 0)}


def peers_missing() -> str | None:
    """Why the Node peers cannot run here, or ``None`` when they can."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed (the interop tests need Node.js >= 20.19)"
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    m = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", out)
    if m is None:
        return f"cannot read the Node.js version ({out!r})"
    major, minor = int(m[1]), int(m[2])
    if major < 23 and (major not in NODE_RANGES or minor < NODE_RANGES[major][0]):
        return f"Node.js {out} is too old for the pinned peers (need ^20.19 || ^22.12 || >=23)"
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]
    for name, version in pinned.items():
        manifest = HERE / "node_modules" / name / "package.json"
        if not manifest.exists():
            return f"{name} is not installed: run `npm ci` in tests/interop (./scripts/test does)"
        installed = json.loads(manifest.read_text())["version"]
        if installed != version:
            return f"{name} {installed} is installed, {version} is pinned: run `npm ci` in tests/interop"
    return None


def require_peers() -> str:
    """The ``node`` executable; skips the test (fails it under ``JARMOR_REQUIRE_PEERS=1``) otherwise."""
    reason = peers_missing()
    if reason is not None:
        if os.environ.get("JARMOR_REQUIRE_PEERS") == "1":
            pytest.fail(f"JARMOR_REQUIRE_PEERS=1 but the interop peers cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    return str(shutil.which("node"))


@dataclass
class NodeProcess:
    """A long-running Node script (oidc-provider) with its output in ``log``."""

    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_node(node: str, script: str, *, env: dict[str, str], log: Path, ready_url: str) -> NodeProcess:
    with open(log, "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [node, str(HERE / script)],
            cwd=HERE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    running = NodeProcess(proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{script} exited with {proc.returncode}:\n{running.output()}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    running.stop()
    raise RuntimeError(f"{script} did not start:\n{running.output()}")


def run_node(node: str, script: str, *args: str) -> subprocess.Popen[str]:
    """Start a short-lived Node script; the caller collects it with ``collect``."""
    return subprocess.Popen(
        [node, str(HERE / script), *args], cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def collect(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, dict[str, Any], str]:
    """Exit status, the JSON summary printed on stdout, and stderr."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        return -1, {}, f"timed out after {timeout}s\n{stderr}"
    try:
        summary = json.loads(stdout)
    except json.JSONDecodeError:
        summary = {}
        stderr = f"stdout is not JSON: {stdout[-2000:]!r}\n{stderr}"
    return proc.returncode, summary, stderr


class _Form(HTMLParser):
    """The first ``<form>`` of a page: its action and its named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: unescape(v or "") for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._open = a.get("action", ""), True
        elif tag == "input" and self._open and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = False


def user_agent(url: str, *, redirect_uri: str = REDIRECT_URI, max_hops: int = 10) -> str | dict[str, str]:
    """Follow the front channel as a browser would (redirects, cookies) until it reaches ``redirect_uri``.

    Returns what a client application receives: the redirect URL (query modes), the fragment's parameters
    (what the page script at the redirect URI posts to its backend) or the fields of the auto-submitting
    form (form_post modes).
    """
    with httpx.Client(timeout=10) as http:
        for _ in range(max_hops):
            r = http.get(url)
            location = r.headers.get("location")
            if r.is_redirect and location:
                url = urljoin(url, location)
                if url.startswith(redirect_uri):
                    fragment = urlsplit(url).fragment
                    return dict(parse_qsl(fragment, keep_blank_values=True)) if fragment else url
                continue
            form = _Form()
            form.feed(r.text)
            if r.status_code == 200 and form.action == redirect_uri:
                return form.fields
            raise AssertionError(f"HTTP {r.status_code} at {urlsplit(url).path}: {r.text[:500]}")
    raise AssertionError("too many redirects")
