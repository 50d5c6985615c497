"""Parsing ``--since`` and the flow query shared by the command line and the dashboard."""

from __future__ import annotations

import pytest

from jarmor.governance.query import FlowQuery, QueryError, find_flows, parse_since
from jarmor.governance.records import seal
from jarmor.store.flow_memory import MemoryFlowRecordStore

from .conftest import T0, event


@pytest.mark.parametrize(("text", "ago"), [("90s", 90), ("30m", 1800), ("30min", 1800), ("12h", 43200),
                                           ("7d", 604800), ("2w", 1209600)])
def test_durations(text: str, ago: int) -> None:
    assert parse_since(text, T0) == T0 - ago


def test_dates() -> None:
    assert parse_since("2023-11-14", T0) == 1_699_920_000
    assert parse_since("2023-11-14T22:13:20Z", T0) == T0
    assert parse_since("2023-11-14T23:13:20+01:00", T0) == T0
    assert parse_since("2023-11-14T22:13:20", T0) == T0  # no offset: UTC


@pytest.mark.parametrize("bad", ["yesterday", "7x", "", "-5d", "2023-13-01"])
def test_refused(bad: str) -> None:
    with pytest.raises(QueryError):
        parse_since(bad, T0)


async def test_find_flows_filters_by_outcome_after_summarizing() -> None:
    store = MemoryFlowRecordStore()
    evs = [event(f"ok{i}", "token", "tokens_issued", T0 + i) for i in range(30)]
    evs += [event(f"bad{i}", "par", "invalid_client", T0 + 100 + i) for i in range(3)]
    await store.append([e.entry() for e in evs], seal)
    found = await find_flows(store, FlowQuery(outcome="success", limit=5), T0 + 1000)
    assert [f.flow_id for f in found] == ["ok29", "ok28", "ok27", "ok26", "ok25"]
    assert len(await find_flows(store, FlowQuery(outcome="error"), T0 + 1000)) == 3
    assert len(await find_flows(store, FlowQuery(since=T0 + 100), T0 + 1000)) == 3
