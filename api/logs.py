"""Log lines as JSON (`--log-format json`): one object per line with time, level,
logger, pid, message and the id of the request being served (X-Request-Id), if any.

The request id travels in a context variable set by the edge for each HTTP request
and WebSocket connection, so every line logged while serving it carries the id, from
whichever logger (ours, uvicorn's access log, the ORM's)."""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

FORMATS = ("text", "json")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request being served (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing JSON lines to `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{process}{message}{request_id}",
            style="{",
            timestamp="time",
            rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
        )
    )
    handler.addFilter(RequestIdFilter())
    return handler


def json_config(level: str = "INFO") -> dict[str, Any]:
    """A logging.config dict sending every logger (uvicorn's too) through one JSON
    handler on stderr. Handed to uvicorn as its log_config, it also applies in each
    `--workers` process."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"json": {"()": json_handler}},
        "root": {"handlers": ["json"], "level": level.upper()},
        # uvicorn's loggers propagate to the root instead of keeping text handlers of their own.
        "loggers": {
            name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def use_json(level: str = "INFO") -> None:
    logging.config.dictConfig(json_config(level))
