"""One logging set-up for every process: the `wijkbudget serve` supervisor and each of its
uvicorn workers (uvicorn applies `uvicorn_log_config` in every process it starts, and
`create_app` applies it when nobody configured logging), so all of them write the same lines.

`LOG_FORMAT=text` (the default in development): one readable line per record,

    2026-12-05T17:35:12.123Z INFO [4711] wijkbudget.request GET /api/v1/processes 200 3.1ms
    request_id=5f0c... (on the same line)

`LOG_FORMAT=json` (for production, to feed a log collector): one JSON object per line with

    time         ISO 8601 in UTC, milliseconds ("2026-12-05T17:35:12.123Z")
    level        DEBUG, INFO, WARNING, ERROR or CRITICAL
    logger       "wijkbudget.request" for the request log, else the module's logger
    pid          the process (each worker has its own)
    message      the line as the text format shows it
    request_id   the request being served (X-Request-ID), on every record made while it runs
    method, path, status, duration_ms
                 on request lines: the path escaped, receipts masked, no query string
    error, traceback
                 on a record with an exception: "Type: message" and the one traceback

What is never logged: request bodies (passwords, ballots), headers (tokens), query strings,
a receipt in a path, SQL parameters (engines hide them in errors: app/core/db.py), and the
SQL itself (the root logger stays at WARNING, so SQLAlchemy's INFO echo is off whatever
LOG_LEVEL says). An unexpected error is logged once, by the app's handler with its request
id; uvicorn's second report of the same exception is dropped.
"""

import contextlib
import json
import logging
import logging.config
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

# The request being served, set by RequestContextMiddleware; every record made in its task
# carries it (the error handler runs outside that middleware, in the same task).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes a request line carries beyond the message (JSON fields of their own).
REQUEST_FIELDS = ("method", "path", "status", "duration_ms")
_REPORTED = "_wijkbudget_logged"


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class ContextFilter(logging.Filter):
    """Adds `request_id` to every record, and drops a second report of an exception that
    was logged already (uvicorn's "Exception in ASGI application" after the app's handler
    logged it with the request id): one traceback per error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if getattr(exc, _REPORTED, False):
                return False
            # An exception type with __slots__ cannot be marked: then it is reported again.
            with contextlib.suppress(AttributeError):
                setattr(exc, _REPORTED, True)
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{_timestamp(record)} {record.levelname} [{record.process}] {record.name} "
            f"{record.getMessage()}"
        )
        request_id = getattr(record, "request_id", None)
        if request_id:
            line += f" request_id={request_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for field in REQUEST_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time (a test may swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def log_config(level: str, fmt: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of every process (uvicorn's `log_config`)."""
    level = level.upper()
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    own = {"level": level, "handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"app": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "()": f"{__name__}.StderrHandler",
                "formatter": "app",
                "filters": ["context"],
            }
        },
        # Libraries only from WARNING: SQLAlchemy logs statements and parameters at INFO.
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            "wijkbudget": own,
            "uvicorn": own,
            "uvicorn.error": own,
            # The request log is the app's (with request ids and masked paths), not uvicorn's.
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # Alembic narrates every upgrade at INFO; commands say what they did themselves.
            "alembic": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure(level: str, fmt: str) -> None:
    logging.config.dictConfig(log_config(level, fmt))


def ensure_configured(level: str, fmt: str) -> None:
    """Configure logging unless someone did already (uvicorn with our `log_config`, the
    command line, a test's log capture): an app started by a bare `uvicorn ... --factory`
    still writes the same lines."""
    root = logging.getLogger()
    if not root.handlers:
        configure(level, fmt)
    logging.getLogger("wijkbudget").setLevel(level.upper())
