"""Fixtures for the server suites: an in-process server with a controllable clock and shared server keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.kit import Clock, Kit, make_kit

KitFactory = Callable[..., Awaitable[Kit]]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(clock: Clock) -> AsyncIterator[KitFactory]:
    """Build kits with custom policy/settings; all share ``clock`` and are closed after the test."""
    made: list[Kit] = []

    async def factory(**kw: Any) -> Kit:
        kw.setdefault("clock", clock)
        k = await make_kit(reuse_server_keys=True, **kw)
        made.append(k)
        return k

    yield factory
    for k in made:
        await k.http.aclose()


@pytest.fixture
async def kit(make: KitFactory, request: pytest.FixtureRequest) -> Kit:
    """``@pytest.mark.signs_in``: the kit's user alice signs in for real (``make_kit(user=...)``), as flows at
    the built-in ``high`` and ``critical`` tiers need (they require authentication assurance)."""
    return await make(user="alice" if request.node.get_closest_marker("signs_in") else None)
