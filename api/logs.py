"""Structured logs: one JSON object per line, with the request id, never a token or an amount."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

_FIELDS = ("request_id", "method", "path", "status", "ms", "role", "worker", "position", "first", "last", "rows")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        given = record.__dict__  # the `extra` fields are attributes of the record
        entry.update((field, given[field]) for field in _FIELDS if field in given)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: int = logging.INFO) -> None:
    # What the lines never show, but every record would gather (the process id is a system call on
    # every request): the logging HOWTO's optimisation switches.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no caller's file and line: a frame walk per record
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log repeats what the request log says, with the query string: keep it off.
    logging.getLogger("uvicorn.access").disabled = True
