"""Fixtures for the governance suites: flow events, and flow record stores of every kind.

``flow_store`` is parametrized over the in-memory store, SQLite (a file) and PostgreSQL (a fresh schema; skipped
unless ``JARMOR_TEST_POSTGRES_URL`` is set). Tampering goes through ``tamper(store, sql)`` : plain SQL on the
database, as an attacker with write access would do it (the memory store emulates each statement used).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from jarmor.governance.records import FlowEvent
from jarmor.store import SqlStore
from jarmor.store.base import FlowRecordStore
from jarmor.store.flow_memory import MemoryFlowRecordStore
from tests.store import services

T0 = 1_700_000_000


def event(flow_id: str = "f1", stage: str = "par", outcome: str = "pushed", at: int = T0, **kw: Any) -> FlowEvent:
    kw.setdefault("client_id", "c1")
    return FlowEvent(flow_id=flow_id, stage=stage, outcome=outcome, at=at, **kw)


class Flows:
    """A flow record store plus raw access for tampering with it."""

    def __init__(self, store: FlowRecordStore, sql: SqlStore | None) -> None:
        self.store = store
        self.sql = sql

    def execute(self, statement: str, **params: Any) -> None:
        assert self.sql is not None
        with self.sql.engine.begin() as conn:
            conn.exec_driver_sql(statement, params if params else ())


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def flows_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Flows]:
    kind = request.param
    if kind == "memory":
        yield Flows(MemoryFlowRecordStore(), None)
        return
    with ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'flows.db'}"
        else:
            url = stack.enter_context(services.postgres_schema())
        store = SqlStore.open(url)
        try:
            yield Flows(store.flows, store)
        finally:
            await store.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'flows.db'}"
