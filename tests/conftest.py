from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .kit import Kit, make_kit


@pytest.fixture
async def kit() -> AsyncIterator[Kit]:
    k = await make_kit()
    try:
        yield k
    finally:
        await k.http.aclose()
