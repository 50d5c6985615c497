"""A real ``jarmor serve --workers 2 --trusted-proxies 127.0.0.1 --forwarded-header forwarded``: the RFC 7239
``Forwarded`` client address keys the per-address rate limit in every worker, and ``X-Forwarded-For`` — not
the configured header — is ignored even when it differs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .conftest import start_server, stop_server

pytestmark = pytest.mark.e2e


def test_forwarded_addresses_key_the_rate_limit_across_workers(tmp_path: Path) -> None:
    (tmp_path / "jarmor.toml").write_text("[settings]\nrate_limit_window = 3600\nrate_limit_per_address = 2\n")
    running = start_server(tmp_path, "--workers", "2", "--config", str(tmp_path / "jarmor.toml"),
                           "--trusted-proxies", "127.0.0.1", "--forwarded-header", "forwarded")
    try:
        def statuses(headers: list[dict[str, str]]) -> list[int]:
            out = []
            for h in headers:  # a new connection each time: the requests spread over both workers
                with httpx.Client(timeout=10) as http:
                    out.append(http.post(f"{running.issuer}/revoke", data={"token": "x"}, headers=h).status_code)
            return out

        distinct = statuses([{"Forwarded": f'for="203.0.113.{n}:4711";proto=https'} for n in range(1, 4)])
        assert 429 not in distinct, distinct
        same = statuses([{"Forwarded": "for=198.51.100.7", "X-Forwarded-For": f"192.0.2.{n}"} for n in range(3)])
        assert same[2] == 429 and 429 not in same[:2], same
        assert statuses([{"Forwarded": 'for="unterminated'}] * 3)[2] == 429  # malformed: the TCP peer counts
    finally:
        stop_server(running)
