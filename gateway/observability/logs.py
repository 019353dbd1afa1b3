"""Structured logs to stdout: one JSON object or one key=value line per record."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

# Record attributes that are not `extra=` fields (uvicorn adds an ANSI-coloured copy).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "color_message",
}


_SECOND: tuple[int, str] = (-1, "")  # the last second formatted, as records come in order


def _second(seconds: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` (UTC) of `seconds`, formatted once per second of records."""
    global _SECOND
    cached, text = _SECOND
    if cached != seconds:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _SECOND = (seconds, text)
    return text


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, Any]:
    """What both formats print: the standard four, the `extra=` fields, any exception."""
    entry: dict[str, Any] = {
        "time": f"{_second(int(record.created))}.{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            entry[key] = value
    if record.exc_info:
        entry["exception"] = formatter.formatException(record.exc_info)
    return entry


class JsonFormatter(logging.Formatter):
    """Renders a record and its `extra=` fields as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_fields(self, record), default=str).decode()


_BARE = re.compile(r"[^\s\"=\\]+")


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        # A value with spaces, quotes or `=` is quoted so that each line splits unambiguously.
        return value if _BARE.fullmatch(value) else orjson.dumps(value).decode()
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return orjson.dumps(value).decode()
    return orjson.dumps(value, default=str).decode()


class TextFormatter(logging.Formatter):
    """The same fields as JSON, for humans: `time level logger message key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _fields(self, record)
        head = f"{entry.pop('time')} {entry.pop('level').upper()} {entry.pop('logger')}"
        message = entry.pop("message")
        exception = entry.pop("exception", None)
        pairs = " ".join(f"{key}={_text_value(value)}" for key, value in entry.items())
        line = " ".join(part for part in (head, message, pairs) if part)
        return f"{line}\n{exception}" if exception else line


def configure_logging(log_format: str, level: str = "INFO") -> None:
    """Called once by the CLI; the app itself never configures logging."""
    handler = logging.StreamHandler(sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    # No format prints the thread, process or source line a record came from: don't look them
    # up per record (the logging HOWTO's "Optimization"; finding the caller walks the stack).
    # The attributes stay, set to None (the source line to "(unknown file)", 0).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; the access line already says what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
