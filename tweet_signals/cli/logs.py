"""Where the CLI's log records go: short lines on the console, full detail in a log file.

The CLI points Prefect at ``logging.yml`` beside this module (``PREFECT_LOGGING_SETTINGS_PATH``),
so the pool workers it spawns, which inherit the environment, log the same way. Without
``--verbose`` the console shows the pipeline's own lines and the command's final line, and no
tracebacks; Prefect's records (task failures with their tracebacks included) go to the log file,
``$PREFECT_HOME/tweet-signals.log`` unless ``TWEET_SIGNALS_LOG_FILE`` names another. The Prefect
API keeps every run's log as well (the UI's run page).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any

from prefect.logging.formatters import PrefectFormatter

SETTINGS = Path(__file__).with_name("logging.yml")
LOG_FILE_ENV = "TWEET_SIGNALS_LOG_FILE"
VERBOSE_ENV = "TWEET_SIGNALS_VERBOSE"
# Detail for the log file only (tracebacks behind a one-line console message).
DETAIL = "tweet_signals.detail"


def log_file() -> Path:
    """The log file of CLI runs on this machine."""
    from prefect.settings import PREFECT_HOME

    return Path(os.environ.get(LOG_FILE_ENV) or Path(PREFECT_HOME.value()).expanduser() / "tweet-signals.log")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


class ConsoleFilter(logging.Filter):
    """Without --verbose, Prefect's own records and the CLI's detail stay off the console (they are
    in the log file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return verbose() or not record.name.startswith(("prefect", DETAIL))


class ConsoleFormatter(PrefectFormatter):
    """Prefect's console format; without --verbose, no tracebacks (they are in the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        if verbose() or not (record.exc_info or record.exc_text or record.stack_info):
            return super().format(record)
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:  # the same record goes on to the file and API handlers, which keep the detail
            record.exc_info, record.exc_text, record.stack_info = saved


def file_handler(**kwargs: Any) -> logging.Handler:
    """The log file's handler; a null handler when the file cannot be opened (a read-only home
    must not stop a run)."""
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        return logging.NullHandler()
