"""Logs: one line per request, the request id on every line, text or JSON.

- ``REQUEST_ID`` holds the id of the request being served (http/observe.py sets it), and
  ``RequestIdFilter`` puts it on every log record, so a warning logged while serving a
  request (a breaker opening, a store timeout, a traceback) names the request it hurt.
- ``RequestLog`` writes the per-request line. It does not go through ``logging``: a
  LogRecord, its handler lock and its formatter cost more than the cached read they would
  describe. A request only keeps its fields; its line is formatted, with plain string
  formatting, together with the others of its batch (the same work, run in one loop: the
  log's cost on a cached hit went from 6.5% to 2-5%, issue 18's note), and written at most
  FLUSH_AFTER seconds after the first of them, or at once when FLUSH_LINES are waiting, and
  at shutdown. One write per batch, not per request: a write per line (or per event-loop
  iteration, which under load holds one or two requests) cost 6% of a cached read's
  throughput in the bench; a process killed with SIGKILL loses at most the last batch.
- ``log_config`` is the dictConfig `eventapi serve` gives uvicorn: its loggers and ours,
  one handler, text (readable in a terminal) or JSON (EVENTAPI_LOG_FORMAT=json, one object
  per line for aggregators).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import time
from typing import Any, Literal, TextIO

import orjson

LogFormat = Literal["text", "json"]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """Readable lines, stamped in UTC like the request lines."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: the same keys as the request lines where they overlap."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def log_config(level: str, fmt: LogFormat) -> dict[str, Any]:
    """uvicorn's loggers and ours through one handler on stderr, with the request id."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {"()": f"{__name__}.TextFormatter", "fmt": TEXT_FORMAT}
    )
    logger = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "loggers": {"uvicorn": logger, "uvicorn.error": logger, "eventapi": logger},
    }


FLUSH_AFTER = 0.05  # seconds the first waiting line may wait
FLUSH_LINES = 256  # lines that are written at once, however soon

# A request's line as kept until written: time (epoch seconds), client, method, route,
# status, duration (seconds), cache outcome, request id.
Line = tuple[float, str, str, str, int, float, str, str]


class RequestLog:
    """The per-request line, written in batches (see the module docstring)."""

    def __init__(self, fmt: LogFormat, stream: TextIO | None = None) -> None:
        self._json = fmt == "json"
        self._stream = stream
        self._pending: list[Line] = []
        self._timer: asyncio.TimerHandle | None = None

    def write(
        self,
        client: str,
        method: str,
        route: str,
        status: int,
        seconds: float,
        cache: str,
        request_id: str,
    ) -> None:
        # Only the fields are kept here: the lines are formatted together when written.
        pending = self._pending
        pending.append((time.time(), client, method, route, status, seconds, cache, request_id))
        if len(pending) == 1:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)
        elif len(pending) >= FLUSH_LINES:
            self.flush()

    def _text(self, lines: list[Line]) -> str:
        out: list[str] = []
        second, second_text, millisecond, stamp = -1, "", -1, ""
        for at, client, method, route, status, seconds, cache, request_id in lines:
            now = int(at * 1000)
            if now != millisecond:  # under load, many lines share a millisecond
                millisecond = now
                whole, fraction = divmod(now, 1000)
                if whole != second:  # one strftime a second, not one a line
                    second = whole
                    second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
                stamp = f"{second_text}.{fraction:03d}Z"
            ms = seconds * 1000
            if self._json:
                out.append(
                    orjson.dumps(
                        {
                            "time": stamp,
                            "level": "info",
                            "logger": "eventapi.request",
                            "client": client,
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(ms, 3),
                            "cache": cache,
                            "request_id": request_id,
                        }
                    ).decode()
                )
            else:
                out.append(
                    f"{stamp} {client} {method} {route} {status} {ms:.1f}ms {cache} id={request_id}"
                )
        out.append("")
        return "\n".join(out)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        text = self._text(self._pending)
        self._pending.clear()
        stream = self._stream or sys.stderr  # looked up late: tests and uvicorn swap it
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not fail requests
            pass


def _iso(created: float) -> str:
    second = int(created)
    clock = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{clock}.{int((created - second) * 1000):03d}Z"
