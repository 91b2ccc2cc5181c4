"""structlog set-up for every process: one JSON event per line, at the edges only."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog

__all__ = ["configure_logging"]


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
