"""A verbose trace hook: every hop reports what was sent and what was verified at it.

A hook is any callable ``(hop, details)``. ``details`` always has ``summary`` (one line) and may have
``checks`` (the verifications that passed, in order) and hop-specific values. Secrets (codes, tokens,
verifiers, assertions) are never put in events.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

TraceHook = Callable[[str, Mapping[str, Any]], None]


def format_trace_event(hop: str, details: Mapping[str, Any]) -> str:
    """``"JARM: signature ES256 kid=k1 verified; iss == issuer; ..."``-style single line."""
    summary = str(details.get("summary", ""))
    checks = details.get("checks") or ()
    line = f"{hop}: {summary}" if summary else f"{hop}:"
    if checks:
        line += (" — " if summary else " ") + "; ".join(str(c) for c in checks)
    return line


def print_trace(stream: TextIO | None = None) -> TraceHook:
    """A hook that prints one line per event (to stderr by default)."""

    def hook(hop: str, details: Mapping[str, Any]) -> None:
        print(format_trace_event(hop, details), file=stream or sys.stderr)

    return hook
