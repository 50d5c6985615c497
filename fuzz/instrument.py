"""Coverage instrumentation for a fuzz target, only when it runs under atheris (not when CI imports it).

Kept apart from ``harness`` (which imports jarmor): the modules to instrument must be imported inside
``instrumented(...)`` for atheris to rewrite them.
"""

from __future__ import annotations

import contextlib
from typing import Any


def instrumented(module_name: str, include: list[str]) -> Any:
    if module_name != "__main__":
        return contextlib.nullcontext()
    try:
        import atheris
    except ImportError:  # replaying the corpus needs no atheris
        return contextlib.nullcontext()
    return atheris.instrument_imports(include=include)
