from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, settings

from .kit import Kit, make_kit

# Hypothesis profiles: ``ci`` (default) keeps the suite fast; ``HYPOTHESIS_PROFILE=long`` runs many more
# examples (the long pass documented in docs/security.md). No deadline: in-process HTTP on a shared CI
# machine has uneven latency, and slowness is asserted where it matters (bounded-cost tests).
settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    """``@pytest.mark.signs_in``: the kit's user alice signs in for real (``make_kit(user=...)``)."""
    k = await make_kit(user="alice" if request.node.get_closest_marker("signs_in") else None)
    try:
        yield k
    finally:
        await k.http.aclose()
