"""structlog set-up: JSON lines for journald and files, readable lines on a terminal.

Every line carries the device id, so logs merged from many boxes stay attributable.
Logs go to stderr; stdout is kept for command output a person or a script reads.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

_device_id = "unknown"


def _add_device_id(_logger: Any, _name: str, event: EventDict) -> EventDict:
    # set unconditionally: no event field may pass for the device this line came from
    event["device_id"] = _device_id
    return event


class _StderrLogger:
    """Writes each line to whatever ``sys.stderr`` is at that moment (not at configure
    time), so a replaced stream (a test's capture, a daemon's redirect) is never stale."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stderr_logger_factory(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(device_id: str, level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog once per process; ``json=None`` picks by whether stderr is a tty."""
    global _device_id
    _device_id = device_id
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_device_id,
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=_stderr_logger_factory,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
