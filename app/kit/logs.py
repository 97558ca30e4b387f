"""Logging set-up: dotted event names as messages, ids in ``extra``, JSON or console lines.

Log records name events (``inbox.recorded``, ``ghl.request_failed``) and carry ids and counts,
never payloads, tokens or secrets. The ids of the work in hand (connection, event, record) are bound
once with ``log_context`` and appear on every line logged inside it, in that asyncio task only. Every
line is masked on the way out (``app.kit.masking``): emails, phones, names, bearer tokens and signing
secrets never reach the log, even from a library's message or an upstream's error text.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from app.kit.masking import scrub, scrub_value
from app.kit.streak import error_text

_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("log_context", default={})  # noqa: B039 - never mutated


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Put ``ids`` (connection, event, record, ...) on every line logged inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **ids})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind_log_context(**ids: Any) -> None:
    """Add ids to the current context until it ends (the asyncio task, or the ``log_context`` block)."""
    _CONTEXT.set({**_CONTEXT.get(), **ids})


# Attributes every record has, and uvicorn's ANSI-coloured copy of its message: not extras worth printing.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The context's ids, then the record's own extras, each masked."""
    fields = {**_CONTEXT.get(), **{k: v for k, v in record.__dict__.items() if k not in _STANDARD}}
    return {key: scrub_value(key, value) for key, value in fields.items()}


def _message(record: logging.LogRecord) -> str:
    return scrub(record.getMessage())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": _message(record),
            "logger": record.name,
            **_extras(record),
        }
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


# Control characters and the bidirectional overrides, as \x.. / \u.... escapes: a value from a webhook
# must not end a console line early, move the cursor, or reorder what the terminal shows.
_UNPRINTABLE = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [
        *range(0x20),
        *range(0x7F, 0xA0),
        0x061C,
        0x200E,
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
}


def printable(text: str) -> str:
    """``text`` with control and bidi-override characters escaped."""
    return text.translate(_UNPRINTABLE)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        extras = " ".join(f"{key}={printable(str(value))}" for key, value in _extras(record).items())
        line = f"{stamp} {record.levelname:<7} {printable(_message(record))} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


# Database drivers whose own retries log a traceback on every try (asyncpg's pool restoring its
# connections during an outage); the service reports the outage itself, once.
_DRIVERS = frozenset({"asyncpg", "aiosqlite", "sqlalchemy"})


def _driver_error_in_one_line(record: logging.LogRecord) -> bool:
    """A driver's error as one line: its message and the error's first line, no traceback."""
    if record.name.partition(".")[0] in _DRIVERS and record.exc_info and record.exc_info[1] is not None:
        record.msg = f"{record.getMessage()} ({error_text(record.exc_info[1])})"
        record.args = None
        record.exc_info = record.exc_text = None
    return True


def configure_logging(level: str, fmt: str, stream: IO[str] | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    if level != "DEBUG":
        handler.addFilter(_driver_error_in_one_line)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; keep it quiet unless debugging.
    logging.getLogger("httpx").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
    # Database drivers log every statement with its parameters (whole webhook payloads) at DEBUG;
    # alembic names its plugins at INFO when the service reads its migration head.
    for noisy in ("aiosqlite", "asyncpg", "sqlalchemy.engine", "httpcore", "multipart", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
