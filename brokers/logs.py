"""structlog set-up for every process: one JSON event per line, at the edges only.

aiokafka logs every failed connection and metadata retry while a broker is away (784
lines in 20 s for one consumer and one producer); ``RepeatFilter`` lets each of its
messages through once a minute and counts the rest, so an outage reads as one
``broker-unreachable`` event (``brokers.broker_probe``) and a few lines, not a flood.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import structlog

__all__ = ["RepeatFilter", "configure_logging"]


class RepeatFilter(logging.Filter):
    """Pass each message template of ``prefix`` loggers at most once per ``window`` s."""

    def __init__(
        self,
        prefix: str = "aiokafka",
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefix, self.window, self.clock = prefix, window, clock
        self._last: dict[tuple[str, object], float] = {}
        self.suppressed: dict[tuple[str, object], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefix):
            return True
        key, now = (record.name, record.msg), self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self.suppressed.pop(key, 0)
        if held:
            record.msg = f"{record.msg} (and {held} like it in the last {self.window:g} s)"
        return True


def configure_logging(level: str = "info", path: Path | None = None) -> None:
    """JSON lines to ``path`` (or stderr); stdlib logging (aiokafka) goes the same way."""
    stream: TextIO
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("a", encoding="utf-8", buffering=1)
    else:
        stream = sys.stderr
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(
        stream=stream,
        level=max(numeric, logging.WARNING),
        force=True,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatFilter())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
