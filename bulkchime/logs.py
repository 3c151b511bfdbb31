"""Logging: structlog, one event per line; JSON when stderr is not a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

__all__ = ["LogFormat", "configure_logging", "logs_are_json"]

LogFormat = Literal["auto", "json", "console"]

#: The format :func:`configure_logging` chose last.
_chosen: list[str] = ["json"]


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the time of writing (the progress bar redirects it).

    A log reader that goes away (a closed pipe) must not stop the job: the log is
    dropped from then on, and the checkpoint and report still say everything.
    """

    def __init__(self) -> None:
        self._gone = False

    def write(self, text: str) -> int:
        if self._gone:
            return len(text)
        try:
            return sys.stderr.write(text)
        except (BrokenPipeError, ValueError, OSError):
            self._gone = True
            return len(text)

    def flush(self) -> None:
        if self._gone:
            return
        try:
            sys.stderr.flush()
        except (BrokenPipeError, ValueError, OSError):
            self._gone = True


def configure_logging(log_format: LogFormat = "auto", level: int = logging.INFO) -> None:
    """Send structlog events to stderr, as JSON lines or for a human at a terminal."""
    if log_format == "auto":
        log_format = "console" if sys.stderr.isatty() else "json"
    _chosen[0] = log_format
    renderer: structlog.types.Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def logs_are_json() -> bool:
    """Whether events go to stderr as JSON lines (for a pipeline), not for a human."""
    return _chosen[0] == "json"
