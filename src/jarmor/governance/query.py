"""Finding flows: the filters shared by ``jarmor flows`` and the dashboard's flow-record page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ..store.base import FlowRecordStore
from .flows import FlowSummary, matches_outcome, summarize

_DURATION = re.compile(r"(\d{1,9})\s*(s|m|min|h|d|w)")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DEFAULT_LIMIT = 200
OUTCOME_SCAN = 20
MAX_SCAN = 50_000


class QueryError(ValueError):
    """A filter value cannot be understood."""


def parse_since(text: str, now: int) -> int:
    """``DURATION`` before ``now`` (``90s``, ``30m``, ``12h``, ``7d``, ``2w``) or a ``DATE`` / date-time in
    ISO 8601 (``2025-01-31``, ``2025-01-31T08:00``, ``...Z`` or with an offset; without one, UTC)."""
    value = text.strip()
    m = _DURATION.fullmatch(value)
    if m:
        return now - int(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError("--since: use a duration (30m, 12h, 7d) or a date (2025-01-31)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


OUTCOME_HELP = "success, error, incomplete, pending, or an exact outcome (invalid_request, code_not_redeemed ...)"


@dataclass(frozen=True, slots=True)
class FlowQuery:
    client_id: str | None = None
    since: int | None = None
    outcome: str | None = None
    limit: int = DEFAULT_LIMIT


async def find_flows(store: FlowRecordStore, query: FlowQuery, now: int) -> list[FlowSummary]:
    """The newest ``query.limit`` flows matching the filters, newest first.

    ``since`` selects flows with a record at or after it (their earlier records are included). The outcome is
    known only once a flow's records are summarized, so with an outcome filter the newest ``OUTCOME_SCAN``
    times ``limit`` flows are summarized and filtered."""
    window = query.limit if not query.outcome else min(query.limit * OUTCOME_SCAN, MAX_SCAN)
    rows = await store.for_flows(since=query.since, client_id=query.client_id, limit=window)
    return [s for s in summarize(rows, now) if matches_outcome(s, query.outcome)][: query.limit]
