"""structlog set-up: JSON lines for journald and files, readable lines on a terminal.

Every line carries the device id, so logs merged from many boxes stay attributable.
Logs go to stderr; stdout is kept for command output a person or a script reads.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

_device_id = "unknown"


def _add_device_id(_logger: Any, _name: str, event: EventDict) -> EventDict:
    # set unconditionally: no event field may pass for the device this line came from
    event["device_id"] = _device_id
    return event


# syslog priorities, which journald reads from a "<N>" prefix on each line
PRIORITY = {"debug": 7, "info": 6, "msg": 6, "log": 6, "warn": 4, "warning": 4, "error": 3,
            "exception": 3, "critical": 2, "fatal": 2}


def stderr_is_journal() -> bool:
    """systemd connected stderr to journald: it sets JOURNAL_STREAM to the stream's
    "device:inode", which is compared so that a redirected stderr does not count."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        info = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{info.st_dev}:{info.st_ino}"


class _StderrLogger:
    """Writes each line to whatever ``sys.stderr`` is at that moment (not at configure
    time), so a replaced stream (a test's capture, a daemon's redirect) is never stale.

    Under journald each line starts with its syslog priority (``<3>`` for an error), so
    ``journalctl -p err`` finds errors; without it every line would be stored at info."""

    def __init__(self, journal: bool) -> None:
        self.journal = journal

    def _write(self, level: str, message: str) -> None:
        prefix = f"<{PRIORITY[level]}>" if self.journal else ""
        print(prefix + message, file=sys.stderr, flush=True)

    def debug(self, message: str) -> None:
        self._write("debug", message)

    def info(self, message: str) -> None:
        self._write("info", message)

    def warning(self, message: str) -> None:
        self._write("warning", message)

    def error(self, message: str) -> None:
        self._write("error", message)

    def critical(self, message: str) -> None:
        self._write("critical", message)

    msg = log = info
    warn = warning
    exception = error
    fatal = critical


def configure_logging(device_id: str, level: str = "INFO", json: bool | None = None,
                      journal: bool | None = None) -> None:
    """Configure structlog once per process; ``json=None`` picks by whether stderr is a tty,
    ``journal=None`` by whether systemd connected stderr to journald."""
    global _device_id
    _device_id = device_id
    if json is None:
        json = not sys.stderr.isatty()
    if journal is None:
        journal = stderr_is_journal()
    logger = _StderrLogger(journal)
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
        logger_factory=lambda *_args: logger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
