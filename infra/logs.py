"""JSON logs that carry the request id and never personal data in clear.

Every line passes through ``pii.scrub_text`` as a last line of defence: code should log ids and
masked values, but a stray ID or phone number in an exception message must not reach the disk.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
import time

import orjson

from infra import pii

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# ``json.dumps`` with options builds a new encoder for every call; this is the same encoder, built once.
# It writes what orjson refuses (an integer past 64 bits).
_encode_slowly = json.JSONEncoder(ensure_ascii=False, default=str).encode
_second_text: tuple[int, str] = (-1, "")


def utc_millis_text(created: float) -> str:
    """``created`` as ISO 8601 in UTC to the millisecond, "2026-12-01T04:31:00.123+00:00".

    What ``datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds")``
    gives, for a fifth of its cost: the text of the second is made once a second, not once a line.
    """
    global _second_text
    second = int(created)
    micros = round((created - second) * 1_000_000)  # datetime rounds to the microsecond first
    if micros == 1_000_000:
        second, micros = second + 1, 0
    cached = _second_text  # one read: another thread may replace it meanwhile
    if cached[0] != second:
        cached = _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": utc_millis_text(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return pii.scrub_text(_encode(entry))


def _encode(entry: dict) -> str:
    """Compact JSON (orjson: a tenth of the standard encoder's cost on a request line)."""
    try:
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return _encode_slowly(entry)


class BatchedInfoLog:
    """``logger.info(message, extra=fields)`` for the line every request writes, made cheap.

    Through ``logging`` that line cost 11% of a red-packet grab's CPU (py-spy): a ``LogRecord``,
    the handler's lock, the formatter walking the record's attributes, and one write per line.
    When the logger ends in our usual configuration (one plain ``StreamHandler`` with the
    ``JsonFormatter``, no filters), the line is built here as that formatter builds it (same keys
    in the same order, the same masking) and the lines of one event-loop turn go out in one write.
    In any other configuration (text lines, other handlers, no running loop) ``logging`` writes it.
    ``fields`` must not use a ``LogRecord`` attribute's name (``logging`` refuses those too)."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._pending: list[str] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None  # the loop a write is due on

    def info(self, message: str, fields: dict) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        handler = self._json_stream_handler()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if handler is None or loop is None:
            self.logger.info(message, extra=fields)
            return
        entry = {"ts": utc_millis_text(time.time()), "level": "INFO", "logger": self.logger.name, "message": message}
        request_id = fields.get("request_id") or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in fields.items():
            entry.setdefault(key, value)
        self._pending.append(_encode(entry))
        if self._scheduled_on is not loop:  # (a loop closed before its write ran leaves its lines to the next)
            self._scheduled_on = loop
            loop.call_soon(self._write, handler)

    def _write(self, handler: logging.StreamHandler) -> None:
        lines, self._pending, self._scheduled_on = self._pending, [], None
        # Line by line: a line is first checked for a long digit run, and only one that has one is
        # searched (scrubbing the joined lines would search them all whenever one had a run).
        text = "".join(f"{pii.scrub_text(line)}\n" for line in lines)
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.flush()
        except (OSError, ValueError):  # the stream was closed under us (shutdown): as logging, go on
            pass
        finally:
            handler.release()

    def _json_stream_handler(self) -> logging.StreamHandler | None:
        handlers, logger = [], self.logger
        while logger is not None:
            if logger.filters:
                return None
            handlers += logger.handlers
            logger = logger.parent if logger.propagate else None
        if len(handlers) != 1:
            return None
        handler = handlers[0]
        fits = type(handler) is logging.StreamHandler and type(handler.formatter) is JsonFormatter
        return handler if fits and not handler.filters and handler.level <= logging.INFO else None


class ScrubbingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = request_id_var.get()
        line = super().format(record)
        return pii.scrub_text(f"[{request_id}] {line}" if request_id else line)


def lean_log_records() -> None:
    """Stop ``logging`` from finding, for every record, what no formatter of ours prints.

    Each record would otherwise walk the stack for the caller's file, line and function and look
    up the thread, process and multiprocessing names: about 2 µs of the one log line every request
    writes. These are process-wide ``logging`` switches (the logging HOWTO's "Optimization" section
    names them); records then say "(unknown file)", line 0 and no thread or process, which neither
    formatter here prints. Tracebacks are unaffected.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def log_config(*, json_lines: bool, level: str) -> dict:
    """A ``logging.config.dictConfig`` for our loggers and Sanic's, handed to ``Sanic(log_config=)``."""
    formatter = "json" if json_lines else "text"
    handler = {"class": "logging.StreamHandler", "formatter": formatter, "stream": sys.stderr}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": ScrubbingTextFormatter, "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {"default": handler},
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            name: {"level": level, "handlers": ["default"], "propagate": False}
            for name in ("sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets")
        },
    }
