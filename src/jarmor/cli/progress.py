"""Progress of long commands on a terminal: one line on standard error, rewritten in place at most five times
a second, erased at the end. When standard error is not a terminal (a pipe, a file, CI) nothing is written,
so output that scripts read stays exactly what it was."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..config import from_environment


class Progress:
    def __init__(self, label: str, *, stream: TextIO | None = None, interval: float | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        # JARMOR_TEST_PROGRESS_INTERVAL: tests see every update instead of five a second
        if interval is None:
            interval = float(from_environment("test_progress_interval") or 0.2)
        self.interval = interval
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        of = f" of {total}" if total is not None else ""
        self.stream.write(f"\r{self.label}: {done}{of}\x1b[K")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
