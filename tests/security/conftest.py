"""Fixtures for the attack suites: the server suites' kit (shared server keys, controllable clock) and the
two clients most attacks aim at."""

from __future__ import annotations

import pytest

from tests.kit import Kit, TestClient
from tests.server.conftest import KitFactory, clock, kit, make

__all__ = ["KitFactory", "base", "clock", "elev", "kit", "make"]


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    """Baseline tier: plain requests allowed, every response mode registered, private_key_jwt."""
    return await kit.add_client(risk_tier="baseline")


@pytest.fixture
async def elev(kit: Kit) -> TestClient:
    """Elevated tier: signed request objects, JARM and private_key_jwt required."""
    return await kit.add_client(risk_tier="elevated")
