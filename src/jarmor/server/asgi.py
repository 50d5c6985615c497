"""ASGI factory for process managers: ``uvicorn --factory jarmor.server.asgi:app_from_environment``."""

from __future__ import annotations

import logging

from starlette.applications import Starlette

from ..config import load_config
from ..store import open_store
from .app import create_app


def app_from_environment() -> Starlette:
    """Build the app from ``JARMOR_CONFIG`` (a TOML file) and ``JARMOR_*`` variables."""
    config = load_config()  # the file named by JARMOR_CONFIG, if any
    logging.captureWarnings(True)  # through the log format uvicorn configured in this worker
    return create_app(config, open_store(config.database, config.redis))
