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
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def _stamp(seconds: int, millis: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), the second formatted once per second of records: the
    one time format of both the formatter and the direct access line."""
    global _SECOND
    cached, text = _SECOND
    if cached != seconds:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _SECOND = (seconds, text)
    return text + (_MILLIS[millis] if 0 <= millis < 1000 else f".{millis:03d}Z")


# The `extra=` fields of a record, by the record's attribute names in order: records from one
# call site have the same names, and picking them out of ~35 names in Python was most of the
# cost of formatting a line. Bounded: past the cap, shapes are worked out per record.
_EXTRA_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}
_MAX_SHAPES = 256


def _extra_names(attributes: dict[str, Any]) -> tuple[str, ...]:
    shape = tuple(attributes)
    names = _EXTRA_NAMES.get(shape)
    if names is None:
        names = tuple(k for k in shape if k not in _STANDARD and not k.startswith("_"))
        if len(_EXTRA_NAMES) < _MAX_SHAPES:
            _EXTRA_NAMES[shape] = names
    return names


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, Any]:
    """What both formats print: the standard four, the `extra=` fields, any exception."""
    entry: dict[str, Any] = {
        "time": _stamp(int(record.created), int(record.msecs)),
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": record.getMessage(),
    }
    attributes = record.__dict__
    names = _extra_names(attributes)
    entry.update(zip(names, map(attributes.__getitem__, names), strict=True))
    if record.exc_info:
        entry["exception"] = formatter.formatException(record.exc_info)
    return entry


def log_fields(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, msg, extra=fields)` for a line logged on every request, for less.

    `fields` are plain names (none of a `LogRecord`'s own, none starting with `_`), as
    `extra=` takes them. When the only handler the record would reach is the JSON one
    `configure_logging` installs, with no filter anywhere, nothing can see a record: the line
    that handler would write is written directly, under its lock. Otherwise the record is
    made by the record factory and goes through `Logger.handle`, so every filter and handler
    gets it, only without `makeRecord`'s per-name check; and where logging would look up the
    caller's source line, or a factory or logger class of the user's own is in place, this
    is `logger.log` itself."""
    if not logger.isEnabledFor(level):
        return
    handler = _sole_json_handler(logger, level)
    if handler is not None:
        ns = time.time_ns()
        seconds, rest = divmod(ns, 1_000_000_000)
        # The JSON formatter's line for the record: its time (nothing to escape), the three
        # fields fixed per call site, then `fields`; one orjson call for what varies.
        key = (level, logger.name, msg)
        head = _HEADS.get(key)
        if head is None:
            head = _head(*key)
            if len(_HEADS) < _MAX_SHAPES:
                _HEADS[key] = head
        # Handler.acquire and release, without their two calls: the handler's own lock.
        lock = handler.lock
        if lock:
            lock.acquire()
        try:
            # StreamHandler.emit and its flush (under the lock Handler.handle takes), with the
            # formatting inside: a value orjson refuses goes to handleError, as from format()
            tail = orjson.dumps(fields, default=str).decode()
            stamp = _stamp(seconds, rest // 1_000_000)
            end = handler.terminator
            if len(tail) > 2:
                line = f'{{"time":"{stamp}",{head},{tail[1:]}{end}'
            else:
                line = f'{{"time":"{stamp}",{head}}}{end}'
            stream = handler.stream
            stream.write(line)
            if stream and hasattr(stream, "flush"):
                stream.flush()
        except RecursionError:
            raise
        except Exception:
            handler.handleError(_record(logger, level, msg, fields))
        finally:
            if lock:
                lock.release()
        return
    if (
        logging._srcfile is not None  # what Logger._log reads (configure_logging sets it)
        or type(logger) is not logging.Logger
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        logger.log(level, msg, extra=fields, stacklevel=2)
        return
    logger.handle(_record(logger, level, msg, fields))


_HEADS: dict[tuple[int, str, str], str] = {}


def _head(level: int, name: str, msg: str) -> str:
    """`"level":…,"logger":…,"message":…` as the JSON formatter writes them."""
    entry = {"level": logging.getLevelName(level).lower(), "logger": name, "message": msg}
    return orjson.dumps(entry).decode()[1:-1]


def _record(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> Any:
    """What `Logger._log` makes when it does not look up the caller."""
    record = logging.LogRecord(
        logger.name, level, "(unknown file)", 0, msg, (), None, "(unknown function)", None
    )
    record.__dict__.update(fields)
    return record


def _sole_json_handler(logger: logging.Logger, level: int) -> logging.StreamHandler[Any] | None:
    """The one handler a record of `level` from `logger` would reach, when it is a plain
    StreamHandler with the JSON formatter and no filter applies on the way; else None."""
    if logger.disabled or logger.filters or type(logger) is not logging.Logger:
        return None
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if level >= handler.level:
                if (
                    found is not None
                    or type(handler) is not logging.StreamHandler
                    or handler.filters
                    or type(handler.formatter) is not JsonFormatter
                ):
                    return None
                found = handler
        current = current.parent if current.propagate else None
    return found


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
