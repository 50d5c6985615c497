"""Log lines: text for people, or one JSON object per line for log pipelines (``--log-format json``).

Uvicorn's own loggers go through the same formatter (``uvicorn_log_config``). Two loggers carry the
structured lines operators search: ``jarmor.access`` (one per HTTP request: route, method, status, duration)
and ``jarmor.decision`` (one per hop of an authorization transaction: flow_id, client, stage, outcome, error
code, effective tier). They log at INFO, so they appear with ``--log-level info``. What they carry is chosen
field by field from values that are never secret — no token, code, secret, assertion, request object or
password is ever a field, and request URLs are logged as their route template, without the query.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import orjson

from ..governance.records import PROGRESS, FlowEvent

ACCESS = logging.getLogger("jarmor.access")
DECISION = logging.getLogger("jarmor.decision")

# attributes every LogRecord has: anything else was passed with ``extra=`` and belongs in the JSON object
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update((k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_"))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def _formatter(fmt: str) -> dict[str, Any]:
    if fmt == "json":
        return {"()": JsonFormatter}
    return {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}


def uvicorn_log_config(fmt: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn (and jarmor) in every worker process."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"jarmor": _formatter(fmt)},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "jarmor", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "py.warnings": {"level": "WARNING", "handlers": [], "propagate": True},
            "uvicorn": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(fmt: str, level: str) -> None:
    logging.config.dictConfig(uvicorn_log_config(fmt, level))
    logging.captureWarnings(True)  # library warnings become log lines in the same format


def log_request(route: str, method: str, status: int, duration: float) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        ACCESS.info(
            "%s %s %d", method, route, status,
            extra={"route": route, "method": method, "status": status, "duration_ms": round(duration * 1000, 2)},
        )


def log_decision(event: FlowEvent) -> None:
    if DECISION.isEnabledFor(logging.INFO):
        DECISION.info(
            "%s %s", event.stage, event.outcome,
            extra={
                "flow_id": event.flow_id,
                "client_id": event.client_id,
                "stage": event.stage,
                "outcome": event.outcome,
                "error": None if event.outcome in PROGRESS else event.outcome,
                "tier": event.tier,
                "grant_type": event.grant_type,
                "channel": event.channel,
            },
        )

