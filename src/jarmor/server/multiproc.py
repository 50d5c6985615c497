"""One directory for every worker's metric values; kept apart from ``metrics`` because it must run before
``prometheus_client`` is first imported in the process (the library picks its value storage at import)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess() -> Callable[[], None]:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory (unless the operator chose one); returns the
    clean-up to run at exit."""
    if os.environ.get(MULTIPROC_ENV):
        return lambda: None
    path = tempfile.mkdtemp(prefix="jarmor-metrics-")
    os.environ[MULTIPROC_ENV] = path

    def cleanup() -> None:
        # the variable goes with the directory: a process that runs ``serve`` in-process and goes on (a test
        # calling ``main(["serve", ...])``) must not hand a removed directory to the servers it starts next
        if os.environ.get(MULTIPROC_ENV) == path:
            del os.environ[MULTIPROC_ENV]
        shutil.rmtree(path, ignore_errors=True)

    return cleanup
