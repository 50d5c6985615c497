"""The protocol suites call the core directly, with the same server environment as tests/server."""

from __future__ import annotations

from tests.server.conftest import KitFactory, clock, kit, make

__all__ = ["KitFactory", "clock", "kit", "make"]
