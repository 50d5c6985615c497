"""Fixtures for the storage contract: every implementation behind one parametrized ``store``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from jarmor.store import MemoryStore, Store
from jarmor.store.sql import SqlStore

T0 = 1_700_000_000


class FakeClock:
    """An injectable ``time.time`` that only moves when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _memory(clock: FakeClock, tmp_path: Path) -> Any:
    return MemoryStore(clock)


def _sqlite_memory(clock: FakeClock, tmp_path: Path) -> Any:
    return SqlStore.open("sqlite://", clock=clock)


def _sqlite_file(clock: FakeClock, tmp_path: Path) -> Any:
    return SqlStore.open(f"sqlite:///{tmp_path / 'jarmor.db'}", clock=clock)


OPENERS: dict[str, Callable[[FakeClock, Path], Any]] = {
    "memory": _memory,
    "sqlite-memory": _sqlite_memory,
    "sqlite-file": _sqlite_file,
}


@pytest.fixture(params=list(OPENERS))
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(store_kind: str, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store = OPENERS[store_kind](clock, tmp_path)
    yield opened
    await opened.close()


@pytest.fixture(params=["sqlite-memory", "sqlite-file"])
async def sql_store(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[SqlStore]:
    opened: SqlStore = OPENERS[request.param](clock, tmp_path)
    yield opened
    await opened.close()
